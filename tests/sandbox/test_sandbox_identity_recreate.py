"""A user-assigned identity deleted and created again under the same name is a new
principal; a VM never attached to it again keeps the old one, as in Azure.

Reproduced: the never-re-attached VM got tokens for the new principal and its ARM identity
block showed the new principal. Real clients: ManagedIdentityCredential through the VM's
IMDS, azure-mgmt-compute for the VM's identity block and the re-attaching PATCH."""

from __future__ import annotations

import jwt
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import (
    UserAssignedIdentitiesValue,
    VirtualMachineIdentity,
    VirtualMachineUpdate,
)
from sandbox_world import VAULT_SCOPE, OnVm, World

from verify.sandbox import Sandbox, UserAssignedIdentity, VirtualMachine


def compute(sb: Sandbox) -> ComputeManagementClient:
    return ComputeManagementClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )


def imds_token(sb: Sandbox, vm: VirtualMachine, **selector: str) -> requests.Response:
    return requests.get(
        f"{sb.imds_url(vm)}/metadata/identity/oauth2/token",
        params={"api-version": "2018-02-01", "resource": "https://vault.azure.net", **selector},
        headers={"Metadata": "true"},
        timeout=5,
    )


def recreate(sb: Sandbox, uai: UserAssignedIdentity) -> UserAssignedIdentity:
    sb.state.delete_identity(uai.id)
    new = sb.state.create_identity(uai.resource_group, uai.name)
    assert (new.id.lower(), new.principal_id) == (uai.id.lower(), new.principal_id)
    assert new.principal_id != uai.principal_id and new.client_id != uai.client_id
    return new


def block_principal(sb: Sandbox, vm: VirtualMachine, uai_id: str) -> str:
    got = compute(sb).virtual_machines.get(vm.resource_group, vm.name)
    assert got.identity is not None and got.identity.user_assigned_identities is not None
    attached = {k.lower(): v for k, v in got.identity.user_assigned_identities.items()}
    return str(attached[uai_id.lower()].principal_id)


def test_a_vm_never_reattached_gets_no_token_for_the_new_principal(
    sb: Sandbox, world: World, on_vm: OnVm
) -> None:
    vm = sb.state.create_vm(world.rg, "vm-lone", user_assigned=[world.id_lone.id])
    assert imds_token(sb, vm).status_code == 200
    new = recreate(sb, world.id_lone)
    for selector in ({}, {"client_id": new.client_id}, {"object_id": new.principal_id}):
        answer = imds_token(sb, vm, **selector)
        assert answer.status_code == 400, selector
        assert answer.json() == {
            "error": "invalid_request",
            "error_description": "Identity not found",
        }
    on_vm(vm)
    with pytest.raises((ClientAuthenticationError, CredentialUnavailableError)):
        ManagedIdentityCredential(client_id=new.client_id).get_token(VAULT_SCOPE)
    # the VM's ARM identity block still names the principal it was attached with
    assert block_principal(sb, vm, new.id) == world.id_lone.principal_id


def test_attaching_it_again_binds_the_new_principal(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    vm = sb.state.create_vm(world.rg, "vm-again", user_assigned=[world.id_lone.id])
    new = recreate(sb, world.id_lone)
    compute(sb).virtual_machines.begin_update(
        vm.resource_group,
        vm.name,
        VirtualMachineUpdate(
            identity=VirtualMachineIdentity(
                type="UserAssigned",
                user_assigned_identities={new.id: UserAssignedIdentitiesValue()},
            )
        ),
        polling_interval=0,
    ).result()
    assert block_principal(sb, vm, new.id) == new.principal_id
    on_vm(vm)
    token = ManagedIdentityCredential(client_id=new.client_id).get_token(VAULT_SCOPE).token
    assert jwt.decode(token, options={"verify_signature": False})["oid"] == new.principal_id


def test_a_patch_naming_another_identity_leaves_the_stale_one_stale(
    sb: Sandbox, world: World
) -> None:
    vm = sb.state.create_vm(world.rg, "vm-two", user_assigned=[world.id_lone.id])
    new = recreate(sb, world.id_lone)
    compute(sb).virtual_machines.begin_update(
        vm.resource_group,
        vm.name,
        VirtualMachineUpdate(
            identity=VirtualMachineIdentity(
                type="UserAssigned",
                user_assigned_identities={world.id_a.id: UserAssignedIdentitiesValue()},
            )
        ),
        polling_interval=0,
    ).result()
    assert block_principal(sb, vm, new.id) == world.id_lone.principal_id
    assert imds_token(sb, vm, client_id=new.client_id).status_code == 400
    assert imds_token(sb, vm, client_id=world.id_a.client_id).status_code == 200


def test_other_vms_sharing_a_live_identity_are_unaffected(sb: Sandbox, world: World) -> None:
    """Binding is per VM: vm_multi's id_a keeps working while id_lone is re-created."""
    recreate(sb, world.id_lone)
    assert imds_token(sb, world.vm_multi, client_id=world.id_a.client_id).status_code == 200
    assert block_principal(sb, world.vm_multi, world.id_a.id) == world.id_a.principal_id
