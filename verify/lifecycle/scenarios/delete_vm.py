"""``delete-vm``: delete a VM with a system identity; its principal goes, its role
assignments stay, orphaned, and are found with ``principalId eq``."""

from __future__ import annotations

from verify.lifecycle.cleanup import cleanup_step
from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import observed_step, timed
from verify.results import Step


def delete_vm(lc: Lifecycle) -> list[Step]:
    vm = lc.pick_system_vm()
    lc.used.add(vm)
    principal = lc.current.vms[vm].system_principal_id or ""
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {vm} system identity reads what it was granted",
        "matrix holds for this VM",
        lc.expectations([vm], "system"),
    )
    steps.append(step)
    stack_assignments = {g.id for g in lc.granted(principal)}
    steps.append(lc.assignments_step("its assignments before", principal, stack_assignments))
    deleted = timed(f"delete VM {vm}", "VM deleted", lambda: lc.target.delete_vm(vm), "deleted")
    steps.append(lc.removed(principal, deleted))
    gone = not lc.target.vm_exists(vm)
    steps.append(
        observed_step("VM is gone", "GET returns 404", gone, "404" if gone else "still exists")
    )
    live = lc.target.live_principals()
    steps.append(
        observed_step(
            "its system principal is gone",
            f"principal {principal} no longer held by any resource",
            principal.lower() not in live,
            "gone" if principal.lower() not in live else f"still held by {live[principal.lower()]}",
        )
    )
    lc.forget_vm(vm)
    steps.append(
        lc.assignments_step("its assignments remain, orphaned", principal, stack_assignments)
    )
    steps.append(cleanup_step(lc, [principal]))
    return steps
