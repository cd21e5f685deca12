"""``delete-shared-identity``: delete the shared identity; every VM that used it fails
fresh probes; its assignments are orphaned."""

from __future__ import annotations

import dataclasses

from verify.lifecycle.cleanup import cleanup_step
from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import timed
from verify.lifecycle.verdicts import replay_step
from verify.results import Step


def delete_shared_identity(lc: Lifecycle) -> list[Step]:
    ident, vms = lc.pick_identity_in_use()
    uai = lc.current.identities[ident]
    before = lc.current
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {', '.join(vms)} read through {ident} (tokens stashed on the VMs)",
        "matrix holds",
        lc.expectations(vms, ident),
        stash=True,
    )
    steps.append(step)
    expected_assignments = {g.id for g in lc.granted(uai.principal_id)}
    steps.append(
        lc.removed(
            uai.principal_id,
            timed(
                f"delete identity {ident}",
                "identity deleted",
                lambda: lc.target.delete_identity(ident),
                "deleted",
            ),
        )
    )
    gone_cells = [
        dataclasses.replace(e, expected="no_identity")  # keeps each cell's kind (blob/secret)
        for e in lc.expectations(vms, ident, outputs=before)
    ]
    step, _ = lc.probe_step(
        f"fresh probes on every VM that used {ident}",
        "no_identity everywhere",
        gone_cells,
    )
    steps.append(step)
    steps.append(replay_step(lc, vms[0], ident, before))
    lc.forget_identity(ident)
    steps.append(
        lc.assignments_step(
            "its assignments remain, orphaned", uai.principal_id, expected_assignments
        )
    )
    steps.append(cleanup_step(lc, [uai.principal_id]))
    lc.deleted_identity = (
        ident,
        uai,
        vms,
        lc.granted(uai.principal_id),
    )
    return steps
