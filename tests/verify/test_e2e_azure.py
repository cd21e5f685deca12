"""End to end against real Azure: runs only with credentials and the Pulumi CLI.

Set AZURE_SUBSCRIPTION_ID, log in (``az login`` or a service principal / OIDC in the
environment), select a deployed stack (``pulumi stack select``) and run
``pytest -m e2e tests/verify/test_e2e_azure.py``. The lifecycle test deletes resources:
it runs only when MIKIT_E2E_LIFECYCLE=1, against a throw-away stack.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _missing() -> str | None:
    if not os.environ.get("AZURE_SUBSCRIPTION_ID"):
        return "AZURE_SUBSCRIPTION_ID is not set (no Azure subscription to verify)"
    if shutil.which("pulumi") is None:
        return "the pulumi CLI is not on PATH (stack outputs cannot be read)"
    try:
        from azure.identity import DefaultAzureCredential  # noqa: PLC0415

        DefaultAzureCredential(exclude_interactive_browser_credential=True).get_token(
            "https://management.azure.com/.default"
        )
    except Exception as exc:
        return f"no Azure login: {type(exc).__name__}"
    return None


REASON = _missing()


@pytest.mark.skipif(REASON is not None, reason=REASON or "")
def test_check_on_the_deployed_stack(tmp_path: Path) -> None:
    from verify.cli import main  # noqa: PLC0415

    stack = os.environ.get("MIKIT_E2E_STACK")
    argv = ["check", "--target", "azure", "--report-dir", str(tmp_path)]
    assert main([*argv, "--stack", stack] if stack else argv) == 0


@pytest.mark.skipif(
    REASON is not None or os.environ.get("MIKIT_E2E_LIFECYCLE") != "1",
    reason=REASON or "MIKIT_E2E_LIFECYCLE=1 not set: the lifecycle deletes resources",
)
def test_lifecycle_on_a_throwaway_stack(tmp_path: Path) -> None:
    from verify.cli import main  # noqa: PLC0415

    stack = os.environ.get("MIKIT_E2E_STACK")
    argv = ["lifecycle", "--target", "azure", "--cleanup", "--report-dir", str(tmp_path)]
    assert main([*argv, "--stack", stack] if stack else argv) == 0
