"""Management locks over ARM REST: list the locks over a scope, delete one, put it back.

The lifecycle lifts a lock only for a scenario the lock would refuse, and restores it with
the same name, level, notes and owners (:mod:`verify.lifecycle.locks`). These are the calls,
made the same way on real Azure and on the sandbox's ARM front (only the base URL, the
credential and the TLS trust differ), with ``Microsoft.Authorization/locks`` at
:data:`LOCKS_API_VERSION` (``ManagementLocks_*ByScope`` in the REST API specs):

* ``GET {scope}/providers/Microsoft.Authorization/locks`` at the top-level resource the scope
  is or lies in (404: not there yet, nothing to list), its resource group and its
  subscription (following ``nextLink``); a lock is kept when its own scope is the scope or
  above it: what ARM checks a write against;
* ``PUT {lock id}`` with ``{"properties": {"level", "notes", "owners"}}``;
* ``DELETE {lock id}``.

No management SDK is added for three calls: azure-mgmt-resource's ``ManagementLockClient``
would be one more dependency for the same requests. A 403 raises
:class:`~verify.targets.azure_hosts.base.MissingPermissionError` naming the action and a
built-in role that holds it; the operator's token appears in no message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from components import armid
from verify.targets.azure_hosts.rest import ARM, ARM_SCOPE, BearerClient, Refusal
from verify.targets.base import LockInfo

#: The newest stable ``Microsoft.Authorization/locks`` version (the sandbox accepts it too:
#: verify/sandbox/data/api_versions.json).
LOCKS_API_VERSION = "2020-05-01"
LOCKS_SEGMENT = "/providers/Microsoft.Authorization/locks"
#: One HTTP call.
CALL_TIMEOUT = 60.0
#: Pages of a lock listing followed at most (a subscription may hold many locks).
MAX_PAGES = 50

READ_LOCKS = Refusal("Microsoft.Authorization/locks/read", "Reader")
WRITE_LOCKS = Refusal("Microsoft.Authorization/locks/write", "Locks Contributor")
DELETE_LOCKS = Refusal("Microsoft.Authorization/locks/delete", "Locks Contributor")

#: The RBAC actions lifting and restoring a lock needs (docs/verify.md lists each).
PERMISSIONS = (READ_LOCKS.action, WRITE_LOCKS.action, DELETE_LOCKS.action)


def lock_from_json(doc: dict[str, Any]) -> LockInfo:
    """An ARM lock document (``ManagementLockObject``) -> :class:`LockInfo`."""
    lock_id = str(doc["id"])
    cut = lock_id.lower().rfind(LOCKS_SEGMENT.lower() + "/")
    scope = lock_id[:cut] if cut >= 0 else ""
    props = doc.get("properties") or {}
    owners = tuple(
        str(o["applicationId"])
        for o in props.get("owners") or ()
        if isinstance(o, dict) and o.get("applicationId")
    )
    notes = props.get("notes")
    return LockInfo(
        scope=scope or "/",
        name=str(doc.get("name") or lock_id.rsplit("/", 1)[-1]),
        level=str(props.get("level") or ""),
        notes=str(notes) if notes else None,
        owners=owners,
    )


def lock_body(lock: LockInfo) -> dict[str, Any]:
    """The PUT body that makes ``lock`` again exactly: level, notes and owners."""
    props: dict[str, Any] = {"level": lock.level}
    if lock.notes:
        props["notes"] = lock.notes
    if lock.owners:
        props["owners"] = [{"applicationId": o} for o in lock.owners]
    return {"properties": props}


def scopes_over(scope: str) -> list[str]:
    """Where to list the locks that apply at ``scope``: the top-level resource it is or lies
    in (for a child such as a federated credential, or an extension such as a role
    assignment, the resource above it: ARM lists a resource's locks with those below it),
    its group, its subscription. :meth:`ArmLocks.over` keeps the locks at or above
    ``scope``."""
    cut = scope.lower().find("/providers/microsoft.authorization/")
    base = (scope[:cut] if cut > 0 else scope).rstrip("/")
    parts = base.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        return [base or "/"]
    sub = f"/subscriptions/{parts[1]}"
    if len(parts) < 4 or parts[2].lower() != "resourcegroups":
        return [sub]
    group = f"{sub}/resourceGroups/{parts[3]}"
    if len(parts) >= 8 and parts[4].lower() == "providers":
        return [f"{group}/providers/{'/'.join(parts[5:8])}", group, sub]
    return [group, sub]


class ArmLocks:
    """The three lock calls for one ARM endpoint (``base``: Azure's or the sandbox's)."""

    def __init__(self, client: BearerClient, base: str = ARM, *, verify: bool | str = True) -> None:
        self._client = client
        self._base = base.rstrip("/")
        self._verify = verify

    def _url(self, path: str) -> str:
        return f"{self._base}{quote(path, safe='/')}?api-version={LOCKS_API_VERSION}"

    def over(self, scope: str) -> list[LockInfo]:
        """Every lock at ``scope`` or above it (group, subscription), each once."""
        return self.over_each([scope])[scope]

    def over_each(self, scopes: Sequence[str]) -> dict[str, list[LockInfo]]:
        """:meth:`over` for each of ``scopes``, listing each place once: the scopes of one
        scenario share their group and subscription (and often their resource), and a
        listing there is the same whichever scope asked."""
        listed: dict[str, list[LockInfo]] = {}
        found: dict[str, list[LockInfo]] = {}
        for scope in scopes:
            if scope in found:
                continue
            kept: dict[str, LockInfo] = {}
            for where in scopes_over(scope):
                if where not in listed:
                    listed[where] = self._list(where)
                for lock in listed[where]:
                    if armid.is_within(lock.scope, scope):
                        kept.setdefault(lock.id.lower(), lock)
            found[scope] = sorted(kept.values(), key=lambda x: (len(x.scope), x.name.lower()))
        return found

    def _list(self, where: str) -> list[LockInfo]:
        """``GET {where}/providers/Microsoft.Authorization/locks``, every page (404: none)."""
        locks: list[LockInfo] = []
        url: str | None = self._url(where + LOCKS_SEGMENT)
        for _ in range(MAX_PAGES):
            if url is None:
                break
            reply = self._client.request(
                "GET",
                url,
                scope=ARM_SCOPE,
                what=f"listing the management locks at {where}",
                refusal=READ_LOCKS,
                timeout=CALL_TIMEOUT,
                verify=self._verify,
                ok=(200, 404),  # 404: that scope does not exist (yet); nothing there
            )
            body = reply.body if reply.status == 200 and isinstance(reply.body, dict) else {}
            locks += [lock_from_json(doc) for doc in body.get("value") or ()]
            url = body.get("nextLink") or None
        return locks

    def put(self, lock: LockInfo) -> LockInfo:
        """Create (or update) ``lock`` as given; ARM's answer is returned."""
        reply = self._client.request(
            "PUT",
            self._url(lock.id),
            scope=ARM_SCOPE,
            what=f"writing the management lock {lock.name} at {lock.scope}",
            refusal=WRITE_LOCKS,
            json_body=lock_body(lock),
            timeout=CALL_TIMEOUT,
            verify=self._verify,
            ok=(200, 201),
        )
        return lock_from_json(reply.body) if isinstance(reply.body, dict) else lock

    def delete(self, lock: LockInfo) -> None:
        """Delete ``lock`` (one already gone is deleted: 204)."""
        self._client.request(
            "DELETE",
            self._url(lock.id),
            scope=ARM_SCOPE,
            what=f"deleting the management lock {lock.name} at {lock.scope}",
            refusal=DELETE_LOCKS,
            timeout=CALL_TIMEOUT,
            verify=self._verify,
            ok=(200, 204),
        )
