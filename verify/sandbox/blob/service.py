"""Blob Storage data plane, over HTTPS, one listener per storage account.

URLs are path-style, as with Microsoft's storage emulator: ``https://127.0.0.1:<port>/
<account>/<container>/<blob>``. azure-storage-blob 12.31 takes the account from the first
path segment when the host is ``127.0.0.1`` or ``localhost`` (``_is_localhost`` in its
base client and ``_from_blob_url``), so ``BlobServiceClient("https://127.0.0.1:p/acct")``
and ``BlobClient.from_blob_url(".../acct/c/a/b.txt")`` work unchanged.

What the service checks, in Azure's order:

1. the path names this listener's account (else 400 ``InvalidUri``);
2. ``x-ms-version`` is one the service knows (else 400 ``InvalidHeaderValue``);
3. authentication is a Bearer token only: no ``Authorization`` is 401
   ``NoAuthenticationInformation``; a shared key or SAS is 403
   ``KeyBasedAuthenticationNotPermitted`` (the StorageAccount component turns
   ``allowSharedKeyAccess`` off); a token without ``x-ms-version`` is 403
   ``AuthenticationFailed``; a bad token (signature, ``aud`` other than
   ``https://storage.azure.com``, issuer, expiry) is 401 ``InvalidAuthenticationInfo``.
   Every 401 carries the Storage challenge ``WWW-Authenticate: Bearer
   authorization_uri=https://login.microsoftonline.com/<tid>/oauth2/authorize
   resource_id=https://storage.azure.com``, which azure-storage-blob's
   ``StorageBearerTokenCredentialPolicy.on_challenge`` parses;
4. authorization is Azure RBAC by Storage data actions through the sandbox's one
   :class:`~verify.sandbox.rbac.RbacEvaluator`: an assignment on the account (or above)
   covers every container, one on ``<account>/blobServices/default/containers/<name>``
   only that container; each assignment's ABAC condition is evaluated for this request
   (:mod:`verify.sandbox.blob.request_context`). A denial is 403 ``AuthorizationPermissionMismatch``
   (the only Blob answer that proves RBAC said no). Authorization precedes existence:
   no grant + missing blob is 403, grant + missing blob is 404 ``BlobNotFound``.

Operations: Get Blob (with ``x-ms-range``: 206, 416 ``InvalidRange`` on an empty blob),
Get Blob Properties (HEAD), Put Blob (block blobs in one request, ``x-ms-tags``,
``x-ms-meta-*`` metadata, ``Content-MD5`` / ``x-ms-blob-content-md5`` checked against the
body), Delete Blob, List Blobs (prefix, ``delimiter`` with ``BlobPrefix``,
``include=metadata,tags``, paging), Get / Set Blob Tags, Find Blobs by Tags (in a
container and in the account, :mod:`verify.sandbox.blob.tag_filter`), List Containers,
Get Container Properties, Create / Delete Container; conditional headers on reads and
writes (:mod:`verify.sandbox.blob.conditional`) and ``x-ms-if-tags`` on Get Blob, Get Blob
Properties, Put Blob, Delete Blob and Get / Set Blob Tags (412 ``ConditionNotMet``).
Anything else is refused with Azure's code for it rather than answered loosely.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from verify.evidence.blob import AUDIENCES as BLOB_EVIDENCE_AUDIENCES
from verify.sandbox.auth import Authenticator, AuthError
from verify.sandbox.blob import tag_filter, wire
from verify.sandbox.blob.conditional import Conditions, check_read, check_write
from verify.sandbox.blob.errors import BlobError
from verify.sandbox.blob.request_context import (
    BLOB_ADD,
    BLOB_DELETE,
    BLOB_FILTER,
    BLOB_READ,
    BLOB_TAGS,
    BLOB_TAGS_READ,
    BLOB_TAGS_WRITE,
    BLOB_WRITE,
    CONTAINERS_DELETE,
    CONTAINERS_READ,
    CONTAINERS_WRITE,
    LIST_PREFIX,
    SUB_LIST,
    SUB_READ_WITH_TAG_CONDITIONS,
    SUB_WRITE_WITH_TAGS,
    request_context,
)
from verify.sandbox.bodies import BodyError, read_body
from verify.sandbox.rbac import RbacEvaluator
from verify.sandbox.state.records import SandboxError
from verify.sandbox.state.storage import StorageAccount, StoredBlob
from verify.sandbox.state.store import SandboxState

#: The audiences Storage accepts: the Blob plane's evidence module states them once.
STORAGE_AUDIENCES = BLOB_EVIDENCE_AUDIENCES
DEFAULT_PAGE_SIZE = 5000  # List Blobs / List Containers' documented maximum
#: Put Blob in one request takes at most 5000 MiB on Azure; the sandbox holds blobs in
#: memory and serves configuration files, so it caps a body far lower and answers
#: Azure's 413 ``RequestBodyTooLarge`` above it.
MAX_BODY_BYTES = 4 * 1024 * 1024
#: Metadata names are C# identifiers (Azure: 400 ``InvalidMetadata`` otherwise).
_METADATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_META = "x-ms-meta-"


class _Call:
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


class BlobService:
    """The Blob endpoint of every storage account in the sandbox's state."""

    def __init__(
        self, state: SandboxState, authenticator: Authenticator, rbac: RbacEvaluator
    ) -> None:
        self._state = state
        self._auth = authenticator
        self._rbac = rbac

    @property
    def challenge(self) -> str:
        return (
            f"Bearer authorization_uri=https://login.microsoftonline.com/"
            f"{self._state.tenant_id}/oauth2/authorize resource_id=https://storage.azure.com"
        )

    # --------------------------------------------------------------- checks
    def _check_version(self, call: _Call) -> None:
        if call.version is not None and call.version not in wire.SUPPORTED_VERSIONS:
            raise BlobError(
                400,
                "InvalidHeaderValue",
                extra={"HeaderName": "x-ms-version", "HeaderValue": call.version},
            )

    def _authenticate(self, call: _Call) -> None:
        header = call.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if "sig" in call.query or scheme in ("SharedKey", "SharedKeyLite"):
            # A SAS (query ``sig``) or an account-key signature: key-based either way.
            raise BlobError(403, "KeyBasedAuthenticationNotPermitted")
        if not header:
            raise BlobError(
                401, "NoAuthenticationInformation", headers={"WWW-Authenticate": self.challenge}
            )
        if scheme.lower() != "bearer" or not token.strip():
            raise BlobError(403, "AuthenticationFailed")
        if call.version is None:
            raise BlobError(
                403,
                "AuthenticationFailed",
                extra={
                    "AuthenticationErrorDetail": (
                        "Authentication scheme Bearer is not supported in this version."
                    )
                },
            )
        try:
            claims = self._auth.authenticate(header, STORAGE_AUDIENCES)
        except AuthError as failure:
            raise self._invalid_token(failure) from failure
        call.request.state.principal_id = claims["oid"]
        call.claims = claims

    def _invalid_token(self, failure: AuthError) -> BlobError:
        """Storage's 401 for a token it cannot accept, with its wording where known."""
        detail = {
            "audience": "Audience validation failed. Audience did not match.",
            "expired": "Lifetime validation failed. The token is expired.",
            "signature": "Signature validation failed.",
            "issuer": "Issuer validation failed. Issuer did not match.",
        }.get(failure.reason, failure.message)
        return BlobError(
            401,
            "InvalidAuthenticationInfo",
            extra={"AuthenticationErrorDetail": detail},
            headers={"WWW-Authenticate": self.challenge},
        )

    def _authorize(
        self,
        call: _Call,
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

    def _authorize_action(self, call: _Call, action: str, scope: str) -> None:
        """A container *action* (read, write, delete): RBAC only, conditions never apply."""
        if not self._rbac.check_action(call.claims["oid"], action, scope).allowed:
            raise BlobError(403, "AuthorizationPermissionMismatch")

    def _existing(self, call: _Call) -> StoredBlob | None:
        """The blob the request names, or None; ``ContainerNotFound`` when its container is
        missing (after authorization, so a stranger learns nothing from the difference)."""
        assert call.container is not None and call.blob is not None
        try:
            return self._state.get_blob(call.account.name, call.container, call.blob)
        except SandboxError:
            return None

    def _require_container(self, call: _Call) -> None:
        assert call.container is not None
        if self._state.container(call.account.name, call.container) is None:
            raise BlobError(404, "ContainerNotFound")

    # --------------------------------------------------------------- blob operations
    @staticmethod
    def _blob_headers(blob: StoredBlob, *, ranged: bool = False) -> dict[str, str]:
        """Get Blob / Get Blob Properties headers; a ranged read carries the whole blob's
        MD5 as ``x-ms-blob-content-md5`` instead of ``Content-MD5`` (Get Blob's page)."""
        headers = {
            "ETag": blob.etag,
            "Last-Modified": wire.http_date(blob.last_modified),
            "x-ms-creation-time": wire.http_date(blob.created),
            "x-ms-blob-type": "BlockBlob",
            "x-ms-lease-status": "unlocked",
            "x-ms-lease-state": "available",
            "x-ms-server-encrypted": "true",
            "Accept-Ranges": "bytes",
        }
        if blob.tags:
            headers["x-ms-tag-count"] = str(len(blob.tags))
        headers["x-ms-blob-content-md5" if ranged else "Content-MD5"] = blob.content_md5
        return headers

    def _get_blob(self, call: _Call) -> Response:
        blob = self._existing(call)
        if_tags = _if_tags(call)
        self._authorize(
            call,
            (BLOB_READ,),
            blob=blob,
            suboperation=SUB_READ_WITH_TAG_CONDITIONS if if_tags is not None else None,
        )
        self._require_container(call)
        check_read(
            Conditions.from_headers(call.request.headers),
            blob.etag if blob else None,
            blob.last_modified if blob else None,
        )
        if blob is None:
            raise BlobError(404, "BlobNotFound")
        _check_if_tags(if_tags, blob)
        wanted = call.request.headers.get("x-ms-range") or call.request.headers.get("range")
        headers = {
            **call.headers(),
            **self._blob_headers(blob, ranged=bool(wanted and not call.head)),
        }
        headers["Content-Type"] = blob.content_type
        body, status = blob.content, 200
        if wanted:
            start, end = _parse_range(wanted, blob.size)
            if start is None:
                raise BlobError(
                    416, "InvalidRange", headers={"Content-Range": f"bytes */{blob.size}"}
                )
            body, status = blob.content[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        if call.head:
            headers["Content-Length"] = str(blob.size)
            return _with_metadata(Response(status_code=200, headers=headers), blob)
        return _with_metadata(Response(body, status_code=status, headers=headers), blob)

    def _put_blob(self, call: _Call) -> Response:
        if call.request.headers.get("x-ms-blob-type") != "BlockBlob":
            raise BlobError(
                400,
                "InvalidHeaderValue"
                if "x-ms-blob-type" in call.request.headers
                else "MissingRequiredHeader",
                extra={"HeaderName": "x-ms-blob-type"},
            )
        existing = self._existing(call)
        if_tags = _if_tags(call)
        metadata = _metadata(call.request)
        tags = _header_tags(call.request.headers.get("x-ms-tags"))
        request_attributes: dict[str, object] = {}
        suboperation = None
        if tags is not None:
            request_attributes[BLOB_TAGS] = dict(tags)
            suboperation = SUB_WRITE_WITH_TAGS
        actions = (BLOB_WRITE,) if existing is not None else (BLOB_ADD, BLOB_WRITE)
        self._authorize(
            call,
            actions,
            blob=existing,
            suboperation=suboperation,
            request_attributes=request_attributes,
        )
        if tags is not None:  # Put Blob with x-ms-tags needs Set Blob Tags' permission too
            self._authorize(
                call, (BLOB_TAGS_WRITE,), blob=existing, request_attributes={BLOB_TAGS: tags}
            )
        self._require_container(call)
        if existing is not None and call.request.headers.get("if-none-match") == "*":
            raise BlobError(409, "BlobAlreadyExists")
        check_write(
            Conditions.from_headers(call.request.headers),
            existing.etag if existing else None,
            existing.last_modified if existing else None,
        )
        _check_if_tags(if_tags, existing)
        _check_md5(call.request.headers, call.request.state.body)
        assert call.container is not None and call.blob is not None
        blob = self._state.put_blob(
            call.account.name,
            call.container,
            call.blob,
            call.request.state.body,
            content_type=call.request.headers.get("x-ms-blob-content-type")
            or call.request.headers.get("content-type"),
            tags=tags,
            metadata=metadata,
        )
        headers = call.headers()
        headers.update(
            {
                "ETag": blob.etag,
                "Last-Modified": wire.http_date(blob.last_modified),
                "Content-MD5": blob.content_md5,
                "x-ms-request-server-encrypted": "true",
            }
        )
        return Response(status_code=201, headers=headers)

    def _delete_blob(self, call: _Call) -> Response:
        blob = self._existing(call)
        if_tags = _if_tags(call)
        self._authorize(call, (BLOB_DELETE,), blob=blob)
        self._require_container(call)
        check_write(
            Conditions.from_headers(call.request.headers),
            blob.etag if blob else None,
            blob.last_modified if blob else None,
        )
        _check_if_tags(if_tags, blob)
        assert call.container is not None and call.blob is not None
        if (
            blob is None
            or self._state.delete_blob(call.account.name, call.container, call.blob) is None
        ):
            raise BlobError(404, "BlobNotFound")
        return Response(status_code=202, headers=call.headers())

    def _get_tags(self, call: _Call) -> Response:
        blob = self._existing(call)
        if_tags = _if_tags(call)
        self._authorize(call, (BLOB_TAGS_READ,), blob=blob)
        self._require_container(call)
        if blob is None:
            raise BlobError(404, "BlobNotFound")
        _check_if_tags(if_tags, blob)
        return Response(
            wire.tags_document(blob.tags), headers=call.headers(), media_type="application/xml"
        )

    def _set_tags(self, call: _Call) -> Response:
        blob = self._existing(call)
        if_tags = _if_tags(call)
        try:
            tags = wire.parse_tags_document(call.request.state.body)
        except wire.BadTagsError as exc:
            raise BlobError(400, "InvalidXmlDocument", extra={"Reason": str(exc)}) from exc
        self._authorize(
            call,
            (BLOB_TAGS_WRITE,),
            blob=blob,
            request_attributes={BLOB_TAGS: tags},
        )
        self._require_container(call)
        _check_if_tags(if_tags, blob)
        assert call.container is not None and call.blob is not None
        if (
            blob is None
            or self._state.set_blob_tags(call.account.name, call.container, call.blob, tags) is None
        ):
            raise BlobError(404, "BlobNotFound")
        return Response(status_code=204, headers=call.headers())

    # --------------------------------------------------------------- container operations
    def _service_endpoint(self, call: _Call) -> str:
        return f"{str(call.request.base_url).rstrip('/')}/{call.account.name}/"

    def _list_blobs(self, call: _Call) -> Response:
        """List Blobs, flat or (with ``delimiter``) one level: names that go on past the
        delimiter after the prefix collapse into one ``BlobPrefix``, paged together with
        the blobs in name order."""
        prefix = call.query.get("prefix", "")
        delimiter = call.query.get("delimiter") or None
        include = {i.strip().lower() for i in call.query.get("include", "").split(",") if i}
        self._authorize(
            call, (BLOB_READ,), suboperation=SUB_LIST, request_attributes={LIST_PREFIX: prefix}
        )  # call.blob is None for a container URL: no path, no tags
        if "tags" in include:
            self._authorize(call, (BLOB_TAGS_READ,))
        self._require_container(call)
        assert call.container is not None
        size, start, marker = _paging(call)
        found: list[StoredBlob | str] = []
        for b in self._state.list_blobs(call.account.name, call.container, prefix):
            cut = b.name.find(delimiter, len(prefix)) if delimiter else -1
            if cut < 0:
                found.append(b)
            elif not found or found[-1] != b.name[: cut + len(delimiter or "")]:
                found.append(b.name[: cut + len(delimiter or "")])
        page = found[start : start + size]
        next_marker = _marker(start + size) if start + size < len(found) else ""
        items = [
            wire.PrefixEntry(entry)
            if isinstance(entry, str)
            else wire.BlobEntry(
                entry.name,
                {
                    "Creation-Time": wire.http_date(entry.created),
                    "Last-Modified": wire.http_date(entry.last_modified),
                    "Etag": entry.etag,
                    "Content-Length": str(entry.size),
                    "Content-Type": entry.content_type,
                    "Content-MD5": entry.content_md5,
                    "BlobType": "BlockBlob",
                    "LeaseStatus": "unlocked",
                    "LeaseState": "available",
                    "ServerEncrypted": "true",
                    **({"TagCount": str(len(entry.tags))} if entry.tags else {}),
                },
                metadata=dict(entry.metadata) if "metadata" in include else None,
                tags=dict(entry.tags) if "tags" in include else None,
            )
            for entry in page
        ]
        body = wire.blob_list_document(
            self._service_endpoint(call),
            call.container,
            items,
            prefix=prefix,
            marker=marker,
            max_results=int(call.query["maxresults"]) if "maxresults" in call.query else None,
            delimiter=delimiter,
            next_marker=next_marker,
        )
        return Response(body, headers=call.headers(), media_type="application/xml")

    def _find_blobs(self, call: _Call) -> Response:
        """Find Blobs by Tags, in one container (``restype=container&comp=blobs``) or in the
        account (``comp=blobs``): its own data action, ``blobs/filter/action``."""
        where = call.query.get("where")
        if where is None:
            raise BlobError(
                400,
                "MissingRequiredQueryParameter",
                extra={"QueryParameterName": "where"},
            )
        self._authorize(call, (BLOB_FILTER,))
        if call.container is not None:
            self._require_container(call)
        try:
            expression = tag_filter.parse_where(where)
        except tag_filter.TagFilterError as exc:
            raise BlobError(
                400,
                "InvalidQueryParameterValue",
                message=str(exc),
                extra={"QueryParameterName": "where", "QueryParameterValue": where},
            ) from exc
        size, start, _ = _paging(call)
        found = self._state.find_blobs(
            call.account.name,
            lambda b: (
                (call.container is None or b.container == call.container)
                and expression.matches(b.container, b.tags)
            ),
        )
        page = found[start : start + size]
        next_marker = _marker(start + size) if start + size < len(found) else ""
        body = wire.found_blobs_document(
            self._service_endpoint(call),
            where,
            [(b.name, b.container, expression.shown_tags(b.tags)) for b in page],
            next_marker=next_marker,
        )
        return Response(body, headers=call.headers(), media_type="application/xml")

    def _create_container(self, call: _Call) -> Response:
        assert call.container is not None
        self._authorize_action(call, CONTAINERS_WRITE, call.account.container_scope(call.container))
        _check_container_name(call.container)
        try:
            container = self._state.create_container(
                call.account.name, call.container, exclusive=True
            )
        except SandboxError as exc:
            raise BlobError(exc.status, exc.code) from exc
        headers = call.headers()
        headers.update(
            {
                "ETag": _container_etag(container.id),
                "Last-Modified": wire.http_date(container.created),
            }
        )
        return Response(status_code=201, headers=headers)

    def _delete_container(self, call: _Call) -> Response:
        assert call.container is not None
        self._authorize_action(
            call, CONTAINERS_DELETE, call.account.container_scope(call.container)
        )
        if self._state.delete_container(call.account.name, call.container) is None:
            raise BlobError(404, "ContainerNotFound")
        return Response(status_code=202, headers=call.headers())

    def _container_properties(self, call: _Call) -> Response:
        assert call.container is not None
        scope = call.account.container_scope(call.container)
        self._authorize_action(call, CONTAINERS_READ, scope)
        container = self._state.container(call.account.name, call.container)
        if container is None:
            raise BlobError(404, "ContainerNotFound")
        headers = call.headers()
        headers.update(
            {
                "ETag": _container_etag(container.id),
                "Last-Modified": wire.http_date(container.created),
                "x-ms-lease-status": "unlocked",
                "x-ms-lease-state": "available",
                "x-ms-has-immutability-policy": "false",
                "x-ms-has-legal-hold": "false",
            }
        )
        return Response(status_code=200, headers=headers)

    def _list_containers(self, call: _Call) -> Response:
        scope = f"{call.account.id}/blobServices/default"
        self._authorize_action(call, CONTAINERS_READ, scope)
        prefix = call.query.get("prefix", "")
        size, start, marker = _paging(call)
        found = [c for c in self._state.containers(call.account.name) if c.name.startswith(prefix)]
        page = found[start : start + size]
        next_marker = _marker(start + size) if start + size < len(found) else ""
        body = wire.container_list_document(
            self._service_endpoint(call),
            [
                (
                    c.name,
                    {
                        "Last-Modified": wire.http_date(c.created),
                        "Etag": _container_etag(c.id),
                        "LeaseStatus": "unlocked",
                        "LeaseState": "available",
                        "HasImmutabilityPolicy": "false",
                        "HasLegalHold": "false",
                    },
                )
                for c in page
            ],
            prefix=prefix,
            marker=marker,
            max_results=int(call.query["maxresults"]) if "maxresults" in call.query else None,
            next_marker=next_marker,
        )
        return Response(body, headers=call.headers(), media_type="application/xml")

    # --------------------------------------------------------------- routing
    def _operation(self, call: _Call) -> Callable[[_Call], Response]:
        """Which REST operation a method + path + ``restype``/``comp`` names."""
        method = "GET" if call.head else call.request.method
        comp = call.query.get("comp")
        restype = call.query.get("restype")
        if call.container is None:
            if method == "GET" and comp == "list":
                return self._list_containers
            if method == "GET" and comp == "blobs":
                return self._find_blobs
        elif call.blob is None:
            if restype != "container":
                raise BlobError(400, "InvalidUri")
            container_ops: dict[tuple[str, str | None], Callable[[_Call], Response]] = {
                ("GET", "list"): self._list_blobs,
                ("GET", "blobs"): self._find_blobs,
                ("GET", None): self._container_properties,
                ("PUT", None): self._create_container,
                ("DELETE", None): self._delete_container,
            }
            found_op = container_ops.get((method, comp))
            if found_op is not None:
                return found_op
        else:
            table: dict[tuple[str, str | None], Callable[[_Call], Response]] = {
                ("GET", None): self._get_blob,
                ("PUT", None): self._put_blob,
                ("DELETE", None): self._delete_blob,
                ("GET", "tags"): self._get_tags,
                ("PUT", "tags"): self._set_tags,
            }
            found = table.get((method, comp))
            if found is not None:
                return found
            if comp is not None:
                raise BlobError(
                    400,
                    "InvalidQueryParameterValue",
                    extra={"QueryParameterName": "comp", "QueryParameterValue": comp},
                )
        raise BlobError(405, "UnsupportedHttpVerb")

    def _endpoint(self, account_name: str) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            head = request.method == "HEAD"
            version = request.headers.get("x-ms-version")
            try:
                first = request.url.path.lstrip("/").split("/", 1)[0]
                if first != account_name:
                    raise BlobError(400, "InvalidUri")
                account = self._state.storage_account(account_name)
                if account is None:
                    raise BlobError(404, "ResourceNotFound")
                call = _Call(request, account)
                self._check_version(call)
                self._authenticate(call)
                operation = self._operation(call)
                try:
                    request.state.body = await read_body(request, MAX_BODY_BYTES)
                except BodyError as exc:
                    if exc.problem == "too_large":
                        raise BlobError(413, "RequestBodyTooLarge") from exc
                    raise BlobError(400, "InvalidInput", message=exc.message) from exc
                return operation(call)
            except BlobError as exc:
                return exc.response(head=head, version=version)
            except SandboxError as exc:
                return BlobError(exc.status, exc.code, message=exc.message).response(
                    head=head, version=version
                )

        return run

    def app(self, account_name: str) -> Starlette:
        """The ASGI app of one account's listener (every path under ``/<account>``)."""
        endpoint = self._endpoint(account_name)
        methods = ["GET", "HEAD", "PUT", "DELETE", "POST"]
        return Starlette(
            routes=[
                Route("/", endpoint, methods=methods),
                Route("/{path:path}", endpoint, methods=methods),
            ]
        )


# --------------------------------------------------------------------------- helpers


def _parse_range(value: str, size: int) -> tuple[int | None, int]:
    """``bytes=a-b`` / ``bytes=a-`` against a blob of ``size``; (None, 0) if unsatisfiable."""
    unit, _, spec = value.partition("=")
    first, _, last = spec.partition("-")
    try:
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError as exc:
        raise BlobError(
            400, "InvalidHeaderValue", extra={"HeaderName": "x-ms-range", "HeaderValue": value}
        ) from exc
    if unit.strip() != "bytes" or start < 0 or end < start:
        raise BlobError(
            400, "InvalidHeaderValue", extra={"HeaderName": "x-ms-range", "HeaderValue": value}
        )
    if start >= size:
        return None, 0
    return start, min(end, size - 1)


def _container_etag(container_id: str) -> str:
    return '"0x' + hashlib.sha256(container_id.lower().encode()).hexdigest()[:16].upper() + '"'


def _header_tags(value: str | None) -> dict[str, str] | None:
    """``x-ms-tags: k1=v1&k2=v2`` (URL-encoded), or None when absent."""
    if value is None:
        return None
    return dict(parse_qsl(value, keep_blank_values=True))


def _if_tags(call: _Call) -> tag_filter.TagFilter | None:
    """The request's ``x-ms-if-tags`` expression, or None; a malformed one is 400
    ``InvalidHeaderValue`` (before authorization, as every header check is)."""
    value = call.request.headers.get("x-ms-if-tags")
    if value is None:
        return None
    try:
        return tag_filter.parse_if_tags(value)
    except tag_filter.TagFilterError as exc:
        raise BlobError(
            400, "InvalidHeaderValue", extra={"HeaderName": "x-ms-if-tags", "HeaderValue": value}
        ) from exc


def _check_if_tags(if_tags: tag_filter.TagFilter | None, blob: StoredBlob | None) -> None:
    """412 ``ConditionNotMet`` when an existing blob's tags do not satisfy ``x-ms-if-tags``
    (a missing blob is left to the operation's own answer)."""
    if if_tags is not None and blob is not None and not if_tags.matches(blob.container, blob.tags):
        raise BlobError(412, "ConditionNotMet")


def _with_metadata(response: Response, blob: StoredBlob) -> Response:
    """Adds ``x-ms-meta-<name>`` headers with each name as stored (Starlette lowercases the
    headers it is given; Azure answers with the name as written, which clients hand back
    as the metadata key). Request header names reach the service lowercased (ASGI), so a
    stored name is lowercase unless the state was written directly."""
    for name, value in blob.metadata.items():
        response.raw_headers.append(((_META + name).encode("latin-1"), value.encode("latin-1")))
    return response


def _metadata(request: Request) -> dict[str, str]:
    """``x-ms-meta-<name>`` headers (names arrive lowercased: ASGI lowercases header names,
    where Azure would keep their case); a repeated name joins its values with a comma; a
    name that is not a C# identifier is 400 ``InvalidMetadata``."""
    found: dict[str, str] = {}
    for raw_name, raw_value in request.headers.raw:
        header = raw_name.decode("latin-1")
        if not header.lower().startswith(_META) or len(header) == len(_META):
            continue
        name, value = header[len(_META) :], raw_value.decode("latin-1")
        if not _METADATA_NAME.match(name):
            raise BlobError(400, "InvalidMetadata")
        found[name] = f"{found[name]},{value}" if name in found else value
    return found


def _check_md5(headers: Mapping[str, str], body: bytes) -> None:
    """Put Blob's integrity check: ``x-ms-blob-content-md5`` (else ``Content-MD5``) must be
    a base64 128-bit value (400 ``InvalidMd5``) equal to the body's (400 ``Md5Mismatch``,
    naming both)."""
    given = headers.get("x-ms-blob-content-md5") or headers.get("content-md5")
    if given is None:
        return
    try:
        decoded = base64.b64decode(given, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != 16:
        raise BlobError(400, "InvalidMd5")
    actual = hashlib.md5(body).digest()  # noqa: S324 - Azure's integrity hash
    if decoded != actual:
        raise BlobError(
            400,
            "Md5Mismatch",
            extra={
                "UserSpecifiedMd5": given,
                "ServerCalculatedMd5": base64.b64encode(actual).decode(),
            },
        )


#: Container names: 3-63 lowercase letters, digits and single hyphens, starting and
#: ending with a letter or digit ("Naming and referencing containers, blobs, and metadata").
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


def _check_container_name(name: str) -> None:
    if not _CONTAINER_NAME.match(name):
        raise BlobError(400, "InvalidResourceName")


def _marker(index: int) -> str:
    return base64.urlsafe_b64encode(f"i{index}".encode()).decode().rstrip("=")


def _paging(call: _Call) -> tuple[int, int, str]:
    """(page size, start index, the marker as given) from ``maxresults``/``marker``."""
    marker = call.query.get("marker", "")
    try:
        size = int(call.query.get("maxresults", DEFAULT_PAGE_SIZE))
        start = 0
        if marker:
            decoded = base64.urlsafe_b64decode(marker + "=" * (-len(marker) % 4)).decode()
            if not decoded.startswith("i"):
                raise ValueError(marker)
            start = int(decoded[1:])
    except ValueError as exc:
        raise BlobError(400, "OutOfRangeQueryParameterValue") from exc
    if not 1 <= size <= DEFAULT_PAGE_SIZE:
        raise BlobError(
            400,
            "OutOfRangeQueryParameterValue",
            extra={"QueryParameterName": "maxresults", "QueryParameterValue": str(size)},
        )
    return size, start, marker
