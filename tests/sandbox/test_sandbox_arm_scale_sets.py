"""Scale sets through the sandbox's ARM front with the real azure-mgmt-compute client: GET,
PATCH of ``sku.capacity`` (a new instance holds the set's identities at once), the
instances list, DELETE (the set's system principal goes, a user-assigned identity stays,
the set's role assignments stay orphaned), and RBAC on each."""

from __future__ import annotations

import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import Sku, VirtualMachineScaleSetUpdate

from verify.sandbox import Sandbox
from verify.sandbox.state.store import ServicePrincipal


def _compute(sb: Sandbox, principal: ServicePrincipal | None = None) -> ComputeManagementClient:
    return ComputeManagementClient(
        sb.credential(principal), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )


def test_scale_out_in_and_delete_through_the_compute_client(sb: Sandbox) -> None:
    st = sb.state
    rg = st.create_resource_group(f"rg-vmss-{uuid.uuid4().hex[:8]}")
    shared = st.create_identity(rg.name, "id-shared")
    ss = st.create_scale_set(
        rg.name, "vmss-web", capacity=2, system_assigned=True, user_assigned=[shared.id]
    )
    assert ss.system_principal_id is not None
    vault = st.create_vault(rg.name, f"kv-{uuid.uuid4().hex[:8]}")
    grant = st.create_role_assignment(vault.id, "Key Vault Secrets User", ss.system_principal_id)
    compute = _compute(sb)

    got = compute.virtual_machine_scale_sets.get(rg.name, "vmss-web")
    assert got.sku.capacity == 2 and got.identity.principal_id == ss.system_principal_id
    assert list(got.identity.user_assigned_identities) == [shared.id]

    compute.virtual_machine_scale_sets.begin_update(
        rg.name, "vmss-web", VirtualMachineScaleSetUpdate(sku=Sku(capacity=3)), polling_interval=0
    ).result()
    listed = list(compute.virtual_machine_scale_set_vms.list(rg.name, "vmss-web"))
    assert [v.instance_id for v in listed] == ["0", "1", "2"]
    newest = st.instance(f"{ss.id}/virtualMachines/2")
    assert newest is not None and newest.system_principal_id == ss.system_principal_id
    assert newest.user_assigned == (shared.id,)  # a PATCH of sku alone keeps the identities
    assert listed[2].identity.principal_id == ss.system_principal_id

    compute.virtual_machine_scale_sets.begin_update(
        rg.name, "vmss-web", VirtualMachineScaleSetUpdate(sku=Sku(capacity=1)), polling_interval=0
    ).result()
    assert [i.id.rsplit("/", 1)[-1] for i in st.instances(ss.id)] == ["0"]
    assert st.principal(ss.system_principal_id) is not None  # outlives removed instances

    compute.virtual_machine_scale_sets.begin_delete(
        rg.name, "vmss-web", polling_interval=0
    ).result()
    with pytest.raises(ResourceNotFoundError):
        compute.virtual_machine_scale_sets.get(rg.name, "vmss-web")
    assert st.principal(ss.system_principal_id) is None
    assert st.identity(shared.id) is not None
    assert [a.id for a in st.role_assignments(principal_id=ss.system_principal_id)] == [grant.id]
    # a second delete of what is gone is 204, as ARM answers
    compute.virtual_machine_scale_sets.begin_delete(
        rg.name, "vmss-web", polling_interval=0
    ).result()


def test_capacity_out_of_range_and_rbac_are_refused(sb: Sandbox) -> None:
    st = sb.state
    rg = st.create_resource_group(f"rg-vmss-{uuid.uuid4().hex[:8]}")
    st.create_scale_set(rg.name, "vmss-web", capacity=1, system_assigned=True)
    compute = _compute(sb)
    with pytest.raises(HttpResponseError) as bad:
        compute.virtual_machine_scale_sets.begin_update(
            rg.name, "vmss-web", VirtualMachineScaleSetUpdate(sku=Sku(capacity=-1)),
            polling_interval=0,
        ).result()  # fmt: skip
    assert bad.value.status_code == 400 and bad.value.error.code == "InvalidParameter"
    reader = st.create_principal(f"reader-{uuid.uuid4().hex[:8]}")
    st.create_role_assignment(rg.id, "Reader", reader.object_id)
    as_reader = _compute(sb, reader)
    assert as_reader.virtual_machine_scale_sets.get(rg.name, "vmss-web").sku.capacity == 1
    with pytest.raises(HttpResponseError) as refused:
        as_reader.virtual_machine_scale_sets.begin_delete(
            rg.name, "vmss-web", polling_interval=0
        ).result()
    assert refused.value.status_code == 403
    assert st.scale_set(f"{rg.id}/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web")


def test_a_scale_sets_time_created_is_when_it_was_made_on_every_read(sb: Sandbox) -> None:
    """It was stamped at each GET, so two reads of one set disagreed."""
    st = sb.state
    rg = st.create_resource_group(f"rg-vmss-{uuid.uuid4().hex[:8]}")
    ss = st.create_scale_set(rg.name, "vmss-web", capacity=1, system_assigned=True)
    compute = _compute(sb)
    first = compute.virtual_machine_scale_sets.get(rg.name, "vmss-web").time_created
    time.sleep(0.01)
    second = compute.virtual_machine_scale_sets.get(rg.name, "vmss-web").time_created
    assert first == second
    assert abs(first.timestamp() - ss.created_on) < 0.001
