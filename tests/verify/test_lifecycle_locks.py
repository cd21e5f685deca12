"""The lifecycle plans around a management lock instead of deleting a locked identity.

``stacks/Pulumi.prod.yaml`` locks its shared identity (``lock: true``); on Azure the
delete-shared-identity scenario gets 409 ScopeLocked, and so does the sandbox's ARM. The
planner picks an unlocked identity when there is one; otherwise the lock is lifted for the
identity-deleting scenarios and put back (verify.lifecycle.locks), and with ``--keep-locks``
both are SKIPPED, naming the lock and the permissions lifting it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from components.stack_config import secret_config_keys
from components.testing import AzureMocks, InMemoryArm, load_stack_config, run_program
from verify.lifecycle import SCENARIO_NAMES, Lifecycle, run_scenarios
from verify.lifecycle.planner import PlannedScenario, plan
from verify.model import StackOutputs, load_outputs
from verify.results import ScenarioResult
from verify.stacks import PACKAGED_SANDBOX_STACK, PROGRAM
from verify.targets.base import LockInfo
from verify.targets.sandbox import SandboxTarget

PROD = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.prod.yaml"
#: The notes of the lock an identity's ``lock: true`` makes (components/identity.py).
IDENTITY_NOTES = "Shared identity: deleting it breaks every resource that uses it."


def outputs_of(config: dict[str, Any]) -> StackOutputs:
    raw = run_program(PROGRAM, config, mocks=AzureMocks(InMemoryArm()), stack="plan")
    return load_outputs(dict(raw), "test")


def planned(config: dict[str, Any]) -> dict[str, PlannedScenario]:
    return {p.name: p for p in plan(outputs_of(config), SCENARIO_NAMES)}


#: The planning tests on the prod stack's mock deploy (conftest.py ``prod_plan``; with
#: test_lifecycle_lock_lifting.py's): one worker's.
on_prod_plan = pytest.mark.xdist_group("prod-plan")


@on_prod_plan
def test_with_keep_locks_the_prod_stack_s_locked_identity_is_not_planned_for_deletion(
    prod_plan: tuple[dict[str, Any], StackOutputs],
) -> None:
    config, outputs = prod_plan
    assert config["mikit:identities"]["shared"]["lock"] is True
    assert outputs.identities["shared"].locked
    result = {p.name: p for p in plan(outputs, SCENARIO_NAMES, keep_locks=True)}
    for name in ("delete-shared-identity", "recreate-identity"):
        skipped = result[name]
        assert not skipped.runnable
        assert skipped.skip_reason is not None
        assert "CanNotDelete lock (mikit:identities.shared.lock)" in skipped.skip_reason
        assert "409 ScopeLocked" in skipped.skip_reason
        assert "Microsoft.Authorization/locks/delete" in skipped.skip_reason
        assert skipped.fix is not None and "lock: false" in skipped.fix
        assert "--keep-locks" in skipped.skip_reason and "without --keep-locks" in skipped.fix
    assert result["delete-vm"].runnable and result["delete-one-sharing-vm"].runnable


def test_an_unlocked_identity_in_use_is_chosen_over_a_locked_one() -> None:
    config = load_stack_config(PACKAGED_SANDBOX_STACK)
    identities = dict(config["mikit:identities"])
    assert not identities["shared"].get("lock")
    locked = {**identities["shared"], "lock": True}
    outputs = outputs_of({**config, "mikit:identities": {**identities, "shared": locked}})
    result = {p.name: p for p in plan(outputs, SCENARIO_NAMES, keep_locks=True)}
    deleting = result["delete-shared-identity"]
    if deleting.runnable:  # another granted identity in use: that one is deleted instead
        assert deleting.subjects is not None and "identity shared " not in deleting.subjects
    else:
        assert deleting.skip_reason is not None and "CanNotDelete lock" in deleting.skip_reason


@on_prod_plan
def test_by_default_the_prod_stack_s_locked_identity_is_planned_with_its_lock_lifted(
    prod_plan: tuple[dict[str, Any], StackOutputs],
) -> None:
    _, outputs = prod_plan
    shared = outputs.identities["shared"]
    result = {p.name: p for p in plan(outputs, SCENARIO_NAMES)}
    deleting, recreating = result["delete-shared-identity"], result["recreate-identity"]
    assert deleting.runnable and recreating.runnable
    assert deleting.subjects is not None and "identity shared " in deleting.subjects
    assert "CanNotDelete lock is lifted for the scenario and put back" in deleting.subjects
    assert deleting.touches == ((shared.id, "delete"),)
    # recreate-identity writes the identity again (the lock goes back after it), its VMs
    # and its grants: what a ReadOnly lock above them would refuse.
    assert (shared.id, "write") in recreating.touches
    assert all(op == "write" for _, op in recreating.touches)
    assert {outputs.vms[v].id for v in ("worker1", "worker2")} <= {t for t, _ in recreating.touches}


@on_prod_plan
def test_deleting_a_locked_identity_without_recreate_identity_is_skipped(
    prod_plan: tuple[dict[str, Any], StackOutputs],
) -> None:
    """The identity's own lock exists only with the identity: deleted and not recreated,
    the lock could never be put back, so the planner refuses that run."""
    _, outputs = prod_plan
    alone = {p.name: p for p in plan(outputs, ["delete-shared-identity"])}
    skipped = alone["delete-shared-identity"]
    assert not skipped.runnable and skipped.skip_reason is not None
    assert "could be put back only by recreate-identity" in skipped.skip_reason
    assert skipped.fix is not None and "--scenario recreate-identity" in skipped.fix
    (recreate,) = plan(outputs, ["recreate-identity"])
    assert recreate.runnable  # alone it deletes and recreates, then the lock goes back
    assert recreate.touches[0] == (outputs.identities["shared"].id, "delete")


# -- on the sandbox: the prod stack deployed, the lock read over ARM's HTTP front --------------

IDENTITY_SCENARIOS = ["delete-shared-identity", "recreate-identity"]


def _prod_target() -> SandboxTarget:
    stack = dict(load_stack_config(PROD))
    throwaway = {key: "v" for key in secret_config_keys(stack)}
    return SandboxTarget(stack_config=PROD, stack="prod", config_overrides=throwaway)


@pytest.fixture(scope="module")
def _deployed_prod() -> Iterator[SandboxTarget]:
    with _prod_target() as target:
        yield target


@pytest.fixture
def prod(_deployed_prod: SandboxTarget) -> SandboxTarget:
    """The prod stack deployed once per module, back as deployed for each test."""
    _deployed_prod.reset()
    return _deployed_prod


def _locks_over_http(target: SandboxTarget, scope: str) -> list[dict[str, Any]]:
    """``GET {scope}/providers/Microsoft.Authorization/locks`` on the sandbox's ARM front,
    with the operator's token: what Azure's lock API answers, not the state's memory."""
    sb = target.sandbox
    token = sb.credential().get_token("https://management.azure.com/.default").token
    response = requests.get(
        f"{sb.arm_url}{scope}/providers/Microsoft.Authorization/locks",
        params={"api-version": "2020-05-01"},
        headers={"Authorization": f"Bearer {token}"},
        verify=sb.ca_cert_path,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return [
        {
            "id": x["id"],
            "name": x["name"],
            **{k: x["properties"].get(k) for k in ("level", "notes")},
        }
        for x in response.json()["value"]
    ]


def _run(target: Any, names: list[str]) -> list[ScenarioResult]:
    return run_scenarios(Lifecycle(target, propagation_wait=2.0), names)


def _failures(result: ScenarioResult) -> list[tuple[str, str]]:
    return [(s.name, s.observed) for s in result.steps if not s.passed]


@pytest.mark.xdist_group("prod-locks")
def test_on_the_sandbox_the_identity_scenarios_run_with_the_lock_lifted_and_restored(
    prod: SandboxTarget,
) -> None:
    target = prod
    shared = target.outputs().identities["shared"].id
    before = _locks_over_http(target, shared)
    assert [(x["name"], x["level"]) for x in before] == [
        ("id-mikit-prod-shared-cannot-delete", "CanNotDelete")
    ]
    assert before[0]["notes"]
    deleted, recreated = _run(target, IDENTITY_SCENARIOS)
    assert deleted.passed, (deleted.error, _failures(deleted))
    assert recreated.passed, (recreated.error, _failures(recreated))
    lock = f"lock id-mikit-prod-shared-cannot-delete (CanNotDelete) at {shared}"
    assert deleted.steps[0].name == f"lift {lock}"
    assert next(s for s in deleted.steps if s.name == "delete identity shared").passed
    assert deleted.steps[-1].name == f"keep {lock} lifted"
    assert recreated.steps[-1].name == f"restore {lock} (lifted for delete-shared-identity)"
    assert recreated.steps[-1].observed == "restored, read back"
    assert _locks_over_http(target, shared) == before  # same name, level and notes
    # and it holds again: ARM refuses to delete the recreated identity
    with pytest.raises(HttpResponseError) as refused:
        target.delete_identity("shared")
    assert refused.value.status_code == 409 and "ScopeLocked" in str(refused.value)


def _operator_role(target: SandboxTarget, role: str) -> None:
    """The operator's one assignment (at the subscription, held since before the run) made
    ``role`` instead, as ``SandboxConfig(operator_role=role)`` starts the sandbox with it;
    the next reset gives the deployment's back."""
    sb = target.sandbox
    st = sb.state
    (held,) = st.role_assignments(principal_id=sb.operator.object_id)
    st.delete_role_assignment(held.id)
    st.create_role_assignment(
        held.scope, role, sb.operator.object_id, name=held.name, created_on=0.0
    )


@pytest.mark.xdist_group("prod-locks")
def test_on_the_sandbox_an_operator_without_locks_delete_gets_the_skip_naming_it(
    prod: SandboxTarget,
) -> None:
    """Contributor holds everything but ``Microsoft.Authorization/*/Delete`` and ``*/Write``:
    the lock is never lifted and both identity scenarios are SKIPPED saying why."""
    target = prod
    _operator_role(target, "Contributor")
    shared = target.outputs().identities["shared"].id
    before = _locks_over_http(target, shared)
    results = _run(target, IDENTITY_SCENARIOS)
    for result in results:
        assert result.status == "skipped", (result.name, result.error, _failures(result))
        assert result.skipped is not None
        assert "Microsoft.Authorization/locks/delete" in result.skipped
        assert "lifting it was refused: the operator lacks" in result.skipped
        assert "id-mikit-prod-shared-cannot-delete" in result.skipped
    assert _locks_over_http(target, shared) == before
    assert target.identity_exists("shared")


class _SkipLockCall:
    """The sandbox target with one lock call skipped (returns as if done, changes nothing)."""

    def __init__(self, target: SandboxTarget, action: str) -> None:
        self._target = target
        self.calls = 0
        setattr(self, action, self._skipped)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def _skipped(self, lock: LockInfo) -> LockInfo:
        self.calls += 1
        return lock


@pytest.mark.xdist_group("prod-locks")
@pytest.mark.parametrize("action", ["delete_lock", "create_lock"])
def test_a_skipped_lift_or_restore_makes_the_scenarios_fail(
    prod: SandboxTarget, action: str
) -> None:
    """Falsifiable: without the lift the delete is refused (409 ScopeLocked); without the
    restore the lock is not read back, and the run fails saying LOCK NOT RESTORED."""
    target = prod
    shared = target.outputs().identities["shared"].id
    sabotaged = _SkipLockCall(target, action)
    deleted, recreated = _run(sabotaged, IDENTITY_SCENARIOS)
    assert sabotaged.calls > 0
    assert not (deleted.passed and recreated.passed)
    if action == "delete_lock":
        step = next(s for s in deleted.steps if s.name == "delete identity shared")
        assert not step.passed and "ScopeLocked" in step.observed
        assert _locks_over_http(target, shared)  # never lifted, still there
    else:
        assert recreated.error is not None and "LOCK NOT RESTORED" in recreated.error
        assert not recreated.steps[-1].passed
        assert recreated.steps[-1].observed == "not found"
        assert _locks_over_http(target, shared) == []


def test_on_the_sandbox_a_read_only_group_lock_is_lifted_for_a_vm_delete_and_restored(
    deployed_target: SandboxTarget,
) -> None:
    """ReadOnly refuses every write: the sandbox's ARM answers 409 ScopeLocked to the VM
    delete under it. With --keep-locks delete-vm is skipped naming the lock; by default the
    lock is lifted for it and put back with its name, level and notes."""
    target = deployed_target
    group = target.outputs().resource_group_id
    lock = LockInfo(group, "freeze", "ReadOnly", "change window closed")
    target.create_lock(lock)
    before = _locks_over_http(target, group)
    assert [(x["name"], x["level"], x["notes"]) for x in before] == [
        ("freeze", "ReadOnly", "change window closed")
    ]
    (kept,) = run_scenarios(Lifecycle(target, keep_locks=True), ["delete-vm"])
    assert kept.status == "skipped" and kept.skipped is not None
    assert "lock freeze (ReadOnly)" in kept.skipped and "--keep-locks" in kept.skipped
    (result,) = _run(target, ["delete-vm"])
    assert result.passed, (result.error, _failures(result))
    assert result.steps[0].name == f"lift lock freeze (ReadOnly) at {group}"
    assert result.steps[-1].name == f"restore lock freeze (ReadOnly) at {group}"
    assert _locks_over_http(target, group) == before
    with pytest.raises(HttpResponseError) as refused:  # it holds again
        target.delete_vm(next(iter(target.outputs().vms)))
    assert refused.value.status_code == 409 and "ScopeLocked" in str(refused.value)


def test_the_cli_passes_keep_locks_to_the_lifecycle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from types import SimpleNamespace  # noqa: PLC0415

    import verify.stacks  # noqa: PLC0415
    from verify import cli  # noqa: PLC0415
    from verify.results import RunReport  # noqa: PLC0415

    seen: dict[str, Any] = {}

    class Target:
        def __init__(self) -> None:
            self.timings: dict[str, float] = {}

        def close(self) -> None:
            pass

    def lifecycle_report(*args: Any, **kwargs: Any) -> RunReport:
        seen.update(kwargs)
        return RunReport("lifecycle", "sandbox", "s", "2026-01-01T00:00:00Z")

    monkeypatch.setattr(cli, "resolver_for", lambda target: None)
    monkeypatch.setattr(
        verify.stacks, "load_selection", lambda *a: SimpleNamespace(label="s", path=None)
    )
    monkeypatch.setattr(cli, "make_target", lambda *a: Target())
    monkeypatch.setattr(cli, "lifecycle_report", lifecycle_report)
    monkeypatch.setattr(cli, "write_reports", lambda *a: {})
    monkeypatch.setattr(cli, "print_summary", lambda *a: None)
    for argv, keep in ((["--keep-locks"], True), ([], False)):
        report_dir = ["--report-dir", str(tmp_path)]
        cli.main(["lifecycle", "--target", "sandbox", "--quiet", *report_dir, *argv])
        assert seen["keep_locks"] is keep


def _lock_identity(target: SandboxTarget, ident: str) -> None:
    """The lock ``mikit:identities.<ident>.lock: true`` makes (components/identity.py: its
    name, level and notes), put on the deployed identity over ARM."""
    identity = target.outputs().identities[ident]
    target.create_lock(
        LockInfo(identity.id, f"{identity.name}-cannot-delete", "CanNotDelete", IDENTITY_NOTES)
    )


def test_on_the_sandbox_a_federated_credential_change_lifts_its_identity_s_lock(
    deployed_target: SandboxTarget,
) -> None:
    """A CanNotDelete lock on an identity refuses deleting its federated credentials
    (409 ScopeLocked): remove-workload-federation lifts it around the change and puts it
    back, and the identity stays deletable-proof afterwards."""
    target = deployed_target
    assert not target.outputs().identities["shared"].locked  # locked here, as the stack would
    _lock_identity(target, "shared")
    shared = target.outputs().identities["shared"].id
    before = _locks_over_http(target, shared)
    assert [x["level"] for x in before] == ["CanNotDelete"]
    (result,) = _run(target, ["remove-workload-federation"])
    assert result.passed, (result.error, _failures(result))
    lock = f"lock {before[0]['name']} (CanNotDelete) at {shared}"
    assert result.steps[0].name == f"lift {lock}"
    assert result.steps[-1].name == f"restore {lock}"
    assert _locks_over_http(target, shared) == before
    target.reset()  # falsifiable: without the lift the credential delete is refused
    _lock_identity(target, "shared")
    assert _locks_over_http(target, shared) == before
    (sabotaged,) = _run(_SkipLockCall(target, "delete_lock"), ["remove-workload-federation"])
    refused = [s for s in sabotaged.steps if s.name.startswith("delete federated credential")]
    assert not sabotaged.passed and not refused[0].passed
    assert "ScopeLocked" in refused[0].observed
