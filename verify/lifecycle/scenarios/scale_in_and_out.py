"""``scale-in-and-out``: a scale set's identities belong to the set, not to an instance.

Scaled out by one, the new instance (its own IMDS) reads exactly what the set's identities
are granted, at once: no grant is made for it and the probe does not wait out RBAC
propagation. Scaled in to fewer instances than it started with, the set's system principal
and its user-assigned identities outlive every removed instance (still held, their
assignments untouched) and the remaining instances still read. The set is then scaled back
to its starting size, so the scenarios after this one find the deployment as deployed.
"""

from __future__ import annotations

import time

from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import observed_step, timed
from verify.results import Step


def scale_in_and_out(lc: Lifecycle) -> list[Step]:
    key = lc.pick_scale_set()
    host = f"scaleset:{key}"
    ss = lc.current.scale_sets[key]
    cells = lc.expectations([host])
    steps = lc.new_steps()
    before = _instances_step(lc, key, "instances before", None, steps)
    if not before:
        return steps
    start = len(before)
    step, _ = lc.probe_step(
        f"before: every instance of {key} ({', '.join(before)}) reads what the set is granted",
        "matrix holds on every instance",
        cells,
        instances={host: before},
    )
    steps.append(step)

    # -- out --------------------------------------------------------------------------
    steps.append(
        timed(
            f"scale {key} out to {start + 1}",
            "sku.capacity updated",
            lambda: lc.target.scale_scale_set(key, start + 1),
            "scaled",
        )
    )
    after_out = _instances_step(lc, key, "instances after scaling out", start + 1, steps)
    new = [i for i in after_out if i not in before]
    steps.append(
        observed_step(
            "one new instance",
            "exactly one instance ID that was not there before",
            len(new) == 1,
            f"new: {', '.join(new) or 'none'}",
        )
    )
    if len(new) == 1:
        step, _ = lc.probe_step(
            f"new instance {new[0]} reads at once (no grant made, no propagation wait)",
            "matrix holds on the new instance",
            cells,
            instances={host: new},
        )
        steps.append(step)

    # -- in ---------------------------------------------------------------------------
    smaller = max(1, start - 1)
    steps.append(
        timed(
            f"scale {key} in to {smaller}",
            "sku.capacity updated",
            lambda: lc.target.scale_scale_set(key, smaller),
            "scaled",
        )
    )
    remaining = _instances_step(lc, key, "instances after scaling in", smaller, steps)
    removed = [i for i in after_out if i not in remaining]
    steps.append(_identities_outlive(lc, key, removed))
    if ss.system_principal_id:
        granted = {g.id for g in lc.granted(ss.system_principal_id)}
        if granted:
            steps.append(
                lc.assignments_step(
                    "the set's assignments are untouched", ss.system_principal_id, granted
                )
            )
    if remaining:
        step, _ = lc.probe_step(
            f"remaining instances ({', '.join(remaining)}) still read",
            "matrix holds on every remaining instance",
            cells,
            instances={host: remaining},
        )
        steps.append(step)

    # -- back to where it was ---------------------------------------------------------
    steps.append(
        timed(
            f"scale {key} back to {start}",
            "sku.capacity updated",
            lambda: lc.target.scale_scale_set(key, start),
            "scaled",
        )
    )
    _instances_step(lc, key, "instances at the end", start, steps)
    return steps


def _instances_step(
    lc: Lifecycle, key: str, name: str, want: int | None, steps: list[Step]
) -> list[str]:
    """List the set's instances through ARM; with ``want``, exactly that many must be
    listed, else at least one. Returns the IDs (empty when the listing failed)."""
    started = time.monotonic()
    try:
        found = lc.target.scale_set_instances(key)
    except Exception as exc:
        steps.append(Step(name, "instances listed", f"failed: {type(exc).__name__}: {exc}", False))
        return []
    ok = len(found) == want if want is not None else bool(found)
    expected = f"{want} instance(s) listed" if want is not None else "at least one instance"
    steps.append(
        Step(
            name,
            expected,
            f"{len(found)}: {', '.join(found) or '-'}",
            ok,
            time.monotonic() - started,
        )
    )
    return found


def _identities_outlive(lc: Lifecycle, key: str, removed: list[str]) -> Step:
    """The set's system principal is still held and its user-assigned identities still
    exist: nothing went with the removed instances."""
    started = time.monotonic()
    ss = lc.current.scale_sets[key]
    live = lc.target.live_principals()
    missing: list[str] = []
    if ss.system_principal_id and ss.system_principal_id.lower() not in live:
        missing.append(f"system principal {ss.system_principal_id}")
    for ident in ss.user_assigned:
        if ident in lc.current.identities and not lc.target.identity_exists(ident):
            missing.append(f"identity {ident}")
    held = (["system"] if ss.system_principal_id else []) + list(ss.user_assigned)
    return Step(
        f"the set's identities outlive the removed instances ({', '.join(removed) or 'none'})",
        f"{', '.join(held)} still held by {key}",
        "all still held" if not missing else "gone: " + ", ".join(missing),
        bool(removed) and not missing,
        time.monotonic() - started,
        [] if removed else ["no instance was removed: nothing was scaled in"],
    )
