"""What every real-Azure host path shares: its context, its interface and its errors.

A *host path* knows how to run the self-contained probe (verify/probe.py) inside one kind
of host, with that host's own identity and no inbound secret: Run Command on a VM or a
scale-set instance, the Kudu command API of a web or Function app, a Container Apps job
holding the app's user-assigned identities, a Kubernetes Job under a workload's service
account. Each is one module behind :class:`HostPath`; :mod:`verify.targets.azure_hosts`
maps a :class:`~verify.targets.base.ProbeRequest`'s ``host_kind`` to its path in one table.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from verify.model import ProbeResult, StackOutputs
from verify.probe import parse_output
from verify.targets.base import ProbeRequest
from verify.targets.probing import build_spec

#: The probe's watchdog fires this long after its budget (verify/probe.py default).
PROBE_WATCHDOG_GRACE_SECONDS = 5.0


class HostProbeError(RuntimeError):
    """The probe could not be run in the host, or gave no result: nothing was proved."""


class HostTimeoutError(TimeoutError):
    """The host did not report back within the client-side bound: nothing was proved."""


class MissingPermissionError(HostProbeError):
    """Azure (or the cluster) refused the operator a call; names what to grant."""

    def __init__(self, what: str, status: int, action: str, role: str, detail: str = "") -> None:
        self.action = action
        self.role = role
        self.status = status
        extra = f": {detail}" if detail else ""
        super().__init__(
            f"{what} was refused ({status}){extra}; the operator needs {action} "
            f"(e.g. the built-in role {role})"
        )


@dataclass
class HostContext:
    """What a host path may use: the deployment, the operator's clients, the bounds.

    ``raw`` is the stack outputs as exported (docs/contracts.md): host sections the typed
    :class:`StackOutputs` does not model (``apps``, ``scale_sets``, ``clusters``) are read
    from it by the path that needs them. ``http`` is a ``requests.Session``-like object
    (``request(method, url, **kwargs)``), ``credential`` the operator's TokenCredential.
    """

    outputs: StackOutputs
    raw: Mapping[str, Any]
    credential: Any = None
    compute: Any = None
    http: Any = None
    polling_interval: float = 5.0
    cloud_init_wait: int = 900
    run_command_overhead: float = 600.0
    probe_pythons: Sequence[str] = ()
    ca_bundle: str | None = None
    verify_challenge_resource: bool = True
    token_dir: str | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    #: Extra per-path settings (images, log waits...), by name.
    options: dict[str, Any] = field(default_factory=dict)

    def spec(self, request: ProbeRequest, token_dir: str | None = None) -> dict[str, Any]:
        """The probe's JSON spec for ``request`` (verify/probe.py ``load_spec``)."""
        return build_spec(
            self.outputs,
            request,
            ca_bundle=self.ca_bundle,
            verify_challenge_resource=self.verify_challenge_resource,
            token_dir=token_dir,
        )


class HostPath(Protocol):
    """Runs the probe in one kind of host and returns what it printed."""

    @property
    def permissions(self) -> tuple[str, ...]:
        """The Azure permissions the operator needs for this path (docs/verify.md)."""
        ...

    def probe(self, ctx: HostContext, request: ProbeRequest) -> ProbeResult: ...


def host_key(host: str) -> str:
    """A host's key in its outputs section (``scaleset:web`` and ``web`` both name ``web``)."""
    return host.split(":", 1)[-1]


def probe_budget(spec: Mapping[str, Any]) -> float:
    """How long the probe itself may run: its budget plus its watchdog's grace."""
    budget = float(spec.get("budget_seconds") or 30.0)
    grace = float(spec.get("watchdog_grace_seconds") or PROBE_WATCHDOG_GRACE_SECONDS)
    return budget + grace


def result_from(text: str, where: str, note: str = "") -> ProbeResult:
    """The probe's result in ``text`` (between its markers), or a HostProbeError naming
    ``where`` with the output's tail (never a token: the probe prints none)."""
    try:
        return ProbeResult.model_validate(parse_output(text))
    except ValueError as exc:
        tail = text.strip()[-400:]
        raise HostProbeError(f"{where} gave no probe result{note}: {tail}") from exc


def wait_until(
    ctx: HostContext,
    bound: float,
    poll: Callable[[], Any],
    describe: str,
) -> Any:
    """Call ``poll`` every ``ctx.polling_interval`` until it returns something other than
    None, at most ``bound`` seconds; then raise :class:`HostTimeoutError` naming
    ``describe``."""
    deadline = ctx.clock() + bound
    while True:
        found = poll()
        if found is not None:
            return found
        if ctx.clock() >= deadline:
            raise HostTimeoutError(f"{describe} did not finish within {bound:.0f} s: not probed")
        ctx.sleep(max(0.0, min(ctx.polling_interval, deadline - ctx.clock())))
