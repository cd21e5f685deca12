"""The whole lifecycle on the sandbox, deployed by the real stack program, and its failures.

The passing run is the README's main command in-process (on the worker's deployment,
reset). The failing runs each break one thing a scenario exists to catch (a grant never
made, an extra grant, a cleanup that would touch a live assignment, a fault) and assert the
report says so, naming what failed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from deployment_dump import LifecycleRun

from verify.cli import main
from verify.lifecycle import Lifecycle, run_scenarios
from verify.results import ScenarioResult
from verify.runner import check_report
from verify.sandbox import Fault
from verify.targets.base import Assignment
from verify.targets.sandbox import SandboxTarget


@pytest.fixture
def target(deployed_target: SandboxTarget) -> SandboxTarget:
    """A fresh deployment (the worker's one, reset), for tests whose scenario deletes things."""
    return deployed_target


@pytest.fixture
def check_target(deployed_target: SandboxTarget) -> SandboxTarget:
    """A fresh deployment for the check-only tests (they restore what they changed, too)."""
    return deployed_target


def _steps(result: ScenarioResult) -> dict[str, Any]:
    return {s.name: s for s in result.steps}


def _scenario(target: SandboxTarget, name: str, **lc: Any) -> ScenarioResult:
    (result,) = run_scenarios(Lifecycle(target, **lc), [name])
    return result


# --------------------------------------------------------------------------- passing


@pytest.fixture
def full_run(lifecycle_run: LifecycleRun) -> dict[str, Any]:
    """The README's main command, in-process, with --cleanup, on the worker's deployment
    (conftest.py ``lifecycle_run``): its report.json."""
    return lifecycle_run.report


#: The tests of the one lifecycle run (with test_restore_deployment.py's): one worker's.
one_run = pytest.mark.xdist_group("lifecycle-run")


def _steps_of(report: dict[str, Any], scenario: str) -> dict[str, dict[str, Any]]:
    (found,) = [s for s in report["scenarios"] if s["name"] == scenario]
    return {step["name"]: step for step in found["steps"]}


@one_run
def test_full_lifecycle_passes_and_writes_reports(full_run: dict[str, Any]) -> None:
    failed = [
        (s["name"], [st["name"] for st in s["steps"] if not st["passed"]], s["error"])
        for s in full_run["scenarios"]
        if not s["passed"]
    ]
    assert failed == []
    assert full_run["check"]["passed"], full_run["check"]["errors"]
    assert [s["name"] for s in full_run["scenarios"]] == [
        "remove-workload-federation",
        "scale-in-and-out",
        "delete-scale-set",
        "delete-vm",
        "disable-system-identity",
        "delete-one-sharing-vm",
        "delete-shared-identity",
        "recreate-identity",
        "delete-app",
        "remove-app-reference-grant",
        "disable-app-system-identity",
    ]
    assert full_run["passed"] and full_run["exit_code"] == 0
    assert full_run["files"] == ["junit.xml", "report.json", "report.md"]


@one_run
def test_baseline_covers_both_directions(full_run: dict[str, Any]) -> None:
    cells = full_run["check"]["cells"]
    # (and the container app's identity hidden from its code: refused by its endpoint)
    assert {c["observed"] for c in cells} == {"read", "forbidden", "no_identity"}
    assert {c["host"] for c in cells if c["observed"] == "no_identity"} == {"app:jobs"}
    # break-glass: nobody may read it.
    assert {
        c["observed"]
        for c in cells
        if c["target"] == "break-glass" and c["expected"] != "no_identity"
    } == {"forbidden"}
    assert all(c["fingerprint_match"] for c in cells if c["observed"] == "read")


@one_run
def test_delete_vm_leaves_orphans_and_cleanup_removes_them(full_run: dict[str, Any]) -> None:
    steps = _steps_of(full_run, "delete-vm")
    assert "delete VM batch" in steps  # a system-only VM, as is disable-system-identity's
    orphaned = steps["its assignments remain, orphaned"]
    assert orphaned["passed"] and orphaned["observed"].startswith("1 listed")
    assert steps["cleanup orphans"]["observed"] == "removed 1, 0 left"


@one_run
def test_disabled_identity_fails_fresh_and_old_token_is_reported(full_run: dict[str, Any]) -> None:
    steps = _steps_of(full_run, "disable-system-identity")
    # delete-vm took batch; this scenario takes the other system-only VM, solo, where
    # nothing else can answer: IMDS must say "Identity not found".
    assert "turn system identity off on solo" in steps
    fresh = steps["fresh token request for the system identity"]
    assert fresh["passed"]
    assert fresh["expected"].startswith('IMDS 400 "Identity not found"')
    assert fresh["observed"] == "no token: 400 invalid_request (Identity not found)"
    replay = steps["token obtained before the change"]
    assert replay["passed"]
    assert "still ACCEPTED" in replay["observed"]  # the sandbox default mirrors Azure
    assert "lifetime left" in replay["observed"]


@one_run
def test_shared_identity_deletion_breaks_every_user(full_run: dict[str, Any]) -> None:
    steps = _steps_of(full_run, "delete-shared-identity")
    fresh = steps["fresh probes on every VM that used shared"]
    # worker1 and worker2 (hybrid is gone by then) x (4 secrets + 4 blobs)
    assert fresh["passed"] and fresh["observed"] == "16/16 cells as expected"
    sharing = _steps_of(full_run, "delete-one-sharing-vm")
    assert sharing["identity shared still exists"]["passed"]
    # the web and Function apps that used it: refused by their identity endpoints, and the
    # Function app's reference through it turns AccessToKeyVaultDenied
    in_apps = steps["fresh token requests in every app that used shared"]
    assert in_apps["passed"] and in_apps["observed"] == "16/16 cells as expected"
    denied = steps["after: func's references through shared turn AccessToKeyVaultDenied"]
    assert denied["passed"] and denied["observed"] == "API_KEY AccessToKeyVaultDenied"


@one_run
def test_a_new_instance_reads_at_once_and_the_identities_outlive_removed_ones(
    full_run: dict[str, Any],
) -> None:
    steps = _steps_of(full_run, "scale-in-and-out")
    assert steps["instances before"]["observed"] == "2: 0, 1"
    assert steps["one new instance"]["observed"] == "new: 2"
    new = steps["new instance 2 reads at once (no grant made, no propagation wait)"]
    assert new["passed"] and new["observed"] == "16/16 cells as expected"
    assert steps["instances after scaling in"]["observed"] == "1: 0"
    outlive = steps["the set's identities outlive the removed instances (1, 2)"]
    assert outlive["passed"] and outlive["observed"] == "all still held"
    assert steps["instances at the end"]["observed"] == "2: 0, 1"


@one_run
def test_deleting_the_scale_set_orphans_its_system_identity_only(
    full_run: dict[str, Any],
) -> None:
    steps = _steps_of(full_run, "delete-scale-set")
    assert steps["its system principal is gone"]["passed"]
    assert steps["user-assigned identity shared stays"]["observed"] == "still exists"
    (others,) = [s for name, s in steps.items() if name.endswith(" still read through shared")]
    # every other host holding it, of every kind: the VMs, the apps, the workload
    assert others["name"].startswith("app:func, app:jobs, app:web, hybrid, worker1, worker2, ")
    assert "workload:api" in others["name"] and others["passed"]
    orphaned = steps["its assignments remain, orphaned"]
    assert orphaned["passed"] and orphaned["observed"].startswith("1 listed")
    assert steps["cleanup orphans"]["observed"] == "removed 1, 0 left"


@one_run
def test_recreated_identity_needs_new_grants(full_run: dict[str, Any]) -> None:
    steps = _steps_of(full_run, "recreate-identity")
    assert steps["it is a new principal"]["passed"]
    assert steps["old grants do not apply to the new principal"]["passed"]
    assert steps["after the grants are made again, reads work"]["passed"]


# --------------------------------------------------------------------------- failing


def test_a_grant_that_was_never_made_fails_the_check(check_target: SandboxTarget) -> None:
    st = check_target.sandbox.state
    solo = check_target.outputs().vms["solo"].system_principal_id or ""
    # solo's Key Vault grant (it also reads a blob container)
    (grant,) = [a for a in st.role_assignments(principal_id=solo) if "/vaults/" in a.scope]
    st.delete_role_assignment(grant.id)
    try:
        run = check_report(check_target, "sandbox", propagation_wait=0.0)
    finally:
        st.create_role_assignment(grant.scope, grant.role_definition_id, solo, name=grant.name)
    assert run.check is not None and not run.check.passed
    assert run.check.failures == [
        "vm 'solo' identity 'system' secret 'app-db-password': expected allowed, observed "
        "forbidden (403 Forbidden/ForbiddenByRbac): the grant does not work"
    ]


def test_an_extra_grant_nobody_expected_fails_the_check(check_target: SandboxTarget) -> None:
    outputs = check_target.outputs()
    st = check_target.sandbox.state
    extra = st.create_role_assignment(
        outputs.secrets["break-glass"].scope,
        "Key Vault Secrets User",
        outputs.identities["shared"].principal_id,
    )
    try:
        run = check_report(check_target, "sandbox")
    finally:
        st.delete_role_assignment(extra.id)
    assert run.check is not None and not run.check.passed
    bad = sorted(c.host for c in run.check.cells if not c.passed)
    # Every host holding the shared identity reads it: the VMs, the scale set, the workload,
    # the web and Function apps (not the container app, whose code it is hidden from).
    assert bad == [
        "app:func",
        "app:web",
        "hybrid",
        "scaleset:web",
        "worker1",
        "worker2",
        "workload:api",
    ]
    assert all("access nobody granted" in f for f in run.check.failures)


def test_cleanup_that_would_touch_a_live_assignment_is_refused(
    target: SandboxTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = target.list_assignments(target.outputs().identities["shared"].principal_id)
    real_list = target.list_assignments

    def mixed_up(principal_id: str) -> list[Assignment]:
        # A caller who mixed up principal IDs: the live shared identity's grant shows up
        # among the deleted VM's candidates.
        return real_list(principal_id) + live

    monkeypatch.setattr(target, "list_assignments", mixed_up)
    result = _scenario(target, "delete-vm", cleanup=True)
    cleanup = _steps(result)["cleanup orphans"]
    assert not cleanup.passed and cleanup.observed.endswith("not deleted (refused)")
    assert not result.passed
    monkeypatch.undo()
    assert target.list_assignments(target.outputs().identities["shared"].principal_id) == live
    assert "delete VM batch" in _steps(result)
    assert not target.vm_exists("batch")
    # Per assignment: the proven orphan went, the live one listed with it was refused.
    assert target.list_assignments(target.outputs().vms["batch"].system_principal_id or "") == []


def test_regrant_that_never_happens_fails_recreate_identity(
    target: SandboxTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pretend(
        principal_id: str, role_definition_id: str, scope: str, condition: str | None = None
    ) -> Assignment:
        return Assignment(
            f"{scope}/x", "x", principal_id, "ServicePrincipal", role_definition_id, scope
        )

    monkeypatch.setattr(target, "create_assignment", pretend)
    result = _scenario(target, "recreate-identity", propagation_wait=0.5)
    steps = _steps(result)
    assert steps["old grants do not apply to the new principal"].passed
    final = steps["after the grants are made again, reads work"]
    assert not final.passed
    assert any("expected allowed, observed forbidden" in d for d in final.details)


def test_token_refused_after_deletion_is_reported_as_refused(target: SandboxTarget) -> None:
    target.sandbox.faults.deleted_principal_tokens = "refuse"
    result = _scenario(target, "disable-system-identity")
    steps = _steps(result)
    # batch has no user-assigned identity: IMDS says "Identity not found".
    fresh = steps["fresh token request for the system identity"]
    assert fresh.passed and fresh.observed == "no token: 400 invalid_request (Identity not found)"
    replay = steps["token obtained before the change"]
    assert replay.passed and replay.observed.startswith("REFUSED (401")
    assert result.passed


def test_system_only_vm_fails_when_a_disabled_identity_still_gets_a_token(
    target: SandboxTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strict case: on a VM with no other identity, anything but "Identity not
    found" fails -- the disabled principal's own token, or another identity's."""
    real_disable = target.disable_system_identity
    principal = target.outputs().vms["batch"].system_principal_id

    # 1. The change never reaches the VM: IMDS keeps handing out the principal's token.
    monkeypatch.setattr(target, "disable_system_identity", lambda vm: None)
    result = _scenario(target, "disable-system-identity")
    fresh = _steps(result)["fresh token request for the system identity"]
    assert "turn system identity off on batch" in _steps(result)
    assert not fresh.passed and not result.passed
    assert fresh.observed == f"the disabled principal still gets tokens (oid {principal})"

    # 2. The identity is off, but another one now answers a system request.
    def disable_and_attach(vm: str) -> None:
        real_disable(vm)
        target.attach_identity(vm, "shared")

    monkeypatch.setattr(target, "disable_system_identity", disable_and_attach)
    result = _scenario(target, "disable-system-identity")
    fresh = _steps(result)["fresh token request for the system identity"]
    assert "turn system identity off on batch" in _steps(result)
    assert not fresh.passed and not result.passed
    assert fresh.observed.startswith("IMDS answered with another identity: id-mikit-sandbox-shared")
    assert fresh.details == ["no identity should have answered: the VM holds no other identity"]


def test_vm_with_one_user_assigned_identity_reports_that_imds_answers_with_it(
    target: SandboxTarget,
) -> None:
    """Once both system-only VMs are used up, hybrid (system + shared) is next: as on
    Azure, IMDS answers a request naming no identity with the lone user-assigned one. The
    disabled principal still gets no token, so the step passes, and says so."""
    lc = Lifecycle(target)
    lc.used |= {"batch", "solo"}
    (result,) = run_scenarios(lc, ["disable-system-identity"])
    steps = _steps(result)
    assert "turn system identity off on hybrid" in steps
    fresh = steps["fresh token request for the system identity"]
    shared = target.outputs().identities["shared"].principal_id
    assert fresh.passed and result.passed
    assert (
        fresh.observed
        == f"IMDS answered with another identity: id-mikit-sandbox-shared (oid {shared})"
    )
    assert "silently acts as id-mikit-sandbox-shared" in fresh.details[0]


def test_propagation_delay_is_waited_out_after_a_grant(target: SandboxTarget) -> None:
    target.sandbox.faults.propagation_delay_seconds = 0.5
    result = _scenario(target, "recreate-identity", propagation_wait=5.0)
    assert result.passed, [s for s in result.steps if not s.passed]


def test_propagation_delay_holds_back_new_grants_but_never_the_operators_access(
    target: SandboxTarget,
) -> None:
    """The race behind the flaky test above: the delay was measured for EVERY assignment,
    including the operator's own Owner assignment made when the sandbox started. After a
    fast deploy (under the delay), the lifecycle's first ARM call was refused with
    AuthorizationFailed "access was recently granted". A delay far longer than any deploy
    makes that deterministic: the operator still acts, a grant made now still waits."""
    target.sandbox.faults.propagation_delay_seconds = 3600.0
    target.delete_identity("shared")  # operator's ARM call: not held back
    assert not target.identity_exists("shared")
    vm = target.outputs().vms["solo"]
    decision = target.sandbox.rbac.check_data_action(
        str(vm.system_principal_id),
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        target.outputs().secrets["app-db-password"].scope,
    )
    assert not decision.allowed  # the deploy's grant is younger than the delay


def test_imds_5xx_fails_that_vm_quickly_and_names_it(check_target: SandboxTarget) -> None:
    vm_name = check_target.outputs().vms["worker1"].name
    check_target.sandbox.faults.add(Fault(service="imds", status=503, target=vm_name))
    started = time.monotonic()
    run = check_report(check_target, "sandbox")
    assert time.monotonic() - started < 15
    assert run.check is not None and not run.check.passed
    assert {c.host for c in run.check.cells if not c.passed} == {"worker1"}
    assert {c.observed for c in run.check.cells if c.host == "worker1"} == {"unreachable"}


def test_keyvault_429_with_short_retry_after_still_passes(check_target: SandboxTarget) -> None:
    check_target.sandbox.faults.add(Fault(service="keyvault", status=429, retry_after=1, times=1))
    run = check_report(check_target, "sandbox")
    assert run.check is not None and run.check.passed, run.check.failures
    assert max(c.waited_ms for c in run.check.cells) >= 900


def test_cli_rejects_outputs_for_sandbox(tmp_path: Path) -> None:
    code = main(["check", "--target", "sandbox", "--outputs", str(tmp_path / "x.json")])
    assert code == 2
    assert not (tmp_path / "x.json").exists()
