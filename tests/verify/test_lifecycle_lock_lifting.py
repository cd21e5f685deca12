"""Lifting a management lock for a scenario and always putting it back, on a fake target.

The scenarios' own bodies are replaced by stand-ins that record whether the lock was there
while they ran (the real scenarios run on the sandbox in test_lifecycle_locks.py); the
target holds its locks in memory and can refuse a call as ARM does (403 naming the action)
or fail the restore. What is checked is the lifecycle's handling: which locks are lifted
(CanNotDelete refuses deletes, ReadOnly every write), that each comes back with the same
name, level and notes after the scenario however it ends (failure, interrupt), the skip
with the missing action when lifting is refused, ``--keep-locks``, and the loud failure
when a lock cannot be put back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from components import armid
from verify.interrupt import Interrupted
from verify.lifecycle import Lifecycle, run_scenarios
from verify.lifecycle import scenarios as scenarios_module
from verify.lifecycle.planner import plan
from verify.lifecycle.scenarios import SCENARIOS, Scenario
from verify.model import StackOutputs
from verify.results import RunReport, ScenarioResult, Step
from verify.targets.azure_hosts.base import MissingPermissionError
from verify.targets.base import LockInfo

PROD = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.prod.yaml"
NOTES = "Shared identity: deleting it breaks every resource that uses it."


#: The tests on the prod stack's mock deploy (with test_lifecycle_locks.py's): one worker's.
pytestmark = pytest.mark.xdist_group("prod-plan")


@pytest.fixture
def prod(prod_plan: tuple[dict[str, Any], StackOutputs]) -> StackOutputs:
    """The prod stack's outputs from its mock deploy (conftest.py ``prod_plan``)."""
    return prod_plan[1]


class LockTarget:
    """The lock calls of a Target, in memory; ``refuse`` maps a call to the action its
    403 names, ``fail_restore`` makes every write after the first lift fail."""

    name = "fake"

    def __init__(self, outputs: StackOutputs, locks: list[LockInfo]) -> None:
        self._outputs = outputs
        self.locks = {lock.id.lower(): lock for lock in locks}
        self.refuse: dict[str, str] = {}
        #: Only a delete of the lock with this name is refused (when set).
        self.refuse_only: str | None = None
        self.fail_restore = False
        self.gone: set[str] = set()  # scopes deleted (a lock there cannot be made)
        self.lifted = 0

    def outputs(self) -> StackOutputs:
        return self._outputs

    def _check(self, call: str) -> None:
        if call in self.refuse:
            raise MissingPermissionError(
                f"{call} lock", 403, self.refuse[call], "Locks Contributor"
            )

    def management_locks(self, scope: str) -> list[LockInfo]:
        self._check("read")
        return [x for x in self.locks.values() if armid.is_within(x.scope, scope)]

    def management_locks_over(self, scopes: Sequence[str]) -> dict[str, list[LockInfo]]:
        return {scope: self.management_locks(scope) for scope in scopes}

    def delete_lock(self, lock: LockInfo) -> None:
        if self.refuse_only in (None, lock.name):
            self._check("delete")
        self.locks.pop(lock.id.lower(), None)
        self.lifted += 1

    def create_lock(self, lock: LockInfo) -> LockInfo:
        self._check("write")
        if self.fail_restore and self.lifted:
            raise RuntimeError("ARM answered 500 InternalServerError")
        if any(armid.is_within(g, lock.scope) for g in self.gone):
            raise RuntimeError(f"404 ResourceNotFound: {lock.scope}")
        self.locks[lock.id.lower()] = lock
        return lock


def identity_lock(outputs: StackOutputs) -> LockInfo:
    scope = outputs.identities["shared"].id
    return LockInfo(scope, "id-mikit-prod-shared-cannot-delete", "CanNotDelete", NOTES)


def group_lock(outputs: StackOutputs, level: str) -> LockInfo:
    return LockInfo(outputs.resource_group_id, "rg-lock", level, "whole group")


Body = Callable[[Lifecycle], list[Step]]


@pytest.fixture
def bodies(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Body]]:
    """Replace scenario bodies by name; each stand-in's steps are what it returns."""
    replaced: dict[str, Body] = {}

    def wrap(scenario: Scenario) -> Scenario:
        def run(lc: Lifecycle) -> list[Step]:
            return replaced[scenario.name](lc) if scenario.name in replaced else []

        return Scenario(scenario.name, scenario.description, run)

    monkeypatch.setattr(scenarios_module, "SCENARIOS", tuple(wrap(s) for s in SCENARIOS))
    yield replaced


def sees(target: LockTarget, lock: LockInfo, seen: list[bool]) -> Body:
    """A stand-in scenario: records whether ``lock`` existed while it ran."""

    def run(lc: Lifecycle) -> list[Step]:
        del lc
        seen.append(lock.id.lower() in target.locks)
        return [Step("acted", "done", "done", True)]

    return run


def run(target: LockTarget, names: list[str], **kw: Any) -> list[ScenarioResult]:
    return run_scenarios(Lifecycle(target, **kw), names)  # type: ignore[arg-type]


def test_the_identity_lock_is_lifted_for_the_scenario_and_put_back_unchanged(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    lock = identity_lock(prod)
    target = LockTarget(prod, [lock])
    seen: list[bool] = []
    bodies["recreate-identity"] = sees(target, lock, seen)
    (result,) = run(target, ["recreate-identity"])
    assert seen == [False]  # lifted while the scenario ran
    assert result.passed, result
    assert target.locks == {lock.id.lower(): lock}  # same name, level, notes
    names = [s.name for s in result.steps]
    assert names[0] == f"lift {lock.describe()}" and names[-1] == f"restore {lock.describe()}"
    assert result.steps[-1].observed == "restored, read back"


def test_a_lock_kept_lifted_across_delete_and_recreate_goes_back_after_recreate(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    """Its scope (the identity) is deleted by delete-shared-identity: it cannot come back
    until recreate-identity has made the identity again."""
    lock = identity_lock(prod)
    target = LockTarget(prod, [lock])

    def delete(lc: Lifecycle) -> list[Step]:
        target.gone.add(lock.scope)
        ident = lc.current.identities["shared"]
        lc.deleted_identity = (
            "shared",
            ident,
            ["worker1", "worker2"],
            lc.granted(ident.principal_id),
        )
        return [Step("delete", "deleted", "deleted", True)]

    def recreate(lc: Lifecycle) -> list[Step]:
        del lc
        assert lock.id.lower() not in target.locks
        target.gone.clear()
        return [Step("create", "created", "created", True)]

    bodies["delete-shared-identity"] = delete
    bodies["recreate-identity"] = recreate
    deleted, recreated = run(target, ["delete-shared-identity", "recreate-identity"])
    assert deleted.passed and recreated.passed, (deleted, recreated)
    assert deleted.steps[-1].name == f"keep {lock.describe()} lifted"
    assert (
        recreated.steps[-1].name == f"restore {lock.describe()} (lifted for delete-shared-identity)"
    )
    assert target.locks == {lock.id.lower(): lock}


def test_a_lock_whose_scope_never_came_back_fails_the_run_loudly(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    lock = identity_lock(prod)
    target = LockTarget(prod, [lock])

    def delete(lc: Lifecycle) -> list[Step]:
        target.gone.add(lock.scope)
        ident = lc.current.identities["shared"]
        lc.deleted_identity = (
            "shared",
            ident,
            ["worker1", "worker2"],
            lc.granted(ident.principal_id),
        )
        return [Step("delete", "deleted", "deleted", True)]

    def recreate_fails(lc: Lifecycle) -> list[Step]:
        raise RuntimeError("create identity: 500")

    bodies["delete-shared-identity"] = delete
    bodies["recreate-identity"] = recreate_fails
    deleted, recreated = run(target, ["delete-shared-identity", "recreate-identity"])
    assert not recreated.passed
    assert recreated.error is not None and "LOCK NOT RESTORED" in recreated.error
    assert lock.name in recreated.error and "CanNotDelete" in recreated.error
    assert not recreated.steps[-1].passed and "404" in recreated.steps[-1].observed
    assert not target.locks
    report = RunReport("lifecycle", "fake", "prod", "now", scenarios=[deleted, recreated])
    assert not report.passed


def test_a_failed_restore_fails_the_scenario_that_passed(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    lock = identity_lock(prod)
    target = LockTarget(prod, [lock])
    target.fail_restore = True
    bodies["recreate-identity"] = sees(target, lock, [])
    (result,) = run(target, ["recreate-identity"])
    assert not result.passed and result.status == "failed"
    assert result.error is not None and result.error.startswith("LOCK NOT RESTORED")
    assert "level CanNotDelete" in result.error and NOTES in result.error
    restore = result.steps[-1]
    assert restore.name == f"restore {lock.describe()}" and not restore.passed
    assert "500" in restore.observed
    report = RunReport("lifecycle", "fake", "prod", "now", scenarios=[result])
    assert not report.passed


@pytest.mark.parametrize("how", ["raises", "interrupted"])
def test_the_lock_goes_back_when_the_scenario_raises_or_the_run_is_interrupted(
    prod: StackOutputs, bodies: dict[str, Body], how: str
) -> None:
    lock = identity_lock(prod)
    target = LockTarget(prod, [lock])

    def breaks(lc: Lifecycle) -> list[Step]:
        lc.new_steps().append(Step("half-way", "x", "x", True))
        assert lock.id.lower() not in target.locks
        if how == "interrupted":
            raise Interrupted("SIGINT")
        raise RuntimeError("boom")

    bodies["recreate-identity"] = breaks
    results: list[ScenarioResult] = []
    if how == "interrupted":
        with pytest.raises(Interrupted):
            run_scenarios(Lifecycle(target), ["recreate-identity"], results)  # type: ignore[arg-type]
    else:
        results = run(target, ["recreate-identity"])
    (result,) = results
    assert target.locks == {lock.id.lower(): lock}
    assert [s.name for s in result.steps] == [
        f"lift {lock.describe()}",
        "half-way",
        f"restore {lock.describe()}",
    ]
    assert result.error is not None
    assert ("INTERRUPTED" if how == "interrupted" else "boom") in result.error


def test_an_operator_without_locks_delete_gets_the_skip_naming_it(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    lock = identity_lock(prod)
    target = LockTarget(prod, [lock])
    target.refuse["delete"] = "Microsoft.Authorization/locks/delete"
    ran: list[bool] = []
    bodies["recreate-identity"] = sees(target, lock, ran)
    (result,) = run(target, ["recreate-identity"])
    assert ran == []  # never started
    assert result.status == "skipped" and result.skipped is not None
    assert "the operator lacks Microsoft.Authorization/locks/delete" in result.skipped
    assert lock.name in result.skipped and "409 ScopeLocked" in result.skipped
    assert result.fix is not None and "Locks Contributor" in result.fix
    assert "--keep-locks" in result.fix
    assert target.locks == {lock.id.lower(): lock}


def test_an_operator_who_could_not_put_the_lock_back_never_lifts_it(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    """The lock is re-written unchanged before it is deleted: without locks/write that
    fails first, and the lock is never lifted by someone who could not restore it."""
    lock = identity_lock(prod)
    target = LockTarget(prod, [lock])
    target.refuse["write"] = "Microsoft.Authorization/locks/write"
    (result,) = run(target, ["recreate-identity"])
    assert result.status == "skipped" and result.skipped is not None
    assert "lacks Microsoft.Authorization/locks/write" in result.skipped
    assert "Microsoft.Authorization/locks/delete" in result.skipped  # what lifting needs
    assert target.lifted == 0 and target.locks == {lock.id.lower(): lock}


def test_a_read_only_group_lock_is_lifted_for_writes_a_can_not_delete_one_is_not(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    """After delete-shared-identity, recreate-identity only writes (identity, VMs, grants):
    a CanNotDelete lock on the group does not refuse that, a ReadOnly one does."""
    seen: list[bool] = []
    for level, lifted in (("CanNotDelete", False), ("ReadOnly", True)):
        lock = group_lock(prod, level)
        target = LockTarget(prod, [lock])

        def delete(lc: Lifecycle) -> list[Step]:
            ident = lc.current.identities["shared"]
            lc.deleted_identity = ("shared", ident, ["worker1"], lc.granted(ident.principal_id))
            return [Step("delete", "deleted", "deleted", True)]

        bodies["delete-shared-identity"] = delete
        bodies["recreate-identity"] = sees(target, lock, seen)
        deleted, recreated = run(target, ["delete-shared-identity", "recreate-identity"])
        assert deleted.passed and recreated.passed
        # delete-shared-identity deletes: both levels refuse it, both were lifted for it
        assert deleted.steps[0].name == f"lift {lock.describe()}"
        assert deleted.steps[-1].name == f"restore {lock.describe()}"
        assert (recreated.steps[0].name == f"lift {lock.describe()}") is lifted, level
        assert target.locks == {lock.id.lower(): lock}
    assert seen == [True, False]


def test_keep_locks_lifts_nothing_and_skips_naming_the_lock(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    """A lock on the group is not in the stack outputs: it is found when the scenario is
    about to run, and with --keep-locks the scenario is skipped naming it."""
    unlocked = prod.model_copy(
        update={
            "identities": {
                k: v.model_copy(update={"locked": False}) for k, v in prod.identities.items()
            }
        }
    )
    lock = group_lock(prod, "CanNotDelete")
    target = LockTarget(unlocked, [lock])
    bodies["delete-vm"] = sees(target, lock, [])
    bodies["recreate-identity"] = sees(target, lock, [])
    results = run(target, ["delete-vm", "recreate-identity"], keep_locks=True)
    for skipped in results:  # both delete something under the group
        assert skipped.status == "skipped" and skipped.skipped is not None, skipped
        assert lock.describe() in skipped.skipped and "--keep-locks forbids" in skipped.skipped
    assert target.lifted == 0


def test_locks_that_cannot_be_read_lift_nothing_and_the_scenario_runs(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    target = LockTarget(prod, [group_lock(prod, "ReadOnly")])
    target.refuse["read"] = "Microsoft.Authorization/locks/read"
    progress: list[str] = []
    bodies["recreate-identity"] = sees(target, group_lock(prod, "ReadOnly"), [])
    lc = Lifecycle(target, progress=progress.append)  # type: ignore[arg-type]
    (result,) = run_scenarios(lc, ["recreate-identity"])
    assert result.passed and target.lifted == 0
    assert any("not readable" in line for line in progress)


def test_a_refusal_half_way_puts_back_what_was_already_lifted(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    first, second = identity_lock(prod), group_lock(prod, "CanNotDelete")
    target = LockTarget(prod, [first, second])
    target.refuse["delete"] = "Microsoft.Authorization/locks/delete"
    target.refuse_only = second.name
    ran: list[bool] = []
    bodies["recreate-identity"] = sees(target, first, ran)
    (result,) = run(target, ["recreate-identity"])
    assert ran == [] and target.lifted == 1  # the first was lifted, then the refusal
    assert result.status == "skipped" and result.skipped is not None
    assert second.name in result.skipped and "locks/delete" in result.skipped
    assert target.locks == {first.id.lower(): first, second.id.lower(): second}


def test_a_read_only_group_lock_is_lifted_for_a_vm_delete_and_put_back(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    lock = group_lock(prod, "ReadOnly")
    target = LockTarget(prod, [lock])
    seen: list[bool] = []
    bodies["delete-vm"] = sees(target, lock, seen)
    (result,) = run(target, ["delete-vm"])
    assert seen == [False] and result.passed
    assert [s.name for s in result.steps][::2] == [
        f"lift {lock.describe()}",
        f"restore {lock.describe()}",
    ]
    assert target.locks == {lock.id.lower(): lock}


def test_a_lock_on_what_the_scenario_deletes_for_good_is_not_lifted(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    """A lock on the VM delete-vm deletes would go with the VM and nothing in the run makes
    the VM again: lifting it would lose it, so the scenario is skipped saying so."""
    planned = {p.name: p for p in plan(prod, ["delete-vm"])}
    vm_id = planned["delete-vm"].touches[0][0]
    lock = LockInfo(vm_id, "vm-lock", "CanNotDelete")
    target = LockTarget(prod, [lock])
    (result,) = run(target, ["delete-vm"])
    assert result.status == "skipped" and result.skipped is not None
    assert "lost for good" in result.skipped and lock.describe() in result.skipped
    assert target.lifted == 0 and target.locks == {lock.id.lower(): lock}


def test_every_scenario_says_what_it_deletes_or_writes(prod: StackOutputs) -> None:
    """The planner's touches, with --cleanup the orphaned assignments too: what the locks
    over them are read for."""
    names = ["delete-vm", "disable-system-identity", "delete-one-sharing-vm"]
    plain = {p.name: p for p in plan(prod, names)}
    cleaning = {p.name: p for p in plan(prod, names, cleanup=True)}
    vm_ids = {vm.id for vm in prod.vms.values()}
    assert plain["delete-vm"].touches[0][1] == "delete"
    assert plain["delete-vm"].touches[0][0] in vm_ids
    assert plain["disable-system-identity"].touches == (
        (plain["disable-system-identity"].touches[0][0], "write"),
    )
    assert plain["delete-one-sharing-vm"].touches[0][0] in vm_ids
    assert len(plain["delete-vm"].touches) == 1
    grants = {g.id for g in prod.grants}
    extra = cleaning["delete-vm"].touches[1:]
    assert extra and all(op == "delete" and t in grants for t, op in extra)


def test_an_interrupt_while_the_lock_is_being_deleted_still_puts_it_back(
    prod: StackOutputs, bodies: dict[str, Body]
) -> None:
    """Ctrl-C lands while the DELETE is on its way (ARM has deleted the lock, the answer
    is not read yet): the lock was recorded as lifted before the call, so it goes back."""
    lock = identity_lock(prod)
    target = LockTarget(prod, [lock])
    delete = target.delete_lock

    def deleted_then_interrupted(found: LockInfo) -> None:
        delete(found)
        raise Interrupted("SIGINT")

    target.delete_lock = deleted_then_interrupted  # type: ignore[method-assign,assignment]
    ran: list[bool] = []
    bodies["recreate-identity"] = sees(target, lock, ran)
    results: list[ScenarioResult] = []
    with pytest.raises(Interrupted):
        run_scenarios(Lifecycle(target), ["recreate-identity"], results)  # type: ignore[arg-type]
    assert ran == [] and target.locks == {lock.id.lower(): lock}
    (result,) = results
    assert result.error is not None and "INTERRUPTED" in result.error
    assert result.steps[-1].name == f"restore {lock.describe()}" and result.steps[-1].passed
