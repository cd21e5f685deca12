"""First-run failures the shared ARM model reproduces, each on a bad program and not on ours.

The rules live in ``components.arm.rules`` and fire in the mock runtime (``InMemoryArm``
behind ``AzureMocks``) exactly where the first real ``pulumi up`` would fail. Concurrency
is decided from Pulumi's dependency graph, so the outcome never depends on which
executor thread happens to run first.
"""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_azure_native as azure_native
import pytest

from components.arm import rules
from components.arm import shapes as arm_shapes
from components.arm.errors import ArmError
from components.arm.tokens import (
    PULUMI_FEDERATED_CREDENTIAL,
    PULUMI_ROLE_ASSIGNMENT,
    PULUMI_USER_ASSIGNED_IDENTITY,
)
from components.errors import ConfigError
from components.identity import (
    FederatedCredential,
    UserAssignedIdentity,
    UserAssignedIdentityArgs,
)
from components.key_vault import KeyVault, KeyVaultArgs
from components.mockruntime import lifecycle
from components.role_assignment import RoleAssignment, RoleAssignmentArgs
from components.testing import AzureMocks, InMemoryArm, run_program

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
UAI = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-ci"
GITHUB = "https://token.actions.githubusercontent.com"
PRINCIPAL = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
ROLE_ID = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{SECRETS_USER}"
CONCURRENT_FIC = "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"


def deploy(program: Callable[[], None], arm: InMemoryArm | None = None) -> AzureMocks:
    mocks = AzureMocks(arm or InMemoryArm(subscription_id=SUB, existing=[RG]))
    run_program(program, {}, mocks=mocks)
    return mocks


def raw_credentials(chain: bool, order: tuple[str, ...] = ("a", "b", "c")) -> Callable[[], None]:
    """Credentials registered straight on azure-native, chained or not."""

    def program() -> None:
        uai = azure_native.managedidentity.UserAssignedIdentity(
            "uai", resource_name_="id-ci", resource_group_name="rg"
        )
        previous: list[pulumi.Resource] = []
        for name in order:
            fic = azure_native.managedidentity.FederatedIdentityCredential(
                f"fic-{name}",
                federated_identity_credential_resource_name=name,
                resource_name_=uai.name,
                resource_group_name="rg",
                issuer=GITHUB,
                subject=f"repo:org/repo:environment:{name}",
                audiences=["api://AzureADTokenExchange"],
                opts=pulumi.ResourceOptions(depends_on=previous) if chain else None,
            )
            previous = [fic]

    return program


# -- federated identity credentials -------------------------------------------------------------


@pytest.mark.parametrize("order", [("a", "b", "c"), ("c", "b", "a")])
def test_credentials_with_no_dependency_between_them_are_refused(order: tuple[str, ...]) -> None:
    with pytest.raises(ArmError) as caught:
        deploy(raw_credentials(chain=False, order=order))
    assert (caught.value.status, caught.value.code) == (409, CONCURRENT_FIC)
    assert UAI.lower() in caught.value.message


def test_the_same_credentials_chained_with_depends_on_deploy() -> None:
    mocks = deploy(raw_credentials(chain=True))
    assert len(mocks.of_type(PULUMI_FEDERATED_CREDENTIAL)) == 3


def test_the_refusal_does_not_depend_on_thread_timing() -> None:
    # The verdict is read from the dependency graph, not from which write came first:
    # ten runs of the unordered program all fail, ten of the chained one all pass.
    for _ in range(10):
        with pytest.raises(ArmError):
            deploy(raw_credentials(chain=False))
        deploy(raw_credentials(chain=True))


def identity_with(count: int, lock: bool = False) -> Callable[[], None]:
    def program() -> None:
        UserAssignedIdentity(
            "ci",
            UserAssignedIdentityArgs(
                name="id-ci",
                resource_group_name="rg",
                lock=lock,
                federated_credentials=[
                    FederatedCredential(f"env-{i}", GITHUB, f"repo:org/repo:environment:e{i}")
                    for i in range(count)
                ],
            ),
        )

    return program


def test_user_assigned_identity_chains_its_credentials() -> None:
    mocks = deploy(identity_with(3))
    fics = mocks.of_type(PULUMI_FEDERATED_CREDENTIAL)
    uai = mocks.of_type(PULUMI_USER_ASSIGNED_IDENTITY)[0]
    assert [f.name for f in fics] == ["ci-env-0", "ci-env-1", "ci-env-2"]
    assert uai.urn in fics[0].dependencies
    assert fics[0].urn in fics[1].dependencies
    assert fics[1].urn in fics[2].dependencies


def test_twenty_credentials_deploy_and_a_twenty_first_is_a_config_error() -> None:
    assert len(deploy(identity_with(20)).of_type(PULUMI_FEDERATED_CREDENTIAL)) == 20
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB, existing=[RG]))
    with pytest.raises(ConfigError) as caught:
        run_program(identity_with(21), {}, mocks=mocks)
    assert caught.value.field == "federated_credentials"
    assert "20" in caught.value.problem
    assert mocks.registrations == []  # refused before anything was registered


def test_arm_refuses_a_twenty_first_credential_on_one_identity() -> None:
    arm = InMemoryArm(subscription_id=SUB)
    arm.create_or_update(PULUMI_USER_ASSIGNED_IDENTITY, UAI, {})
    body = {"issuer": GITHUB, "subject": "s", "audiences": ["api://AzureADTokenExchange"]}
    for i in range(20):
        arm.create_or_update(
            PULUMI_FEDERATED_CREDENTIAL, f"{UAI}/federatedIdentityCredentials/f{i}", body
        )
    arm.create_or_update(
        PULUMI_FEDERATED_CREDENTIAL, f"{UAI}/federatedIdentityCredentials/f3", body
    )
    with pytest.raises(ArmError) as caught:
        arm.create_or_update(
            PULUMI_FEDERATED_CREDENTIAL, f"{UAI}/federatedIdentityCredentials/f20", body
        )
    assert caught.value.status == 400


# -- role assignments ----------------------------------------------------------------------------


def _assignment(
    scope: pulumi.Input[str], name: str | None = None, principal: str = PRINCIPAL
) -> azure_native.authorization.RoleAssignment:
    return azure_native.authorization.RoleAssignment(
        "ra",
        scope=scope,
        role_assignment_name=name or "5b0f0f0e-1111-4222-8333-444444444444",
        principal_id=principal,
        principal_type="ServicePrincipal",
        role_definition_id=ROLE_ID,
    )


def test_an_assignment_name_that_is_not_a_guid_is_refused() -> None:
    with pytest.raises(ArmError) as caught:
        deploy(lambda: _assignment(RG, name="grant-db-password"))
    assert (caught.value.status, caught.value.code) == (400, "InvalidRoleAssignmentId")


def test_a_principal_id_that_is_not_a_guid_is_refused() -> None:
    with pytest.raises(ArmError) as caught:
        deploy(lambda: _assignment(RG, principal="/servicePrincipals/" + PRINCIPAL))
    assert (caught.value.status, caught.value.code) == (400, "InvalidPrincipalId")


def vault_with_grant(scope_of: Callable[[KeyVault], pulumi.Input[str]]) -> Callable[[], None]:
    def program() -> None:
        vault = KeyVault(
            "kv",
            KeyVaultArgs(
                name="kv-first-run",
                resource_group_name="rg",
                tenant_id=PRINCIPAL,
                secrets={"db-password": "s3cret"},
            ),
        )
        RoleAssignment(
            "grant",
            RoleAssignmentArgs(
                role="Key Vault Secrets User", principal_id=PRINCIPAL, scope=scope_of(vault)
            ),
        )

    return program


def test_a_grant_on_a_secret_that_is_not_waited_for_is_refused() -> None:
    # A scope string built from the vault ID: the grant waits for the vault, not for the
    # secret, so ARM may look before the secret exists. Refused every time.
    with pytest.raises(ArmError) as caught:
        deploy(vault_with_grant(lambda v: pulumi.Output.concat(v.id, "/secrets/db-password")))
    assert (caught.value.status, caught.value.code) == (404, "ResourceNotFound")
    assert "Microsoft.KeyVault/vaults/kv-first-run/secrets/db-password" in caught.value.message


def test_a_grant_on_the_secret_scope_our_component_gives_deploys() -> None:
    mocks = deploy(vault_with_grant(lambda v: v.secret_scope("db-password")))
    assert len(mocks.of_type(PULUMI_ROLE_ASSIGNMENT)) == 1


def test_a_grant_on_a_resource_group_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ArmError) as caught:
        deploy(lambda: _assignment(f"/subscriptions/{SUB}/resourceGroups/rg-typo"))
    assert (caught.value.status, caught.value.code) == (404, "ResourceGroupNotFound")


def _fill_assignments(arm: InMemoryArm, count: int) -> None:
    """Put ``count`` assignments straight into the model (building them one by one
    through the conflict scan would be quadratic)."""
    for i in range(count):
        doc = arm_shapes.role_assignment(
            scope=RG,
            name=f"00000000-0000-4000-8000-{i:012d}",
            role_definition_id=ROLE_ID,
            principal_id=f"aaaaaaaa-0000-4000-8000-{i:012d}",
            principal_type="ServicePrincipal",
        )
        arm.resources[doc["id"].lower()] = doc


def test_the_4000th_assignment_is_the_last_one_a_subscription_takes() -> None:
    arm = InMemoryArm(subscription_id=SUB, existing=[RG])
    _fill_assignments(arm, rules.MAX_ROLE_ASSIGNMENTS_PER_SUBSCRIPTION - 1)
    deploy(lambda: _assignment(RG), arm)  # the 4,000th
    with pytest.raises(ArmError) as caught:
        deploy(
            lambda: _assignment(RG, name="5b0f0f0e-1111-4222-8333-555555555555", principal=SUB),
            arm,
        )
    assert (caught.value.status, caught.value.code) == (400, "RoleAssignmentLimitExceeded")
    assert caught.value.message == "No more role assignments can be created."


# -- Key Vault names held by soft-deleted vaults ------------------------------------------------


def vault_program(
    create_mode: str = "default", purge_protection: bool = True
) -> Callable[[], None]:
    def program() -> None:
        KeyVault(
            "kv",
            KeyVaultArgs(
                name="kv-redeploy",
                resource_group_name="rg",
                tenant_id=PRINCIPAL,
                secrets={"db-password": "s3cret"},
                purge_protection=purge_protection,
                create_mode=create_mode,
            ),
        )

    return program


def test_redeploying_after_destroy_conflicts_with_the_soft_deleted_vault() -> None:
    arm = InMemoryArm(subscription_id=SUB, existing=[RG])
    lifecycle.destroy(deploy(vault_program(), arm))
    held = arm.deleted_vault("kv-redeploy")
    assert held is not None and held["properties"]["purgeProtectionEnabled"] is True
    with pytest.raises(ArmError) as caught:
        deploy(vault_program(), arm)
    assert (caught.value.status, caught.value.code) == (409, "ConflictError")
    assert caught.value.message.startswith(
        "A vault with the same name already exists in deleted state."
    )
    with pytest.raises(ArmError) as purge:
        arm.purge_deleted_vault("kv-redeploy")
    assert (purge.value.status, purge.value.code) == (405, "MethodNotAllowed")
    mocks = deploy(vault_program(create_mode="recover"), arm)
    (vault,) = mocks.of_type("azure-native:keyvault:Vault")
    assert vault.inputs["properties"]["createMode"] == "recover"
    assert arm.deleted_vault("kv-redeploy") is None


def test_a_purged_name_is_free_again() -> None:
    arm = InMemoryArm(subscription_id=SUB, existing=[RG])
    lifecycle.destroy(deploy(vault_program(purge_protection=False), arm))
    assert arm.purge_deleted_vault("kv-redeploy")
    deploy(vault_program(purge_protection=False), arm)


def test_create_mode_is_checked_before_anything_registers() -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB, existing=[RG]))
    with pytest.raises(ConfigError) as caught:
        run_program(vault_program(create_mode="restore"), {}, mocks=mocks)
    assert caught.value.field == "create_mode"
    assert mocks.registrations == []
