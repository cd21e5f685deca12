"""The e2e tests stay out of a plain `pytest` and, when run, assert the report's cells.

A plain `pytest` (the README's test command, `.ci/run`) must neither run nor even ask Azure
for a token on a machine that holds credentials; `pytest -m e2e` selects them; and the
checks they apply fail on reports that an exit-code-only test would have accepted.
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from e2e_checks import check_cells_problems, lifecycle_problems

import verify.credentials
from verify.evidence.cells import CellResult

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "verify" / "test_e2e_azure.py"
E2E_HOSTS = ROOT / "tests" / "verify" / "test_e2e_azure_hosts.py"


def _collect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@functools.cache
def collected_e2e_files() -> tuple[list[str], subprocess.CompletedProcess[str]]:
    """Both e2e modules (this one's and test_azure_hosts.py's) collected as a plain
    ``pytest`` and as ``pytest -m e2e``, once per process (each collection is a fresh
    pytest, ~1 s): the test IDs ``-m e2e`` selects, and the plain run.

    The plain run must collect none of them and deselect exactly as many as ``-m e2e``
    selects (each module's own count follows from the IDs, each listed with its module)."""
    files = [str(E2E), str(E2E_HOSTS)]
    selected = _collect("-m", "e2e", *files)
    assert selected.returncode == 0, selected.stdout + selected.stderr
    ids = [line for line in selected.stdout.splitlines() if "::" in line]
    plain = _collect(*files)
    assert f"no tests collected ({len(ids)} deselected)" in plain.stdout, plain.stdout
    assert not any("::" in line for line in plain.stdout.splitlines()), plain.stdout
    return ids, plain


@pytest.mark.xdist_group("e2e-collection")  # one worker: one cached collection
def test_a_plain_pytest_deselects_e2e_and_dash_m_e2e_selects_them() -> None:
    ids, plain = collected_e2e_files()
    assert "test_check_on_the_deployed_stack" not in plain.stdout
    assert sorted(i for i in ids if i.startswith("tests/verify/test_e2e_azure.py::")) == [
        "tests/verify/test_e2e_azure.py::test_check_on_the_deployed_stack",
        "tests/verify/test_e2e_azure.py::test_lifecycle_on_a_throwaway_stack",
    ]  # so the plain run deselected these 2


def test_collecting_the_e2e_module_asks_azure_for_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(verify.credentials, "operator_credential", lambda *a, **k: calls.append(a))
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "00000000-0000-0000-0000-000000000000")
    spec = importlib.util.spec_from_file_location("e2e_collected_copy", E2E)
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert calls == []


def test_each_e2e_test_has_its_own_timeout() -> None:
    spec = importlib.util.spec_from_file_location("e2e_timeouts_copy", E2E)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("test_check_on_the_deployed_stack", "test_lifecycle_on_a_throwaway_stack"):
        marks = {m.name: m for m in getattr(module, name).pytestmark}
        assert "timeout" in marks, name
        assert marks["timeout"].args[0] > 180  # longer than the suite's default of 180 s


MATRIX = [
    {"vm": "solo", "identity": "system", "secret": "app-db-password", "expected": "allowed"},
    {"vm": "solo", "identity": "system", "secret": "break-glass", "expected": "denied"},
]


def _cell(
    secret: str, expected: str, observed: str, status: int | None, passed: bool = True
) -> CellResult:
    return CellResult(
        host="solo",
        identity="system",
        target=secret,
        expected=expected,
        observed=observed,
        passed=passed,
        detail="",
        http_status=status,
        error_code=None,
        attempts=1,
        waited_ms=0,
        fingerprint_match=None,
    )


GOOD_CELLS = [
    _cell("app-db-password", "allowed", "read", 200),
    _cell("break-glass", "denied", "forbidden", 403),
]


def _report(cells: list[CellResult], passed: bool = True) -> dict[str, Any]:
    return {"passed": passed, "check": {"passed": passed, "cells": [asdict(c) for c in cells]}}


def test_a_proved_report_has_no_problems() -> None:
    assert check_cells_problems(_report(GOOD_CELLS), MATRIX) == []


@pytest.mark.parametrize(
    ("cells", "words"),
    [
        (GOOD_CELLS[:1], "cells never reported"),
        (
            [GOOD_CELLS[0], replace(GOOD_CELLS[1], observed="not_probed", http_status=None)],
            "denied but",
        ),
        (
            [GOOD_CELLS[0], replace(GOOD_CELLS[1], observed="unreachable", http_status=None)],
            "denied but",
        ),
        ([replace(GOOD_CELLS[0], passed=False, observed="forbidden"), GOOD_CELLS[1]], "failed"),
        ([replace(GOOD_CELLS[0], http_status=None), GOOD_CELLS[1]], "allowed but"),
        ([replace(GOOD_CELLS[0], expected="denied"), GOOD_CELLS[1]], "report expects denied"),
    ],
    ids=[
        "cell missing",
        "denied not probed",
        "denied unreachable",
        "allowed failed",
        "no 200",
        "matrix drift",
    ],
)
def test_reports_an_exit_code_alone_would_accept_are_refused(
    cells: list[CellResult], words: str
) -> None:
    problems = check_cells_problems(_report(cells), MATRIX)
    assert any(words in p for p in problems), problems


def test_an_empty_matrix_proves_nothing() -> None:
    assert check_cells_problems(_report([]), []) == [
        "the stack exports an empty access matrix: nothing would be proved"
    ]


def test_lifecycle_reports_need_every_scenario_with_passing_steps() -> None:
    step = {"name": "s1", "expected": "gone", "observed": "gone", "passed": True}
    good = {"passed": True, "scenarios": [{"name": "delete-vm", "error": None, "steps": [step]}]}
    assert lifecycle_problems(good, ["delete-vm"]) == []
    assert lifecycle_problems(good, ["delete-vm", "recreate-identity"]) == [
        "scenario recreate-identity did not run"
    ]
    empty = {"passed": True, "scenarios": [{"name": "delete-vm", "error": None, "steps": []}]}
    assert lifecycle_problems(empty, ["delete-vm"]) == [
        "scenario delete-vm has no steps: it proved nothing"
    ]
    failed = {
        "passed": False,
        "scenarios": [{"name": "delete-vm", "error": None, "steps": [{**step, "passed": False}]}],
    }
    assert len(lifecycle_problems(failed, ["delete-vm"])) == 2
