"""Management locks and scope existence in the sandbox's state: the data ARM's shared rules
(:mod:`components.arm.rules`) read, so a lock made by a deploy holds for the ARM front too.

A lock is ``(scope, name, level)``; ``CanNotDelete`` refuses deletes at and below its scope,
``ReadOnly`` every write (``rules.check_not_locked``). Scope existence answers for resource
groups, the resources the state models (identities, VMs, vaults, secrets, storage accounts,
containers) and any other resource a deploy created (:meth:`LocksMixin.note_resource`: a
VNet or NIC the state does not model is still a scope a role assignment can target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components import armid
from verify.sandbox.state.base import StateBase
from verify.sandbox.state.records import SandboxError, key

#: ARM's lock levels (``LockLevel`` in the Microsoft.Authorization locks spec).
LOCK_LEVELS = ("CanNotDelete", "ReadOnly")
LOCKS_SEGMENT = "/providers/Microsoft.Authorization/locks/"


@dataclass(frozen=True)
class ManagementLock:
    id: str
    scope: str
    name: str
    level: str
    notes: str | None = None


class LocksMixin(StateBase):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._locks: dict[str, ManagementLock] = {}
        self._other_resources: set[str] = set()

    def create_lock(
        self, scope: str, name: str, level: str, notes: str | None = None
    ) -> ManagementLock:
        """Create or update the lock ``name`` at ``scope`` (any ARM scope)."""
        canonical = next((lv for lv in LOCK_LEVELS if lv.lower() == level.lower()), None)
        if canonical is None:
            raise SandboxError(
                400,
                "InvalidLockLevel",
                f"The lock level '{level}' is not valid; use CanNotDelete or ReadOnly.",
            )
        scope = scope.rstrip("/")
        lock = ManagementLock(scope + LOCKS_SEGMENT + name, scope, name, canonical, notes)
        with self._lock:
            self._locks[key(lock.id)] = lock
        return lock

    def lock(self, lock_id: str) -> ManagementLock | None:
        with self._lock:
            return self._locks.get(key(lock_id))

    def delete_lock(self, lock_id: str) -> bool:
        """Delete a lock (never itself refused by a lock: that is how one is lifted)."""
        with self._lock:
            return self._locks.pop(key(lock_id), None) is not None

    def management_locks(self, scope: str | None = None) -> list[ManagementLock]:
        """Every lock, or those that apply at ``scope`` (at it or above it)."""
        with self._lock:
            found = list(self._locks.values())
        if scope is None:
            return found
        return [lock for lock in found if armid.is_within(lock.scope, scope)]

    def lock_levels(self) -> list[tuple[str, str]]:
        """``(scope, level)`` of every lock: what ``rules.check_not_locked`` reads."""
        return [(lock.scope, lock.level) for lock in self.management_locks()]

    def note_resource(self, arm_id: str) -> None:
        """Record a resource a deploy created that the state does not model (a VNet, a
        NIC...), so it exists as a scope."""
        with self._lock:
            self._other_resources.add(key(arm_id))

    def forget_resource(self, arm_id: str) -> None:
        """A noted resource was deleted (through the ARM front)."""
        with self._lock:
            self._other_resources.discard(key(arm_id))

    def _noted(self, arm_id: str) -> bool:
        with self._lock:
            return key(arm_id) in self._other_resources
