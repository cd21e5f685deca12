"""The deployer identity's CanNotDelete lock across updates and destroys (mock runtime).

A ``CanNotDelete`` lock on an identity refuses deleting the identity and everything
below it, federated credentials included (409 ``ScopeLocked``). ``components.mockruntime
.lifecycle`` sends the deletes a second ``pulumi up`` or a ``pulumi destroy`` would send,
in the engine's order, so the lock's effect shows here as it would on Azure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_azure_native as azure_native
import pytest
from test_bootstrap_program import PROGRAM, PROJECT, STACK_FILE, BootstrapMocks

from bootstrap import config as bootstrap_config
from components.arm import shapes as arm_shapes
from components.arm.errors import ArmError
from components.arm.tokens import (
    PULUMI_FEDERATED_CREDENTIAL,
    PULUMI_MANAGEMENT_LOCK,
    PULUMI_USER_ASSIGNED_IDENTITY,
)
from components.errors import ConfigError
from components.identity import FederatedCredential, UserAssignedIdentity, UserAssignedIdentityArgs
from components.mockruntime import lifecycle
from components.testing import AzureMocks, InMemoryArm, load_stack_config

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
GITHUB = "https://token.actions.githubusercontent.com"


def bootstrap_up(
    arm: InMemoryArm, previous: BootstrapMocks | None, **changes: Any
) -> BootstrapMocks:
    config: dict[str, Any] = dict(load_stack_config(STACK_FILE))
    key = f"{PROJECT}:github"
    if "pullRequests" in changes:
        config[key] = {**config[key], "pullRequests": changes.pop("pullRequests")}
    config.update({f"{PROJECT}:{k}": v for k, v in changes.items()})
    mocks = BootstrapMocks(arm)
    lifecycle.up(PROGRAM, config, previous=previous, mocks=mocks, project=PROJECT, stack="ci")
    return mocks


def credentials(arm: InMemoryArm) -> set[str]:
    return {d["name"] for d in arm.of_type(arm_shapes.FEDERATED_CREDENTIAL)}


def deployer_locks(arm: InMemoryArm) -> list[tuple[str, str]]:
    return [(s, level) for s, level in arm.locks() if "userAssignedIdentities" in s]


def test_the_lock_refuses_dropping_a_credential() -> None:
    arm = InMemoryArm()
    first = bootstrap_up(arm, None)
    assert "github-pull-request" in credentials(arm)
    assert deployer_locks(arm) and deployer_locks(arm)[0][1] == "CanNotDelete"
    with pytest.raises(ArmError) as caught:
        bootstrap_up(arm, first, pullRequests=False)
    assert (caught.value.status, caught.value.code) == (409, "ScopeLocked")
    identity = deployer_locks(arm)[0][0]
    assert caught.value.message == (
        f"The scope '{identity}/federatedIdentityCredentials/github-pull-request' cannot "
        f"perform delete operation because following scope(s) are locked: '{identity}'. "
        "Please remove the lock and try again."
    )
    assert "github-pull-request" in credentials(arm)  # refused: nothing was deleted


def test_the_documented_sequence_changes_credentials_and_relocks() -> None:
    """docs/deploy-from-ci.md "The deployer identity's lock": the change together with
    lockDeployer false in one `pulumi up`, then lockDeployer back to true."""
    arm = InMemoryArm()
    first = bootstrap_up(arm, None)
    unlocked = bootstrap_up(arm, first, pullRequests=False, lockDeployer=False)
    assert "github-pull-request" not in credentials(arm)
    assert deployer_locks(arm) == []
    bootstrap_up(arm, unlocked, pullRequests=False, lockDeployer=True)
    assert [level for _, level in deployer_locks(arm)] == ["CanNotDelete"]


def test_adding_a_credential_needs_no_unlock() -> None:
    # CanNotDelete refuses deletes only: a new credential is a PUT below the lock.
    arm = InMemoryArm()
    first = bootstrap_up(arm, None, pullRequests=False)
    bootstrap_up(arm, first)
    assert "github-pull-request" in credentials(arm)


def test_the_bootstrap_destroys_with_its_lock_in_place() -> None:
    arm = InMemoryArm()
    mocks = bootstrap_up(arm, None)
    lifecycle.destroy(mocks)
    assert arm.of_type(arm_shapes.USER_ASSIGNED_IDENTITY) == []
    assert deployer_locks(arm) == []


def locked_identity(lock_waits_for_credentials: bool) -> Callable[[], None]:
    def program() -> None:
        uai = azure_native.managedidentity.UserAssignedIdentity(
            "uai", resource_name_="id-ci", resource_group_name="rg"
        )
        fic = azure_native.managedidentity.FederatedIdentityCredential(
            "fic",
            federated_identity_credential_resource_name="main",
            resource_name_=uai.name,
            resource_group_name="rg",
            issuer=GITHUB,
            subject="repo:org/repo:ref:refs/heads/main",
            audiences=["api://AzureADTokenExchange"],
        )
        azure_native.authorization.ManagementLockByScope(
            "lock",
            scope=uai.id,
            lock_name="id-ci-cannot-delete",
            level="CanNotDelete",
            opts=pulumi.ResourceOptions(depends_on=[fic] if lock_waits_for_credentials else []),
        )

    return program


def test_a_lock_that_does_not_wait_for_the_credentials_blocks_destroy() -> None:
    """The lock as the component made it before: its delete and the credential's run in
    parallel, and the credential's may come first."""
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB, existing=[RG]))
    lifecycle.up(locked_identity(False), {}, previous=None, mocks=mocks)
    with pytest.raises(ArmError) as caught:
        lifecycle.destroy(mocks)
    assert (caught.value.status, caught.value.code) == (409, "ScopeLocked")
    fixed = AzureMocks(InMemoryArm(subscription_id=SUB, existing=[RG]))
    lifecycle.up(locked_identity(True), {}, previous=None, mocks=fixed)
    lifecycle.destroy(fixed)
    assert isinstance(fixed.backend, InMemoryArm)
    assert fixed.backend.of_type(arm_shapes.MANAGEMENT_LOCK) == []
    assert fixed.backend.of_type(arm_shapes.USER_ASSIGNED_IDENTITY) == []


def test_the_component_lock_waits_for_every_credential() -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB, existing=[RG]))

    def program() -> None:
        UserAssignedIdentity(
            "ci",
            UserAssignedIdentityArgs(
                name="id-ci",
                resource_group_name="rg",
                lock=True,
                federated_credentials=[
                    FederatedCredential(n, GITHUB, f"repo:o/r:environment:{n}") for n in "abc"
                ],
            ),
        )

    lifecycle.up(program, {}, previous=None, mocks=mocks)
    (lock,) = mocks.of_type(PULUMI_MANAGEMENT_LOCK)
    assert {f.urn for f in mocks.of_type(PULUMI_FEDERATED_CREDENTIAL)} <= lock.dependencies
    assert mocks.of_type(PULUMI_USER_ASSIGNED_IDENTITY)


def test_lock_deployer_must_be_a_boolean() -> None:
    raw = {k.split(":", 1)[1]: v for k, v in load_stack_config(STACK_FILE).items() if ":" in k}
    assert bootstrap_config.parse(raw).lock_deployer is True
    assert bootstrap_config.parse({**raw, "lockDeployer": False}).lock_deployer is False
    with pytest.raises(ConfigError) as caught:
        bootstrap_config.parse({**raw, "lockDeployer": "no"})
    assert caught.value.field == "lockDeployer"
