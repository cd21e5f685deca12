"""End to end against real Azure: the probe inside one host of each kind the stack has.

Deselected by default (the ``e2e`` marker) and skipped without an Azure login, the Pulumi
CLI or ``AZURE_SUBSCRIPTION_ID``, exactly like tests/verify/test_e2e_azure.py::

    AZURE_SUBSCRIPTION_ID=... MIKIT_E2E_STACK=dev \\
      python -m uv run pytest -m e2e tests/verify/test_e2e_azure_hosts.py

For each host kind (``vm``, ``scaleset``, ``app`` per app kind, ``workload``,
``workload_without_identity``) the first such host of the stack's access matrix is probed
through its path in verify/targets/azure_hosts (Run Command, Kudu, a Container Apps job, a
Kubernetes Job) and the matrix's cells of that host are judged: the probe must have run
there, every identity's token must come from the host kind's own credential source, and
every cell must hold. A kind the stack does not have is skipped, saying so. Nothing is
deleted; the jobs the paths create are removed by the paths themselves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

#: Run Command waits for cloud-init; jobs and pods pull an image and install the probe's
#: dependencies; Log Analytics ingests the job's log: each path's own bounds, plus slack.
HOST_TIMEOUT_SECONDS = 40 * 60
#: (host kind, app kind or None): one parametrised test each.
KINDS = (
    ("vm", None),
    ("scaleset", None),
    ("app", "webapp"),
    ("app", "functionapp"),
    ("app", "containerapp"),
    ("workload", None),
    ("workload_without_identity", None),
)


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
def deployed() -> Iterator[Any]:
    """The Azure target on the deployed stack; skips without credentials."""
    reason = _missing()
    if reason is not None:
        pytest.skip(reason)
    from verify.targets.azure import AzureTarget  # noqa: PLC0415

    target = AzureTarget(stack=os.environ.get("MIKIT_E2E_STACK"))
    try:
        yield target
    finally:
        target.close()


@pytest.mark.timeout(HOST_TIMEOUT_SECONDS)
@pytest.mark.parametrize(("host_kind", "app_kind"), KINDS)
def test_the_probe_runs_inside_a_host_of_each_kind(
    deployed: Any, host_kind: str, app_kind: str | None
) -> None:
    from verify.check import expectations_from  # noqa: PLC0415
    from verify.evidence.judge import judge  # noqa: PLC0415
    from verify.evidence.sources import EXPECTED_SOURCES  # noqa: PLC0415
    from verify.targets.probing import requests_for  # noqa: PLC0415

    outputs = deployed.outputs()
    raw_apps = deployed.host_context().raw.get("apps") or {}
    expectations = [
        e
        for e in expectations_from(outputs)
        if e.host_kind == host_kind
        and (
            app_kind is None
            or (raw_apps.get(e.host.split(":", 1)[-1]) or {}).get("kind") == app_kind
        )
    ]
    if not expectations:
        pytest.skip(f"the stack has no {app_kind or host_kind} host in its access matrix")
    host = expectations[0].host
    cells = [e for e in expectations if e.host == host]
    if app_kind == "containerapp":
        # A Container Apps job cannot hold the app's system identity (docs/verify.md).
        cells = [e for e in cells if e.identity != "system"]
        if not cells:
            pytest.skip(f"container app {host} has only its system identity")
    secrets = sorted({e.target for e in cells if e.kind == "secret"})
    (request,) = requests_for(cells, secrets)
    outcome = deployed.probe([request])[host]
    assert not isinstance(outcome, BaseException), f"{host}: not probed: {outcome}"
    result = judge(outputs, cells, {host: outcome})
    sources = {i.credential_source for i in result.identities}
    assert sources == {EXPECTED_SOURCES[host_kind]}, (host, sources)
    failed = [
        f"{c.identity}/{c.target}: {c.observed} ({c.detail[:160]})"
        for c in result.cells
        if not c.passed
    ]
    assert failed == [], failed
