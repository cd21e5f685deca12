"""The sandbox's per-resource listeners, kept in step with its state.

Each VM and scale-set instance has its own IMDS listener, each app its own identity
endpoint, each vault its own Key Vault listener and each storage account its own Blob
listener. One is started the moment its resource is created and stopped when it is
deleted (the state's events), and :meth:`ResourceListeners.sync` brings the whole set in
line with the state at once: on start, and on a restore, where every listener answers at
the port it had when the snapshot was taken (the stack's outputs carry the vault URLs and
blob endpoints).

A port a snapshot recorded is held (:func:`~verify.sandbox.server.hold_port`) from the
moment its listener stops until one binds it again: a freed loopback port is soon some
client's ephemeral port (here or in any other program on the machine), and the restore
could not bind it then. Held, it refuses connections as a closed port does.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from verify.sandbox.appservice import errors as appservice_errors
from verify.sandbox.appservice.service import AppServiceIdentity
from verify.sandbox.blob import errors as blob_errors
from verify.sandbox.blob.service import BlobService
from verify.sandbox.imds import errors as imds_errors
from verify.sandbox.imds.service import ImdsService
from verify.sandbox.keyvault import errors as keyvault_errors
from verify.sandbox.keyvault.service import KeyVaultService
from verify.sandbox.server import Listener, hold_port
from verify.sandbox.state.store import SandboxState

#: Listener kinds, each a family of resources with one listener per resource.
IMDS = "imds"
APP = "appservice"
VAULT = "keyvault"
BLOB = "blob"

#: State event -> (listener kind, True to start / False to stop).
EVENTS: dict[str, tuple[str, bool]] = {
    "vm_created": (IMDS, True),
    "vm_deleted": (IMDS, False),
    "instance_created": (IMDS, True),  # a scale-set instance: its own IMDS, the set's principals
    "instance_deleted": (IMDS, False),
    "app_created": (APP, True),
    "app_deleted": (APP, False),
    "vault_created": (VAULT, True),
    "vault_deleted": (VAULT, False),
    "storage_account_created": (BLOB, True),
    "storage_account_deleted": (BLOB, False),
}


class Listen(Protocol):
    def __call__(
        self,
        app: Any,
        service: str,
        target: str,
        error_body: Any,
        *,
        port: int = 0,
        tls: bool = False,
        aliases: tuple[str, ...] = (),
        reuse_port: bool = False,
    ) -> Listener: ...


@dataclass(frozen=True)
class ListenerKind:
    """One family of per-resource listeners: what the state holds, how each is keyed
    and served."""

    resources: Callable[[], Iterable[Any]]
    key: Callable[[Any], str]
    app: Callable[[Any], Any]
    error_body: Any
    tls: bool
    target: Callable[[Any], str] = lambda obj: str(obj.name)
    aliases: Callable[[Any], tuple[str, ...]] = lambda obj: (str(obj.id),)


def resource_kinds(
    state: SandboxState,
    imds: ImdsService,
    appservice: AppServiceIdentity,
    keyvault: KeyVaultService,
    blob: BlobService,
) -> dict[str, ListenerKind]:
    """The sandbox's per-resource listeners: IMDS per VM and scale-set instance, an identity
    endpoint per app (plain HTTP, as the platform's is reached over the app's own loopback),
    Key Vault per vault and Blob per storage account (HTTPS)."""
    return {
        IMDS: ListenerKind(
            lambda: [*state.vms(), *state.instances()],
            key=lambda vm: vm.id,
            app=lambda vm: imds.app(vm.id),
            error_body=imds_errors.fault_error_body,
            tls=False,
        ),
        APP: ListenerKind(
            state.apps,
            key=lambda app: app.id,
            app=lambda app: appservice.app(app.id),
            error_body=appservice_errors.fault_error_body,
            tls=False,
        ),
        VAULT: ListenerKind(
            state.vaults,
            key=lambda vault: vault.name,
            app=lambda vault: keyvault.app(vault.name),
            error_body=keyvault_errors.fault_error_body,
            tls=True,
        ),
        BLOB: ListenerKind(
            state.storage_accounts,
            key=lambda account: account.name,
            app=lambda account: blob.app(account.name),
            error_body=blob_errors.fault_error_body,
            tls=True,
        ),
    }


#: Listener kind -> resource key -> port: where each listener answers.
Ports = dict[str, dict[str, int]]


class ResourceListeners:
    """The per-resource listeners of a started sandbox, by kind and resource key."""

    def __init__(self, lock: threading.RLock, listen: Listen, kinds: Mapping[str, ListenerKind]):
        self._lock = lock
        self._listen = listen
        self._kinds = dict(kinds)
        self._live: dict[str, dict[str, Listener]] = {kind: {} for kind in kinds}
        # Stopped from a request handler (on the loop thread, which cannot wait on itself):
        # waited for before a port is bound again.
        self._stopping: list[Listener] = []
        self._recorded: set[int] = set()  # ports a snapshot recorded: held once freed
        self._held: dict[int, socket.socket] = {}

    def get(self, kind: str, key: str) -> Listener | None:
        with self._lock:
            return self._live[kind].get(key.lower())

    def start(self, kind: str, obj: Any, port: int = 0) -> None:
        spec = self._kinds[kind]
        key = spec.key(obj).lower()
        with self._lock:
            if key in self._live[kind]:
                return
            self._live[kind][key] = self._listen(
                spec.app(obj),
                kind,
                spec.target(obj),
                spec.error_body,
                port=port,
                tls=spec.tls,
                aliases=spec.aliases(obj),
                reuse_port=True,
            )
            held = self._held.pop(port, None) if port else None
        if held is not None:
            held.close()

    def stop(self, kind: str, key: str, *, wait: bool = True) -> None:
        """Stop a resource's listener; ``wait=False`` leaves it finishing (see :meth:`sync`)."""
        with self._lock:
            listener = self._live[kind].pop(key.lower(), None)
            if listener is None:
                return
            if listener.port in self._recorded and listener.port not in self._held:
                self._held[listener.port] = hold_port(listener.host, listener.port)
        # From a request handler (an ARM DELETE) we run on the loop: it cannot wait on itself.
        if wait and threading.current_thread().name != "sandbox-loop":
            listener.stop()
            return
        listener.stop(wait=False)
        with self._lock:
            self._stopping.append(listener)

    def on_event(self, event: str, obj: Any) -> None:
        """Start or stop the listener a state event concerns."""
        found = EVENTS.get(event)
        if found is None:
            return
        kind, created = found
        if created:
            self.start(kind, obj)
        else:
            self.stop(kind, self._kinds[kind].key(obj))

    def ports(self) -> Ports:
        """Where each listener answers, for a snapshot: these ports are held once freed."""
        with self._lock:
            found = {
                kind: {key: listener.port for key, listener in live.items()}
                for kind, live in self._live.items()
            }
            self._recorded |= {port for ports in found.values() for port in ports.values()}
            return found

    def sync(self, ports: Ports | None = None) -> None:
        """One listener per resource the state holds, none for any other; with ``ports``,
        each at its port there (a listener elsewhere is moved). The listeners to go are
        stopped together, then the missing ones started."""
        wanted: dict[str, dict[str, Any]] = {}
        for kind, spec in self._kinds.items():
            wanted[kind] = {spec.key(obj).lower(): obj for obj in spec.resources()}
            at = (ports or {}).get(kind, {})
            with self._lock:
                live = dict(self._live[kind])
            for key, listener in live.items():
                if key not in wanted[kind] or (key in at and listener.port != at[key]):
                    self.stop(kind, key, wait=False)
        self._wait_stopping()
        for kind, objs in wanted.items():
            at = (ports or {}).get(kind, {})
            for key, obj in objs.items():
                self.start(kind, obj, at.get(key, 0))

    def _wait_stopping(self) -> None:
        with self._lock:
            stopping, self._stopping = self._stopping, []
        for listener in stopping:
            listener.wait()

    def take_all(self) -> list[Listener]:
        """Every listener, forgotten here: the caller stops them (with the others)."""
        with self._lock:
            taken = [listener for live in self._live.values() for listener in live.values()]
            taken += self._stopping
            for live in self._live.values():
                live.clear()
            self._stopping = []
            for held in self._held.values():
                held.close()
            self._held.clear()
        return taken
