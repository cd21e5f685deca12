"""The core of the sandbox's state: one lock, events, principals and resource groups.

The concept modules (:mod:`verify.sandbox.state.keyvault`, :mod:`verify.sandbox.state.rbac`,
and the identities and VMs in :mod:`verify.sandbox.state.store`) extend :class:`StateBase`
as cooperative mixins, so they share this one lock and this one directory of principals:
a principal deleted here is gone for every service at the same instant, as on Azure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from components import armid
from components.arm import shapes as arm_shapes
from components.arm.store import ArmStore
from components.roles import RoleCatalog
from verify.sandbox.state.records import (
    EventKind,
    PrincipalKind,
    ResourceGroup,
    SandboxError,
    ServicePrincipal,
    UserAssignedIdentity,
    key,
    new_guid,
)
from verify.sandbox.state.snapshot import DataTree, data_copy, restore_data

Listener = Callable[[EventKind, object], None]

#: Attributes that are no part of the state's data: kept as they are across a restore (the
#: lock and event subscribers are left out anyway, as a lock and callables).
_NOT_SNAPSHOT = frozenset({"_lock", "_listeners", "catalog", "clock"})


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
        #: The ARM documents (and the values beside them) of the sandbox's one ARM model
        #: (``Sandbox.arm`` reads and writes this store): resource groups, locks, federated
        #: credentials and the resources the state does not model are those documents, not
        #: copies.
        self.arm_store = ArmStore()
        self._listeners: list[Listener] = []

    # --------------------------------------------------------------- snapshots
    def snapshot(self) -> DataTree:
        """A deep copy of everything the state holds (every mixin's data, and any nested
        store), for :meth:`restore`. Not the lock, the subscribers, the catalog or the clock."""
        with self._lock:
            return data_copy(self, _NOT_SNAPSHOT)

    def restore(self, snapshot: DataTree) -> None:
        """Back to exactly what ``snapshot`` holds (it can be restored again). No events:
        whoever keeps something in step with the state (the sandbox's listeners) syncs
        itself afterwards."""
        with self._lock:
            restore_data(self, snapshot, _NOT_SNAPSHOT)

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

    # Provided by SandboxState (identities live with the VMs).
    def identity(self, identity_id: str) -> UserAssignedIdentity | None:
        raise NotImplementedError

    def _identity_block(
        self,
        host: tuple[str, str],
        principal_id: str | None,
        system_assigned: bool,
        user_assigned: Sequence[str],
        *,
        kept: Collection[str],
        events: list[tuple[EventKind, object]],
    ) -> tuple[str | None, tuple[str, ...]]:
        """The system principal and user-assigned IDs a host (``(name, resource id)``) holds
        after a PUT or PATCH of its ``identity`` (lock held).

        A user-assigned identity that does not exist is refused, as ARM refuses it, unless
        its key is in ``kept`` (attached before it was deleted: the reference survives).
        Turning the system identity on makes a principal; turning it off deletes it, noted
        in ``events``.
        """
        ids: list[str] = []
        for uai_id in user_assigned:
            uai = self.identity(uai_id)
            if uai is None and key(uai_id) not in kept:
                raise SandboxError(
                    400,
                    "FailedIdentityOperation",
                    f"Identity '{uai_id}' does not exist or cannot be assigned.",
                )
            if key(uai_id) not in {key(i) for i in ids}:
                ids.append(uai.id if uai else uai_id)
        name, resource_id = host
        if system_assigned and principal_id is None:
            principal_id = self.create_principal(name, "system", resource_id).object_id
        elif not system_assigned and principal_id is not None:
            events.append(("principal_deleted", self._delete_principal(principal_id)))
            principal_id = None
        return principal_id, tuple(ids)

    # --------------------------------------------------------- resource groups
    def create_resource_group(self, name: str, location: str | None = None) -> ResourceGroup:
        """PUT semantics of a group that exists: it is kept as it is (location, tags)."""
        rg_id = str(armid.resource_group(self.subscription_id, name))
        with self._lock:
            existing = self.arm_store.resources.get(key(rg_id))
            if existing is None:
                existing = arm_shapes.resource_group(
                    arm_id=rg_id, location=location or self.location
                )
                self.arm_store.resources[key(rg_id)] = existing
            return _group_record(existing)

    def resource_group(self, name: str) -> ResourceGroup | None:
        """The group, from its one record: the ARM model's document."""
        with self._lock:
            rg_id = str(armid.resource_group(self.subscription_id, name))
            doc = self.arm_store.resources.get(key(rg_id))
            return None if doc is None else _group_record(doc)

    def _require_group(self, name: str) -> ResourceGroup:
        rg = self.resource_group(name)
        if rg is None:
            raise SandboxError(
                404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found."
            )
        return rg

    def _resource_id(self, group: str, provider: str, type_: str, name: str) -> str:
        return str(armid.resource(self.subscription_id, group, provider, type_, name))


def _group_record(doc: dict[str, Any]) -> ResourceGroup:
    """A resource group's record, read from its ARM document."""
    return ResourceGroup(str(doc["id"]), str(doc["name"]), str(doc["location"]))
