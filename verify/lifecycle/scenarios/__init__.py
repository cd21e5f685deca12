"""The scenarios, in the order they run on one deployment, and the loop that runs them.

Each scenario is its own module with one ``run(lc) -> list[Step]`` function; this module
only names them and runs the chosen ones, so a scenario that raises still reports the
steps it completed and the next scenario still runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from verify.interrupt import Interrupted
from verify.lifecycle.context import Lifecycle, ScenarioSkippedError
from verify.lifecycle.locks import WRITE, LockLiftRefusedError, lift_locks, restore_locks
from verify.lifecycle.planner import PlannedScenario, describe, plan
from verify.lifecycle.scenarios.delete_app import delete_app
from verify.lifecycle.scenarios.delete_one_sharing_vm import delete_one_sharing_vm
from verify.lifecycle.scenarios.delete_scale_set import delete_scale_set
from verify.lifecycle.scenarios.delete_shared_identity import delete_shared_identity
from verify.lifecycle.scenarios.delete_vm import delete_vm
from verify.lifecycle.scenarios.disable_app_system_identity import disable_app_system_identity
from verify.lifecycle.scenarios.disable_system_identity import disable_system_identity
from verify.lifecycle.scenarios.recreate_identity import recreate_identity
from verify.lifecycle.scenarios.remove_app_reference_grant import remove_app_reference_grant
from verify.lifecycle.scenarios.remove_workload_federation import remove_workload_federation
from verify.lifecycle.scenarios.scale_in_and_out import scale_in_and_out
from verify.results import ScenarioResult, Step


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[Lifecycle], list[Step]]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "remove-workload-federation",
        "Removing a cluster workload's federated credential: the next token exchange fails "
        "(AADSTS70021/700213) while a token issued before keeps working until it expires; "
        "made again, the workload reads as before.",
        remove_workload_federation,
    ),
    Scenario(
        "scale-in-and-out",
        "Scaling a scale set out and in: a new instance reads what the set's identities are "
        "granted at once, and the identities outlive every removed instance.",
        scale_in_and_out,
    ),
    Scenario(
        "delete-scale-set",
        "Deleting a scale set deletes its system-assigned identity (its assignments stay, "
        "orphaned); a user-assigned identity it held stays and keeps working for the other "
        "hosts holding it.",
        delete_scale_set,
    ),
    Scenario(
        "delete-vm",
        "Deleting a VM deletes its system-assigned identity; its role assignments stay "
        "behind, orphaned, until cleaned up.",
        delete_vm,
    ),
    Scenario(
        "disable-system-identity",
        "Turning the system identity off on a running VM: fresh token requests fail; a token "
        "obtained before is checked against Key Vault.",
        disable_system_identity,
    ),
    Scenario(
        "delete-one-sharing-vm",
        "Deleting one VM that shares a user-assigned identity leaves the identity and the "
        "other VMs working.",
        delete_one_sharing_vm,
    ),
    Scenario(
        "delete-shared-identity",
        "Deleting the shared user-assigned identity breaks every VM and app that used it and "
        "the Key Vault references it resolved; its assignments are orphaned.",
        delete_shared_identity,
    ),
    Scenario(
        "recreate-identity",
        "An identity recreated with the same name is a new principal: old grants do not "
        "apply until they are made again.",
        recreate_identity,
    ),
    Scenario(
        "delete-app",
        "Deleting an app deletes its system-assigned identity; its role assignments stay "
        "behind, orphaned, until cleaned up.",
        delete_app,
    ),
    Scenario(
        "remove-app-reference-grant",
        "Removing the grant a Key Vault reference resolves through: ARM reports it "
        "AccessToKeyVaultDenied and the identity is refused the secret inside the app.",
        remove_app_reference_grant,
    ),
    Scenario(
        "disable-app-system-identity",
        "Turning the system identity off on an app: new token requests fail; its Key Vault "
        "references turn MSINotEnabled.",
        disable_app_system_identity,
    ),
)
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)


def run_scenarios(
    lc: Lifecycle,
    names: Sequence[str] | None = None,
    results: list[ScenarioResult] | None = None,
) -> list[ScenarioResult]:
    """Run the named scenarios (all by default) in their canonical order.

    ``results`` is filled as each scenario ends, so an interrupted run (Ctrl-C) still
    reports the scenarios that completed and the steps of the one that was running.

    Planned first (:mod:`verify.lifecycle.planner`): a scenario the topology cannot run
    is reported SKIPPED with the reason and what to add to the stack, and not run.

    A management lock that would refuse a scenario is lifted for it and put back after it
    (``finally``, interrupts included), or the scenario is SKIPPED saying why it cannot be
    lifted (:mod:`verify.lifecycle.locks`).
    """
    chosen = [s for s in SCENARIOS if names is None or s.name in names]
    planned = {
        p.name: p
        for p in plan(
            lc.current, [s.name for s in chosen], keep_locks=lc.keep_locks, cleanup=lc.cleanup
        )
    }
    lc.progress("plan:")
    for line in describe(list(planned.values())):
        lc.progress(line)
    results = [] if results is None else results
    try:
        for index, scenario in enumerate(chosen):
            intent = planned[scenario.name]
            if not intent.runnable:
                results.append(
                    ScenarioResult(
                        scenario.name,
                        scenario.description,
                        skipped=intent.skip_reason,
                        fix=intent.fix,
                    )
                )
                continue
            later = [planned[s.name] for s in chosen[index + 1 :]]
            result = _run_one(lc, scenario, intent, later, results)
            if result.skipped is not None and chosen[index + 1 :]:
                # Skipped at run time (a lock could not be lifted): what it would have
                # deleted still stands, so the rest is planned again from here.
                rest = [s.name for s in chosen[index + 1 :]]
                planned.update(
                    (p.name, p)
                    for p in plan(
                        lc.current, rest, keep_locks=lc.keep_locks, cleanup=lc.cleanup, seed=lc
                    )
                )
    finally:
        if lc.lifted_locks:  # a lock kept lifted for a scenario that never put it back
            restore_locks(lc)
    return results


def _recreated_by(later: Sequence[PlannedScenario]) -> list[str]:
    return [t for p in later if p.runnable for t, op in p.touches if op == WRITE]


def _run_one(
    lc: Lifecycle,
    scenario: Scenario,
    intent: PlannedScenario,
    later: Sequence[PlannedScenario],
    results: list[ScenarioResult],
) -> ScenarioResult:
    lc.progress(f"scenario {scenario.name}: {intent.subjects}")
    started = time.monotonic()
    result = ScenarioResult(scenario.name, scenario.description, subjects=intent.subjects)
    lc.active_steps = None
    lifted: list[Step] = []
    try:
        try:
            recreated = _recreated_by(later)
            lifted = lift_locks(lc, scenario.name, result, intent.touches, recreated)
            result.steps = lifted + list(scenario.run(lc))
        finally:
            # Always, also on an exception or an interrupt: a lifted lock goes back.
            if not result.steps:
                result.steps = lifted + list(lc.active_steps or [])
            restore_locks(lc, result, recreated_later=_recreated_by(later))
    except LockLiftRefusedError as exc:
        if result.error is None:  # what was lifted before the refusal went back
            result.skipped, result.fix, result.subjects = str(exc), exc.fix, None
            result.steps = []
        else:  # ... or did not: that failure is the scenario's verdict
            result.error = _with(str(exc), result.error)
    except ScenarioSkippedError as exc:
        result.error = _with(f"cannot run on this deployment: {exc}", result.error)
    except Exception as exc:  # reported; the next scenario still runs
        result.error = _with(f"{type(exc).__name__}: {exc}", result.error)
    except Interrupted as exc:  # reported with what it did so far; nothing else runs
        result.error = _with(f"INTERRUPTED by {exc.signal_name}", result.error)
        result.seconds = time.monotonic() - started
        results.append(result)
        raise
    result.seconds = time.monotonic() - started
    results.append(result)
    return result


def _with(first: str, then: str | None) -> str:
    return f"{first}; {then}" if then else first
