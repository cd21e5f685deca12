"""Who calls what, and whether they may: one parsed request and the RBAC/ABAC checks.

Authorization precedes existence (Azure's order): no grant + missing blob is 403, grant +
missing blob is 404 ``BlobNotFound``, so a stranger learns nothing from the difference.
A data action is decided with each assignment's ABAC condition evaluated on the request's
context (:mod:`verify.sandbox.blob.request_context`); a container *action* (read, write,
delete) by RBAC alone, as conditions never apply to actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from verify.sandbox.blob import wire
from verify.sandbox.blob.errors import BlobError
from verify.sandbox.blob.request_context import request_context
from verify.sandbox.rbac import RbacEvaluator
from verify.sandbox.state.records import SandboxError
from verify.sandbox.state.storage import StorageAccount, StoredBlob
from verify.sandbox.state.store import SandboxState


class BlobCall:
    """One parsed request: who, which resource, which operation."""

    def __init__(self, request: Request, account: StorageAccount) -> None:
        self.request = request
        self.account = account
        self.query = {k.lower(): v for k, v in parse_qsl(request.url.query, True)}
        self.version = request.headers.get("x-ms-version")
        self.head = request.method == "HEAD"
        parts = request.url.path.lstrip("/").split("/", 2)
        self.container = parts[1] if len(parts) > 1 and parts[1] else None
        self.blob = parts[2] if len(parts) > 2 and parts[2] else None
        self.claims: dict[str, Any] = {}

    def headers(self) -> dict[str, str]:
        return wire.common_headers(self.version, self.request.headers.get("x-ms-client-request-id"))


class Access:
    """The checks every operation makes before it acts."""

    def __init__(self, state: SandboxState, rbac: RbacEvaluator) -> None:
        self._state = state
        self._rbac = rbac

    def authorize(
        self,
        call: BlobCall,
        actions: tuple[str, ...],
        *,
        blob: StoredBlob | None = None,
        suboperation: str | None = None,
        request_attributes: Mapping[str, object] | None = None,
    ) -> None:
        """Allowed when any of ``actions`` is granted at the container (conditions included);
        a request on the account itself (Find Blobs by Tags) needs a grant on the account."""
        scope = (
            call.account.container_scope(call.container)
            if call.container is not None
            else f"{call.account.id}/blobServices/default"
        )
        for action in actions:
            context = request_context(
                action,
                account=call.account.name,
                container=call.container or "",
                blob=call.blob,
                tags=blob.tags if blob is not None else None,
                suboperation=suboperation,
                request=request_attributes,
            )
            decision = self._rbac.check_data_action(
                call.claims["oid"],
                action,
                scope,
                suboperation=context.suboperation,
                resource=context.resource,
                request=context.request,
                environment=context.environment,
            )
            if decision.allowed:
                return
        raise BlobError(403, "AuthorizationPermissionMismatch")

    def authorize_action(self, call: BlobCall, action: str, scope: str) -> None:
        """A container *action* (read, write, delete): RBAC only, conditions never apply."""
        if not self._rbac.check_action(call.claims["oid"], action, scope).allowed:
            raise BlobError(403, "AuthorizationPermissionMismatch")

    def existing(self, call: BlobCall) -> StoredBlob | None:
        """The blob the request names, or None; ``ContainerNotFound`` when its container is
        missing (after authorization, so a stranger learns nothing from the difference)."""
        assert call.container is not None and call.blob is not None
        try:
            return self._state.get_blob(call.account.name, call.container, call.blob)
        except SandboxError:
            return None

    def require_container(self, call: BlobCall) -> None:
        assert call.container is not None
        if self._state.container(call.account.name, call.container) is None:
            raise BlobError(404, "ContainerNotFound")
