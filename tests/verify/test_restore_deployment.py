"""A deployment restored after every lifecycle scenario and a cleanup is the fresh deployment.

What the tests that change a deployment rely on (``deployed_target`` in conftest.py resets
one deployment per worker before each of them instead of deploying again): after every
scenario has run (the README's main command, with --cleanup: conftest.py
``lifecycle_run``, whose report test_lifecycle_sandbox.py asserts) and a named-principal
cleanup, ``SandboxTarget.reset()`` gives back exactly what the deploy left. Compared
(deployment_dump.py) with the dump the worker took right after its deploy, before any test
changed it: the state's whole data, everything the state lists, every ARM document served
over HTTP for what the deploy made (and the role assignments and federated credentials
listed there), every listener's URL; and the restored deployment passes ``check``. The
worker's deployment may have been changed and reset by other tests before this one: each
of those resets is held to the same dump.
"""

from __future__ import annotations

from typing import Any

import pytest
from deployment_dump import LifecycleRun

from verify.runner import check_report
from verify.targets.sandbox import SandboxTarget

#: The tests of the one lifecycle run (with test_lifecycle_sandbox.py's): one worker's.
pytestmark = pytest.mark.xdist_group("lifecycle-run")


@pytest.fixture
def restored(
    lifecycle_run: LifecycleRun,
    deployed_dump: tuple[list[str], dict[str, Any]],
    _deployment: SandboxTarget,
) -> tuple[SandboxTarget, dict[str, Any], dict[str, Any]]:
    """The worker's deployment, its dump right after its deploy, and its dump after every
    scenario with --cleanup, a named-principal cleanup and a reset."""
    report = lifecycle_run.report
    assert all(s["passed"] for s in report["scenarios"]), [
        s["name"] for s in report["scenarios"] if not s["passed"]
    ]
    _, fresh = deployed_dump
    assert lifecycle_run.changed != fresh  # the run did change the deployment
    return _deployment, fresh, lifecycle_run.restored


def test_a_restored_deployment_is_the_fresh_deployment(
    restored: tuple[SandboxTarget, dict[str, Any], dict[str, Any]],
) -> None:
    _, fresh, again = restored
    for part in fresh:
        assert again[part] == fresh[part], part


def test_a_restored_deployment_passes_check(
    restored: tuple[SandboxTarget, dict[str, Any], dict[str, Any]],
) -> None:
    target, _, _ = restored
    target.reset()  # (another test may have used the worker's deployment since)
    check = check_report(target, "sandbox").check
    assert check is not None and check.passed, check.failures
