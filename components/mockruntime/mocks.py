"""Pulumi mocks that answer like ARM, and a runner for whole stack programs.

``AzureMocks`` turns each azure-native registration into an ARM ID built from the
real resource-group/provider path, hands it to an :class:`ArmBackend` (memory by
default, the local sandbox for end-to-end runs) and flattens the ARM document into the
outputs azure-native would return. ``run_program`` runs a stack program (``__main__.py``
or a callable) in the mock runtime and returns its resolved exports.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import runpy
import sys
import threading
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc, settings
from pulumi.runtime import stack as pulumi_stack
from pulumi.runtime.config import set_all_config

from components.arm import memory as types
from components.arm import memory_apps as app_types
from components.arm import memory_fleet as fleet_types
from components.arm import memory_storage as storage_types
from components.arm.memory import ArmBackend, InMemoryArm

# The REST API versions azure-native 3.x uses for the types we create (its
# ``azureApiVersion`` output); other types simply omit the output.
API_VERSIONS = {
    types.RESOURCE_GROUP: "2024-03-01",
    types.USER_ASSIGNED_IDENTITY: "2023-01-31",
    types.FEDERATED_CREDENTIAL: "2023-01-31",
    types.MANAGEMENT_LOCK: "2020-05-01",
    types.VIRTUAL_NETWORK: "2024-05-01",
    types.SUBNET: "2024-05-01",
    types.NETWORK_SECURITY_GROUP: "2024-05-01",
    types.NETWORK_INTERFACE: "2024-05-01",
    types.VIRTUAL_MACHINE: "2024-11-01",
    types.ROLE_ASSIGNMENT: "2022-04-01",
    types.KEY_VAULT: "2024-11-01",
    types.KEY_VAULT_SECRET: "2024-11-01",
    storage_types.STORAGE_ACCOUNT: "2024-01-01",
    storage_types.BLOB_CONTAINER: "2024-01-01",
}
# Not azure-native, but backed by ARM-side state all the same (components.storage).
_BACKEND_TYPES = frozenset({storage_types.SEEDED_BLOB})

_RG = "/subscriptions/{sub}/resourceGroups/{rg}"
_PATHS: dict[str, tuple[str, tuple[str, ...]]] = {
    # token: (format below the resource group, input keys holding the names)
    types.USER_ASSIGNED_IDENTITY: (
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{0}",
        ("resourceName",),
    ),
    types.FEDERATED_CREDENTIAL: (
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{0}"
        "/federatedIdentityCredentials/{1}",
        ("resourceName", "federatedIdentityCredentialResourceName"),
    ),
    types.VIRTUAL_NETWORK: (
        "/providers/Microsoft.Network/virtualNetworks/{0}",
        ("virtualNetworkName",),
    ),
    types.SUBNET: (
        "/providers/Microsoft.Network/virtualNetworks/{0}/subnets/{1}",
        ("virtualNetworkName", "subnetName"),
    ),
    types.NETWORK_SECURITY_GROUP: (
        "/providers/Microsoft.Network/networkSecurityGroups/{0}",
        ("networkSecurityGroupName",),
    ),
    types.NETWORK_INTERFACE: (
        "/providers/Microsoft.Network/networkInterfaces/{0}",
        ("networkInterfaceName",),
    ),
    types.PUBLIC_IP_ADDRESS: (
        "/providers/Microsoft.Network/publicIPAddresses/{0}",
        ("publicIpAddressName",),
    ),
    types.NAT_GATEWAY: ("/providers/Microsoft.Network/natGateways/{0}", ("natGatewayName",)),
    types.VIRTUAL_MACHINE: ("/providers/Microsoft.Compute/virtualMachines/{0}", ("vmName",)),
    fleet_types.VIRTUAL_MACHINE_SCALE_SET: (
        "/providers/Microsoft.Compute/virtualMachineScaleSets/{0}",
        ("vmScaleSetName",),
    ),
    fleet_types.MANAGED_CLUSTER: (
        "/providers/Microsoft.ContainerService/managedClusters/{0}",
        ("resourceName",),
    ),
    types.KEY_VAULT: ("/providers/Microsoft.KeyVault/vaults/{0}", ("vaultName",)),
    types.KEY_VAULT_SECRET: (
        "/providers/Microsoft.KeyVault/vaults/{0}/secrets/{1}",
        ("vaultName", "secretName"),
    ),
    storage_types.STORAGE_ACCOUNT: (
        "/providers/Microsoft.Storage/storageAccounts/{0}",
        ("accountName",),
    ),
    storage_types.BLOB_CONTAINER: (
        "/providers/Microsoft.Storage/storageAccounts/{0}/blobServices/default/containers/{1}",
        ("accountName", "containerName"),
    ),
    storage_types.BLOB: (
        "/providers/Microsoft.Storage/storageAccounts/{0}/blobServices/default/containers/{1}"
        "/blobs/{2}",
        ("accountName", "containerName", "blobName"),
    ),
    app_types.APP_SERVICE_PLAN: ("/providers/Microsoft.Web/serverfarms/{0}", ("name",)),
    app_types.WEB_APP: ("/providers/Microsoft.Web/sites/{0}", ("name",)),
    app_types.WEB_APP_FTP_ALLOWED: (
        "/providers/Microsoft.Web/sites/{0}/basicPublishingCredentialsPolicies/ftp",
        ("name",),
    ),
    app_types.WEB_APP_SCM_ALLOWED: (
        "/providers/Microsoft.Web/sites/{0}/basicPublishingCredentialsPolicies/scm",
        ("name",),
    ),
    app_types.MANAGED_ENVIRONMENT: (
        "/providers/Microsoft.App/managedEnvironments/{0}",
        ("environmentName",),
    ),
    app_types.CONTAINER_APP: ("/providers/Microsoft.App/containerApps/{0}", ("containerAppName",)),
    storage_types.SEEDED_BLOB: (
        "/providers/Microsoft.Storage/storageAccounts/{0}/blobServices/default/containers/{1}"
        "/blobs/{2}",
        ("accountName", "containerName", "blobName"),
    ),
}
# Extension resources live below an arbitrary scope given as the ``scope`` input.
_EXTENSIONS = {
    types.ROLE_ASSIGNMENT: (
        "/providers/Microsoft.Authorization/roleAssignments/{0}",
        "roleAssignmentName",
    ),
    types.MANAGEMENT_LOCK: ("/providers/Microsoft.Authorization/locks/{0}", "lockName"),
}


def is_secret_envelope(value: Any) -> bool:
    """True for the ``{sig: secret, value: ...}`` form secret inputs arrive in."""
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unwrap_secrets(value: Any) -> Any:
    """Replace Pulumi's secret envelopes (as the mock monitor hands them over) by values."""
    if isinstance(value, dict):
        if is_secret_envelope(value):
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


@cache
def _keeps_properties(token: str) -> bool:
    """Whether azure-native outputs keep ``properties`` nested (Vault, Secret, ...).

    Decided from the generated SDK class itself, so it cannot drift from azure-native:
    types whose ARM spec does not flatten ``properties`` expose a ``properties`` getter.
    """
    package, module, name = token.split(":")
    if package != "azure-native":
        return False
    try:
        cls = getattr(import_module(f"pulumi_azure_native.{module.replace('/', '.')}"), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(getattr(cls, "properties", None), property)


def _lift_nested(value: Any) -> Any:
    """Sub-resources (ipConfigurations, securityRules, NIC references...) come back
    flattened too: azure-native lifts their ``properties`` the same way."""
    if isinstance(value, list):
        return [_lift_nested(v) for v in value]
    if isinstance(value, dict):
        out = {k: _lift_nested(v) for k, v in value.items() if k != "properties"}
        props = value.get("properties")
        if isinstance(props, dict):
            out.update(_lift_nested(props))
        elif "properties" in value:
            out["properties"] = props
        return out
    return value


def flatten(token: str, arm: Mapping[str, Any]) -> dict[str, Any]:
    """ARM JSON -> azure-native outputs: ``properties.*`` lifted unless the SDK nests them.

    ``id`` is dropped (Pulumi carries it separately); ``azureApiVersion`` is added.
    """
    out = {k: _lift_nested(v) for k, v in arm.items() if k not in ("id", "properties")}
    props = arm.get("properties")
    if props is not None:
        if _keeps_properties(token):
            out["properties"] = _lift_nested(props)
        else:
            out.update(_lift_nested(props))
    if token in API_VERSIONS:
        out["azureApiVersion"] = API_VERSIONS[token]
    return out


@dataclass
class Registration:
    """One resource the program registered: what it sent and what it got back."""

    type: str
    name: str
    inputs: dict[str, Any]
    id: str
    outputs: dict[str, Any]
    custom: bool
    raw_inputs: dict[str, Any] = field(default_factory=dict)
    """Inputs as the monitor received them, secret envelopes included (to assert secrecy)."""
    urn: str = ""
    dependencies: frozenset[str] = frozenset()
    """URNs this resource waits for (``depends_on`` and every input's resource), as the
    Pulumi engine orders its steps; empty when run by a monitor that does not record them."""


@dataclass
class Invocation:
    token: str
    args: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)


class AzureMocks(pulumi_mocks.Mocks):
    """Pulumi mocks answering every azure-native resource and invoke like ARM.

    ``registrations`` records each resource (component or custom) in order, with
    secret-unwrapped inputs, so tests can assert on exactly what would be sent to ARM.
    """

    def __init__(self, backend: ArmBackend | None = None) -> None:
        self.backend: ArmBackend = backend if backend is not None else InMemoryArm()
        self.registrations: list[Registration] = []
        self.invocations: list[Invocation] = []
        self._graph = DependencyGraph()
        self._current = threading.local()

    def begin_registration(self, urn: str, dependencies: Collection[str]) -> None:
        """Called by the monitor just before ``new_resource`` on the same thread."""
        self._current.urn = urn
        self._current.dependencies = frozenset(dependencies)

    # -- pulumi.runtime.Mocks ----------------------------------------------------------

    def new_resource(
        self, args: pulumi_mocks.MockResourceArgs
    ) -> tuple[str | None, dict[Any, Any]]:
        raw = dict(args.inputs)
        inputs = unwrap_secrets(raw)
        urn: str = getattr(self._current, "urn", "")
        deps: frozenset[str] = getattr(self._current, "dependencies", frozenset())
        self._current.urn, self._current.dependencies = "", frozenset()
        if not args.typ.startswith("azure-native:") and args.typ not in _BACKEND_TYPES:
            # Component resources and anything not azure-native: echo the inputs.
            rid = "" if not args.custom else f"{args.name}_id"
            self._graph.add(urn, deps, None)
            self.registrations.append(
                Registration(
                    args.typ, args.name, inputs, rid, inputs, bool(args.custom), raw, urn, deps
                )
            )
            return rid, inputs
        arm_id = self.arm_id(args.typ, args.name, inputs)
        ordering = self._graph.ordering(deps) if urn else None
        arm = self.backend.create_or_update(args.typ, arm_id, inputs, ordering=ordering)
        self._graph.add(urn, deps, arm["id"])
        outputs = flatten(args.typ, arm)
        self.registrations.append(
            Registration(args.typ, args.name, inputs, arm["id"], outputs, True, raw, urn, deps)
        )
        return arm["id"], outputs

    def call(
        self, args: pulumi_mocks.MockCallArgs
    ) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        call_args = unwrap_secrets(dict(args.args))
        result = self.backend.call(args.token, call_args)
        self.invocations.append(Invocation(args.token, call_args, result))
        return result, []  # an empty failure list: the mock monitor iterates it

    # -- ARM IDs ----------------------------------------------------------------------

    def arm_id(self, token: str, logical_name: str, inputs: Mapping[str, Any]) -> str:
        """The ARM ID azure-native would create for ``token`` with these inputs."""
        sub = self.backend.subscription_id
        if token == types.RESOURCE_GROUP:
            return _RG.format(sub=sub, rg=inputs.get("resourceGroupName") or logical_name)
        if token in _EXTENSIONS:
            fmt, key = _EXTENSIONS[token]
            scope = str(inputs["scope"]).rstrip("/")
            return scope + fmt.format(inputs.get(key) or logical_name)
        rg = inputs.get("resourceGroupName") or "unknown-rg"
        if token in _PATHS:
            fmt, keys = _PATHS[token]
            names = [inputs.get(k) or logical_name for k in keys]
            return _RG.format(sub=sub, rg=rg) + fmt.format(*names)
        _, module, type_name = token.split(":")
        provider = "Microsoft." + module.split("/")[0].capitalize()
        type_segment = type_name[0].lower() + type_name[1:] + "s"
        return _RG.format(sub=sub, rg=rg) + f"/providers/{provider}/{type_segment}/{logical_name}"

    # -- conveniences for tests ---------------------------------------------------------

    def of_type(self, token: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == token]

    def custom_registrations(self) -> list[Registration]:
        return [r for r in self.registrations if r.custom]


class DependencyGraph:
    """The order the Pulumi engine would run this program's writes in.

    The engine starts a resource's step once every resource it depends on is done, and
    runs steps with no path between them in parallel. So two writes are concurrent
    exactly when neither resource depends, directly or transitively, on the other. Each
    resource registers only after its dependencies have (the SDK awaits their URNs), so
    when a write arrives everything it could wait for is already in the graph: the answer
    is the same whatever order the executor threads happen to run in.
    """

    def __init__(self) -> None:
        self._deps: dict[str, frozenset[str]] = {}
        self._urn_by_id: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, urn: str, dependencies: frozenset[str], arm_id: str | None) -> None:
        if not urn:
            return
        with self._lock:
            self._deps[urn] = dependencies
            if arm_id:
                self._urn_by_id[arm_id.lower()] = urn

    def ancestors(self, dependencies: Collection[str]) -> set[str]:
        """Every URN reachable from ``dependencies`` (what the write waits for)."""
        seen: set[str] = set()
        todo = list(dependencies)
        with self._lock:
            while todo:
                urn = todo.pop()
                if urn not in seen:
                    seen.add(urn)
                    todo.extend(self._deps.get(urn, ()))
        return seen

    def ordering(self, dependencies: frozenset[str]) -> _GraphOrdering:
        return _GraphOrdering(self, dependencies)

    def urn_of(self, arm_id: str) -> str | None:
        with self._lock:
            return self._urn_by_id.get(arm_id.lower())


class _GraphOrdering:
    """``components.arm.rules.WriteOrdering`` answered from the dependency graph."""

    def __init__(self, graph: DependencyGraph, dependencies: frozenset[str]) -> None:
        self._graph = graph
        self._dependencies = dependencies
        self._ancestors: set[str] | None = None

    def concurrent_with(self, arm_id: str) -> bool:
        other = self._graph.urn_of(arm_id)
        if other is None:  # not written by this deployment: it finished before
            return False
        if self._ancestors is None:
            self._ancestors = self._graph.ancestors(self._dependencies)
        return other not in self._ancestors


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Pulumi's mock monitor, also handing each resource's URN and dependencies to
    mocks that ask for them (``begin_registration``): the plain monitor drops them."""

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        begin = getattr(self.mocks, "begin_registration", None)
        if begin is not None and request.type != "pulumi:pulumi:Stack":
            urn = self.make_urn(request.parent, request.type, request.name)
            begin(urn, set(request.dependencies))
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]


Program = Path | str | Callable[[], None]


class StackOutputs(dict[str, Any]):
    """Resolved stack exports (secrets unwrapped) that remember which were secret.

    ``secret_keys`` names the exports Pulumi would show as ``[secret]``, so a caller that
    prints outputs can hide exactly those.
    """

    def __init__(self, values: Mapping[str, Any], *, secret_keys: frozenset[str]) -> None:
        super().__init__(values)
        self.secret_keys = secret_keys

    def plain(self) -> dict[str, Any]:
        """The exports that are safe to show."""
        return {k: v for k, v in self.items() if k not in self.secret_keys}


def _config_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _full_key(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def run_program(
    program: Program,
    config: Mapping[str, Any],
    *,
    mocks: pulumi_mocks.Mocks,
    project: str = "managed-identity-kit",
    stack: str = "dev",
    secret_keys: Collection[str] = (),
) -> StackOutputs:
    """Run a stack program in the mock runtime; return its exports as plain values.

    ``program`` is a path to a ``__main__.py`` (run like the Pulumi Python host does,
    with its directory on ``sys.path``) or a callable. ``config`` maps full keys
    (``mikit:vms``) or bare keys (taken as ``<project>:<key>``) to values; non-strings
    are JSON-encoded, as the Pulumi CLI passes structured config. Secret outputs are
    unwrapped in the result: callers decide what to show.

    Each call runs in a copy of the current ``contextvars`` context with freshly
    configured Pulumi settings, so runs do not leak into each other or into the caller.
    Exceptions from the program (e.g. :class:`ConfigError`) propagate unchanged. The
    result is a :class:`StackOutputs` (a dict) whose ``secret_keys`` names secret exports.
    """
    full = {_full_key(k, project): _config_value(v) for k, v in config.items()}
    secrets = [_full_key(k, project) for k in secret_keys]
    ctx = contextvars.copy_context()
    return ctx.run(
        lambda: _run_isolated(
            program, config=full, secret_keys=secrets, mocks=mocks, project=project, stack=stack
        )
    )


def _run_isolated(
    program: Program,
    *,
    config: dict[str, str],
    secret_keys: list[str],
    mocks: pulumi_mocks.Mocks,
    project: str,
    stack: str,
) -> StackOutputs:
    monitor = RecordingMonitor(mocks)
    info = monitor.GetDeploymentInfo(None)  # type: ignore[no-untyped-call]
    settings.ROOT.set(None)
    settings.configure(
        pulumi_mocks.MockSettings(  # type: ignore[no-untyped-call]
            monitor=monitor,
            monitor_features=set(info.supportedFeatures),
            engine=pulumi_mocks.MockEngine(None),
            project=project,
            stack=stack,
            dry_run=False,
            organization="organization",
            root_directory=str(Path(program).parent) if not callable(program) else None,
            callbacks=None,
            # Fresh per run: the defaults are shared objects, and a failed run leaves
            # pending output tasks (bound to its closed loop) that the next would await.
            outputs=set(),
            lock=threading.Lock(),
            package_refs={},
            base_providers_by_ref={},
            legacy_apply_enabled=False,
        )
    )
    set_all_config(config, secret_keys)
    body = _as_callable(program)
    loop = asyncio.new_event_loop()
    # Pulumi's mock monitor runs in executor threads and gives each thread an event loop
    # of its own; a pool we own lets us close those loops instead of leaving them to GC.
    thread_loops: list[asyncio.AbstractEventLoop] = []
    lock = threading.Lock()

    def give_thread_a_loop() -> None:
        thread_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(thread_loop)
        with lock:
            thread_loops.append(thread_loop)

    pool = ThreadPoolExecutor(thread_name_prefix="mikit-mocks", initializer=give_thread_a_loop)
    loop.set_default_executor(pool)
    # The SDK allocates millions of short-lived futures, tasks and closures per run, so the
    # cyclic collector kept re-scanning an ever larger heap: 60-75% of a 100-VM run went
    # to full collections (tests/benchmarks). Refcounting still frees almost everything;
    # the few cycles wait for the next collection after the run.
    collect = gc.isenabled()
    gc.disable()
    try:
        # Not installed as the thread's current loop: the caller's loop state is left
        # as it was (the program runs inside this loop, where Pulumi finds it).
        return loop.run_until_complete(_run_in_stack(body))
    finally:
        _cancel_leftovers(loop)
        if collect:
            gc.enable()
        loop.close()
        pool.shutdown(wait=True)
        for thread_loop in thread_loops:
            thread_loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and await what a failed run left pending on its loop.

    A program that raises mid-deploy (bad input found inside an apply, a mock refusing a
    resource) leaves output tasks waiting on each other; closed with the loop, each is
    reported as "Task was destroyed but it is pending!" when the interpreter exits.
    """
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _as_callable(program: Program) -> Callable[[], None]:
    if callable(program):
        return program
    path = Path(program).resolve()
    if path.is_dir():
        path = path / "__main__.py"

    def run_path() -> None:
        sys.path.insert(0, str(path.parent))
        try:
            runpy.run_path(str(path), run_name="__main__")
        finally:
            sys.path.remove(str(path.parent))

    return run_path


async def _run_in_stack(body: Callable[[], None]) -> StackOutputs:
    """Like pulumi.runtime.run_in_stack, but hands back the root stack's exports."""
    holder: dict[str, pulumi_stack.Stack] = {}

    def in_stack() -> None:
        root = pulumi_stack.Stack()
        holder["stack"] = root
        try:
            body()
        finally:
            root._finish()

    await pulumi_stack.run_pulumi_func(in_stack)
    exports = holder["stack"].outputs
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for name, value in exports.items():
        values[name], is_secret = await _resolve(value)
        if is_secret:
            secret.add(name)
    return StackOutputs(values, secret_keys=frozenset(secret))


async def _resolve(value: Any) -> tuple[Any, bool]:
    """An export's plain value, and whether any Output in it was secret.

    Awaits each Output once and walks plain containers in Python. ``Output.from_input``
    would wrap every nested dict and list of an already-resolved value in further
    Outputs: for a 400-row access matrix that was ~10% of a whole 25-VM program run.
    """
    if isinstance(value, pulumi.Output):
        inner, inner_secret = await _resolve(await value.future())
        return inner, inner_secret or await value.is_secret()
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        any_secret = False
        for key, item in value.items():
            out[key], item_secret = await _resolve(item)
            any_secret = any_secret or item_secret
        return out, any_secret
    if isinstance(value, (list, tuple)):
        items = [await _resolve(item) for item in value]
        resolved = [item for item, _ in items]
        return (
            tuple(resolved) if isinstance(value, tuple) else resolved,
            any(s for _, s in items),
        )
    return value, False
