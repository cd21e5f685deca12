"""The real-Azure target: Pulumi stack outputs, VM Run Command, azure-mgmt-* clients.

* Outputs: ``pulumi stack output --json --show-secrets`` (the fingerprints are a Pulumi
  secret; they are hashes, never values) or a file holding that JSON, for CI jobs that
  saved it after ``pulumi up``.
* Probing: inside each host, with its own identity, through the path its host kind names
  (verify/targets/azure_hosts: Run Command on VMs and scale-set instances, Kudu on web and
  Function apps, a Container Apps job, a Kubernetes Job for AKS workloads). On a VM,
  ``virtual_machines.begin_run_command`` with ``RunShellScript`` feeds verify/probe.py
  inline to the probe venv cloud-init made; the result comes back gzip+base64 between
  markers, because Run Command returns only the last 4 KiB of output.
* Changes and role assignments: :class:`verify.targets.arm.ArmOperations` over
  ``ComputeManagementClient``, ``ManagedServiceIdentityClient`` and
  ``AuthorizationManagementClient``, authenticated as the operator with
  :func:`verify.credentials.operator_credential` (``DefaultAzureCredential``, or in GitHub
  Actions a ``ClientAssertionCredential`` that fetches a fresh OIDC assertion per token).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient

from components.errors import ConfigError
from verify.credentials import operator_credential
from verify.model import ProbeResult, StackOutputs, load_outputs
from verify.targets.arm import ArmOperations
from verify.targets.azure_hosts import HostContext, app_changes, path_for
from verify.targets.azure_hosts.base import PROBE_WATCHDOG_GRACE_SECONDS
from verify.targets.azure_hosts.rest import BearerClient
from verify.targets.azure_hosts.run_command import (
    DEFAULT_PROBE_PYTHONS,
    HEREDOC_MARK,
    RUN_COMMAND_OVERHEAD_SECONDS,
    VM_TOKEN_DIR,
    RunCommandTimeoutError,
    run_command_script,
    run_command_stdout,
)
from verify.targets.azure_hosts.run_command import run_command_timeout as _run_command_timeout
from verify.targets.base import ProbeOutcome, ProbeRequest
from verify.targets.cloud_init import DEFAULT_CLOUD_INIT_WAIT_SECONDS
from verify.targets.directory import GRAPH_URL, DirectoryClient
from verify.targets.locks import ArmLocks
from verify.targets.probing import fan_out


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
        http: Any = None,
        host_options: Mapping[str, Any] | None = None,
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
        self._raw: Mapping[str, Any] = dict(raw)
        #: A requests.Session-like client for the app and cluster paths (made on first use).
        self._http = http
        self._http_lock = threading.Lock()
        #: Per-path settings (e.g. ``container_image`` for Container Apps jobs and AKS Jobs).
        self.host_options: Mapping[str, Any] = dict(host_options or {})
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

    # -- apps ------------------------------------------------------------------------
    # ARM REST with the operator's credential (verify/targets/azure_hosts/app_changes.py).

    def app_exists(self, app: str) -> bool:
        return app_changes.app_exists(self.host_context(), app)

    def delete_app(self, app: str) -> None:
        """Delete the app (its system identity goes with it, its assignments stay)."""
        app_changes.delete_app(self.host_context(), app)

    def set_app_system_identity(self, app: str, enabled: bool) -> None:
        """Turn the app's system identity on or off, keeping its user-assigned ones."""
        app_changes.set_app_system_identity(self.host_context(), app, enabled)

    def key_vault_reference_statuses(self, app: str) -> dict[str, str]:
        """The app's Key Vault reference statuses: setting -> status."""
        return app_changes.key_vault_reference_statuses(self.host_context(), app)

    # -- management locks -------------------------------------------------------------

    def lock_api(self) -> ArmLocks:
        """ARM REST with the operator's token (the session the app paths use)."""
        context = self.host_context()
        return ArmLocks(BearerClient(context.credential or self._operator(), context.http))

    def _operator(self) -> Any:
        self.credential = self.credential or operator_credential()
        return self.credential

    # -- probing ---------------------------------------------------------------------

    def host_context(self) -> HostContext:
        """What the host paths (verify/targets/azure_hosts) run the probe with."""
        with self._http_lock:  # the fan-out's threads share one session
            if self._http is None:
                import requests  # noqa: PLC0415 -- only when an app or cluster is probed

                self._http = requests.Session()
        return HostContext(
            outputs=self._outputs,
            raw=self._raw,
            credential=self.credential,
            compute=self.compute,
            http=self._http,
            polling_interval=self.polling_interval,
            cloud_init_wait=self.cloud_init_wait,
            run_command_overhead=self.run_command_overhead,
            probe_pythons=self.probe_pythons,
            ca_bundle=self.ca_bundle,
            verify_challenge_resource=self.verify_challenge_resource,
            token_dir=self.token_dir,
            options=dict(self.host_options),
        )

    def _probe_one(self, request: ProbeRequest) -> ProbeResult:
        # One table picks the host path by the request's host kind (vm, scaleset, app,
        # workload...): verify/targets/azure_hosts/__init__.py.
        return path_for(request.host_kind).probe(self.host_context(), request)

    def run_command_timeout(self, spec: Mapping[str, Any]) -> float:
        """How long one Run Command may take before the client gives up on it."""
        return _run_command_timeout(self.host_context(), spec)

    def probe(self, requests: Sequence[ProbeRequest]) -> Mapping[str, ProbeOutcome]:
        return fan_out(self._probe_one, requests, self.max_parallel)

    def close(self) -> None:
        for client in (self.compute, self.msi, self.authorization, self.directory, self._http):
            close = getattr(client, "close", None)
            if callable(close):
                close()


__all__ = [
    "DEFAULT_PROBE_PYTHONS",
    "HEREDOC_MARK",
    "PROBE_WATCHDOG_GRACE_SECONDS",
    "RUN_COMMAND_OVERHEAD_SECONDS",
    "VM_TOKEN_DIR",
    "AzureTarget",
    "RunCommandTimeoutError",
    "read_pulumi_outputs",
    "run_command_script",
    "run_command_stdout",
]
