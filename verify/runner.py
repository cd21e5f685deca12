"""The two things the CLI runs, as plain functions tests can call: check and lifecycle.

Both produce a :class:`RunReport`; neither prints or writes files (the CLI does), so a
test can assert on exactly what a user would see in the report.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from verify.check import (
    CheckResult,
    compare,
    expectations_from,
    matrix_consistency,
)
from verify.lifecycle import Lifecycle, Progress, run_scenarios
from verify.results import RunReport
from verify.targets.base import Target
from verify.targets.probing import requests_for

#: Per-VM probe budget for the full check; generous for Run Command, never unbounded.
CHECK_BUDGET = 30.0


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_check(target: Target, progress: Progress = lambda _m: None) -> CheckResult:
    """Probe every VM with every identity it has, and judge each matrix cell."""
    outputs = target.outputs()
    problems = matrix_consistency(outputs)
    expectations = expectations_from(outputs)
    requests = requests_for(expectations, sorted(outputs.secrets), budget=CHECK_BUDGET)
    progress(f"probing {len(requests)} VM(s), {len(expectations)} matrix cells")
    result = compare(outputs, expectations, target.probe(requests))
    result.errors.extend(problems)
    if not expectations:
        result.errors.append("the stack exported an empty access matrix: nothing was verified")
    return result


def check_report(target: Target, stack: str, progress: Progress = lambda _m: None) -> RunReport:
    run = RunReport("check", target.name, stack, _now(), outputs=target.outputs())
    started = time.monotonic()
    run.check = run_check(target, progress)
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
) -> RunReport:
    """Baseline check, then the scenarios, on one deployment."""
    run = RunReport("lifecycle", target.name, stack, _now(), outputs=target.outputs())
    started = time.monotonic()
    progress("baseline: the full access matrix before anything is deleted")
    run.check = run_check(target, progress)
    run.timings["baseline check"] = time.monotonic() - started
    lc = Lifecycle(target, cleanup=cleanup, progress=progress)
    if propagation_wait is not None:
        lc.propagation_wait = propagation_wait
    run.scenarios = run_scenarios(lc, scenarios)
    for scenario in run.scenarios:
        run.timings[scenario.name] = scenario.seconds
    return run
