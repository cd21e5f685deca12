"""A web app or Function app: the probe through the app's Kudu (SCM) API, signed in with
Microsoft Entra ID, so no publishing credential exists or travels.

How: read the site from ARM (its SCM host name, ``hostNameSslStates`` of type
``Repository``); put verify/probe.py under ``/home/data/mikit-probe/`` with Kudu's VFS API
(``PUT /api/vfs/...``, ``If-Match: *``); run it with ``POST /api/command``
(``{"command", "dir"}`` -> ``{"Output", "Error", "ExitCode"}``): first a command that
makes the probe's venv once (kept on the app's persistent ``/home``), then the probe with
its spec; read the result between the probe's markers in ``Output``; delete the file.
Kudu takes a bearer token for Azure Resource Manager's audience when basic publishing
credentials are off (the component turns them off), authorised by the operator's Azure
RBAC on the site (``Microsoft.Web/sites/publish/action``: Website Contributor).

Why this path: the token the probe gets must come from the app's own identity through
the app's ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER``, and the probe reports the source
that answered; the judge refuses any source but ``app_service`` for an app. Whether the
Linux SCM container carries the app's identity variables is what a first real run
confirms (the probe then reports ``app_service``); if it does not, the probe reports the
source it fell to, the check fails naming it, and the alternative is a probe endpoint
deployed with the app behind App Service authentication (not built here). Kudu's
``/api/command`` is not offered on Linux Consumption Function plans: use a Premium or
Dedicated plan for Function apps you verify this way.
"""

from __future__ import annotations

import hashlib
import shlex
import urllib.parse
from typing import Any

from verify.model import ProbeResult
from verify.targets.azure_hosts.base import (
    HostContext,
    HostProbeError,
    host_key,
    probe_budget,
    result_from,
)
from verify.targets.azure_hosts.launcher import install_lines, spec_b64
from verify.targets.azure_hosts.rest import ARM, ARM_SCOPE, BearerClient, Refusal
from verify.targets.base import ProbeRequest
from verify.targets.probing import probe_source

WEB_API_VERSION = "2024-04-01"
PROBE_DIR = "/home/data/mikit-probe"
#: Where the probe stashes tokens between a ``stash_token`` and a ``replay`` run (the
#: SCM container's local disk, not the shared /home).
TOKEN_DIR = "/tmp/mikit-probe-tokens"  # noqa: S105, S108 -- a directory in the app's container
#: Kudu's own limit on one request (the front end drops it at 230 s).
KUDU_REQUEST_LIMIT = 230.0
#: Making the venv the first time (pip over the network).
INSTALL_SECONDS = 220.0

READ_SITE = Refusal("Microsoft.Web/sites/read", "Website Contributor")
USE_SCM = Refusal("Microsoft.Web/sites/publish/action", "Website Contributor")


def app_record(ctx: HostContext, host: str) -> dict[str, Any]:
    record = (ctx.raw.get("apps") or {}).get(host_key(host))
    if not isinstance(record, dict) or not record.get("id"):
        raise HostProbeError(f"app {host!r} is not in the stack outputs (apps)")
    return record


def scm_host(site: Any, name: str) -> str:
    props = (site or {}).get("properties") or {}
    for state in props.get("hostNameSslStates") or []:
        if state.get("hostType") == "Repository" and state.get("name"):
            return str(state["name"])
    raise HostProbeError(f"app {name} lists no SCM host name (hostNameSslStates Repository)")


class AppServicePath:
    permissions = (READ_SITE.action, USE_SCM.action)

    def probe(self, ctx: HostContext, request: ProbeRequest) -> ProbeResult:
        record = app_record(ctx, request.host)
        name = str(record.get("name") or host_key(request.host))
        client = BearerClient(ctx.credential, ctx.http)
        site = client.request(
            "GET",
            f"{ARM}{record['id']}?api-version={WEB_API_VERSION}",
            scope=ARM_SCOPE,
            what=f"reading app {name}",
            refusal=READ_SITE,
        ).body
        scm = f"https://{scm_host(site, name)}"
        spec = ctx.spec(request, TOKEN_DIR)
        digest = hashlib.sha256(probe_source().encode("utf-8")).hexdigest()[:12]
        path = f"{PROBE_DIR}/probe-{digest}.py"
        vfs = f"{scm}/api/vfs/{urllib.parse.quote(path.removeprefix('/home/'))}"

        def kudu(method: str, url: str, what: str, timeout: float, **kw: Any) -> Any:
            return client.request(
                method,
                url,
                scope=ARM_SCOPE,
                what=f"{what} on app {name}",
                refusal=USE_SCM,
                timeout=timeout,
                **kw,
            ).body

        kudu(
            "PUT",
            vfs,
            "uploading the probe through Kudu",
            60.0,
            data=probe_source().encode("utf-8"),
            headers={"If-Match": "*"},
        )
        try:
            setup = kudu(
                "POST",
                f"{scm}/api/command",
                "installing the probe's dependencies through Kudu",
                INSTALL_SECONDS,
                json_body={
                    "command": "bash -c "
                    + shlex.quote(
                        "\n".join([*install_lines(f"{PROBE_DIR}/venv"), 'echo "PY=$PY"'])
                    ),
                    "dir": "/home",
                },
            )
            python = _python_of(setup, name)
            bound = min(KUDU_REQUEST_LIMIT, probe_budget(spec) + 30.0)
            ran = kudu(
                "POST",
                f"{scm}/api/command",
                "running the probe through Kudu",
                bound,
                json_body={
                    "command": f"{python} {path} --spec-b64 {spec_b64(spec)} --output gzip-b64",
                    "dir": "/home",
                },
            )
        finally:
            kudu(
                "DELETE",
                vfs,
                "removing the probe",
                60.0,
                headers={"If-Match": "*"},
                ok=(200, 204, 404),
            )
        output = (ran or {}).get("Output") or ""
        return result_from(output, f"Kudu on app {name} (exit {(ran or {}).get('ExitCode')})")


def _python_of(setup: Any, name: str) -> str:
    output = str((setup or {}).get("Output") or "")
    for line in output.splitlines():
        if line.startswith("PY=") and line[3:].strip():
            return line[3:].strip()
    error = str((setup or {}).get("Error") or "")[-300:]
    raise HostProbeError(f"the probe's dependencies are not available on app {name}: {error}")
