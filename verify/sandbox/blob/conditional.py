"""Conditional headers (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since).

Microsoft's "Specifying conditional headers for Blob service operations" has two rule
sets, and Azurite (Microsoft's emulator) implements both the same way
(``ReadConditionalHeadersValidator`` / ``WriteConditionalHeadersValidator``):

* **reads** (Get Blob, Get Blob Properties, Get Blob Tags, version 2013-08-15 and later):
  all headers are evaluated; If-Match or If-Unmodified-Since failing is 412
  ``ConditionNotMet``; If-None-Match or If-Modified-Since failing (and the other not
  passing) is 304 with ``x-ms-error-code: ConditionNotMet`` and no body;
  ``If-None-Match: *`` on a read is 400 ``UnsatisfiableCondition``; on a missing blob
  only If-Match counts (412), the 404 follows otherwise;
* **writes** (Put Blob, Delete Blob, Set Blob Tags): the first header present in the
  order If-None-Match, If-Match, If-Modified-Since, If-Unmodified-Since decides, and a
  failure is 412 ``ConditionNotMet``; ``If-None-Match: *`` on an existing blob is Put
  Blob's own 409 ``BlobAlreadyExists``; on a missing blob only If-Match fails.

Dates compare at one-second precision (HTTP dates have no fractions).
"""

from __future__ import annotations

import email.utils
from collections.abc import Mapping
from dataclasses import dataclass

from verify.sandbox.blob.errors import BlobError


@dataclass(frozen=True)
class Conditions:
    if_match: tuple[str, ...] = ()
    if_none_match: tuple[str, ...] = ()
    if_modified_since: float | None = None
    if_unmodified_since: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Conditions:
        return cls(
            _etags(headers.get("if-match")),
            _etags(headers.get("if-none-match")),
            _date(headers, "if-modified-since"),
            _date(headers, "if-unmodified-since"),
        )

    @property
    def any(self) -> bool:
        return bool(
            self.if_match
            or self.if_none_match
            or self.if_modified_since is not None
            or self.if_unmodified_since is not None
        )


def _etags(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _date(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        raise BlobError(
            400, "InvalidHeaderValue", extra={"HeaderName": name, "HeaderValue": value}
        ) from None


def _seconds(stamp: float) -> int:
    return int(stamp)


def check_read(conditions: Conditions, etag: str | None, last_modified: float | None) -> None:
    """Raises the error a read answers with when its conditions fail (``etag`` None: the
    blob does not exist)."""
    if not conditions.any:
        return
    if "*" in conditions.if_none_match[:1]:
        raise BlobError(400, "UnsatisfiableCondition")
    if etag is None or last_modified is None:
        if conditions.if_match:
            raise BlobError(412, "ConditionNotMet")
        return
    modified = _seconds(last_modified)
    if conditions.if_match and not (etag in conditions.if_match or conditions.if_match[0] == "*"):
        raise BlobError(412, "ConditionNotMet")
    if conditions.if_unmodified_since is not None and modified > _seconds(
        conditions.if_unmodified_since
    ):
        raise BlobError(412, "ConditionNotMet")
    none_match = None if not conditions.if_none_match else etag not in conditions.if_none_match
    modified_since = (
        None
        if conditions.if_modified_since is None
        else _seconds(conditions.if_modified_since) < modified
    )
    if (none_match is False and modified_since is not True) or (
        modified_since is False and none_match is not True
    ):
        raise BlobError(304, "ConditionNotMet")


def check_write(conditions: Conditions, etag: str | None, last_modified: float | None) -> None:
    """Raises 412 ``ConditionNotMet`` when a write's deciding condition fails."""
    if not conditions.any:
        return
    if etag is None or last_modified is None:
        if not conditions.if_none_match and conditions.if_match:
            raise BlobError(412, "ConditionNotMet")
        return
    modified = _seconds(last_modified)
    if conditions.if_none_match:
        if conditions.if_none_match[0] != "*" and etag in conditions.if_none_match:
            raise BlobError(412, "ConditionNotMet")
        return
    if conditions.if_match:
        if conditions.if_match[0] != "*" and etag not in conditions.if_match:
            raise BlobError(412, "ConditionNotMet")
        return
    if conditions.if_modified_since is not None:
        if modified <= _seconds(conditions.if_modified_since):
            raise BlobError(412, "ConditionNotMet")
        return
    if conditions.if_unmodified_since is not None and modified > _seconds(
        conditions.if_unmodified_since
    ):
        raise BlobError(412, "ConditionNotMet")
