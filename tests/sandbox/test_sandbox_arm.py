"""The ARM slice with the real azure-mgmt-authorization, -msi and -compute clients."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.identity import ManagedIdentityCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.aio import AuthorizationManagementClient as AsyncAuthorizationClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import (
    UserAssignedIdentitiesValue,
    VirtualMachineIdentity,
    VirtualMachineUpdate,
)
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import Identity
from sandbox_world import OnVm, World

from components.roles import role_definition_id
from verify.sandbox import Sandbox

SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


def authz(sb: Sandbox, credential: object | None = None) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(
        credential or sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )


def msi(sb: Sandbox) -> ManagedServiceIdentityClient:
    return ManagedServiceIdentityClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )


def compute(sb: Sandbox) -> ComputeManagementClient:
    return ComputeManagementClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )


def refuses(url: str) -> bool:
    try:
        requests.get(
            url + "/metadata/identity/oauth2/token", headers={"Metadata": "true"}, timeout=1
        )
    except requests.ConnectionError:
        return True
    return False


def secrets_user(sb: Sandbox) -> str:
    return role_definition_id(sb.subscription_id, SECRETS_USER)


# ------------------------------------------------------------- role assignments
def test_list_assignments_by_principal_and_at_scope(sb: Sandbox, world: World) -> None:
    client = authz(sb)
    mine = list(
        client.role_assignments.list_for_scope(
            world.vault.id, filter=f"principalId eq '{world.id_a.principal_id}'"
        )
    )
    assert [(a.principal_id, a.role_definition_id, a.scope, a.principal_type) for a in mine] == [
        (world.id_a.principal_id, secrets_user(sb), world.vault.id, "ServicePrincipal")
    ]
    assert (
        mine[0].id
        == f"{world.vault.id}/providers/Microsoft.Authorization/roleAssignments/{mine[0].name}"
    )
    at_db = list(
        client.role_assignments.list_for_scope(world.vault.secret_scope("db"), filter="atScope()")
    )
    assert {a.principal_id for a in at_db} == {
        world.vm_sys.system_principal_id,
        world.id_a.principal_id,
        world.id_b.principal_id,
        sb.operator.object_id,
    }
    at_vault = list(client.role_assignments.list_for_scope(world.vault.id, filter="atScope()"))
    assert world.vm_sys.system_principal_id not in {a.principal_id for a in at_vault}  # it is below
    below_too = list(client.role_assignments.list_for_scope(world.vault.id))
    assert world.vm_sys.system_principal_id in {a.principal_id for a in below_too}


def test_create_get_conflict_delete_assignment(sb: Sandbox, world: World) -> None:
    client = authz(sb)
    name = str(uuid.uuid4())
    params = RoleAssignmentCreateParameters(
        role_definition_id=secrets_user(sb),
        principal_id=world.id_b.principal_id,
        principal_type="ServicePrincipal",
    )
    created = client.role_assignments.create(world.vault.secret_scope("api"), name, params)
    assert created.name == name and created.created_on is not None
    again = client.role_assignments.create(
        world.vault.secret_scope("api"), name, params
    )  # idempotent
    assert again.id == created.id
    with pytest.raises(HttpResponseError) as exists:
        client.role_assignments.create(world.vault.secret_scope("api"), str(uuid.uuid4()), params)
    assert (exists.value.status_code, exists.value.error.code) == (409, "RoleAssignmentExists")  # type: ignore[union-attr]
    fetched = client.role_assignments.get(world.vault.secret_scope("api"), name)
    assert fetched.principal_id == world.id_b.principal_id
    deleted = client.role_assignments.delete_by_id(created.id)
    assert deleted is not None and deleted.id == created.id
    with pytest.raises(ResourceNotFoundError):
        client.role_assignments.get(world.vault.secret_scope("api"), name)
    assert sb.state.role_assignment(created.id) is None


def test_principal_checks_follow_principal_type(sb: Sandbox, world: World) -> None:
    """No type: the directory is asked (PrincipalNotFound); a wrong type is refused; with
    ServicePrincipal an unknown ID is accepted (ARM assumes replication is under way)."""
    client = authz(sb)
    unknown = str(uuid.uuid4())
    untyped = RoleAssignmentCreateParameters(
        role_definition_id=secrets_user(sb), principal_id=unknown, principal_type=None
    )
    with pytest.raises(HttpResponseError) as missing:
        client.role_assignments.create(world.vault.id, str(uuid.uuid4()), untyped)
    assert (missing.value.status_code, missing.value.error.code) == (400, "PrincipalNotFound")  # type: ignore[union-attr]
    as_user = RoleAssignmentCreateParameters(  # the SDK's default principal_type is "User"
        role_definition_id=secrets_user(sb), principal_id=world.id_b.principal_id
    )
    with pytest.raises(HttpResponseError) as unmatched:
        client.role_assignments.create(world.vault.id, str(uuid.uuid4()), as_user)
    assert unmatched.value.error.code == "UnmatchedPrincipalType"  # type: ignore[union-attr]
    typed = RoleAssignmentCreateParameters(
        role_definition_id=secrets_user(sb), principal_id=unknown, principal_type="ServicePrincipal"
    )
    assert (
        client.role_assignments.create(world.vault.id, str(uuid.uuid4()), typed).principal_id
        == unknown
    )


def test_role_definitions_by_name_and_id(sb: Sandbox) -> None:
    client = authz(sb)
    scope = f"/subscriptions/{sb.subscription_id}"
    found = list(client.role_definitions.list(scope, filter="roleName eq 'Key Vault Secrets User'"))
    assert [(d.name, d.role_name, d.role_type) for d in found] == [
        (SECRETS_USER, "Key Vault Secrets User", "BuiltInRole")
    ]
    assert (
        "Microsoft.KeyVault/vaults/secrets/getSecret/action" in found[0].permissions[0].data_actions
    )
    contributor = next(
        iter(client.role_definitions.list(scope, filter="roleName eq 'Contributor'"))
    )
    assert contributor.permissions[0].data_actions == []
    assert client.role_definitions.get_by_id(found[0].id).role_name == "Key Vault Secrets User"
    assert len(list(client.role_definitions.list(scope))) > 100


async def test_async_list_assignments(sb: Sandbox, world: World) -> None:
    async with (
        sb.async_credential() as credential,
        AsyncAuthorizationClient(
            credential, sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
        ) as client,
    ):
        found = [
            a
            async for a in client.role_assignments.list_for_scope(
                world.vault.id, filter=f"principalId eq '{world.id_b.principal_id}'"
            )
        ]
    assert [a.principal_id for a in found] == [world.id_b.principal_id]


# ------------------------------------------------------- user-assigned identities
def test_identity_get_create_delete(sb: Sandbox, world: World) -> None:
    client = msi(sb)
    got = client.user_assigned_identities.get(world.rg, "id-a")
    assert (got.id, got.principal_id, got.client_id, got.tenant_id) == (
        world.id_a.id,
        world.id_a.principal_id,
        world.id_a.client_id,
        sb.tenant_id,
    )
    made = client.user_assigned_identities.create_or_update(
        world.rg, "id-new", Identity(location="westeurope")
    )
    assert sb.state.principal(made.principal_id) is not None
    client.user_assigned_identities.delete(world.rg, "id-a")
    with pytest.raises(ResourceNotFoundError):
        client.user_assigned_identities.get(world.rg, "id-a")
    assert sb.state.principal(world.id_a.principal_id) is None
    orphans = list(
        authz(sb).role_assignments.list_for_scope(
            world.vault.id, filter=f"principalId eq '{world.id_a.principal_id}'"
        )
    )
    assert len(orphans) == 1, "deleting an identity leaves its role assignments behind"
    recreated = client.user_assigned_identities.create_or_update(
        world.rg, "id-a", Identity(location="westeurope")
    )
    assert recreated.principal_id != world.id_a.principal_id, "same name, new principal"


# -------------------------------------------------------------------------- VMs
def test_vm_get_identity_update_and_delete(sb: Sandbox, world: World) -> None:
    client = compute(sb)
    vm = client.virtual_machines.get(world.rg, world.vm_both.name)
    assert vm.identity.type == "SystemAssigned, UserAssigned"
    assert vm.identity.principal_id == world.vm_both.system_principal_id
    assert vm.identity.user_assigned_identities[world.id_a.id].client_id == world.id_a.client_id
    assert vm.vm_id == world.vm_both.vm_id
    update = VirtualMachineUpdate(
        identity=VirtualMachineIdentity(
            type="UserAssigned",
            user_assigned_identities={
                world.id_a.id: UserAssignedIdentitiesValue(),
                world.id_b.id: UserAssignedIdentitiesValue(),
            },
        )
    )
    updated = client.virtual_machines.begin_update(
        world.rg, world.vm_both.name, update, polling_interval=0
    ).result()
    assert updated.identity.type == "UserAssigned"
    assert set(updated.identity.user_assigned_identities) == {world.id_a.id, world.id_b.id}
    assert sb.state.principal(world.vm_both.system_principal_id or "") is None

    imds_url = sb.imds_url(world.vm_sys)
    client.virtual_machines.begin_delete(world.rg, world.vm_sys.name, polling_interval=0).result()
    with pytest.raises(ResourceNotFoundError):
        client.virtual_machines.get(world.rg, world.vm_sys.name)
    principal = world.vm_sys.system_principal_id or ""
    assert sb.state.principal(principal) is None
    assert len(sb.state.role_assignments(principal_id=principal)) == 1, "assignment stays, orphaned"
    deadline = time.monotonic() + 3  # the VM's IMDS listener shuts down with it
    while not refuses(imds_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert refuses(imds_url)


def test_vm_identity_type_and_list_must_agree(sb: Sandbox, world: World) -> None:
    update = VirtualMachineUpdate(
        identity=VirtualMachineIdentity(
            type="SystemAssigned",
            user_assigned_identities={world.id_a.id: UserAssignedIdentitiesValue()},
        )
    )
    with pytest.raises(HttpResponseError) as bad:
        compute(sb).virtual_machines.begin_update(
            world.rg, world.vm_both.name, update, polling_interval=0
        ).result()
    assert bad.value.status_code == 400
    assert "identityIds should not be provided" in str(bad.value)


# ------------------------------------------------------------------- ARM RBAC
def test_managed_identity_is_authorized_by_its_roles(
    sb: Sandbox, world: World, on_vm: OnVm
) -> None:
    """id_b holds Contributor on the vault: it may read assignments there, not delete them."""
    on_vm(world.vm_multi)
    client = authz(sb, ManagedIdentityCredential(client_id=world.id_b.client_id))
    listed = list(client.role_assignments.list_for_scope(world.vault.id, filter="atScope()"))
    assert world.id_b.principal_id in {a.principal_id for a in listed}
    with pytest.raises(HttpResponseError) as denied:
        client.role_assignments.delete_by_id(listed[0].id)
    assert (denied.value.status_code, denied.value.error.code) == (403, "AuthorizationFailed")  # type: ignore[union-attr]
    rg_scope = f"/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}"
    with pytest.raises(HttpResponseError) as outside:  # nothing granted at the group
        list(client.role_assignments.list_for_scope(rg_scope, filter="atScope()"))
    assert outside.value.status_code == 403


def test_arm_requires_a_management_token(sb: Sandbox, world: World) -> None:
    path = f"{world.vault.id}/providers/Microsoft.Authorization/roleAssignments"
    url = f"{sb.arm_url}{path}?api-version=2022-04-01"
    missing = requests.get(url, verify=sb.ca_cert_path, timeout=5)
    vault_token = sb.issue_token(sb.operator, "https://vault.azure.net")
    wrong_audience = requests.get(
        url, headers={"Authorization": f"Bearer {vault_token}"}, verify=sb.ca_cert_path, timeout=5
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "AuthenticationFailed")
    assert (wrong_audience.status_code, wrong_audience.json()["error"]["code"]) == (
        401,
        "InvalidAuthenticationTokenAudience",  # ARM's own code for a token of another resource
    )
