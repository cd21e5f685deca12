"""Management locks around a scenario: lift the ones that would refuse it, always put them back.

A ``CanNotDelete`` lock refuses a delete at or below its scope, a ``ReadOnly`` lock every
write there (``components.arm.rules.check_not_locked``, the rule the sandbox's ARM applies
and Azure answers with 409 ``ScopeLocked``). Each planned scenario says what it will delete
or write (:attr:`verify.lifecycle.planner.PlannedScenario.touches`); before it runs:

1. the locks over each of those IDs are read (at the ID, its group, its subscription);
2. each lock that would refuse one of them is re-written unchanged first (a ``PUT`` with
   its own level, notes and owners: proves ``Microsoft.Authorization/locks/write``, so a
   lock is never lifted by an operator who could not put it back), then deleted;
3. a 403 on either stops there, puts back what was already lifted, and the scenario is
   SKIPPED naming the action that was missing (as with ``--keep-locks``, which lifts
   nothing and skips a scenario a lock refuses).

After the scenario (``finally``: also when it failed or the run was interrupted) each lifted
lock is created again with the same name, level, notes and owners and read back; a lock
that could not be restored fails the scenario loudly with what to put back, because a lost
lock is worse than a failed scenario. One exception: a lock on what the scenario deletes
(the identity delete-shared-identity deletes) cannot exist without it; it is lifted only
when a later scenario of the run makes that again (recreate-identity), stays lifted until
then and is restored after that scenario (if that one fails first, restoring it fails as
any other); when nothing later does, the scenario is SKIPPED instead, as the lock would be
lost for good.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from components import armid
from components.arm.errors import ArmError
from components.arm.rules import check_not_locked
from verify.lifecycle.context import Lifecycle, ScenarioSkippedError
from verify.results import ScenarioResult, Step
from verify.targets.base import LockInfo

#: What a scenario does to an ARM ID: ``delete`` it or ``write`` it (PUT, PATCH).
DELETE = "delete"
WRITE = "write"
Touch = tuple[str, str]

LIFT_ACTIONS = "Microsoft.Authorization/locks/delete and Microsoft.Authorization/locks/write"
LOCK_ROLE = "Locks Contributor"


class LockLiftRefusedError(ScenarioSkippedError):
    """A lock refuses what the scenario does and may not (or could not) be lifted."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.fix = fix


@dataclass
class LiftedLock:
    """A lock this run deleted, the scenario it was lifted for and its result (where a
    failed restore is reported), and whether that scenario deleted the lock's scope."""

    lock: LockInfo
    scenario: str
    result: ScenarioResult
    scope_deleted: bool = False


def refuses(lock: LockInfo, touch: Touch) -> bool:
    """Whether ARM refuses ``touch`` because of ``lock`` (the shared model's rule)."""
    target, operation = touch
    try:
        check_not_locked(target, [(lock.scope, lock.level)], operation)
    except ArmError:
        return True
    return False


def _refusal(exc: BaseException) -> str | None:
    """The RBAC action a 401/403 refusal names (verify.targets.locks raises them with
    ``status`` and ``action``), or None for any other error."""
    action = getattr(exc, "action", None)
    if getattr(exc, "status", None) in (401, 403) and isinstance(action, str):
        return action
    return None


def _what(touches: Sequence[Touch]) -> str:
    return ", ".join(f"{op} {armid_name(t)}" for t, op in touches)


def armid_name(arm_id: str) -> str:
    """The last segment of an ARM ID (a resource's name), for short messages."""
    return arm_id.rstrip("/").rsplit("/", 1)[-1] or arm_id


def _deleted_with(lock: LockInfo, touches: Sequence[Touch]) -> bool:
    """Whether the scenario deletes the lock's scope (or something above it)."""
    return any(op == DELETE and armid.is_within(t, lock.scope) for t, op in touches)


def _blocking(lc: Lifecycle, touches: Sequence[Touch]) -> list[LockInfo]:
    found: dict[str, LockInfo] = {}
    scopes = list(dict.fromkeys(target for target, _ in touches))
    for locks in lc.target.management_locks_over(scopes).values():
        for lock in locks:
            found.setdefault(lock.id.lower(), lock)
    return [lock for lock in found.values() if any(refuses(lock, t) for t in touches)]


def _refused(exc: Exception, lock: LockInfo, touches: Sequence[Touch]) -> Exception:
    """A 403 on a lock call as the scenario's skip naming the action; else ``exc``."""
    action = _refusal(exc)
    if action is None:
        return exc
    return LockLiftRefusedError(
        f"{lock.describe()} refuses it ({_what(touches)}: Azure answers 409 ScopeLocked) and "
        f"lifting it was refused: the operator lacks {action} (lifting the lock for the "
        f"scenario needs {LIFT_ACTIONS})",
        f"grant the operator {LIFT_ACTIONS} at {lock.scope} (e.g. the built-in role "
        f"{LOCK_ROLE}), or pass --keep-locks to skip without trying",
    )


def lift_locks(
    lc: Lifecycle,
    scenario: str,
    result: ScenarioResult,
    touches: Sequence[Touch],
    recreated_later: Iterable[str] = (),
) -> list[Step]:
    """Lift every lock that would refuse ``touches``; the steps say which (none: []).

    A lock on something the scenario deletes goes with it; it is lifted only when the
    scenario itself or a later one makes that again (an ID in ``recreated_later``), so it
    can be put back."""
    if not touches:
        return []
    try:
        blocking = _blocking(lc, touches)
    except Exception as exc:
        if _refusal(exc) is None:
            raise
        # Locks that cannot be read cannot be planned around: a lock would show as the
        # scenario's own 409 ScopeLocked failure, naming the locked scope.
        lc.progress(f"  locks over {_what(touches)} not readable ({exc}); nothing lifted")
        return []
    if not blocking:
        return []
    names = "; ".join(lock.describe() for lock in blocking)
    if lc.keep_locks:
        raise LockLiftRefusedError(
            f"{names} refuses it ({_what(touches)}: Azure answers 409 ScopeLocked) and "
            "--keep-locks forbids lifting a lock",
            f"run without --keep-locks by an operator holding {LIFT_ACTIONS} (e.g. the "
            f"built-in role {LOCK_ROLE}), or on a copy of the stack without the lock",
        )
    # made again later in the run, or by this scenario itself (recreate-identity alone)
    later = {i.lower() for i in recreated_later} | {t.lower() for t, op in touches if op == WRITE}
    for lock in blocking:
        deleted = _deleted_with(lock, touches)
        if deleted and lock.scope.lower() not in later:
            raise LockLiftRefusedError(
                f"{lock.describe()} refuses it ({_what(touches)}: Azure answers 409 "
                f"ScopeLocked), and lifted it would be lost for good: the scenario deletes "
                f"{armid_name(lock.scope)} and nothing later in this run makes it again",
                "run it on a copy of the stack without that lock (a lock the stack declares "
                "comes back with `pulumi up`)",
            )
    steps: list[Step] = []
    for lock in blocking:
        try:
            lc.target.create_lock(lock)  # unchanged: proves locks/write before the lift
        except Exception as exc:
            raise _refused(exc, lock, touches) from None
        lifted = LiftedLock(lock, scenario, result, scope_deleted=_deleted_with(lock, touches))
        # Recorded before the delete: an interrupt or error during it still puts it back
        # (re-creating a lock that was not deleted changes nothing).
        lc.lifted_locks.append(lifted)
        try:
            lc.target.delete_lock(lock)
        except Exception as exc:
            if _refusal(exc) is not None:
                lc.lifted_locks.remove(lifted)  # refused: it never went
            raise _refused(exc, lock, touches) from None
        steps.append(
            Step(
                f"lift {lock.describe()}",
                f"lifted for the scenario ({lock.level} refuses {_what(touches)})",
                "deleted; put back after the scenario",
                True,
            )
        )
        lc.progress(f"  lifted {lock.describe()} for {scenario}")
    return steps


def _restore_one(lc: Lifecycle, lifted: LiftedLock) -> Step:
    lock = lifted.lock
    expected = f"the lock exists again at {lock.scope}: level {lock.level}, notes {lock.notes!r}"
    try:
        lc.target.create_lock(lock)
        listed = lc.target.management_locks(lock.scope)
        found = [x for x in listed if x.id.lower() == lock.id.lower()]
    except Exception as exc:
        return Step(f"restore {lock.describe()}", expected, f"failed: {exc}", False)
    same = [x for x in found if (x.level, x.notes or None) == (lock.level, lock.notes or None)]
    if same:
        return Step(f"restore {lock.describe()}", expected, "restored, read back", True)
    seen = f"read back as {found[0].level}, notes {found[0].notes!r}" if found else "not found"
    return Step(f"restore {lock.describe()}", expected, seen, False)


def _put_back_hint(lock: LockInfo) -> str:
    notes = f", notes {lock.notes!r}" if lock.notes else ""
    return (
        f"LOCK NOT RESTORED: {lock.describe()} was lifted by this run and is missing; put it "
        f"back: name {lock.name}, level {lock.level}{notes} (a lock the stack declares comes "
        "back with `pulumi up`)"
    )


def restore_locks(
    lc: Lifecycle, current: ScenarioResult | None = None, *, recreated_later: Iterable[str] = ()
) -> None:
    """Put back every lifted lock; each restore is a step of ``current`` (the scenario just
    run; None: the one that lifted it), and a failure also sets that result's error. A lock
    whose scope its scenario deleted and a later scenario recreates (an ID in
    ``recreated_later``) stays lifted until then."""
    later = {i.lower() for i in recreated_later}
    for lifted in list(lc.lifted_locks):
        lock = lifted.lock
        report = current or lifted.result
        if lifted.scope_deleted and lock.scope.lower() in later:
            report.steps.append(
                Step(
                    f"keep {lock.describe()} lifted",
                    "put back once a later scenario recreates its scope",
                    f"{lifted.scenario} deleted its scope; restored after the scenario that "
                    "recreates it",
                    True,
                )
            )
            continue
        step = _restore_one(lc, lifted)
        lc.lifted_locks.remove(lifted)
        if lifted.scenario != (current.name if current else lifted.scenario):
            step.name += f" (lifted for {lifted.scenario})"
        report.steps.append(step)
        if step.passed:
            lc.progress(f"  restored {lock.describe()}")
            continue
        hint = _put_back_hint(lock)
        lc.progress(f"  {hint}")
        report.error = f"{report.error}; {hint}" if report.error else hint
