"""Everything a sandbox deployment shows, to compare one with another: the state's whole
data, everything the state lists, every ARM document served over HTTP for what the deploy
made (and the role assignments and federated credentials listed there), every listener's
URL, the faults and the request count. tests/verify/conftest.py takes it of each worker's
deployment right after its deploy; test_restore_deployment.py compares a reset deployment
with it. :class:`LifecycleRun` is what conftest.py's ``lifecycle_run`` gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import requests

from verify.sandbox.api_versions import arm_resource_type, served_versions

if TYPE_CHECKING:
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


def arm_ids(target: SandboxTarget) -> list[str]:
    """The ARM IDs of what the deployment holds, and the listings under them."""
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


def arm_documents(target: SandboxTarget, ids: list[str]) -> dict[str, tuple[int, Any]]:
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


def dump(target: SandboxTarget, ids: list[str]) -> dict[str, Any]:
    """The deployment as it shows now (``ids``: :func:`arm_ids` of the deployment)."""
    sb = target.sandbox
    st = sb.state
    return {
        "data": st.snapshot(),
        "lists": {name: sorted(map(repr, getattr(st, name)())) for name in LISTS},
        "arm": arm_documents(target, ids),
        "endpoints": sb.endpoints(),
        "instances": {i.id: sb.imds_url(i) for i in st.instances()},
        "faults": (sb.faults.faults, sb.faults.propagation_delay_seconds),
        "requests": len(sb.request_log),
    }


def as_deployed(target: SandboxTarget) -> tuple[list[str], dict[str, Any]]:
    """Right after the deploy: its IDs and its dump (the deploy's own requests are not
    state: the log is cleared first, as a reset clears it)."""
    ids = arm_ids(target)
    target.sandbox.request_log.clear()
    fresh = dump(target, ids)
    target.sandbox.request_log.clear()
    return ids, fresh


@dataclass(frozen=True)
class LifecycleRun:
    """The README's main command on the worker's deployment, and that deployment after it.

    ``report``: its report.json, with ``exit_code`` and the report directory's ``files``;
    ``changed``: the deployment's dump (deployment_dump.py) after the run and a cleanup
    naming the principal of the VM delete-vm deleted; ``restored``: its dump after a reset."""

    report: dict[str, Any]
    changed: dict[str, Any]
    restored: dict[str, Any]
