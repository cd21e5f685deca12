"""End to end against real Azure: deselected by default, run with its own command.

``pyproject.toml`` deselects the ``e2e`` marker (``-m 'not benchmark and not e2e'``), so a
plain ``pytest`` on a machine that happens to hold Azure credentials never touches a
subscription. Run them explicitly, against a deployed stack::

    AZURE_SUBSCRIPTION_ID=... MIKIT_E2E_STACK=dev \\
      python -m uv run pytest -m e2e tests/verify/test_e2e_azure.py

(log in first: ``az login``, or a service principal / OIDC in the environment). The
lifecycle test deletes resources: it runs only when ``MIKIT_E2E_LIFECYCLE=1``, against a
throw-away stack. Each test has its own timeout (Run Command and cloud-init take minutes),
and each asserts the report's cells and steps, not just the exit code.

The credential probe runs inside a fixture, so collecting this file (as every plain
``pytest`` does) never asks Azure for a token.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from e2e_checks import check_cells_problems, lifecycle_problems

pytestmark = pytest.mark.e2e

#: Run Command per VM, with cloud-init's bounded wait, on a handful of VMs.
CHECK_TIMEOUT_SECONDS = 45 * 60
#: The lifecycle workflow's own step bound.
LIFECYCLE_TIMEOUT_SECONDS = 90 * 60


def _missing() -> str | None:
    if not os.environ.get("AZURE_SUBSCRIPTION_ID"):
        return "AZURE_SUBSCRIPTION_ID is not set (no Azure subscription to verify)"
    if shutil.which("pulumi") is None:
        return "the pulumi CLI is not on PATH (stack outputs cannot be read)"
    try:
        from verify.credentials import operator_credential  # noqa: PLC0415

        operator_credential().get_token("https://management.azure.com/.default")
    except Exception as exc:
        return f"no Azure login: {type(exc).__name__}"
    return None


@pytest.fixture(scope="module")
def azure() -> str | None:
    """The stack to verify (None: the selected one); skips without credentials."""
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    return os.environ.get("MIKIT_E2E_STACK")


def _report(directory: Path) -> dict:  # type: ignore[type-arg]
    return dict(json.loads((directory / "report.json").read_text()))


@pytest.mark.timeout(CHECK_TIMEOUT_SECONDS)
def test_check_on_the_deployed_stack(azure: str | None, tmp_path: Path) -> None:
    from verify.cli import main  # noqa: PLC0415
    from verify.targets.azure import read_pulumi_outputs  # noqa: PLC0415

    argv = ["check", "--target", "azure", "--report-dir", str(tmp_path)]
    assert main([*argv, "--stack", azure] if azure else argv) == 0
    matrix = read_pulumi_outputs(azure)["access_matrix"]
    assert check_cells_problems(_report(tmp_path), matrix) == []


@pytest.mark.timeout(LIFECYCLE_TIMEOUT_SECONDS)
def test_lifecycle_on_a_throwaway_stack(azure: str | None, tmp_path: Path) -> None:
    if os.environ.get("MIKIT_E2E_LIFECYCLE") != "1":
        pytest.skip("MIKIT_E2E_LIFECYCLE=1 not set: the lifecycle deletes resources")
    from verify.cli import main  # noqa: PLC0415
    from verify.lifecycle import SCENARIO_NAMES  # noqa: PLC0415

    argv = ["lifecycle", "--target", "azure", "--cleanup", "--report-dir", str(tmp_path)]
    assert main([*argv, "--stack", azure] if azure else argv) == 0
    report = _report(tmp_path)
    assert report["check"] is not None and report["check"]["passed"]
    assert lifecycle_problems(report, SCENARIO_NAMES) == []
