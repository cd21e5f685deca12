"""The ARM shapes parse with the real azure-mgmt-* models into the values we put in.

These documents are what the sandbox serves to those very clients, so a misspelt field
would surface here as a None, not later as a confusing verifier failure."""

from __future__ import annotations

from azure.mgmt.authorization.v2022_04_01.models import RoleAssignment as RoleAssignmentModel
from azure.mgmt.authorization.v2022_04_01.models import RoleDefinition as RoleDefinitionModel
from azure.mgmt.compute.models import VirtualMachine
from azure.mgmt.msi.v2024_11_30.models import FederatedIdentityCredential, Identity

from components.roles import GET_SECRET, RoleCatalog
from components.testing import arm_shapes

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
UAI = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-a"
VM_ID = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm-a"
VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-a"
KEY = "ssh-ed25519 A"


def test_user_assigned_identity_parses_with_azure_mgmt_msi() -> None:
    doc = arm_shapes.user_assigned_identity(
        arm_id=UAI, location="westeurope", tenant_id="t-1", principal_id="p-1", client_id="c-1",
        tags={"a": "b"},
    )  # fmt: skip
    model = Identity.deserialize(doc)
    assert (model.id, model.name, model.type) == (UAI, "id-a", arm_shapes.USER_ASSIGNED_IDENTITY)
    assert (model.tenant_id, model.principal_id, model.client_id) == ("t-1", "p-1", "c-1")
    assert model.tags == {"a": "b"}
    fic = FederatedIdentityCredential.deserialize(
        arm_shapes.federated_identity_credential(
            arm_id=f"{UAI}/federatedIdentityCredentials/gh",
            issuer="https://i",
            subject="s",
            audiences=["api://AzureADTokenExchange"],
        )
    )
    assert (fic.name, fic.issuer, fic.subject, fic.audiences) == (
        "gh", "https://i", "s", ["api://AzureADTokenExchange"],
    )  # fmt: skip


def test_vm_identity_block_for_each_combination() -> None:
    attached = {UAI: arm_shapes.AttachedIdentity("p-uai", "c-uai")}
    assert arm_shapes.vm_identity(system_principal_id=None, tenant_id="t", user_assigned={}) is None
    system = arm_shapes.vm_identity(system_principal_id="p-sys", tenant_id="t", user_assigned={})
    assert system == {"type": "SystemAssigned", "principalId": "p-sys", "tenantId": "t"}
    user = arm_shapes.vm_identity(system_principal_id=None, tenant_id="t", user_assigned=attached)
    assert user == {
        "type": "UserAssigned",
        "userAssignedIdentities": {UAI: {"principalId": "p-uai", "clientId": "c-uai"}},
    }
    both = arm_shapes.vm_identity(
        system_principal_id="p-sys", tenant_id="t", user_assigned=attached
    )
    assert both is not None and both["type"] == "SystemAssigned, UserAssigned"
    assert set(both) == {"type", "principalId", "tenantId", "userAssignedIdentities"}


def test_virtual_machine_parses_with_azure_mgmt_compute() -> None:
    identity = arm_shapes.vm_identity(
        system_principal_id="p-sys", tenant_id="t",
        user_assigned={UAI: arm_shapes.AttachedIdentity("p-uai", "c-uai")},
    )  # fmt: skip
    nic = f"{RG}/providers/Microsoft.Network/networkInterfaces/vm-a-nic"
    doc = arm_shapes.virtual_machine(
        arm_id=VM_ID, location="westeurope", vm_id="vm-guid", identity=identity,
        vm_size="Standard_B1s", admin_username="azureuser", network_interface_ids=[nic],
        ssh_public_keys=[{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": KEY}],
    )  # fmt: skip
    vm = VirtualMachine(doc)
    assert vm.identity.principal_id == "p-sys"
    assert vm.identity.user_assigned_identities[UAI].client_id == "c-uai"
    assert vm.identity.user_assigned_identities[UAI].principal_id == "p-uai"
    props = vm.properties
    assert props.vm_id == "vm-guid"
    assert props.os_profile.linux_configuration.disable_password_authentication is True
    assert props.os_profile.linux_configuration.ssh.public_keys[0].key_data == KEY
    assert props.network_profile.network_interfaces[0].id == nic
    assert "identity" not in arm_shapes.virtual_machine(
        arm_id=VM_ID, location="w", vm_id="v", identity=None, vm_size="s", admin_username="u"
    )


def test_role_assignment_parses_with_azure_mgmt_authorization() -> None:
    scope = f"{VAULT}/secrets/db"
    doc = arm_shapes.role_assignment(
        scope=scope, name="n-1", role_definition_id=f"/subscriptions/{SUB}/providers/x/y",
        principal_id="p-1", condition="c", condition_version="2.0", description="d",
    )  # fmt: skip
    model = RoleAssignmentModel.deserialize(doc)
    assert model.id == f"{scope}/providers/Microsoft.Authorization/roleAssignments/n-1"
    assert (model.scope, model.principal_id, model.principal_type) == (
        scope,
        "p-1",
        "ServicePrincipal",
    )
    assert (model.condition, model.condition_version, model.description) == ("c", "2.0", "d")
    assert model.created_on is not None


def test_role_definition_parses_with_its_permissions() -> None:
    role = RoleCatalog.builtin().get("Key Vault Secrets User")
    model = RoleDefinitionModel.deserialize(arm_shapes.role_definition(role, subscription_id=SUB))
    assert model.role_name == "Key Vault Secrets User"
    assert model.role_type == "BuiltInRole"
    assert model.name == "4633458b-17de-408a-b874-0445c86b69e6"
    assert model.id == role.definition_id(SUB)
    assert GET_SECRET in model.permissions[0].data_actions
    assert model.assignable_scopes == ["/"]


def test_key_vault_and_management_plane_secret() -> None:
    vault = arm_shapes.key_vault(
        arm_id=VAULT,
        location="westeurope",
        tenant_id="t",
        vault_uri="https://kv-a.vault.azure.net/",
    )
    props = vault["properties"]
    assert props["enableRbacAuthorization"] is True and props["accessPolicies"] == []
    assert "enablePurgeProtection" not in props
    assert (
        arm_shapes.key_vault(
            arm_id=VAULT, location="w", tenant_id="t", vault_uri="u", enable_purge_protection=True
        )["properties"]["enablePurgeProtection"]
        is True
    )
    secret = arm_shapes.key_vault_secret(
        arm_id=f"{VAULT}/secrets/db", location="westeurope",
        vault_uri="https://kv-a.vault.azure.net", version="abc",
    )  # fmt: skip
    assert secret["properties"]["secretUri"] == "https://kv-a.vault.azure.net/secrets/db"
    assert secret["properties"]["secretUriWithVersion"].endswith("/secrets/db/abc")
    assert "value" not in secret["properties"]
