"""``delete-one-sharing-vm``: delete one of the VMs sharing a user-assigned identity; the
identity and the other VMs keep working."""

from __future__ import annotations

from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import observed_step, timed
from verify.results import Step


def delete_one_sharing_vm(lc: Lifecycle) -> list[Step]:
    ident, vms = lc.pick_shared_identity()
    victim = next((v for v in vms if v not in lc.used), vms[0])
    others = [v for v in vms if v != victim]
    lc.used.add(victim)
    uai = lc.current.identities[ident]
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: every VM sharing {ident} reads through it",
        "matrix holds",
        lc.expectations(vms, ident),
    )
    steps.append(step)
    expected_assignments = {g.id for g in lc.granted(uai.principal_id)}
    steps.append(
        timed(f"delete VM {victim}", "VM deleted", lambda: lc.target.delete_vm(victim), "deleted")
    )
    gone = not lc.target.vm_exists(victim)
    steps.append(
        observed_step(
            f"VM {victim} is gone", "GET returns 404", gone, "404" if gone else "still exists"
        )
    )
    lc.forget_vm(victim)
    exists = lc.target.identity_exists(ident)
    steps.append(
        observed_step(
            f"identity {ident} still exists", "GET 200", exists, "exists" if exists else "gone"
        )
    )
    step, _ = lc.probe_step(
        f"the other VMs ({', '.join(others)}) still read through {ident}",
        "matrix holds",
        lc.expectations(others, ident),
    )
    steps.append(step)
    steps.append(
        lc.assignments_step(
            f"{ident}'s assignments untouched", uai.principal_id, expected_assignments
        )
    )
    return steps
