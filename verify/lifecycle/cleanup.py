"""Orphan cleanup: removing the role assignments a deleted principal left behind.

Kept apart from the scenarios because it is the one place the verifier deletes something
it did not create, so its rules must be readable in one module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from verify.results import Step
from verify.targets.base import Assignment, Target

if TYPE_CHECKING:
    from verify.lifecycle.context import Lifecycle


class LiveAssignmentError(RuntimeError):
    """A cleanup was asked to delete the assignment of a principal that still exists."""


def cleanup_orphans(target: Target, candidates: Sequence[Assignment]) -> list[Assignment]:
    """Delete ``candidates`` only if every one of them belongs to a deleted principal.

    All-or-nothing: the live set is read from ARM first and any live candidate refuses
    the whole cleanup, because a caller who mixed up principals should fix that before
    anything is deleted.
    """
    live = target.live_principals()
    touching = [a for a in candidates if a.principal_id.lower() in live]
    if touching:
        names = ", ".join(f"{a.id} (held by {live[a.principal_id.lower()]})" for a in touching)
        raise LiveAssignmentError(f"would delete live assignment(s): {names}")
    for assignment in candidates:
        target.delete_assignment(assignment.id)
    return list(candidates)


def cleanup_step(lc: Lifecycle, principal_ids: Sequence[str]) -> Step:
    """Delete orphaned assignments of ``principal_ids``, or say why not."""
    started = time.monotonic()
    candidates = [a for p in principal_ids for a in lc.target.list_assignments(p)]
    if not lc.cleanup:
        return Step(
            name="orphans left in place",
            expected="orphans are only removed on request (--cleanup)",
            observed=f"{len(candidates)} orphaned assignment(s) left",
            passed=True,
            seconds=time.monotonic() - started,
            details=[f"orphan {a.id} ({a.principal_type})" for a in candidates],
        )
    try:
        removed = cleanup_orphans(lc.target, candidates)
    except LiveAssignmentError as exc:
        return Step(
            name="cleanup orphans",
            expected="only assignments of deleted principals are removed",
            observed=f"refused: {exc}",
            passed=False,
            seconds=time.monotonic() - started,
        )
    left = [a for p in principal_ids for a in lc.target.list_assignments(p)]
    return Step(
        name="cleanup orphans",
        expected="every orphan removed, nothing else touched",
        observed=f"removed {len(removed)}, {len(left)} left",
        passed=not left,
        seconds=time.monotonic() - started,
        details=[f"removed {a.id}" for a in removed],
    )
