"""Container and account operations: List Blobs (flat or with a delimiter), Find Blobs by
Tags (in a container or the account), Get Container Properties, Create / Delete
Container, List Containers.

Listings echo ``prefix``, ``marker`` and ``maxresults`` only when given, as Azure does;
paging markers are the sandbox's own (opaque to clients, as Azure's are).
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.responses import Response

from verify.sandbox.blob import tag_filter, wire
from verify.sandbox.blob.access import Access, BlobCall
from verify.sandbox.blob.errors import BlobError
from verify.sandbox.blob.request_context import (
    BLOB_FILTER,
    BLOB_READ,
    BLOB_TAGS_READ,
    CONTAINERS_DELETE,
    CONTAINERS_READ,
    CONTAINERS_WRITE,
    LIST_PREFIX,
    SUB_LIST,
)
from verify.sandbox.state.records import SandboxError
from verify.sandbox.state.storage import StoredBlob
from verify.sandbox.state.store import SandboxState

DEFAULT_PAGE_SIZE = 5000  # List Blobs / List Containers' documented maximum


class ContainerOperations:
    """The operations on a container (``restype=container``) or the whole account."""

    def __init__(self, state: SandboxState, access: Access) -> None:
        self._state = state
        self._access = access

    def list_blobs(self, call: BlobCall) -> Response:
        """List Blobs, flat or (with ``delimiter``) one level: names that go on past the
        delimiter after the prefix collapse into one ``BlobPrefix``, paged together with
        the blobs in name order."""
        prefix = call.query.get("prefix", "")
        delimiter = call.query.get("delimiter") or None
        include = {i.strip().lower() for i in call.query.get("include", "").split(",") if i}
        self._access.authorize(
            call, (BLOB_READ,), suboperation=SUB_LIST, request_attributes={LIST_PREFIX: prefix}
        )  # call.blob is None for a container URL: no path, no tags
        if "tags" in include:
            self._access.authorize(call, (BLOB_TAGS_READ,))
        self._access.require_container(call)
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
            _service_endpoint(call),
            call.container,
            items,
            prefix=prefix,
            marker=marker,
            max_results=int(call.query["maxresults"]) if "maxresults" in call.query else None,
            delimiter=delimiter,
            next_marker=next_marker,
        )
        return Response(body, headers=call.headers(), media_type="application/xml")

    def find_blobs(self, call: BlobCall) -> Response:
        """Find Blobs by Tags, in one container (``restype=container&comp=blobs``) or in the
        account (``comp=blobs``): its own data action, ``blobs/filter/action``."""
        where = call.query.get("where")
        if where is None:
            raise BlobError(
                400,
                "MissingRequiredQueryParameter",
                extra={"QueryParameterName": "where"},
            )
        self._access.authorize(call, (BLOB_FILTER,))
        if call.container is not None:
            self._access.require_container(call)
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
            _service_endpoint(call),
            where,
            [(b.name, b.container, expression.shown_tags(b.tags)) for b in page],
            next_marker=next_marker,
        )
        return Response(body, headers=call.headers(), media_type="application/xml")

    def create_container(self, call: BlobCall) -> Response:
        assert call.container is not None
        self._access.authorize_action(
            call, CONTAINERS_WRITE, call.account.container_scope(call.container)
        )
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

    def delete_container(self, call: BlobCall) -> Response:
        assert call.container is not None
        self._access.authorize_action(
            call, CONTAINERS_DELETE, call.account.container_scope(call.container)
        )
        if self._state.delete_container(call.account.name, call.container) is None:
            raise BlobError(404, "ContainerNotFound")
        return Response(status_code=202, headers=call.headers())

    def container_properties(self, call: BlobCall) -> Response:
        assert call.container is not None
        scope = call.account.container_scope(call.container)
        self._access.authorize_action(call, CONTAINERS_READ, scope)
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

    def list_containers(self, call: BlobCall) -> Response:
        scope = f"{call.account.id}/blobServices/default"
        self._access.authorize_action(call, CONTAINERS_READ, scope)
        prefix = call.query.get("prefix", "")
        size, start, marker = _paging(call)
        found = [c for c in self._state.containers(call.account.name) if c.name.startswith(prefix)]
        page = found[start : start + size]
        next_marker = _marker(start + size) if start + size < len(found) else ""
        body = wire.container_list_document(
            _service_endpoint(call),
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


def _service_endpoint(call: BlobCall) -> str:
    return f"{str(call.request.base_url).rstrip('/')}/{call.account.name}/"


def _container_etag(container_id: str) -> str:
    return '"0x' + hashlib.sha256(container_id.lower().encode()).hexdigest()[:16].upper() + '"'


#: Container names: 3-63 lowercase letters, digits and single hyphens, starting and
#: ending with a letter or digit ("Naming and referencing containers, blobs, and metadata").
_CONTAINER_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")


def _check_container_name(name: str) -> None:
    if not _CONTAINER_NAME.match(name):
        raise BlobError(400, "InvalidResourceName")


def _marker(index: int) -> str:
    return base64.urlsafe_b64encode(f"i{index}".encode()).decode().rstrip("=")


def _paging(call: BlobCall) -> tuple[int, int, str]:
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
