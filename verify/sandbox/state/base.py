"""The core of the sandbox's state: one lock, events, principals and resource groups.

The concept modules (:mod:`verify.sandbox.state.keyvault`, :mod:`verify.sandbox.state.rbac`,
and the identities and VMs in :mod:`verify.sandbox.state.store`) extend :class:`StateBase`
as cooperative mixins, so they share this one lock and this one directory of principals:
a principal deleted here is gone for every service at the same instant, as on Azure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from components import armid
from components.roles import RoleCatalog
from verify.sandbox.state.records import (
    EventKind,
    PrincipalKind,
    ResourceGroup,
    SandboxError,
    ServicePrincipal,
    key,
    new_guid,
)

Listener = Callable[[EventKind, object], None]


class StateBase:
    """Thread-safe in-memory Azure core: one tenant, one subscription."""

    def __init__(
        self,
        tenant_id: str,
        subscription_id: str,
        location: str = "westeurope",
        catalog: RoleCatalog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tenant_id = tenant_id
        self.subscription_id = subscription_id
        self.location = location
        self.catalog = catalog or RoleCatalog.builtin()
        self.clock = clock
        self._lock = threading.RLock()
        self._principals: dict[str, ServicePrincipal] = {}
        self._groups: dict[str, ResourceGroup] = {}
        self._listeners: list[Listener] = []

    # ----------------------------------------------------------------- events
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(kind, obj)`` after each lifecycle change (outside the lock)."""
        self._listeners.append(listener)

    def _emit(self, events: Iterable[tuple[EventKind, object]]) -> None:
        for kind, obj in events:
            for listener in list(self._listeners):
                listener(kind, obj)

    # ------------------------------------------------------------- principals
    def create_principal(
        self, display_name: str, kind: PrincipalKind = "application", resource_id: str | None = None
    ) -> ServicePrincipal:
        """A new service principal; used directly for operators and test applications."""
        sp = ServicePrincipal(new_guid(), new_guid(), display_name, kind, resource_id)
        with self._lock:
            self._principals[sp.object_id] = sp
        return sp

    def principal(self, object_id: str) -> ServicePrincipal | None:
        with self._lock:
            return self._principals.get(object_id.lower())

    def principal_by_client_id(self, client_id: str) -> ServicePrincipal | None:
        with self._lock:
            return next(
                (p for p in self._principals.values() if p.client_id == client_id.lower()), None
            )

    def principals(self) -> list[ServicePrincipal]:
        with self._lock:
            return list(self._principals.values())

    def _delete_principal(self, object_id: str) -> ServicePrincipal | None:
        return self._principals.pop(object_id, None)

    # --------------------------------------------------------- resource groups
    def create_resource_group(self, name: str, location: str | None = None) -> ResourceGroup:
        rg_id = str(armid.resource_group(self.subscription_id, name))
        with self._lock:
            existing = self._groups.get(key(rg_id))
            if existing:
                return existing
            rg = ResourceGroup(rg_id, name, location or self.location)
            self._groups[key(rg_id)] = rg
            return rg

    def resource_group(self, name: str) -> ResourceGroup | None:
        with self._lock:
            rg_id = str(armid.resource_group(self.subscription_id, name))
            return self._groups.get(key(rg_id))

    def _require_group(self, name: str) -> ResourceGroup:
        rg = self.resource_group(name)
        if rg is None:
            raise SandboxError(
                404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found."
            )
        return rg

    def _resource_id(self, group: str, provider: str, type_: str, name: str) -> str:
        return str(armid.resource(self.subscription_id, group, provider, type_, name))
