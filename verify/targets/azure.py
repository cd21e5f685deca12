"""The real-Azure target: Pulumi stack outputs, VM Run Command, azure-mgmt-* clients.

* Outputs: ``pulumi stack output --json --show-secrets`` (the fingerprints are a Pulumi
  secret; they are hashes, never values) or a file holding that JSON, for CI jobs that
  saved it after ``pulumi up``.
* Probing: ``virtual_machines.begin_run_command`` with ``RunShellScript``; the script is
  verify/probe.py itself, inline, fed to the VM's probe venv (set up by cloud-init). The
  spec travels base64 in argv and the result comes back gzip+base64 between markers,
  because Run Command returns only the last 4 KiB of output.
* Changes and role assignments: :class:`verify.targets.arm.ArmOperations` over
  ``ComputeManagementClient``, ``ManagedServiceIdentityClient`` and
  ``AuthorizationManagementClient``, authenticated as the operator with
  :func:`verify.credentials.operator_credential` (``DefaultAzureCredential``, or in GitHub
  Actions a ``ClientAssertionCredential`` that fetches a fresh OIDC assertion per token).
"""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import RunCommandInput
from azure.mgmt.msi import ManagedServiceIdentityClient

from components.errors import ConfigError
from verify.credentials import operator_credential
from verify.model import ProbeResult, StackOutputs, load_outputs
from verify.probe import parse_output
from verify.targets.arm import ArmOperations
from verify.targets.base import ProbeOutcome, ProbeRequest
from verify.targets.cloud_init import DEFAULT_CLOUD_INIT_WAIT_SECONDS, parse_status, wait_lines
from verify.targets.directory import GRAPH_URL, DirectoryClient
from verify.targets.probing import build_spec, fan_out, probe_source

#: Where the VM component's cloud-init installs the probe's dependencies; python3 is the
#: fallback so a hand-built VM with the packages installed system-wide also works.
DEFAULT_PROBE_PYTHONS = ("/opt/mikit/venv/bin/python3", "python3")
#: Tokens stashed for the "token obtained before deletion" check stay on the VM, root-only.
VM_TOKEN_DIR = "/var/lib/mikit-probe"  # noqa: S105 -- a directory, not a secret
HEREDOC_MARK = "MIKIT_PROBE_SOURCE_EOF"
#: Run Command's own latency (extension start, queueing) on top of the script's run time.
RUN_COMMAND_OVERHEAD_SECONDS = 600.0
#: The probe's watchdog fires this long after its budget (verify/probe.py default).
PROBE_WATCHDOG_GRACE_SECONDS = 5.0


class RunCommandTimeoutError(TimeoutError):
    """Run Command did not report back within the client-side bound; nothing was proved."""


def read_pulumi_outputs(stack: str | None, cwd: Path | None = None) -> dict[str, Any]:
    """``pulumi stack output --json --show-secrets`` for ``stack`` (default: selected)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise ConfigError(
            "--stack",
            stack,
            "cannot be read because the pulumi CLI is not on PATH",
            "install the Pulumi CLI, or pass --outputs <file> holding "
            "`pulumi stack output --json --show-secrets`",
        )
    command = [pulumi, "stack", "output", "--json", "--show-secrets"]
    if stack:
        command += ["--stack", stack]
    done = subprocess.run(  # noqa: S603 -- fixed argv, no shell
        command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise ConfigError(
            "--stack",
            stack,
            f"outputs could not be read: {done.stderr.strip()[:300]}",
            "run `pulumi stack ls` and pass an existing stack, after `pulumi up`",
        )
    data = json.loads(done.stdout)
    if not isinstance(data, dict):
        raise ConfigError("--stack", stack, "printed outputs that are not a JSON object", "")
    return data


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


class AzureTarget(ArmOperations):
    """A deployed stack in a real subscription: ARM operations plus Run Command probing.

    ``compute``, ``msi`` and ``authorization`` are built from ``credential`` unless given
    (tests pass fakes with the same method names and return types).
    """

    name = "azure"

    def __init__(
        self,
        *,
        stack: str | None = None,
        outputs_file: Path | None = None,
        outputs: Mapping[str, Any] | None = None,
        credential: Any = None,
        directory: DirectoryClient | None = None,
        compute: Any = None,
        msi: Any = None,
        authorization: Any = None,
        max_parallel: int = 8,
        probe_pythons: Sequence[str] = DEFAULT_PROBE_PYTHONS,
        polling_interval: float = 5.0,
        read_outputs: Callable[[str | None], dict[str, Any]] = read_pulumi_outputs,
        ca_bundle: str | None = None,
        verify_challenge_resource: bool = True,
        cloud_init_wait: int = DEFAULT_CLOUD_INIT_WAIT_SECONDS,
        run_command_overhead: float = RUN_COMMAND_OVERHEAD_SECONDS,
    ) -> None:
        if outputs is not None:
            raw: Mapping[str, Any] = outputs
            source = "outputs"
        elif outputs_file is not None:
            raw = json.loads(Path(outputs_file).read_text(encoding="utf-8"))
            source = str(outputs_file)
        else:
            raw = read_outputs(stack)
            source = f"stack {stack or '(selected)'}"
        self._outputs = load_outputs(raw, source)
        self.stack = stack or "(selected)"
        self.max_parallel = max_parallel
        self.probe_pythons = tuple(probe_pythons)
        # Only for vaults behind a TLS-inspecting proxy or a private endpoint alias;
        # public Azure needs neither.
        self.ca_bundle = ca_bundle
        self.token_dir = VM_TOKEN_DIR
        self.verify_challenge_resource = verify_challenge_resource
        self.cloud_init_wait = cloud_init_wait
        self.run_command_overhead = run_command_overhead
        self.credential: Any = credential
        if compute is None or msi is None or authorization is None:
            compute, msi, authorization = self._clients(credential)
            # Graph proves a principal gone before orphan cleanup (verify.orphans).
            directory = directory or DirectoryClient(self.credential, GRAPH_URL)
        super().__init__(
            compute, msi, authorization, polling_interval=polling_interval, directory=directory
        )

    def _clients(self, credential: Any) -> tuple[Any, Any, Any]:
        # In GitHub Actions: a fresh OIDC assertion per token (the az login's expires).
        credential = credential or operator_credential()
        self.credential = credential
        sub = self._outputs.subscription_id
        return (
            ComputeManagementClient(credential, sub),
            ManagedServiceIdentityClient(credential, sub),
            AuthorizationManagementClient(credential, sub),
        )

    def outputs(self) -> StackOutputs:
        return self._outputs

    # -- probing ---------------------------------------------------------------------

    def _probe_one(self, request: ProbeRequest) -> ProbeResult:
        spec = build_spec(
            self._outputs,
            request,
            ca_bundle=self.ca_bundle,
            verify_challenge_resource=self.verify_challenge_resource,
            token_dir=self.token_dir,
        )
        command = RunCommandInput(
            command_id="RunShellScript",
            script=run_command_script(spec, self.probe_pythons, self.cloud_init_wait),
        )
        poller = self._run_command(request, command)
        bound = self.run_command_timeout(spec)
        # LROPoller.wait returns at the bound even when ARM has not finished; done() tells.
        poller.wait(timeout=bound)
        if not poller.done():
            raise RunCommandTimeoutError(
                f"Run Command on {request.host} did not finish within {bound:.0f} s "
                "(cloud-init wait + probe budget + Run Command overhead): not probed"
            )
        stdout = run_command_stdout(poller.result())
        cloud_init = parse_status(stdout)
        if cloud_init is not None and not cloud_init.finished:
            raise RuntimeError(f"{cloud_init.describe()} on {request.host}: not probed")
        try:
            return ProbeResult.model_validate(parse_output(stdout))
        except ValueError as exc:
            tail = stdout.strip()[-400:]
            seen = f" ({cloud_init.describe()})" if cloud_init is not None else ""
            raise RuntimeError(
                f"Run Command on {request.host} gave no probe result{seen}: {tail}"
            ) from exc

    def _run_command(self, request: ProbeRequest, command: RunCommandInput) -> Any:
        """Start Run Command where the host runs: the VM, or the first instance of a scale
        set (every instance holds the set's identities). A cluster workload runs in a pod,
        which Run Command cannot reach."""
        rg = self._outputs.resource_group
        if request.host_kind == "vm":
            return self.compute.virtual_machines.begin_run_command(
                rg,
                self._outputs.vms[request.host].name,
                command,
                polling_interval=self.polling_interval,
            )
        if request.host_kind == "scaleset":
            name = self._outputs.scale_set_hosts[request.host].name
            instances = sorted(
                (
                    str(vm.instance_id)
                    for vm in self.compute.virtual_machine_scale_set_vms.list(rg, name)
                ),
                key=lambda i: int(i) if i.isdigit() else 0,
            )
            if not instances:
                raise RuntimeError(f"scale set {name} has no instance to run the probe on")
            return self.compute.virtual_machine_scale_set_vms.begin_run_command(
                rg, name, instances[0], command, polling_interval=self.polling_interval
            )
        raise RuntimeError(
            f"probe on {request.host} ({request.host_kind}): a cluster workload is probed from "
            "a pod (a Kubernetes Job in its namespace with its service account), which this "
            "target does not run yet: not probed"
        )

    def run_command_timeout(self, spec: Mapping[str, Any]) -> float:
        """How long one Run Command may take before the client gives up on it."""
        budget = float(spec.get("budget_seconds") or 30.0)
        grace = float(spec.get("watchdog_grace_seconds") or PROBE_WATCHDOG_GRACE_SECONDS)
        return self.cloud_init_wait + budget + grace + self.run_command_overhead

    def probe(self, requests: Sequence[ProbeRequest]) -> Mapping[str, ProbeOutcome]:
        return fan_out(self._probe_one, requests, self.max_parallel)

    def close(self) -> None:
        for client in (self.compute, self.msi, self.authorization, self.directory):
            close = getattr(client, "close", None)
            if callable(close):
                close()
