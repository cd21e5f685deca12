"""Run Command, shared by the VM and scale-set instance paths.

``RunShellScript`` carries verify/probe.py inline, fed to the probe venv that the
component's cloud-init installs; the script first waits for cloud-init, bounded
(verify/targets/cloud_init.py). The spec travels base64 in argv and the result comes back
gzip+base64 between markers, because Run Command returns only the last 4 KiB of output.
The client gives up at cloud-init's wait + the probe's budget + Run Command's overhead.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute.models import RunCommandInput

from verify.model import ProbeResult
from verify.targets.azure_hosts.base import (
    HostContext,
    HostTimeoutError,
    MissingPermissionError,
    probe_budget,
    result_from,
)
from verify.targets.cloud_init import DEFAULT_CLOUD_INIT_WAIT_SECONDS, parse_status, wait_lines
from verify.targets.probing import probe_source

#: Where the VM component's cloud-init installs the probe's dependencies; python3 is the
#: fallback so a hand-built VM with the packages installed system-wide also works.
DEFAULT_PROBE_PYTHONS = ("/opt/mikit/venv/bin/python3", "python3")
#: Tokens stashed for the "token obtained before deletion" check stay on the VM, root-only.
VM_TOKEN_DIR = "/var/lib/mikit-probe"  # noqa: S105 -- a directory, not a secret
HEREDOC_MARK = "MIKIT_PROBE_SOURCE_EOF"
#: Run Command's own latency (extension start, queueing) on top of the script's run time.
RUN_COMMAND_OVERHEAD_SECONDS = 600.0


def refused_as(exc: HttpResponseError, what: str, action: str) -> Exception:
    """A management SDK's 403 as the permission it lacked (Virtual Machine Contributor
    holds every Run Command action); any other error as it was."""
    if exc.status_code == 403:
        return MissingPermissionError(
            what,
            403,
            action,
            "Virtual Machine Contributor",
            str(exc.error.code or "") if exc.error is not None else "",
        )
    return exc


class RunCommandTimeoutError(HostTimeoutError):
    """Run Command did not report back within the client-side bound; nothing was proved."""


def run_command_script(
    spec: Mapping[str, Any],
    pythons: Sequence[str] = DEFAULT_PROBE_PYTHONS,
    cloud_init_wait: int = DEFAULT_CLOUD_INIT_WAIT_SECONDS,
) -> list[str]:
    """The RunShellScript lines: wait for cloud-init (bounded), pick the probe interpreter,
    feed it the probe inline."""
    spec_b64 = base64.b64encode(json.dumps(spec).encode("utf-8")).decode("ascii")
    source = probe_source()
    if HEREDOC_MARK in source:  # pragma: no cover - guards a future edit of the probe
        raise ValueError("the probe source contains the heredoc terminator")
    candidates = " ".join(shlex.quote(p) for p in pythons)
    return [
        "#!/bin/bash",
        "set -u",
        *wait_lines(cloud_init_wait),
        f"for candidate in {candidates}; do",
        '  if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi',
        "done",
        f"\"$PY\" - --spec-b64 {spec_b64} --output gzip-b64 <<'{HEREDOC_MARK}'",
        *source.splitlines(),
        HEREDOC_MARK,
    ]


def run_command_stdout(result: Any) -> str:
    """The text of a ``RunCommandResult``: ``value[0].message`` holds stdout and stderr."""
    messages = [getattr(status, "message", None) or "" for status in (result.value or [])]
    return "\n".join(messages)


def run_command_timeout(ctx: HostContext, spec: Mapping[str, Any]) -> float:
    """How long one Run Command may take before the client gives up on it."""
    return ctx.cloud_init_wait + probe_budget(spec) + ctx.run_command_overhead


def run_probe(
    ctx: HostContext,
    spec: Mapping[str, Any],
    begin: Callable[[RunCommandInput], Any],
    where: str,
) -> ProbeResult:
    """Start Run Command with ``begin(parameters)`` (an LRO poller), wait at most the
    bound, and read the probe's result out of its output."""
    poller = begin(
        RunCommandInput(
            command_id="RunShellScript",
            script=run_command_script(
                spec, ctx.probe_pythons or DEFAULT_PROBE_PYTHONS, ctx.cloud_init_wait
            ),
        )
    )
    bound = run_command_timeout(ctx, spec)
    # LROPoller.wait returns at the bound even when ARM has not finished; done() tells.
    poller.wait(timeout=bound)
    if not poller.done():
        raise RunCommandTimeoutError(
            f"Run Command on {where} did not finish within {bound:.0f} s "
            "(cloud-init wait + probe budget + Run Command overhead): not probed"
        )
    stdout = run_command_stdout(poller.result())
    cloud_init = parse_status(stdout)
    if cloud_init is not None and not cloud_init.finished:
        raise RuntimeError(f"{cloud_init.describe()} on {where}: not probed")
    seen = f" ({cloud_init.describe()})" if cloud_init is not None else ""
    return result_from(stdout, f"Run Command on {where}", seen)
