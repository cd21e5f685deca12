"""What an end-to-end run must show in its report, beyond an exit code of 0.

Shared by the e2e tests (real Azure) and by a unit test that proves these checks fail on
reports that an exit-code-only test would have waved through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def check_cells_problems(
    report: Mapping[str, Any], matrix: Iterable[Mapping[str, Any]]
) -> list[str]:
    """Every cell of the stack's access matrix was probed, and proved its expectation:
    an allowed cell read the secret (200), a denied one got Key Vault's 403."""
    problems: list[str] = []
    check = report.get("check") or {}
    cells = {(c["host"], c["identity"], c["target"]): c for c in check.get("cells") or []}
    wanted = {(m.get("vm") or m["host"], m["identity"], m["secret"]): m["expected"] for m in matrix}
    if not wanted:
        problems.append("the stack exports an empty access matrix: nothing would be proved")
    missing = sorted(set(wanted) - set(cells))
    if missing:
        problems.append(f"cells never reported: {missing}")
    for key, expected in sorted(wanted.items()):
        cell = cells.get(key)
        if cell is None:
            continue
        where = "/".join(key)
        if cell["expected"] != expected:
            problems.append(f"{where}: report expects {cell['expected']}, the stack {expected}")
        if not cell["passed"]:
            problems.append(f"{where}: failed ({cell['observed']}: {cell.get('detail', '')[:200]})")
        elif expected == "allowed" and (cell["observed"] != "read" or cell["http_status"] != 200):
            problems.append(
                f"{where}: allowed but observed {cell['observed']} {cell['http_status']}"
            )
        elif expected == "denied" and (
            cell["observed"] != "forbidden" or cell["http_status"] != 403
        ):
            problems.append(
                f"{where}: denied but observed {cell['observed']} {cell['http_status']}"
            )
    if not report.get("passed"):
        problems.append("the report as a whole did not pass")
    return problems


def lifecycle_problems(report: Mapping[str, Any], expected_scenarios: Iterable[str]) -> list[str]:
    """Every requested scenario ran, has steps, and each step passed."""
    problems: list[str] = []
    ran = {s["name"]: s for s in report.get("scenarios") or []}
    for name in expected_scenarios:
        scenario = ran.get(name)
        if scenario is None:
            problems.append(f"scenario {name} did not run")
            continue
        if scenario.get("error"):
            problems.append(f"scenario {name} errored: {scenario['error'][:200]}")
        if not scenario.get("steps"):
            problems.append(f"scenario {name} has no steps: it proved nothing")
        problems += [
            f"scenario {name} step {step['name']}: expected {step['expected']}, "
            f"observed {step['observed']}"
            for step in scenario.get("steps") or []
            if not step["passed"]
        ]
    if not report.get("passed"):
        problems.append("the report as a whole did not pass")
    return problems
