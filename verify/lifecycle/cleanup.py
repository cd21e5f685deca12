"""The lifecycle's cleanup step: offer :mod:`verify.orphans` only what this run removed.

A scenario records a principal as removed only when the step that removed it SUCCEEDED
(:meth:`verify.lifecycle.context.Lifecycle.removed`); a delete that ARM refused leaves
its principal out, whatever a later GET says. The rules that decide each deletion are in
:mod:`verify.orphans`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from verify.orphans import Candidate, clean_orphans
from verify.results import Step

if TYPE_CHECKING:
    from verify.lifecycle.context import Lifecycle


def cleanup_step(lc: Lifecycle, principal_ids: Sequence[str]) -> Step:
    """Leave the orphans of ``principal_ids`` in place, or (``--cleanup``) clean them."""
    started = time.monotonic()
    candidates = [
        Candidate(p, f"removed by step '{lc.removed_by[p.lower()]}'")
        for p in principal_ids
        if p.lower() in lc.removed_by
    ]
    not_candidates = [
        f"principal {p} is not a cleanup candidate: no step of this run that removed it succeeded"
        for p in principal_ids
        if p.lower() not in lc.removed_by
    ]
    if not lc.cleanup:
        listed = [a for c in candidates for a in lc.target.list_assignments(c.principal_id)]
        return Step(
            name="orphans left in place",
            expected="orphans are only removed on request (--cleanup)",
            observed=f"{len(listed)} orphaned assignment(s) left",
            passed=True,
            seconds=time.monotonic() - started,
            details=[f"orphan {a.id} ({a.principal_type})" for a in listed] + not_candidates,
        )
    result = clean_orphans(lc.target, candidates)
    deleted = result.of("deleted")
    left = [
        a
        for c in candidates
        for a in lc.target.list_assignments(c.principal_id)
        if a.id.lower() in {d.assignment.id.lower() for d in deleted}
    ]
    held = result.of("refused") + result.of("manual")
    observed = f"removed {len(deleted)}, {len(left)} left"
    if held:
        observed += f", {len(held)} not deleted ({', '.join(sorted({d.decision for d in held}))})"
    return Step(
        name="cleanup orphans",
        expected="every orphan of a principal this run removed and Graph proves gone is "
        "removed, nothing else touched",
        observed=observed,
        passed=not left and result.complete and not not_candidates,
        seconds=time.monotonic() - started,
        details=[d.line() for d in result.decisions] + not_candidates,
    )
