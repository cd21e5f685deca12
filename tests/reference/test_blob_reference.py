"""The sandbox's Blob plane against Azurite, operation by operation, with two client stacks.

The same operation list (``blob_reference_ops.operations``) runs with azure-storage-blob
(Python) and with @azure/storage-blob + @azure/identity (JavaScript), each against Azurite
and against the sandbox, with a managed-identity token from the sandbox's IMDS (Azurite
checks its issuer, audience and expiry). Each operation's status, error code, the headers
an application reads and the XML body's shape must be the same on both services, except
where Azurite and Azure differ: there Azure is the judge, the sandbox answers as Azure
does, and ``AZURE_JUDGED`` lists the operation with the reason (docs/azure-fidelity.md,
Blob section, names this test for each).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from blob_reference_ops import differences, normalize, operations
from blob_reference_python import run as run_python

HERE = Path(__file__).parent
CLIENTS = ("python", "javascript")
#: Where Azurite answers otherwise than Azure, the sandbox answers as Azure:
#: "<client>:<operation id>" -> why. Only these may differ, and each must still differ
#: (a stale entry fails).
AZURE_JUDGED: dict[str, str] = {
    "javascript:download": (
        "a whole-blob Get Blob: Azurite sends x-ms-blob-content-md5 besides Content-MD5; "
        "Azure sends that header only for a ranged read (Get Blob REST page; recorded "
        "responses in azure-sdk-for-js carry Content-MD5 alone)"
    ),
    **{
        f"{client}:token_for_another_audience": (
            "a token for another audience: Azurite answers 403 AuthenticationFailed "
            '("Invalid token audience."); Azure answers 401 InvalidAuthenticationInfo with '
            '"Audience validation failed. Audience did not match." and the Storage challenge '
            "(Azure/AzureStor #119 quotes the service's answer)"
        )
        for client in ("python", "javascript")
    },
}

_HIJACKERS = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_TOKEN_CREDENTIALS",
)


def _start_javascript(
    node: str,
    account_url: str,
    client_id: str,
    ops: list[dict[str, Any]],
    env: dict[str, str],
    workdir: Path,
) -> subprocess.Popen[str]:
    """The JavaScript client's run, started (it goes on while this process runs Python's);
    its input is a file in ``workdir``."""
    request = workdir / f"js-{uuid.uuid4().hex}.json"
    request.write_text(
        json.dumps({"accountUrl": account_url, "clientId": client_id, "operations": ops})
    )
    with request.open() as stdin:
        return subprocess.Popen(
            [node, str(HERE / "blob_ops.mjs")],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=HERE,
        )


def _javascript_results(process: subprocess.Popen[str]) -> list[dict[str, Any]]:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    results: list[dict[str, Any]] = json.loads(stdout)
    return results


@pytest.fixture(scope="session")
def runs(
    node: str,
    azurite: Any,
    reference_world: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
    """(client, service) -> operation id -> normalized result; each run in its own container.

    The runs against the sandbox go first, while Azurite starts; each JavaScript run (a
    Node process) goes on beside the Python run against the same service."""
    sb = reference_world.sandbox
    trust = tmp_path_factory.mktemp("trust") / "ca.pem"
    trust.write_text(Path(azurite.ca_path).read_text() + Path(sb.ca_cert_path).read_text())
    saved = {name: os.environ.pop(name, None) for name in _HIJACKERS}
    saved["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = os.environ.get("AZURE_POD_IDENTITY_AUTHORITY_HOST")
    os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = sb.imds_url(reference_world.vm)
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": str(trust)}
    client_id = reference_world.identity.client_id
    out: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    started: dict[str, subprocess.Popen[str]] = {}
    try:  # the environment is this process's only while the runs last
        for service in ("sandbox", "azurite"):
            url = sb.blob_url(reference_world.account) if service == "sandbox" else azurite.url
            ops = operations("js-main")
            started[service] = _start_javascript(node, url, client_id, ops, env, trust.parent)
            ops = operations("py-main")
            results = run_python(url, client_id, ops, connection_verify=str(trust))
            out[("python", service)] = {r["id"]: normalize(r) for r in results}
        for service, process in started.items():
            results = _javascript_results(process)
            out[("javascript", service)] = {r["id"]: normalize(r) for r in results}
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return out


def _report(
    runs: dict[tuple[str, str], dict[str, dict[str, Any]]], client: str
) -> dict[str, list[str]]:
    reference, sandbox = runs[(client, "azurite")], runs[(client, "sandbox")]
    return {
        op_id: found
        for op_id in reference
        if (found := differences(reference[op_id], sandbox[op_id]))
    }


def test_match_figure(runs: dict[tuple[str, str], dict[str, dict[str, Any]]]) -> None:
    """Prints "N of M operations match" over both clients (never judged by itself)."""
    total = matched = 0
    for client in CLIENTS:
        mismatched = _report(runs, client)
        total += len(runs[(client, "azurite")])
        matched += len(runs[(client, "azurite")]) - len(mismatched)
        for op_id, found in mismatched.items():
            print(f"[{client}] {op_id}:\n  " + "\n  ".join(found))
        for op_id, result in runs[(client, "sandbox")].items():
            same = "=" if op_id not in mismatched else "!"
            print(f"  {same} {client:10} {op_id:40} {result['status']} {result['code'] or ''}")
    print(f"{matched} of {total} operations match Azurite")


@pytest.mark.parametrize("client", CLIENTS)
def test_sandbox_answers_as_azurite_except_where_azure_differs(
    runs: dict[tuple[str, str], dict[str, dict[str, Any]]], client: str
) -> None:
    mismatched = {f"{client}:{k}": v for k, v in _report(runs, client).items()}
    unexpected = {k: v for k, v in mismatched.items() if k not in AZURE_JUDGED}
    assert not unexpected, "\n".join(
        f"{op_id}:\n  " + "\n  ".join(found) for op_id, found in unexpected.items()
    )
    judged = {k for k in AZURE_JUDGED if k.startswith(f"{client}:")}
    stale = sorted(judged - set(mismatched))
    assert not stale, f"these now match Azurite; drop them from AZURE_JUDGED: {stale}"


def test_every_operation_reached_both_services(
    runs: dict[tuple[str, str], dict[str, dict[str, Any]]],
) -> None:
    """A run that never got an HTTP answer would compare "equal" on nothing."""
    for (client, service), results in runs.items():
        missing = {k: v["exception"] for k, v in results.items() if v["status"] is None}
        assert not missing, f"{client} on {service}: {missing}"
        assert len(results) == len(operations("x")), (client, service)
