"""``delete-scale-set``: delete a scale set (preferring one whose system identity is granted
something).

Its system principal goes with it (no resource holds it, so no instance can get its
token); its role assignments stay, orphaned, and are offered to cleanup only because this
run's delete succeeded. A user-assigned identity the set held is not the set's: it still
exists, and every other host holding it (VMs, apps, workloads) still reads what it is
granted.
"""

from __future__ import annotations

from verify.lifecycle.cleanup import cleanup_step
from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import observed_step, timed
from verify.results import Step


def holders_of(lc: Lifecycle, identity: str, besides: str) -> list[str]:
    """Hosts other than ``besides`` whose matrix cells use ``identity``."""
    return sorted({c.host for c in lc.matrix() if c.identity == identity and c.host != besides})


def delete_scale_set(lc: Lifecycle) -> list[Step]:
    key = lc.pick_scale_set(prefer_system=True)
    host = f"scaleset:{key}"
    lc.used.add(host)
    ss = lc.current.scale_sets[key]
    # Its own system principal, when it is granted something (else nothing is orphaned).
    principal = ss.system_principal_id if lc.granted(ss.system_principal_id) else None
    shared = [i for i in ss.user_assigned if i in lc.current.identities]
    others = {i: holders_of(lc, i, host) for i in shared}
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {key} reads what its identities were granted",
        "matrix holds for this scale set",
        lc.expectations([host]),
    )
    steps.append(step)
    stack_assignments = {g.id for g in lc.granted(principal)}
    if principal:
        steps.append(lc.assignments_step("its assignments before", principal, stack_assignments))
    deleted = timed(
        f"delete scale set {key}",
        "scale set deleted",
        lambda: lc.target.delete_scale_set(key),
        "deleted",
    )
    steps.append(lc.removed(principal, deleted))
    gone = not lc.target.scale_set_exists(key)
    steps.append(
        observed_step(
            "scale set is gone", "GET returns 404", gone, "404" if gone else "still exists"
        )
    )
    live = lc.target.live_principals()
    if ss.system_principal_id:
        held = live.get(ss.system_principal_id.lower())
        steps.append(
            observed_step(
                "its system principal is gone",
                f"principal {ss.system_principal_id} no longer held by any resource "
                "(no token for it)",
                held is None,
                "gone" if held is None else f"still held by {held}",
            )
        )
    for ident in shared:
        uai = lc.current.identities[ident]
        still = uai.principal_id.lower() in live and lc.target.identity_exists(ident)
        steps.append(
            observed_step(
                f"user-assigned identity {ident} stays",
                f"{ident} exists, principal {uai.principal_id} still held",
                still,
                "still exists" if still else "gone",
            )
        )
    lc.forget_scale_set(key)
    for ident, hosts in sorted(others.items()):
        if not hosts:
            continue
        step, _ = lc.probe_step(
            f"{', '.join(hosts)} still read through {ident}",
            "matrix holds for the other hosts holding it",
            lc.expectations(hosts, ident),
        )
        steps.append(step)
    if principal:
        steps.append(
            lc.assignments_step("its assignments remain, orphaned", principal, stack_assignments)
        )
        steps.append(cleanup_step(lc, [principal]))
    return steps
