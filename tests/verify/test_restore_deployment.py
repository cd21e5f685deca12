"""A deployment restored after every lifecycle scenario and a cleanup is the fresh deployment.

What the tests that change a deployment rely on (``deployed_target`` in conftest.py resets
one deployment per worker before each of them instead of deploying again): after every
scenario has run, with --cleanup, and a named-principal cleanup, ``SandboxTarget.reset()``
gives back exactly what the deploy left. Compared: the state's whole data, everything the
state lists, every ARM document served over HTTP for what the deploy made (and the role
assignments and federated credentials listed there), every listener's URL; and the
restored deployment passes ``check``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from verify.lifecycle import SCENARIO_NAMES, Lifecycle, run_scenarios
from verify.runner import check_report, cleanup_report
from verify.sandbox.api_versions import arm_resource_type, served_versions
from verify.targets.sandbox import SandboxTarget

ARM_SCOPE = "https://management.azure.com/.default"
#: Everything the state lists (the zero-argument queries of SandboxState).
LISTS = (
    "apps",
    "clusters",
    "deleted_vaults",
    "federated_credentials",
    "identities",
    "instances",
    "management_locks",
    "principals",
    "role_assignments",
    "scale_sets",
    "storage_accounts",
    "vaults",
    "vms",
    "workloads",
)


def _arm_ids(target: SandboxTarget) -> list[str]:
    st = target.sandbox.state
    ids = [f"/subscriptions/{st.subscription_id}/resourceGroups/{target.outputs().resource_group}"]
    for name in ("apps", "clusters", "identities", "instances", "scale_sets", "storage_accounts"):
        ids += [str(r.id) for r in getattr(st, name)()]
    ids += [v.id for v in st.vaults()] + [v.id for v in st.vms()]
    ids += [f"{i.id}/federatedIdentityCredentials" for i in st.identities()]
    ids.append(
        f"/subscriptions/{st.subscription_id}/providers/Microsoft.Authorization/roleAssignments"
    )
    return sorted(ids)


def _arm_documents(target: SandboxTarget, ids: list[str]) -> dict[str, tuple[int, Any]]:
    """``GET`` of each ID through the sandbox's ARM front, at the newest api-version."""
    sb = target.sandbox
    token = sb.credential().get_token(ARM_SCOPE).token
    found: dict[str, tuple[int, Any]] = {}
    with requests.Session() as session:
        for arm_id in ids:
            versions = served_versions(arm_resource_type(arm_id) or "")
            assert versions is not None, arm_id
            answer = session.get(
                sb.arm_url + arm_id,
                params={"api-version": max(versions.versions)},
                headers={"Authorization": f"Bearer {token}"},
                verify=sb.ca_cert_path,
                timeout=30,
            )
            found[arm_id] = (answer.status_code, answer.json() if answer.content else None)
    return found


def _dump(target: SandboxTarget, ids: list[str]) -> dict[str, Any]:
    sb = target.sandbox
    st = sb.state
    return {
        "data": st.snapshot(),
        "lists": {name: sorted(map(repr, getattr(st, name)())) for name in LISTS},
        "arm": _arm_documents(target, ids),
        "endpoints": sb.endpoints(),
        "instances": {i.id: sb.imds_url(i) for i in st.instances()},
        "faults": (sb.faults.faults, sb.faults.propagation_delay_seconds),
        "requests": len(sb.request_log),
    }


@pytest.fixture(scope="module")
def restored() -> Iterator[tuple[SandboxTarget, dict[str, Any], dict[str, Any]]]:
    """A deployment's dump right after the deploy, and again after every scenario with
    --cleanup, a named-principal cleanup and a reset."""
    with SandboxTarget() as target:
        ids = _arm_ids(target)
        target.sandbox.request_log.clear()  # the deploy's own requests are not state
        fresh = _dump(target, ids)
        target.sandbox.request_log.clear()
        lc = Lifecycle(target, cleanup=True, propagation_wait=2.0)
        results = run_scenarios(lc, list(SCENARIO_NAMES))
        assert all(r.passed for r in results), [r.name for r in results if not r.passed]
        batch = target.outputs().vms["batch"].system_principal_id or ""
        cleanup_report(target, "sandbox", [batch])
        assert _dump(target, ids) != fresh  # the run did change the deployment
        target.reset()
        yield target, fresh, _dump(target, ids)


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
    check = check_report(target, "sandbox").check
    assert check is not None and check.passed, check.failures
