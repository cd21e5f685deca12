"""ManagedIdentities, UserAssignedIdentity and LinuxVirtualMachine as components."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components.errors import ConfigError
from components.identity import (
    FederatedCredential,
    ManagedIdentities,
    UserAssignedIdentity,
    UserAssignedIdentityArgs,
)
from components.testing import AzureMocks, InMemoryArm, run_program
from components.vm import LinuxVirtualMachine, LinuxVirtualMachineArgs
from tests.unit.conftest import SSH_KEY

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
UAI_ID = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-a"
SUBNET = f"{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
VM = "azure-native:compute:VirtualMachine"
SECRET_SCOPE = (
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/secrets/s1"
)


@pytest.mark.parametrize(
    ("system", "ids", "kind"),
    [
        (False, (), "None"),
        (True, (), "SystemAssigned"),
        (False, (UAI_ID,), "UserAssigned"),
        (True, (UAI_ID,), "SystemAssigned, UserAssigned"),
    ],
)
def test_identity_type_is_computed_for_all_four_combinations(
    system: bool, ids: tuple[str, ...], kind: str
) -> None:
    identities = ManagedIdentities(system_assigned=system, user_assigned_ids=ids)
    assert identities.type == kind
    args = identities.vm_identity_args()
    assert args.type == kind
    assert args.user_assigned_identities == (list(ids) or None)


def test_user_assigned_required_but_empty() -> None:
    with pytest.raises(ConfigError) as caught:
        ManagedIdentities.user_assigned()
    assert (caught.value.field, caught.value.value) == ("user_assigned_ids", [])


@pytest.mark.parametrize(
    ("ids", "problem"),
    [
        (UAI_ID, "is a single string, not a list"),
        ([SUBNET], "is not a user-assigned identity ID"),
        (["id-a"], "is not an ARM ID"),
        ([UAI_ID, UAI_ID.upper().replace("SUBSCRIPTIONS", "subscriptions")], "is listed twice"),
    ],
)
def test_user_assigned_ids_are_checked(ids: Any, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ManagedIdentities(user_assigned_ids=ids)
    assert caught.value.problem.startswith(problem)


def deploy_vm(
    identities: ManagedIdentities, with_uai: bool = False
) -> tuple[dict[str, Any], AzureMocks]:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))

    def program() -> None:
        ids = identities
        if with_uai:
            uai = UserAssignedIdentity(
                "uai", UserAssignedIdentityArgs(name="id-a", resource_group_name="rg")
            )
            ids = ManagedIdentities(identities.system_assigned, [uai.id])
        vm = LinuxVirtualMachine(
            "vm",
            LinuxVirtualMachineArgs(
                name="vm-one",
                resource_group_name="rg",
                subnet_id=SUBNET,
                admin_username="opsadmin",
                ssh_public_key=SSH_KEY,
                identities=ids,
            ),
        )
        pulumi.export("principal_id", vm.principal_id)
        pulumi.export("private_ip", vm.private_ip)
        pulumi.export("id", vm.id)

    return run_program(program, {}, mocks=mocks), mocks


@pytest.mark.parametrize(
    ("system", "with_uai", "kind"),
    [
        (False, False, "None"),
        (True, False, "SystemAssigned"),
        (False, True, "UserAssigned"),
        (True, True, "SystemAssigned, UserAssigned"),
    ],
)
def test_vm_sends_the_computed_type_and_reports_the_system_principal(
    system: bool, with_uai: bool, kind: str
) -> None:
    out, mocks = deploy_vm(ManagedIdentities(system_assigned=system), with_uai)
    (vm,) = mocks.of_type(VM)
    assert vm.inputs["identity"]["type"] == kind
    assert ("userAssignedIdentities" in vm.inputs["identity"]) == with_uai
    arm_identity = mocks.backend.get(vm.id).get("identity")  # type: ignore[attr-defined]
    if kind == "None":
        assert arm_identity is None and out["principal_id"] is None
    else:
        assert arm_identity["type"] == kind
        assert out["principal_id"] == arm_identity.get("principalId")
        assert (out["principal_id"] is not None) == system
    assert out["private_ip"] == "10.0.0.4"
    assert out["id"].endswith("/providers/Microsoft.Compute/virtualMachines/vm-one")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "-bad-"}, "name"),
        ({"name": "12345"}, "name"),
        ({"admin_username": "guest"}, "admin_username"),
        ({"admin_username": "Admin!"}, "admin_username"),
        ({"ssh_public_key": "ssh-rsa AAAA"}, "ssh_public_key"),
        ({"size": "B1s"}, "size"),
    ],
)
def test_vm_bad_arguments(changes: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "name": "vm-one",
        "resource_group_name": "rg",
        "subnet_id": SUBNET,
        "admin_username": "opsadmin",
        "ssh_public_key": SSH_KEY,
        **changes,
    }
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))
    with pytest.raises(ConfigError) as caught:
        run_program(
            lambda: LinuxVirtualMachine("vm", LinuxVirtualMachineArgs(**args)), {}, mocks=mocks
        )
    assert caught.value.field == field
    assert caught.value.fix
    assert mocks.registrations == []


def test_user_assigned_identity_outputs_credentials_and_lock() -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))

    def program() -> None:
        uai = UserAssignedIdentity(
            "ci",
            UserAssignedIdentityArgs(
                name="id-ci-deployer",
                resource_group_name="rg",
                lock=True,
                tags={"team": "platform"},
                federated_credentials=[
                    FederatedCredential(
                        "main",
                        "https://token.actions.githubusercontent.com",
                        "repo:org/repo:ref:refs/heads/main",
                    )
                ],
            ),
        )
        for key in ("id", "name", "client_id", "principal_id", "tenant_id"):
            pulumi.export(key, getattr(uai, key))

    out = run_program(program, {}, mocks=mocks)
    backend = mocks.backend
    assert isinstance(backend, InMemoryArm)
    doc = backend.get(out["id"])
    assert doc is not None and doc["tags"] == {"team": "platform"}
    assert (out["client_id"], out["principal_id"], out["tenant_id"]) == (
        doc["properties"]["clientId"],
        doc["properties"]["principalId"],
        backend.tenant_id,
    )
    assert out["name"] == "id-ci-deployer"
    (fic,) = mocks.of_type("azure-native:managedidentity:FederatedIdentityCredential")
    assert fic.inputs == {
        "federatedIdentityCredentialResourceName": "main",
        "resourceName": "id-ci-deployer",
        "resourceGroupName": "rg",
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:org/repo:ref:refs/heads/main",
        "audiences": ["api://AzureADTokenExchange"],
    }
    (lock,) = mocks.of_type("azure-native:authorization:ManagementLockByScope")
    assert (lock.inputs["scope"], lock.inputs["level"]) == (out["id"], "CanNotDelete")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"name": "x"}, "name"),
        ({"name": "has space"}, "name"),
        (
            {"federated_credentials": [FederatedCredential("gh", "http://insecure", "s")]},
            "federated_credentials[0].issuer",
        ),
        (
            {"federated_credentials": [FederatedCredential("gh", "https://i", "")]},
            "federated_credentials[0].subject",
        ),
        (
            {
                "federated_credentials": [
                    FederatedCredential("gh", "https://i", "s"),
                    FederatedCredential("GH", "https://i", "t"),
                ]
            },
            "federated_credentials[1].name",
        ),
    ],
)
def test_user_assigned_identity_bad_arguments(args: dict[str, Any], field: str) -> None:
    full = {"name": "id-ok", "resource_group_name": "rg", **args}
    with pytest.raises(ConfigError) as caught:
        UserAssignedIdentity("x", UserAssignedIdentityArgs(**full))
    assert caught.value.field == field


def test_grant_on_identity_and_on_vm_system_identity() -> None:
    # The secret was made outside this program; ARM needs a grant's scope to exist.
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB, existing=[SECRET_SCOPE]))

    def program() -> None:
        uai = UserAssignedIdentity(
            "uai", UserAssignedIdentityArgs(name="id-a", resource_group_name="rg")
        )
        vm = LinuxVirtualMachine(
            "vm",
            LinuxVirtualMachineArgs(
                name="vm-one",
                resource_group_name="rg",
                subnet_id=SUBNET,
                admin_username="opsadmin",
                ssh_public_key=SSH_KEY,
                identities=ManagedIdentities(True, [uai.id]),
            ),
        )
        a = uai.grant("Key Vault Secrets User", SECRET_SCOPE)
        b = vm.grant(
            "Key Vault Secrets User", pulumi.Output.from_input(SECRET_SCOPE), name="reads-s1"
        )
        pulumi.export("a", a.principal_id)
        pulumi.export("b", b.principal_id)
        pulumi.export("uai", uai.principal_id)
        pulumi.export("vm", vm.principal_id)

    out = run_program(program, {}, mocks=mocks)
    assert out["a"] == out["uai"] and out["b"] == out["vm"] and out["a"] != out["b"]
    names = sorted(r.name for r in mocks.of_type("mikit:authorization:RoleAssignment"))
    assert names[0].startswith("uai-key-vault-secrets-user-") and names[1] == "vm-reads-s1"


def test_grant_needs_a_name_for_output_scopes_and_a_system_identity_on_vms() -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))
    errors: list[ConfigError] = []

    def program() -> None:
        uai = UserAssignedIdentity(
            "uai", UserAssignedIdentityArgs(name="id-a", resource_group_name="rg")
        )
        vm = LinuxVirtualMachine(
            "vm",
            LinuxVirtualMachineArgs(
                name="vm-one",
                resource_group_name="rg",
                subnet_id=SUBNET,
                admin_username="opsadmin",
                ssh_public_key=SSH_KEY,
                identities=ManagedIdentities.user_assigned(uai.id),
            ),
        )
        for attempt in (
            lambda: uai.grant("Reader", pulumi.Output.from_input(SECRET_SCOPE)),
            lambda: vm.grant("Reader", SECRET_SCOPE),
        ):
            try:
                attempt()
            except ConfigError as exc:
                errors.append(exc)

    run_program(program, {}, mocks=mocks)
    assert [e.field for e in errors] == ["name", "grant"]
    assert "system identity, which is off" in errors[1].problem
    assert mocks.of_type("azure-native:authorization:RoleAssignment") == []
