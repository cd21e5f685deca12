"""Blob operations: Get Blob (ranges), Get Blob Properties, Put Blob, Delete Blob, Get /
Set Blob Tags.

Put Blob keeps ``x-ms-meta-*`` metadata and the content's MD5 (``x-ms-blob-content-md5``,
else ``Content-MD5``, is checked against the body: 400 ``Md5Mismatch`` / ``InvalidMd5``);
reads return them (a ranged Get Blob carries the whole blob's MD5 as
``x-ms-blob-content-md5``). Conditional headers (:mod:`verify.sandbox.blob.conditional`)
and ``x-ms-if-tags`` (:mod:`verify.sandbox.blob.tag_filter`) apply to each, after
authorization.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from verify.sandbox.blob import tag_filter, wire
from verify.sandbox.blob.access import Access, BlobCall
from verify.sandbox.blob.conditional import Conditions, check_read, check_write
from verify.sandbox.blob.errors import BlobError
from verify.sandbox.blob.request_context import (
    BLOB_ADD,
    BLOB_DELETE,
    BLOB_READ,
    BLOB_TAGS,
    BLOB_TAGS_READ,
    BLOB_TAGS_WRITE,
    BLOB_WRITE,
    SUB_READ_WITH_TAG_CONDITIONS,
    SUB_WRITE_WITH_TAGS,
)
from verify.sandbox.state.storage import StoredBlob
from verify.sandbox.state.store import SandboxState

#: Metadata names are C# identifiers (Azure: 400 ``InvalidMetadata`` otherwise).
_METADATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_META = "x-ms-meta-"


class BlobOperations:
    """The operations on one blob (the request path names account, container and blob)."""

    def __init__(self, state: SandboxState, access: Access) -> None:
        self._state = state
        self._access = access

    def get_blob(self, call: BlobCall) -> Response:
        blob = self._access.existing(call)
        if_tags = _if_tags(call)
        self._access.authorize(
            call,
            (BLOB_READ,),
            blob=blob,
            suboperation=SUB_READ_WITH_TAG_CONDITIONS if if_tags is not None else None,
        )
        self._access.require_container(call)
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
            **_blob_headers(blob, ranged=bool(wanted and not call.head)),
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

    def put_blob(self, call: BlobCall) -> Response:
        if call.request.headers.get("x-ms-blob-type") != "BlockBlob":
            raise BlobError(
                400,
                "InvalidHeaderValue"
                if "x-ms-blob-type" in call.request.headers
                else "MissingRequiredHeader",
                extra={"HeaderName": "x-ms-blob-type"},
            )
        existing = self._access.existing(call)
        if_tags = _if_tags(call)
        metadata = _metadata(call.request)
        tags = _header_tags(call.request.headers.get("x-ms-tags"))
        request_attributes: dict[str, object] = {}
        suboperation = None
        if tags is not None:
            request_attributes[BLOB_TAGS] = dict(tags)
            suboperation = SUB_WRITE_WITH_TAGS
        actions = (BLOB_WRITE,) if existing is not None else (BLOB_ADD, BLOB_WRITE)
        self._access.authorize(
            call,
            actions,
            blob=existing,
            suboperation=suboperation,
            request_attributes=request_attributes,
        )
        if tags is not None:  # Put Blob with x-ms-tags needs Set Blob Tags' permission too
            self._access.authorize(
                call, (BLOB_TAGS_WRITE,), blob=existing, request_attributes={BLOB_TAGS: tags}
            )
        self._access.require_container(call)
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

    def delete_blob(self, call: BlobCall) -> Response:
        blob = self._access.existing(call)
        if_tags = _if_tags(call)
        self._access.authorize(call, (BLOB_DELETE,), blob=blob)
        self._access.require_container(call)
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

    def get_tags(self, call: BlobCall) -> Response:
        blob = self._access.existing(call)
        if_tags = _if_tags(call)
        self._access.authorize(call, (BLOB_TAGS_READ,), blob=blob)
        self._access.require_container(call)
        if blob is None:
            raise BlobError(404, "BlobNotFound")
        _check_if_tags(if_tags, blob)
        return Response(
            wire.tags_document(blob.tags), headers=call.headers(), media_type="application/xml"
        )

    def set_tags(self, call: BlobCall) -> Response:
        blob = self._access.existing(call)
        if_tags = _if_tags(call)
        try:
            tags = wire.parse_tags_document(call.request.state.body)
        except wire.BadTagsError as exc:
            raise BlobError(400, "InvalidXmlDocument", extra={"Reason": str(exc)}) from exc
        self._access.authorize(
            call,
            (BLOB_TAGS_WRITE,),
            blob=blob,
            request_attributes={BLOB_TAGS: tags},
        )
        self._access.require_container(call)
        _check_if_tags(if_tags, blob)
        assert call.container is not None and call.blob is not None
        if (
            blob is None
            or self._state.set_blob_tags(call.account.name, call.container, call.blob, tags) is None
        ):
            raise BlobError(404, "BlobNotFound")
        return Response(status_code=204, headers=call.headers())


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


def _header_tags(value: str | None) -> dict[str, str] | None:
    """``x-ms-tags: k1=v1&k2=v2`` (URL-encoded), or None when absent."""
    if value is None:
        return None
    return dict(parse_qsl(value, keep_blank_values=True))


def _if_tags(call: BlobCall) -> tag_filter.TagFilter | None:
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
