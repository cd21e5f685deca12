"""Faults on demand: what the sandbox does wrong, when a test or a config file asks.

Real Azure throttles (429 with ``Retry-After``), fails (500), answers IMDS with 410 while
it restarts, is slow, drops connections, takes time to propagate a role assignment, and
may or may not honour a token whose principal was deleted. Each of these is one
:class:`Fault` (per service, optionally per VM/vault, per path, per method, for a number
of requests) or one knob on :class:`FaultPlan`, programmable from tests::

    sb.faults.add(Fault(service="keyvault", status=429, retry_after=1, times=1))
    with sb.faults.injected(Fault(service="imds", kind="reset")):
        ...
    sb.faults.propagation_delay_seconds = 2
    sb.faults.deleted_principal_tokens = "refuse"

and from a TOML or JSON file (see :meth:`FaultPlan.load`)::

    propagation_delay_seconds = 0
    deleted_principal_tokens = "accept"     # or "refuse"
    federated_credential_write_seconds = 0  # hold an accepted credential write in flight
    [[faults]]
    service = "imds"                        # imds | keyvault | blob | arm | issuer | graph | *
    kind = "status"                         # status | delay | reset
    status = 429
    retry_after = 1
    target = "vm-web"                       # VM, vault or storage account name; omit for all
    path = "/secrets/"                      # substring of the request path; omit for all
    times = 2                               # omit for "until cleared"
"""

from __future__ import annotations

import itertools
import json
import threading
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from components.errors import ConfigError

FaultKind = Literal["status", "delay", "reset"]
SERVICES = ("imds", "keyvault", "blob", "arm", "issuer", "graph", "oidc", "aks-oidc", "*")
KINDS = ("status", "delay", "reset")
DeletedPrincipalTokens = Literal["accept", "refuse"]
_ids = itertools.count(1)


@dataclass
class Fault:
    """One injected misbehaviour.

    ``status``: answer ``status`` (with ``Retry-After: retry_after`` when given) in the
    service's own error shape instead of handling the request. ``delay``: sleep
    ``delay_seconds`` and then handle the request normally. ``reset``: drop the TCP
    connection with a RST before any response byte.
    """

    service: str
    kind: FaultKind = "status"
    status: int = 500
    retry_after: int | None = None
    delay_seconds: float = 0.0
    target: str | None = None
    path: str | None = None
    method: str | None = None
    times: int | None = None
    hits: int = field(default=0, compare=False)
    id: int = field(default_factory=lambda: next(_ids), compare=False)

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise ConfigError(
                "fault.service", self.service, "is not a sandbox service", f"use one of {SERVICES}"
            )
        if self.kind not in KINDS:
            raise ConfigError("fault.kind", self.kind, "is not a fault kind", f"use one of {KINDS}")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise ConfigError(
                "fault.status", self.status, "is not an HTTP error status", "use 400-599"
            )
        if self.delay_seconds < 0:
            raise ConfigError("fault.delay_seconds", self.delay_seconds, "is negative", "use >= 0")
        if self.times is not None and self.times < 1:
            raise ConfigError(
                "fault.times", self.times, "must be at least 1", "omit it for no limit"
            )

    def applies(self, service: str, targets: Iterable[str], method: str, path: str) -> bool:
        return (
            self.service in ("*", service)
            and (self.target is None or self.target.lower() in {t.lower() for t in targets})
            and (self.method is None or self.method.upper() == method.upper())
            and (self.path is None or self.path.lower() in path.lower())
        )


class FaultPlan:
    """The active faults and knobs; thread-safe, consulted on every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.propagation_delay_seconds: float = 0.0
        self.deleted_principal_tokens: DeletedPrincipalTokens = "accept"
        #: How long (at most) ARM keeps a federated-credential write in flight after
        #: accepting it; a second write on the same identity meanwhile gets Azure's 409
        #: ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity, and once that
        #: one is answered the first leaves flight.
        self.federated_credential_write_seconds: float = 0.0

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault: Fault) -> None:
        with self._lock:
            self._faults = [f for f in self._faults if f.id != fault.id]

    def clear(self) -> None:
        """Remove every fault and reset the knobs to Azure's defaults of this sandbox."""
        with self._lock:
            self._faults.clear()
        self.propagation_delay_seconds = 0.0
        self.deleted_principal_tokens = "accept"
        self.federated_credential_write_seconds = 0.0

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    @contextmanager
    def injected(self, *faults: Fault) -> Iterator[list[Fault]]:
        """Faults active only inside the ``with`` block."""
        added = [self.add(f) for f in faults]
        try:
            yield added
        finally:
            for f in added:
                self.remove(f)

    def take(self, service: str, targets: Iterable[str], method: str, path: str) -> Fault | None:
        """The first fault matching this request; counts the hit and retires spent faults."""
        targets = list(targets)
        with self._lock:
            for fault in self._faults:
                if fault.applies(service, targets, method, path):
                    fault.hits += 1
                    if fault.times is not None and fault.hits >= fault.times:
                        self._faults.remove(fault)
                    return fault
        return None

    # ------------------------------------------------------------- config file
    def apply(self, config: dict[str, Any], source: str = "faults") -> None:
        """Apply a parsed config (see the module docstring for its keys)."""
        known = {
            "propagation_delay_seconds",
            "deleted_principal_tokens",
            "federated_credential_write_seconds",
            "faults",
        }
        unknown = set(config) - known
        if unknown:
            raise ConfigError(
                source, sorted(unknown), "has unknown keys", f"use only {sorted(known)}"
            )
        if "propagation_delay_seconds" in config:
            delay = config["propagation_delay_seconds"]
            if not isinstance(delay, int | float) or delay < 0:
                raise ConfigError(
                    f"{source}.propagation_delay_seconds",
                    delay,
                    "is not a number >= 0",
                    "e.g. 0 or 30",
                )
            self.propagation_delay_seconds = float(delay)
        if "federated_credential_write_seconds" in config:
            hold = config["federated_credential_write_seconds"]
            if not isinstance(hold, int | float) or hold < 0:
                raise ConfigError(
                    f"{source}.federated_credential_write_seconds",
                    hold,
                    "is not a number >= 0",
                    "e.g. 0 or 2",
                )
            self.federated_credential_write_seconds = float(hold)
        if "deleted_principal_tokens" in config:
            mode = config["deleted_principal_tokens"]
            if mode not in ("accept", "refuse"):
                raise ConfigError(
                    f"{source}.deleted_principal_tokens",
                    mode,
                    "is not a mode",
                    "use 'accept' or 'refuse'",
                )
            self.deleted_principal_tokens = mode
        allowed = {f.name for f in fields(Fault)} - {"hits", "id"}
        for i, raw in enumerate(config.get("faults", [])):
            extra = set(raw) - allowed
            if extra:
                raise ConfigError(
                    f"{source}.faults[{i}]",
                    sorted(extra),
                    "has unknown keys",
                    f"use only {sorted(allowed)}",
                )
            self.add(Fault(**raw))

    def load(self, path: str | Path) -> None:
        """Load a ``.toml`` or ``.json`` fault file."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise ConfigError(
                "faults_file", str(p), f"cannot be read ({exc.strerror})", "give an existing file"
            ) from exc
        try:
            config = json.loads(text) if p.suffix.lower() == ".json" else tomllib.loads(text)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                "faults_file", str(p), f"is not valid {p.suffix or 'TOML'}: {exc}", "fix the syntax"
            ) from exc
        self.apply(config, source=p.name)
