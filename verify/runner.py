"""What the CLI runs, as plain functions tests can call: check, lifecycle, cleanup.

Both produce a :class:`RunReport`; neither prints or writes files (the CLI does), so a
test can assert on exactly what a user would see in the report.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from verify.check import expectations_from, matrix_consistency
from verify.evidence.cells import CheckResult
from verify.evidence.judge import judge
from verify.evidence.references import reference_problems
from verify.interrupt import Interrupted
from verify.lifecycle import Lifecycle, Progress, run_scenarios
from verify.model import derive_matrix
from verify.orphans import Candidate, clean_orphans
from verify.results import RunReport, ScenarioResult, Step
from verify.targets.arm import AZURE_PROPAGATION_WAIT
from verify.targets.base import Target
from verify.targets.probing import requests_for

#: Per-VM probe budget for the full check, on top of the propagation wait; generous for
#: Run Command, never unbounded.
CHECK_BUDGET = 30.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def propagation_wait_for(target: Target, requested: float | None) -> float:
    """The bounded RBAC propagation wait: what the user asked, else the target's default
    (:data:`verify.targets.arm.AZURE_PROPAGATION_WAIT` on Azure, small on the sandbox)."""
    if requested is not None:
        return requested
    return float(getattr(target, "default_propagation_wait", AZURE_PROPAGATION_WAIT))


def run_check(
    target: Target,
    progress: Progress = lambda _m: None,
    *,
    allow_unverified_values: bool = False,
    propagation_wait: float | None = None,
) -> CheckResult:
    """Probe every VM with every identity it has, and judge each matrix cell.

    Cells expected allowed may retry Key Vault's RBAC 403 for up to the propagation wait
    (the probe polls in proportion to the time waited, as after a lifecycle grant), so a
    check right after ``pulumi up`` does not fail on a grant still propagating; cells
    expected denied are never retried, so access nobody granted fails at once.
    """
    outputs = target.outputs()
    wait = propagation_wait_for(target, propagation_wait)
    derived = derive_matrix(outputs)  # the run's one derivation
    problems = matrix_consistency(outputs, derived)
    expectations = expectations_from(outputs)
    requests = requests_for(
        expectations,
        sorted(outputs.secrets),
        budget=CHECK_BUDGET + wait,
        propagation_wait=wait,
    )
    progress(
        f"probing {len(requests)} host(s), {len(expectations)} matrix cells "
        f"(RBAC propagation wait up to {wait:g} s)"
    )
    result = judge(
        outputs,
        expectations,
        target.probe(requests),
        allow_unverified_values=allow_unverified_values,
    )
    result.errors.extend(problems)
    checked, wrong = reference_problems(target, outputs, derived)
    if checked or wrong:
        progress(
            f"Key Vault references: {checked - len(wrong)}/{checked} statuses as the grants imply"
        )
    result.errors.extend(wrong)
    if not expectations:
        result.errors.append("the stack exported an empty access matrix: nothing was verified")
    return result


def check_report(
    target: Target,
    stack: str,
    progress: Progress = lambda _m: None,
    *,
    allow_unverified_values: bool = False,
    propagation_wait: float | None = None,
) -> RunReport:
    run = RunReport("check", target.name, stack, _now(), outputs=target.outputs())
    started = time.monotonic()
    try:
        run.check = run_check(
            target,
            progress,
            allow_unverified_values=allow_unverified_values,
            propagation_wait=propagation_wait,
        )
    except Interrupted as exc:
        run.mark_interrupted(exc.signal_name)
    run.timings["check"] = time.monotonic() - started
    return run


def lifecycle_report(
    target: Target,
    stack: str,
    *,
    scenarios: Sequence[str] | None = None,
    cleanup: bool = False,
    progress: Progress = lambda _m: None,
    propagation_wait: float | None = None,
    allow_unverified_values: bool = False,
    require_all: bool = False,
    keep_locks: bool = False,
) -> RunReport:
    """Baseline check, then the scenarios, on one deployment.

    ``require_all``: a scenario the topology cannot run fails the run (default: it is
    reported SKIPPED and the run passes when everything that ran passed).
    ``keep_locks``: never lift a management lock; a scenario a lock refuses is SKIPPED
    (default: lifted for the scenario and put back, verify.lifecycle.locks).
    """
    run = RunReport(
        "lifecycle",
        target.name,
        stack,
        _now(),
        outputs=target.outputs(),
        require_all_scenarios=require_all,
    )
    started = time.monotonic()
    try:
        progress("baseline: the full access matrix before anything is deleted")
        run.check = run_check(
            target,
            progress,
            allow_unverified_values=allow_unverified_values,
            propagation_wait=propagation_wait,
        )
        run.timings["baseline check"] = time.monotonic() - started
        lc = Lifecycle(
            target,
            cleanup=cleanup,
            progress=progress,
            allow_unverified_values=allow_unverified_values,
            keep_locks=keep_locks,
        )
        if propagation_wait is not None:
            lc.propagation_wait = propagation_wait
        run_scenarios(lc, scenarios, results=run.scenarios)  # filled as they complete
    except Interrupted as exc:
        run.mark_interrupted(exc.signal_name)
    for scenario in run.scenarios:
        if scenario.skipped is None:
            run.timings[scenario.name] = scenario.seconds
    return run


def cleanup_report(
    target: Target,
    stack: str,
    principals: Sequence[str],
    progress: Progress = lambda _m: None,
) -> RunReport:
    """``verify cleanup --principal ...``: the orphan rules applied to principals the user
    named, one step per listed assignment saying what was done and why."""
    run = RunReport("cleanup", target.name, stack, _now(), outputs=target.outputs())
    started = time.monotonic()
    progress(f"cleanup: {len(principals)} principal(s) named, scope {target.stack_scope}")
    try:
        result = clean_orphans(target, [Candidate(p, "named with --principal") for p in principals])
    except Interrupted as exc:  # a delete in flight finishes; nothing after it starts
        run.mark_interrupted(exc.signal_name)
        return run
    scenario = ScenarioResult(
        "cleanup", "Orphaned role assignments of the named principals (verify.orphans rules)."
    )
    for pid in principals:
        answer = result.answers.get(pid.lower())
        mine = pid.lower()
        decisions = [d for d in result.decisions if d.assignment.principal_id.lower() == mine]
        if not decisions:
            scenario.steps.append(
                Step(
                    f"principal {pid}",
                    "its orphaned assignments in the stack's scopes",
                    "no assignment of it listed at the stack's resource group",
                    True,
                )
            )
            continue
        for decision in decisions:
            scenario.steps.append(
                Step(
                    f"{decision.decision}: {decision.assignment.id}",
                    "deleted only if Graph proves the principal gone and it lies in the "
                    "stack's scopes, unchanged since listed",
                    decision.reason,
                    decision.decision in ("deleted", "vanished", "outside"),
                    details=[
                        f"principal {decision.assignment.principal_id}",
                        f"role {decision.assignment.role_definition_id}",
                        f"scope {decision.assignment.scope}",
                        *([f"run: {decision.command}"] if decision.decision == "manual" else []),
                        *([answer.summary] if answer else []),
                    ],
                )
            )
    scenario.seconds = time.monotonic() - started
    run.scenarios = [scenario]
    run.timings["cleanup"] = scenario.seconds
    return run
