"""Management locks and scope existence in the sandbox's state: the data ARM's shared rules
(:mod:`components.arm.rules`) read, so a lock made by a deploy holds for the ARM front too.

A lock is ``(scope, name, level)``; ``CanNotDelete`` refuses deletes at and below its scope,
``ReadOnly`` every write (``rules.check_not_locked``). Scope existence answers for resource
groups, the resources the state models (identities, VMs, vaults, secrets, storage accounts,
containers) and any other resource whose document the sandbox's ARM model holds (a VNet or
NIC the state does not model is still a scope a role assignment can target).

The locks are the model's documents (``Microsoft.Authorization/locks`` in :attr:`arm_store`),
not a copy of them: a lock made by a deploy, through the ARM front or here is one record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components import armid
from components.arm import shapes as arm_shapes
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
        super().__init__(*args, **kwargs)  # StateBase makes ``arm_store``
        self.subscribe(self._drop_documents)

    @property
    def _documents(self) -> dict[str, dict[str, Any]]:
        return self.arm_store.resources

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
        doc = arm_shapes.management_lock(
            scope=scope.rstrip("/"), name=name, level=canonical, notes=notes
        )
        with self._lock:
            self._documents[key(doc["id"])] = doc
        return _lock_record(doc)

    def lock(self, lock_id: str) -> ManagementLock | None:
        with self._lock:
            doc = self._documents.get(key(lock_id))
        return _lock_record(doc) if doc is not None and _is_lock(doc) else None

    def delete_lock(self, lock_id: str) -> bool:
        """Delete a lock (never itself refused by a lock: that is how one is lifted)."""
        with self._lock:
            doc = self._documents.get(key(lock_id))
            if doc is None or not _is_lock(doc):
                return False
            del self._documents[key(lock_id)]
            return True

    def management_locks(self, scope: str | None = None) -> list[ManagementLock]:
        """Every lock, or those that apply at ``scope`` (at it or above it)."""
        with self._lock:
            found = [_lock_record(d) for d in list(self._documents.values()) if _is_lock(d)]
        if scope is None:
            return found
        return [lock for lock in found if armid.is_within(lock.scope, scope)]

    def lock_levels(self) -> list[tuple[str, str]]:
        """``(scope, level)`` of every lock: what ``rules.check_not_locked`` reads."""
        return [(lock.scope, lock.level) for lock in self.management_locks()]

    def forget_resource(self, arm_id: str) -> None:
        """A resource was deleted (through the ARM front): its document goes."""
        with self._lock:
            self._documents.pop(key(arm_id), None)

    def _noted(self, arm_id: str) -> bool:
        """Whether a deploy (or the ARM front) wrote a document of a type the state does not
        model (a VNet, a NIC, a plan...): a scope a role assignment can target."""
        with self._lock:
            doc = self._documents.get(key(arm_id))
        return doc is not None and str(doc.get("type", "")).lower() not in STATE_TYPES

    def _drop_documents(self, kind: str, obj: object) -> None:
        """A resource the state deleted loses its document and its child resources' (ARM
        deletes children with their parent); extension resources at it (role assignments)
        stay, orphaned, as on Azure."""
        if not kind.endswith("_deleted") or kind == "principal_deleted":
            return
        arm_id = getattr(obj, "id", None)
        if not isinstance(arm_id, str):
            return
        gone = key(arm_id)
        with self._lock:
            for doc_key in list(self._documents):
                child = doc_key.startswith(gone + "/") and AUTHORIZATION not in doc_key
                if doc_key == gone or child:
                    del self._documents[doc_key]


#: ARM types whose existence the state answers itself (:meth:`SandboxState.exists`).
STATE_TYPES = frozenset(
    t.lower()
    for t in (
        arm_shapes.USER_ASSIGNED_IDENTITY,
        arm_shapes.VIRTUAL_MACHINE,
        arm_shapes.KEY_VAULT,
        arm_shapes.KEY_VAULT_SECRET,
        arm_shapes.FEDERATED_CREDENTIAL,
        arm_shapes.STORAGE_ACCOUNT,
        arm_shapes.BLOB_CONTAINER,
        arm_shapes.MANAGEMENT_LOCK,
        arm_shapes.ROLE_ASSIGNMENT,
        arm_shapes.RESOURCE_GROUP,
    )
)
AUTHORIZATION = "/providers/microsoft.authorization/"


def _is_lock(doc: dict[str, Any]) -> bool:
    return str(doc.get("type", "")).lower() == arm_shapes.MANAGEMENT_LOCK.lower()


def _lock_record(doc: dict[str, Any]) -> ManagementLock:
    props = doc["properties"]
    scope = doc["id"][: doc["id"].lower().rfind(LOCKS_SEGMENT.lower())]
    return ManagementLock(doc["id"], scope, doc["name"], props["level"], props.get("notes"))
