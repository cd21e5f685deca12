"""A deployment restored after every lifecycle scenario and a cleanup is the fresh deployment.

What the tests that change a deployment rely on (``deployed_target`` in conftest.py resets
one deployment per worker before each of them instead of deploying again): after every
scenario has run, with --cleanup, and a named-principal cleanup, ``SandboxTarget.reset()``
gives back exactly what the deploy left. Compared (deployment_dump.py) with the dump the
worker took right after its deploy, before any test changed it: the state's whole data,
everything the state lists, every ARM document served over HTTP for what the deploy made
(and the role assignments and federated credentials listed there), every listener's URL;
and the restored deployment passes ``check``. The worker's deployment may have been changed
and reset by other tests before this one: each of those resets is held to the same dump.
"""

from __future__ import annotations

from typing import Any

import pytest
from deployment_dump import dump

from verify.lifecycle import SCENARIO_NAMES, Lifecycle, run_scenarios
from verify.runner import check_report, cleanup_report
from verify.targets.sandbox import SandboxTarget


@pytest.fixture(scope="module")
def restored(
    _deployment: SandboxTarget, deployed_dump: tuple[list[str], dict[str, Any]]
) -> tuple[SandboxTarget, dict[str, Any], dict[str, Any]]:
    """The worker's deployment's dump right after its deploy, and again after every
    scenario with --cleanup, a named-principal cleanup and a reset."""
    target = _deployment
    ids, fresh = deployed_dump
    target.reset()
    lc = Lifecycle(target, cleanup=True, propagation_wait=2.0)
    results = run_scenarios(lc, list(SCENARIO_NAMES))
    assert all(r.passed for r in results), [r.name for r in results if not r.passed]
    batch = target.outputs().vms["batch"].system_principal_id or ""
    cleanup_report(target, "sandbox", [batch])
    assert dump(target, ids) != fresh  # the run did change the deployment
    target.reset()
    return target, fresh, dump(target, ids)


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
    target.reset()  # (another module's test may have used the worker's deployment since)
    check = check_report(target, "sandbox").check
    assert check is not None and check.passed, check.failures
