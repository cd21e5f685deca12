"""How a finished run ends: as a program (``python -m verify``) through ``fast_exit`` once
the reports are written and the target is closed, with the run's exit code, so the
interpreter's teardown of the SDKs' objects adds nothing to the run; called as a function
(tests, embedding), ``main`` returns the code."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import verify.stacks
from verify import cli
from verify.results import RunReport


class _ExitedError(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _fake_run(monkeypatch: pytest.MonkeyPatch, passed: bool) -> list[str]:
    events: list[str] = []

    class Target:
        def __init__(self) -> None:
            self.timings: dict[str, float] = {}

        def close(self) -> None:
            events.append("closed")

    def report(*args: Any, **kwargs: Any) -> RunReport:
        run = RunReport("check", "sandbox", "s", "2026-01-01T00:00:00Z")
        run.check = SimpleNamespace(passed=passed)  # type: ignore[assignment]
        return run

    def fast_exit(code: int) -> None:
        events.append(f"fast_exit {code}")
        raise _ExitedError(code)

    monkeypatch.setattr(cli, "resolver_for", lambda target: None)
    monkeypatch.setattr(
        verify.stacks, "load_selection", lambda *a: SimpleNamespace(label="s", path=None)
    )
    monkeypatch.setattr(cli, "make_target", lambda *a: Target())
    monkeypatch.setattr(cli, "check_report", report)

    def write_reports(run: RunReport, directory: Path) -> dict[str, Path]:
        events.append("reports")
        return {}

    monkeypatch.setattr(cli, "write_reports", write_reports)
    monkeypatch.setattr(cli, "print_summary", lambda *a: None)
    monkeypatch.setattr(cli, "fast_exit", fast_exit)
    return events


@pytest.mark.parametrize(("passed", "code"), [(True, 0), (False, 1)])
def test_a_finished_run_as_a_program_ends_through_fast_exit_after_its_reports(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, passed: bool, code: int
) -> None:
    events = _fake_run(monkeypatch, passed)
    argv = ["check", "--target", "sandbox", "--quiet", "--report-dir", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", ["mikit-verify", *argv])
    try:
        with pytest.raises(_ExitedError) as exited:
            cli.main()
        # the deploy's objects went to the permanent generation, the collector runs again
        assert gc.get_freeze_count() > 0 and gc.isenabled()
    finally:
        gc.unfreeze()
    assert exited.value.code == code
    assert events == ["closed", "reports", f"fast_exit {code}"]


def test_main_called_as_a_function_returns_the_code(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    events = _fake_run(monkeypatch, passed=True)
    argv = ["check", "--target", "sandbox", "--quiet", "--report-dir", str(tmp_path)]
    frozen = gc.get_freeze_count()
    assert cli.main(argv) == 0
    assert events == ["closed", "reports"]
    assert gc.get_freeze_count() == frozen and gc.isenabled()


def test_the_sandbox_command_turns_the_collector_back_on() -> None:
    """``python -m verify`` pauses the collector for its imports; the long-lived sandbox
    server, which never reaches a deploy's freeze, turns it on again."""
    gc.disable()
    try:
        with pytest.raises(SystemExit):
            cli.main(["sandbox", "--help"])
        assert gc.isenabled()
    finally:
        gc.enable()
