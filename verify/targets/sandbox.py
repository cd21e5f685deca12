"""The sandbox target: deploy the real stack program into the local sandbox and verify it.

* Deploy: ``__main__.py`` runs in Pulumi's mock runtime (``components.mockruntime.run_program``)
  with ``AzureMocks(sb.arm)``, the sandbox's one ARM model
  (:class:`verify.sandbox.arm.model.SandboxArm`), which creates every identity, VM, vault,
  secret and role assignment in the sandbox's state too, so the outputs carry the sandbox's
  principal and client IDs and the vault's loopback URL. It is the very program
  ``pulumi up`` runs, with the sandbox stack's config.
* Probe: each VM's probe is a separate process whose environment points azure-identity at
  that VM's IMDS listener (``AZURE_POD_IDENTITY_AUTHORITY_HOST``) and trusts the sandbox
  CA, as if it ran on the VM. By default the process is forked from a fork server that has
  already imported azure-identity and azure-keyvault-secrets (see
  :func:`verify.targets.probing.run_probe_forked`); ``probe_launcher="subprocess"`` starts
  ``sys.executable verify/probe.py`` instead, the file exactly as Run Command runs it.
* Change: through the sandbox's ARM slice with the real azure-mgmt-* clients, i.e. the same
  :class:`~verify.targets.arm.ArmOperations` code the Azure target uses.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient

from components.mockruntime import AzureMocks, load_stack_config, run_program
from verify.model import ProbeResult, StackOutputs, load_outputs
from verify.probe import parse_output
from verify.sandbox import Sandbox, SandboxConfig
from verify.sandbox.aks.workloads import pod_environment
from verify.sandbox.arm.model import SandboxArm, asset_bytes
from verify.stacks import PACKAGED_SANDBOX_STACK, PROGRAM
from verify.targets.arm import ArmOperations
from verify.targets.base import ProbeOutcome, ProbeRequest
from verify.targets.directory import DirectoryClient
from verify.targets.probing import (
    ProbeTimeoutError,
    build_spec,
    fan_out,
    run_probe_forked,
    run_probe_subprocess,
    start_forkserver,
)

#: The stack program and the sandbox stack: the repository's, or the copies in the wheel.
STACK_CONFIG = PACKAGED_SANDBOX_STACK
#: Environment variables that would steer azure-identity away from "this VM's IMDS".
_IDENTITY_ENV_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_")
#: How a probe process starts: forked from a pre-warmed fork server (default), or a new
#: interpreter running probe.py as a file, exactly as Run Command does on a VM.
ProbeLauncher = Literal["forkserver", "subprocess"]
# The fork-server launch reuses multiprocessing internals checked on CPython 3.11-3.13;
# on a newer interpreter fall back to a plain subprocess until it is checked there too.
DEFAULT_PROBE_LAUNCHER: ProbeLauncher = "forkserver" if sys.version_info < (3, 14) else "subprocess"


#: The deploy backend's former name: the sandbox's ARM model.
SandboxBackend = SandboxArm
__all__ = [
    "SandboxBackend",
    "SandboxTarget",
    "asset_bytes",
    "deploy",
    "probe_environment",
    "register_workloads",
]


def deploy(
    sandbox: Sandbox,
    *,
    program: Path = PROGRAM,
    stack_config: Path = STACK_CONFIG,
    stack: str = "sandbox",
    config_overrides: Mapping[str, Any] | None = None,
    backend: SandboxArm | None = None,
) -> dict[str, Any]:
    """Run the stack program in the mock runtime against the sandbox; return its exports.

    The program's resources are written into the sandbox's one ARM model (``sandbox.arm``),
    the one its ARM front serves; ``backend`` is for a test that deploys into another."""
    config = dict(load_stack_config(stack_config))
    config.update(config_overrides or {})
    mocks = AzureMocks(backend or sandbox.arm)
    outputs = run_program(program, config, mocks=mocks, stack=stack)
    register_workloads(sandbox, outputs)
    return outputs


def register_workloads(sandbox: Sandbox, outputs: Mapping[str, Any]) -> None:
    """The clusters' workloads, as Kubernetes holds them once the program applied its
    service accounts: each with the client ID its service account is annotated with.
    (The mock runtime hands Kubernetes objects to no backend; the stack's ``clusters``
    output carries the same declarations.)"""
    for cluster in (outputs.get("clusters") or {}).values():
        for key, workload in (cluster.get("workloads") or {}).items():
            sandbox.state.add_workload(
                str(cluster["id"]),
                str(key),
                str(workload["namespace"]),
                str(workload["service_account"]),
                workload.get("client_id"),
            )


def probe_environment(imds_url: str) -> dict[str, str]:
    """The child's environment: ours minus anything that picks another identity source."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_IDENTITY_ENV_PREFIXES)}
    env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = imds_url
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


#: ``verify check``'s RBAC propagation wait on the sandbox: its propagation delay is a
#: knob (0 by default, a few seconds in tests and fault files), so a small bound keeps a
#: broken grant from costing minutes while covering every delay the tests set.
SANDBOX_PROPAGATION_WAIT = 15.0
#: The Microsoft.Web api-version the app reads use (sites, configreferences).
APP_API_VERSION = "2024-11-01"


class _ReusedTokens:
    """The operator's credential for the target's own REST calls, each token reused until
    five minutes before it expires (as azure-core's bearer policy does for the ARM clients),
    instead of a newly signed token per call."""

    MARGIN_SECONDS = 300

    def __init__(self, credential: Any) -> None:
        self._credential = credential
        self._tokens: dict[tuple[str, ...], Any] = {}
        self._guard = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        with self._guard:
            token = self._tokens.get(scopes)
            if token is None or token.expires_on - time.time() < self.MARGIN_SECONDS:
                token = self._tokens[scopes] = self._credential.get_token(*scopes, **kwargs)
            return token


class SandboxTarget(ArmOperations):
    """The local sandbox, deployed with the stack program: probe by process, change by ARM."""

    name = "sandbox"
    default_propagation_wait = SANDBOX_PROPAGATION_WAIT

    def __init__(
        self,
        *,
        config: SandboxConfig | None = None,
        sandbox: Sandbox | None = None,
        program: Path = PROGRAM,
        stack_config: Path = STACK_CONFIG,
        stack: str = "sandbox",
        config_overrides: Mapping[str, Any] | None = None,
        max_parallel: int | None = None,
        probe_launcher: ProbeLauncher = DEFAULT_PROBE_LAUNCHER,
    ) -> None:
        if probe_launcher not in ("forkserver", "subprocess"):
            raise ValueError(f"probe_launcher {probe_launcher!r}: use 'forkserver' or 'subprocess'")
        self.probe_launcher = probe_launcher
        self.timings: dict[str, float] = {}
        if probe_launcher == "forkserver":
            start_forkserver()  # its imports overlap the sandbox's start and the deploy
        started = time.monotonic()
        self._owns_sandbox = sandbox is None
        self.sandbox = sandbox or Sandbox(config or SandboxConfig()).start()
        self.timings["sandbox start"] = time.monotonic() - started
        try:
            started = time.monotonic()
            raw = deploy(
                self.sandbox,
                program=program,
                stack_config=stack_config,
                stack=stack,
                config_overrides=config_overrides,
            )
            self._outputs: StackOutputs = load_outputs(raw, f"stack program {program}")
            self.timings["deploy"] = time.monotonic() - started
            sb = self.sandbox
            kwargs = sb.arm_client_kwargs()
            credential = sb.credential()
            super().__init__(
                ComputeManagementClient(credential, sb.subscription_id, **kwargs),
                ManagedServiceIdentityClient(credential, sb.subscription_id, **kwargs),
                AuthorizationManagementClient(credential, sb.subscription_id, **kwargs),
                polling_interval=0.0,
                directory=DirectoryClient(
                    credential, sb.graph_url, connection_verify=sb.ca_cert_path
                ),
            )
        except BaseException:
            self._stop_owned()
            raise
        self.max_parallel = max_parallel or max(2, min(8, (os.cpu_count() or 2) * 2))
        self._rest_guard = threading.Lock()
        self._session: Any = None
        self._locks: Any = None
        self._operator_tokens = _ReusedTokens(self.sandbox.credential())
        self._token_root = tempfile.mkdtemp(prefix="mikit-probe-tokens-")
        #: The sandbox as the deploy left it: what :meth:`reset` goes back to.
        self.deployed = self.sandbox.snapshot()

    def reset(self) -> None:
        """Back to the deployment exactly as the stack program left it, without deploying
        again (:meth:`verify.sandbox.Sandbox.restore`): what a test that changes the
        deployment starts from. The outputs stay the same; the hosts' token files go, as
        no probe has run on a fresh deployment."""
        self.sandbox.restore(self.deployed)
        shutil.rmtree(self._token_root, ignore_errors=True)
        os.makedirs(self._token_root)

    def outputs(self) -> StackOutputs:
        return self._outputs

    # -- apps --------------------------------------------------------------------------
    # Reads go through the sandbox's ARM front (a site and its Key Vault reference
    # statuses, as on Azure); its ARM serves no writes of apps yet, so a delete or an
    # identity change is made on the sandbox's state, which the front then reads.

    def _app_id(self, app: str) -> str:
        return self._outputs.apps[app.removeprefix("app:")].id

    def _arm_get(self, path: str, api_version: str) -> tuple[int, Any]:
        sb = self.sandbox
        token = self._operator_tokens.get_token("https://management.azure.com/.default").token
        response = self._rest_session().get(
            f"{sb.arm_url}{path}",
            params={"api-version": api_version},
            headers={"Authorization": f"Bearer {token}"},
            verify=sb.ca_cert_path,
            timeout=30,
        )
        return response.status_code, response.json() if response.content else None

    def lock_api(self) -> Any:
        """Management locks through the sandbox's ARM front, as the operator (the same
        REST calls the Azure target sends: verify/targets/locks.py), over the target's one
        session and its reused operator token (as the Azure target's), not a new connection
        and a newly signed token per call."""
        session = self._rest_session()
        with self._rest_guard:
            if self._locks is None:
                from verify.targets.azure_hosts.rest import BearerClient  # noqa: PLC0415
                from verify.targets.locks import ArmLocks  # noqa: PLC0415

                sb = self.sandbox
                client = BearerClient(self._operator_tokens, session)
                self._locks = ArmLocks(client, sb.arm_url, verify=sb.ca_cert_path)
            return self._locks

    def _rest_session(self) -> Any:
        """The one HTTP session of the target's own ARM REST calls (app reads, locks)."""
        with self._rest_guard:
            if self._session is None:
                import requests  # noqa: PLC0415 -- only app reads and lock calls need it

                self._session = requests.Session()
            return self._session

    def app_exists(self, app: str) -> bool:
        status, _ = self._arm_get(self._app_id(app), APP_API_VERSION)
        return status == 200

    def delete_app(self, app: str) -> None:
        """Delete the app (its system identity goes with it, its assignments stay)."""
        self.sandbox.state.delete_app(self._app_id(app))

    def set_app_system_identity(self, app: str, enabled: bool) -> None:
        """Turn the app's system identity on or off, keeping its user-assigned ones."""
        self.sandbox.state.set_app_system_identity(self._app_id(app), enabled)

    def key_vault_reference_statuses(self, app: str) -> dict[str, str]:
        """``GET .../sites/{app}/config/configreferences/appsettings``: setting -> status."""
        path = f"{self._app_id(app)}/config/configreferences/appsettings"
        status, body = self._arm_get(path, APP_API_VERSION)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body}")
        return {ref["name"]: ref["properties"]["status"] for ref in body.get("value") or []}

    # -- probing ---------------------------------------------------------------------

    def _token_dir(self, vm: str) -> str:
        """Per-VM token stash, standing in for /var/lib/mikit-probe on that VM."""
        return os.path.join(self._token_root, vm)

    def _host_environments(self, request: ProbeRequest) -> list[tuple[str, dict[str, str]]]:
        """Where the probe runs, as (where, environment): a VM's IMDS; each instance of a
        scale set (in instance-ID order: every instance holds the set's identities, so each
        must prove the same cells, as on Azure); or a pod of a cluster workload (what the
        webhook injects, its token file, its node's IMDS); or an app's identity endpoint."""
        sb = self.sandbox
        if request.host_kind == "vm":
            vm = self._outputs.vms[request.host]
            return [(request.host, probe_environment(sb.imds_url(vm.id)))]
        if request.host_kind == "scaleset":
            scale_set = self._outputs.scale_set_hosts[request.host]
            instances = sorted(
                sb.state.instances(scale_set.id), key=lambda i: int(i.id.rsplit("/", 1)[-1])
            )
            if request.instances:  # only the named ones (ARM instance IDs), each must exist
                by_id = {i.id.rsplit("/", 1)[-1]: i for i in instances}
                missing = [n for n in request.instances if n not in by_id]
                if missing:
                    raise RuntimeError(f"probe on {request.host}: no instance {missing[0]}")
                instances = [by_id[n] for n in request.instances]
            if not instances:
                raise RuntimeError(f"probe on {request.host}: the scale set has no instance")
            return [
                (
                    f"{request.host} instance {i.id.rsplit('/', 1)[-1]}",
                    probe_environment(sb.imds_url(i)),
                )
                for i in instances
            ]
        if request.host_kind == "app":
            return [(request.host, self._app_environment(request.host))]
        workload = sb.state.workload(request.host.removeprefix("workload:"))
        if workload is None:
            raise RuntimeError(f"probe on {request.host}: no such workload in the sandbox")
        pod = pod_environment(sb, workload, Path(self._token_dir(request.host)) / "pod")
        env = probe_environment(pod.imds)
        env.update(pod.env())  # the webhook's variables and the sandbox CA for its authority
        return [(request.host, env)]

    def _app_environment(self, host: str) -> dict[str, str]:
        """What App Service, Functions or Container Apps give the app's process: its
        identity endpoint and header (Container Apps: ``MSI_ENDPOINT`` too), the client ID
        of the identity its code uses where the stack sets one (``AZURE_CLIENT_ID``), and
        the sandbox CA; no IMDS, as on the platform."""
        app = self._outputs.apps.get(host.removeprefix("app:"))
        if app is None or self.sandbox.state.app(app.id) is None:
            raise RuntimeError(f"probe on {host}: no such app in the sandbox")
        env = {k: v for k, v in os.environ.items() if not k.startswith(_IDENTITY_ENV_PREFIXES)}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(self.sandbox.app_env(app.id))
        default = self._outputs.identities.get(app.default_identity or "")
        if default is not None:
            env["AZURE_CLIENT_ID"] = default.client_id
        return env

    def _probe_one(self, request: ProbeRequest) -> ProbeResult:
        """The host's result; for a scale set the first instance whose probe did not pass
        (else the first instance's)."""
        spec = build_spec(
            self._outputs,
            request,
            ca_bundle=self.sandbox.ca_cert_path,
            verify_challenge_resource=False,
            token_dir=self._token_dir(request.host),
        )
        launch = run_probe_forked if self.probe_launcher == "forkserver" else run_probe_subprocess
        results: list[ProbeResult] = []
        for where, env in self._host_environments(request):
            try:
                done = launch(spec, env, request.budget + 15)
            except ProbeTimeoutError as exc:
                raise RuntimeError(f"probe on {where}: {exc}") from exc
            try:
                results.append(ProbeResult.model_validate(parse_output(done.stdout)))
            except ValueError as exc:
                raise RuntimeError(
                    f"probe on {where} exited {done.returncode} without a result: "
                    f"{done.stderr.strip()[-400:]}"
                ) from exc
        return next((r for r in results if not r.passed), results[0])

    def probe(self, requests: Sequence[ProbeRequest]) -> Mapping[str, ProbeOutcome]:
        return fan_out(self._probe_one, requests, self.max_parallel)

    # -- teardown ---------------------------------------------------------------------

    def _stop_owned(self) -> None:
        if self._owns_sandbox:
            self.sandbox.stop()

    def close(self) -> None:
        for client in (self.compute, self.msi, self.authorization, self.directory):
            if client is not None:
                client.close()
        if self._session is not None:
            self._session.close()
        shutil.rmtree(self._token_root, ignore_errors=True)
        self._stop_owned()

    def __enter__(self) -> SandboxTarget:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()
