"""A grant's condition is validated before anything registers, as ARM would.

The reported failure: Key Vault Secrets User at vault scope with a condition meant to
allow one secret was accepted, deployed, and reported (and verified) as reading every
secret. On Azure the same grant fails at deploy: ARM accepts conditions only on Blob/Queue
Storage data roles and role-assignment delegation (400 "The given role assignment
condition is invalid."). Now it is refused at the config key, before any resource.
"""

from __future__ import annotations

import copy
from typing import Any

import pulumi
import pytest

from components.arm.errors import ArmError
from components.arm.tokens import PULUMI_ROLE_ASSIGNMENT
from components.errors import ConfigError
from components.role_assignment import RoleAssignment, RoleAssignmentArgs
from components.testing import AzureMocks, InMemoryArm, run_program
from tests.unit.conftest import PROGRAM, dev_config

ONE_SECRET = "@Resource[Microsoft.KeyVault/vaults/secrets:name] StringEquals 'app-db-password'"
SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-app"
VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-app"
CONTAINER = (
    f"{RG}/providers/Microsoft.Storage/storageAccounts/stapp/blobServices/default/containers/c1"
)
# Made outside these small programs; ARM refuses an assignment whose scope does not exist.
SCOPES = (VAULT, CONTAINER)
PRINCIPAL = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRETS_USER_GUID = "4633458b-17de-408a-b874-0445c86b69e6"
BLOB_READER_GUID = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
CONTAINER_CONDITION = (
    f"((!(ActionMatches{{'{READ}'}})) OR "
    "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'c1'))"
)


def fails(config: dict[str, Any]) -> ConfigError:
    mocks = AzureMocks(InMemoryArm())
    with pytest.raises(ConfigError) as caught:
        run_program(PROGRAM, config, mocks=mocks)
    assert mocks.custom_registrations() == [], "a resource was registered before the error"
    return caught.value


def with_vault_grant(**extra: str) -> dict[str, Any]:
    grants = copy.deepcopy(dev_config()["mikit:grants"])
    grants.append(
        {"principal": "vm:solo", "role": "Key Vault Secrets User", "target": "vault", **extra}
    )
    return dev_config(**{"mikit:grants": grants})


def test_key_vault_grant_with_a_condition_is_refused_before_any_resource() -> None:
    config = with_vault_grant(condition=ONE_SECRET)
    error = fails(config)
    index = len(config["mikit:grants"]) - 1
    assert error.field == f"mikit:grants[{index}].condition"
    assert error.value == ONE_SECRET
    assert "The given role assignment condition is invalid" in error.problem
    assert "Key Vault Secrets User" in error.problem
    assert "secret:<name>" in error.fix


def test_condition_version_other_than_2_is_refused_at_its_key() -> None:
    grants = copy.deepcopy(dev_config()["mikit:grants"])
    grants[0].update(condition=CONTAINER_CONDITION, conditionVersion="1.0")
    error = fails(dev_config(**{"mikit:grants": grants}))
    assert (error.field, error.value) == ("mikit:grants[0].conditionVersion", "1.0")


def test_a_syntax_error_in_a_config_condition_names_line_and_column() -> None:
    error = fails(with_vault_grant(condition="(\n@Resource[x] StringEquals 'a'"))
    assert error.field.endswith(".condition")
    # The role is refused first: even valid text cannot go on a Key Vault role.
    assert "The given role assignment condition is invalid" in error.problem


def run_assignment(args: RoleAssignmentArgs) -> AzureMocks:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB, existing=SCOPES))

    def program() -> None:
        RoleAssignment("grant", args)

    run_program(program, {}, mocks=mocks)
    return mocks


def test_role_assignment_component_refuses_a_condition_on_a_key_vault_role() -> None:
    args = RoleAssignmentArgs(
        role="Key Vault Secrets User", principal_id=PRINCIPAL, scope=VAULT, condition=ONE_SECRET
    )
    with pytest.raises(ConfigError) as caught:
        run_assignment(args)
    assert caught.value.field == "condition"


def test_role_assignment_component_sends_a_valid_storage_condition_with_version_2() -> None:
    mocks = run_assignment(
        RoleAssignmentArgs(
            role="Storage Blob Data Reader",
            principal_id=PRINCIPAL,
            scope=CONTAINER,
            condition=CONTAINER_CONDITION,
        )
    )
    (reg,) = mocks.of_type("azure-native:authorization:RoleAssignment")
    assert reg.inputs["condition"] == CONTAINER_CONDITION
    assert reg.inputs["conditionVersion"] == "2.0"


def test_role_assignment_component_exposes_the_parsed_condition() -> None:
    seen: list[object] = []

    def program() -> None:
        ra = RoleAssignment(
            "grant",
            RoleAssignmentArgs(
                role="Storage Blob Data Reader",
                principal_id=PRINCIPAL,
                scope=CONTAINER,
                condition=CONTAINER_CONDITION,
            ),
        )
        seen.append(ra.condition)
        pulumi.export("ok", True)

    run_program(program, {}, mocks=AzureMocks(InMemoryArm(subscription_id=SUB, existing=SCOPES)))
    (condition,) = seen
    assert condition is not None
    assert condition.actions() == {READ}  # type: ignore[attr-defined]


def test_the_mock_runtime_arm_refuses_what_arm_refuses() -> None:
    """components.arm.memory (mock runtime and sandbox deploys): the same 400 as ARM."""
    arm = InMemoryArm(subscription_id=SUB, existing=SCOPES)
    name = "0c4e4e4e-0000-4000-8000-000000000001"

    def put(role: str, scope: str, **extra: str) -> dict[str, Any]:
        return arm.create_or_update(
            PULUMI_ROLE_ASSIGNMENT,
            f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
            {
                "scope": scope,
                "principalId": PRINCIPAL,
                "principalType": "ServicePrincipal",
                "roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
                f"roleDefinitions/{role}",
                **extra,
            },
        )

    for role, extra in [
        (SECRETS_USER_GUID, {"condition": ONE_SECRET, "conditionVersion": "2.0"}),
        (BLOB_READER_GUID, {"condition": CONTAINER_CONDITION, "conditionVersion": "1.0"}),
    ]:
        with pytest.raises(ArmError) as caught:
            put(role, VAULT, **extra)
        assert (caught.value.status, caught.value.code) == (400, "InvalidRoleAssignmentCondition")
        assert caught.value.message == "The given role assignment condition is invalid."
    doc = put(BLOB_READER_GUID, CONTAINER, condition=CONTAINER_CONDITION)
    assert doc["properties"]["conditionVersion"] == "2.0"  # ARM's default version
