"""Orphan cleanup on the sandbox: the four ways it was seen to delete live assignments,
and each rule of verify.orphans, reproduced with real ARM, Graph and azure-mgmt clients.

Every test asserts on the sandbox's own state afterwards (what is really still there),
not only on what the report says.
"""

from __future__ import annotations

import pytest
from rich.console import Console

from verify.cli import build_parser, main
from verify.lifecycle import Lifecycle, run_scenarios
from verify.orphans import CLEANUP_RULES
from verify.report import print_summary
from verify.results import ScenarioResult, Step
from verify.runner import cleanup_report
from verify.sandbox import Fault
from verify.sandbox.state.records import VirtualMachine
from verify.targets.base import Assignment
from verify.targets.sandbox import SandboxTarget


@pytest.fixture
def target(deployed_target: SandboxTarget) -> SandboxTarget:
    """A fresh deployment (the worker's one, reset)."""
    return deployed_target


def _steps(result: ScenarioResult) -> dict[str, Step]:
    return {s.name: s for s in result.steps}


def _rg(target: SandboxTarget) -> str:
    return target.outputs().resource_group


def _outside_vm(target: SandboxTarget, name: str = "vm-outside") -> VirtualMachine:
    """A VM the stack knows nothing of, in the stack's resource group, reading a secret."""
    st = target.sandbox.state
    vm = st.create_vm(_rg(target), name, system_assigned=True)
    st.create_role_assignment(
        target.outputs().secrets["api-key"].scope,
        "Key Vault Secrets User",
        vm.system_principal_id or "",
    )
    return vm


def _held(target: SandboxTarget, principal_id: str) -> list[str]:
    return sorted(a.id for a in target.sandbox.state.role_assignments(principal_id=principal_id))


# --------------------------------------------------------------------------- case 1


def test_case1_vm_delete_answered_409_then_get_404_deletes_nothing(target: SandboxTarget) -> None:
    """ARM refused the delete (409), a later GET at the recorded name said 404: the VM is
    still running with its identity, so its assignments must survive --cleanup."""
    vm = target.outputs().vms["batch"]
    principal = vm.system_principal_id or ""
    before = _held(target, principal)
    faults = target.sandbox.faults
    faults.add(
        Fault(service="arm", status=409, method="DELETE", path=f"/virtualmachines/{vm.name}")
    )
    faults.add(Fault(service="arm", status=404, method="GET", path=f"/virtualmachines/{vm.name}"))
    (result,) = run_scenarios(Lifecycle(target, cleanup=True), ["delete-vm"])
    faults.clear()
    steps = _steps(result)
    assert not steps["delete VM batch"].passed and not result.passed
    assert target.sandbox.state.vm(vm.id) is not None  # still running
    assert target.sandbox.state.principal(principal) is not None
    assert _held(target, principal) == before and before  # nothing deleted
    cleanup = steps["cleanup orphans"]
    assert any("is not a cleanup candidate" in d for d in cleanup.details)
    # Rule 1 alone kept it: the directory was never even asked about this principal.
    graph = target.sandbox.request_log.records(service="graph")
    assert not [r for r in graph if principal in r.path]


def test_a_successful_delete_makes_the_principal_a_candidate(target: SandboxTarget) -> None:
    vm = target.outputs().vms["batch"]
    principal = vm.system_principal_id or ""
    (result,) = run_scenarios(Lifecycle(target, cleanup=True), ["delete-vm"])
    assert result.passed, [s for s in result.steps if not s.passed]
    assert _steps(result)["cleanup orphans"].observed == "removed 1, 0 left"
    assert _held(target, principal) == []
    graph = target.sandbox.request_log.records(service="graph")
    assert [r.status for r in graph if principal in r.path] == [404]


# --------------------------------------------------------------------------- case 2


def test_case2_principal_held_outside_the_stack_is_not_deleted(target: SandboxTarget) -> None:
    """No stack resource holds it, but another VM does: Graph says 200, so it is live."""
    outside = _outside_vm(target)
    principal = outside.system_principal_id or ""
    before = _held(target, principal)
    run = cleanup_report(target, "sandbox", [principal])
    assert not run.passed
    (step,) = run.scenarios[0].steps
    assert step.name.startswith("refused: ") and "the principal is live" in step.observed
    assert "answered 200" in step.observed
    assert _held(target, principal) == before and before


def test_case2_in_the_lifecycle_a_mixed_up_live_assignment_is_refused(
    target: SandboxTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing that also returns an outside VM's assignment (principal IDs mixed up):
    only the deleted VM's own orphan goes; the outside one is refused."""
    outside = _outside_vm(target)
    live = target.list_assignments(outside.system_principal_id or "")
    real_list = target.list_assignments
    monkeypatch.setattr(target, "list_assignments", lambda pid: real_list(pid) + live)
    (result,) = run_scenarios(Lifecycle(target, cleanup=True), ["delete-vm"])
    cleanup = _steps(result)["cleanup orphans"]
    assert not cleanup.passed and not result.passed
    assert any(d.startswith("refused: ") and live[0].id in d for d in cleanup.details)
    monkeypatch.undo()
    assert _held(target, outside.system_principal_id or "") == [live[0].id]
    assert _held(target, target.outputs().vms["batch"].system_principal_id or "") == []


# --------------------------------------------------------------------------- case 3


def test_case3_the_operators_owner_at_subscription_scope_is_never_deleted(
    target: SandboxTarget,
) -> None:
    st = target.sandbox.state
    operator = target.sandbox.operator.object_id
    before = _held(target, operator)
    owner = [a for a in st.role_assignments(principal_id=operator) if a.scope.count("/") == 2]
    assert owner and owner[0].scope == f"/subscriptions/{st.subscription_id}"
    run = cleanup_report(target, "sandbox", [operator])
    names = [s.name for s in run.scenarios[0].steps]
    assert names and all(n.startswith("outside: ") for n in names)
    assert _held(target, operator) == before


def test_a_gone_principal_keeps_what_lies_outside_the_stacks_resource_group(
    target: SandboxTarget,
) -> None:
    """Scope rule alone: the principal IS gone (Graph 404), yet its subscription-scope
    assignment and the one in another group stay; only the one in the stack's group goes."""
    st = target.sandbox.state
    outside = _outside_vm(target, "vm-doomed")
    pid = outside.system_principal_id or ""
    sub = f"/subscriptions/{st.subscription_id}"
    at_sub = st.create_role_assignment(sub, "Reader", pid)
    other_rg = st.create_resource_group("rg-other")
    in_other = st.create_role_assignment(other_rg.id, "Reader", pid)
    (in_stack,) = [a for a in st.role_assignments(principal_id=pid) if "api-key" in a.scope]
    st.delete_vm(outside.id)
    run = cleanup_report(target, "sandbox", [pid])
    decided = {s.name.split(": ", 1)[1]: s.name.split(": ", 1)[0] for s in run.scenarios[0].steps}
    assert decided[in_stack.id] == "deleted"
    assert decided[at_sub.id] == "outside"
    assert in_other.id not in decided  # not even listed: it does not apply to the stack's group
    assert _held(target, pid) == sorted([at_sub.id, in_other.id])


def test_assignments_are_listed_at_the_resource_group_not_the_subscription(
    target: SandboxTarget,
) -> None:
    target.sandbox.request_log.clear()
    target.list_assignments(target.sandbox.operator.object_id)
    (record,) = [
        r for r in target.sandbox.request_log.records(service="arm") if "roleAssignments" in r.path
    ]
    rg_id = target.outputs().resource_group_id
    assert record.path.lower().startswith(rg_id.lower() + "/providers/microsoft.authorization/")


# --------------------------------------------------------------------------- case 4


def test_case4_principal_changed_between_list_and_delete_is_refused(
    target: SandboxTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    st = target.sandbox.state
    vm = target.outputs().vms["batch"]
    gone = vm.system_principal_id or ""
    (orphan,) = st.role_assignments(principal_id=gone)
    st.delete_vm(vm.id)
    live = target.outputs().identities["shared"].principal_id
    real_list = target.list_assignments

    def list_then_reuse_the_name(pid: str) -> list[Assignment]:
        listed = real_list(pid)
        # Between list and delete: the name is reused for a live principal.
        st.delete_role_assignment(orphan.id)
        st.create_role_assignment(orphan.scope, orphan.role_definition_id, live, name=orphan.name)
        return listed

    monkeypatch.setattr(target, "list_assignments", list_then_reuse_the_name)
    run = cleanup_report(target, "sandbox", [gone])
    (step,) = run.scenarios[0].steps
    assert step.name == f"refused: {orphan.id}" and "changed since it was listed" in step.observed
    assert live in step.observed
    now = st.role_assignment(orphan.id)
    assert now is not None and now.principal_id == live  # the live assignment survived


# --------------------------------------------------------------------------- Graph


def test_graph_403_deletes_nothing_and_prints_the_commands_for_a_human(
    target: SandboxTarget,
) -> None:
    st = target.sandbox.state
    vm = target.outputs().vms["batch"]
    gone = vm.system_principal_id or ""
    (orphan,) = st.role_assignments(principal_id=gone)
    st.delete_vm(vm.id)
    target.sandbox.graph_directory_read = False
    run = cleanup_report(target, "sandbox", [gone])
    (step,) = run.scenarios[0].steps
    assert step.name == f"manual: {orphan.id}" and not run.passed
    assert "403 Authorization_RequestDenied" in step.observed
    command = f"az role assignment delete --ids {orphan.id}"
    assert f"principal {gone}" in step.details
    assert f"role {orphan.role_definition_id}" in step.details
    assert f"scope {orphan.scope}" in step.details
    assert f"run: {command}" in step.details
    console = Console(record=True, width=400)
    print_summary(run, console)
    printed = console.export_text()
    assert command in printed and orphan.scope in printed and orphan.role_definition_id in printed
    assert st.role_assignment(orphan.id) is not None


@pytest.mark.parametrize(
    "fault", [Fault(service="graph", status=500), Fault(service="graph", kind="reset")]
)
def test_any_other_graph_answer_deletes_nothing(target: SandboxTarget, fault: Fault) -> None:
    st = target.sandbox.state
    vm = target.outputs().vms["batch"]
    gone = vm.system_principal_id or ""
    (orphan,) = st.role_assignments(principal_id=gone)
    st.delete_vm(vm.id)
    target.sandbox.faults.add(fault)
    run = cleanup_report(target, "sandbox", [gone])
    (step,) = run.scenarios[0].steps
    assert step.name == f"refused: {orphan.id}" and "not proof" in step.observed
    assert st.role_assignment(orphan.id) is not None


# --------------------------------------------------------------------------- CLI


def test_cleanup_rules_are_in_the_help() -> None:
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in ("cleanup", "lifecycle"):
        text = sub[command].format_help()
        assert "404 Request_ResourceNotFound" in text and "az role assignment delete --ids" in text
        assert "list_for_scope" in text and "never subscription or management" in text
    assert CLEANUP_RULES in sub["cleanup"].format_help()


def test_cli_cleanup_refuses_a_principal_that_is_not_an_object_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["cleanup", "--principal", "vm-web", "--quiet"]) == 2
    out = capsys.readouterr().out
    assert "--principal" in out and "vm-web" in out and "GUID" in out
