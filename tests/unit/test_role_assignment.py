"""RoleAssignment: deterministic names, full role IDs, conditions, and the privileged guard."""

from __future__ import annotations

import uuid
from typing import Any

import pulumi
import pytest

from components.errors import ConfigError
from components.role_assignment import RoleAssignment, RoleAssignmentArgs, assignment_name
from components.testing import AzureMocks, InMemoryArm, run_program

SUB = "11111111-2222-3333-4444-555555555555"
SUB_ID = f"/subscriptions/{SUB}"
RG = f"{SUB_ID}/resourceGroups/rg-app"
ROLE_DEFS = f"{SUB_ID}/providers/Microsoft.Authorization/roleDefinitions"
VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-app"
SECRET = f"{VAULT}/secrets/db-password"
PRINCIPAL = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
OTHER_PRINCIPAL = "aaaaaaaa-bbbb-cccc-dddd-ffffffffffff"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
RA = "azure-native:authorization:RoleAssignment"


def run(
    args: RoleAssignmentArgs, capture: dict[str, Any] | None = None
) -> tuple[dict[str, Any], AzureMocks]:
    # The scopes below were made outside these small programs; ARM needs them to exist.
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB, existing=[RG, VAULT, SECRET]))

    def program() -> None:
        if capture is not None:

            def record(a: pulumi.ResourceTransformationArgs) -> None:
                capture[a.type_] = a.opts

            pulumi.runtime.register_stack_transformation(record)  # type: ignore[arg-type]
        ra = RoleAssignment("grant", args)
        pulumi.export("name", ra.name)
        pulumi.export("id", ra.id)
        pulumi.export("role_definition_id", ra.role_definition_id)
        pulumi.export("principal_type", ra.principal_type)
        pulumi.export("role_name", ra.role_name)

    return run_program(program, {}, mocks=mocks), mocks


def test_name_is_uuid5_of_scope_principal_role_case_insensitive() -> None:
    name = assignment_name(SECRET, PRINCIPAL, SECRETS_USER)
    assert uuid.UUID(name).version == 5
    assert assignment_name(SECRET.upper(), PRINCIPAL.upper(), SECRETS_USER.upper()) == name
    assert assignment_name(SECRET + "/", PRINCIPAL, SECRETS_USER) == name
    assert assignment_name(VAULT, PRINCIPAL, SECRETS_USER) != name  # scope differs
    assert assignment_name(SECRET, OTHER_PRINCIPAL, SECRETS_USER) != name  # principal differs
    assert assignment_name(SECRET, PRINCIPAL, READER) != name  # role differs


def test_assignment_sent_to_arm() -> None:
    out, mocks = run(
        RoleAssignmentArgs(role="Key Vault Secrets User", principal_id=PRINCIPAL, scope=SECRET)
    )
    (reg,) = mocks.of_type(RA)
    expected_name = assignment_name(SECRET, PRINCIPAL, SECRETS_USER)
    assert reg.inputs == {
        "roleAssignmentName": expected_name,
        "scope": SECRET,
        "principalId": PRINCIPAL,
        "principalType": "ServicePrincipal",
        "roleDefinitionId": f"{ROLE_DEFS}/{SECRETS_USER}",
    }
    assert out["name"] == expected_name
    assert (
        out["id"] == f"{SECRET}/providers/Microsoft.Authorization/roleAssignments/{expected_name}"
    )
    assert out["role_name"] == "Key Vault Secrets User"
    assert out["principal_type"] == "ServicePrincipal"


@pytest.mark.parametrize(
    "reference",
    [
        SECRETS_USER,
        SECRETS_USER.upper(),
        f"/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}",
        f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}",
        "key vault secrets user",
    ],
)
def test_role_by_name_guid_or_definition_id(reference: str) -> None:
    out, _ = run(RoleAssignmentArgs(role=reference, principal_id=PRINCIPAL, scope=SECRET))
    assert out["role_definition_id"].endswith(f"/roleDefinitions/{SECRETS_USER}")
    assert out["role_name"] == "Key Vault Secrets User"


def test_condition_gets_version_2_and_description_is_kept() -> None:
    # A Storage data role: a condition on a Key Vault role is refused (test_grant_conditions).
    condition = (
        "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'x'"
    )
    _, mocks = run(
        RoleAssignmentArgs(
            role="Storage Blob Data Reader",
            principal_id=PRINCIPAL,
            scope=RG,
            condition=condition,
            description="why",
        )
    )
    (reg,) = mocks.of_type(RA)
    assert (reg.inputs["condition"], reg.inputs["conditionVersion"], reg.inputs["description"]) == (
        condition,
        "2.0",
        "why",
    )


def test_replaced_with_delete_before_replace_on_identity_changes() -> None:
    captured: dict[str, Any] = {}
    run(
        RoleAssignmentArgs(role="Key Vault Secrets User", principal_id=PRINCIPAL, scope=SECRET),
        captured,
    )
    opts = captured[RA]
    assert opts.delete_before_replace is True
    assert set(opts.replace_on_changes) == {"scope", "principalId", "roleDefinitionId"}


@pytest.mark.parametrize(
    ("role", "scope"),
    [
        ("Owner", RG),
        ("Contributor", f"/subscriptions/{SUB}"),
        ("User Access Administrator", RG),
        ("Key Vault Administrator", f"/subscriptions/{SUB}"),
        ("Role Based Access Control Administrator", RG),
    ],
)
def test_privileged_role_at_broad_scope_is_refused(role: str, scope: str) -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))
    with pytest.raises(ConfigError) as caught:
        run_program(
            lambda: RoleAssignment(
                "g", RoleAssignmentArgs(role=role, principal_id=PRINCIPAL, scope=scope)
            ),
            {},
            mocks=mocks,
        )
    assert (caught.value.field, caught.value.value) == ("role", role)
    assert "allow_privileged=True" in caught.value.fix
    assert mocks.registrations == []


def test_privileged_role_with_opt_in_is_allowed_at_any_scope() -> None:
    _, mocks = run(
        RoleAssignmentArgs(role="Owner", principal_id=PRINCIPAL, scope=RG, allow_privileged=True)
    )
    assert mocks.of_type(RA)[0].inputs["scope"] == RG
    _, mocks = run(
        RoleAssignmentArgs(
            role="Key Vault Administrator",
            principal_id=PRINCIPAL,
            scope=VAULT,
            allow_privileged=True,
        )
    )
    assert mocks.of_type(RA)[0].inputs["scope"] == VAULT


@pytest.mark.parametrize("role", ["Owner", "Key Vault Administrator", "User Access Administrator"])
@pytest.mark.parametrize("scope", [VAULT, f"{VAULT}/secrets/db"])
def test_privileged_role_at_vault_or_secret_scope_needs_the_opt_in(role: str, scope: str) -> None:
    """Owner on a vault can grant itself Key Vault Secrets Officer there; Key Vault
    Administrator holds the whole data plane: narrow scope is no excuse."""
    with pytest.raises(ConfigError) as caught:
        run(RoleAssignmentArgs(role=role, principal_id=PRINCIPAL, scope=scope))
    assert caught.value.value == role
    assert "is a resource" in caught.value.problem
    assert "allow_privileged=True" in caught.value.fix


def test_guard_also_applies_to_scopes_known_only_at_deploy_time() -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))

    def program() -> None:
        RoleAssignment(
            "g",
            RoleAssignmentArgs(
                role="Owner", principal_id=PRINCIPAL, scope=pulumi.Output.from_input(RG)
            ),
        )

    with pytest.raises(ConfigError, match="is a privileged role"):
        run_program(program, {}, mocks=mocks)
    assert mocks.of_type(RA) == []


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"scope": "subscriptions/abc"}, "scope", "is not an ARM ID"),
        ({"scope": "/subscriptions/not-a-guid/resourceGroups/x"}, "scope", "has subscription"),
        (
            {"scope": f"{RG}/providers/Microsoft.KeyVault/vaults"},
            "scope",
            "is not a resource group or resource path",
        ),
        ({"principal_id": "my-app"}, "principal_id", "is not a GUID"),
        ({"principal_type": "Robot"}, "principal_type", "is not a principal type"),
        ({"condition_version": "2.0"}, "condition_version", "is set without a condition"),
        ({"role": "Storage Blob Reader"}, "role", "is not a built-in role"),
    ],
)
def test_bad_arguments_fail_before_registration(
    changes: dict[str, Any], field: str, problem: str
) -> None:
    base: dict[str, Any] = {
        "role": "Key Vault Secrets User",
        "principal_id": PRINCIPAL,
        "scope": SECRET,
    }
    with pytest.raises(ConfigError) as caught:
        RoleAssignment._validate(RoleAssignmentArgs(**{**base, **changes}))
        RoleAssignment("g", RoleAssignmentArgs(**{**base, **changes}))
    assert caught.value.field == field
    assert caught.value.problem.startswith(problem)
    assert caught.value.fix


def test_unknown_role_lists_close_matches() -> None:
    with pytest.raises(ConfigError) as caught:
        RoleAssignment._validate(
            RoleAssignmentArgs(role="Storage Blob Reader", principal_id=PRINCIPAL, scope=SECRET)
        )
    assert "'Storage Blob Data Reader'" in caught.value.fix
