"""``disable-system-identity``: turn the system identity off on a running VM; a fresh
probe gets no token for it, a token obtained before is replayed and the outcome reported."""

from __future__ import annotations

from verify.lifecycle.cleanup import cleanup_step
from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import timed
from verify.lifecycle.verdicts import replay_step, system_token_gone_step
from verify.results import Step


def disable_system_identity(lc: Lifecycle) -> list[Step]:
    vm = lc.pick_system_vm()
    lc.used.add(vm)
    principal = lc.current.vms[vm].system_principal_id or ""
    before = lc.current
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {vm} system identity reads what it was granted (token stashed on the VM)",
        "matrix holds for this VM",
        lc.expectations([vm], "system"),
        stash=True,
    )
    steps.append(step)
    steps.append(
        lc.removed(
            principal,
            timed(
                f"turn system identity off on {vm}",
                "identity type changed, VM still running",
                lambda: lc.target.disable_system_identity(vm),
                "updated",
            ),
        )
    )
    steps.append(system_token_gone_step(lc, vm, principal, before))
    steps.append(replay_step(lc, vm, "system", before))
    lc.forget_system_identity(vm)
    uai_cells = lc.expectations([vm])
    if uai_cells:
        step, _ = lc.probe_step(
            f"{vm}'s user-assigned identities are unaffected",
            "matrix holds for its user-assigned identities",
            uai_cells,
        )
        steps.append(step)
    steps.append(
        lc.assignments_step(
            "its assignments remain, orphaned",
            principal,
            {g.id for g in lc.granted(principal)},
        )
    )
    steps.append(cleanup_step(lc, [principal]))
    return steps
