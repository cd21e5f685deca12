"""Blob Storage's one error factory: every error the Blob service answers, faults included.

Azure Storage answers every error as ``<?xml ...?><Error><Code>..</Code><Message>..
\\nRequestId:..\\nTime:..</Message>[extra elements]</Error>`` with ``Content-Type:
application/xml`` and the code repeated in the ``x-ms-error-code`` header, which
azure-storage-blob prefers over the body; a HEAD response carries the header and no body
(Microsoft's "Status and error codes" and "Blob Storage error codes" pages; Azurite's
``StorageErrorFactory`` renders the same shape).
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from verify.sandbox.blob.wire import common_headers, xml_bytes

# Messages as Azure words them (Blob Storage error codes / common REST error codes pages).
MESSAGES = {
    "AuthenticationFailed": (
        "Server failed to authenticate the request. Make sure the value of Authorization "
        "header is formed correctly including the signature."
    ),
    "AuthorizationFailure": "This request is not authorized to perform this operation.",
    "AuthorizationPermissionMismatch": (
        "This request is not authorized to perform this operation using this permission."
    ),
    "BlobAlreadyExists": "The specified blob already exists.",
    "BlobNotFound": "The specified blob does not exist.",
    "ConditionNotMet": "The condition specified using HTTP conditional header(s) is not met.",
    "InvalidMd5": (
        "The MD5 value specified in the request is invalid. The MD5 value must be 128 bits "
        "and Base64-encoded."
    ),
    "UnsatisfiableCondition": "The request includes an unsatisfiable condition for this operation.",
    "ContainerAlreadyExists": "The specified container already exists.",
    "ContainerBeingDeleted": "The specified container is being deleted.",
    "ContainerNotFound": "The specified container does not exist.",
    "InternalError": "The server encountered an internal error. Please retry the request.",
    "InvalidAuthenticationInfo": (
        "Server failed to authenticate the request. Please refer to the information in the "
        "www-authenticate header."
    ),
    "InvalidHeaderValue": "The value for one of the HTTP headers is not in the correct format.",
    "InvalidMetadata": (
        "The metadata specified is invalid. It has characters that are not permitted."
    ),
    "InvalidQueryParameterValue": (
        "Value for one of the query parameters specified in the request URI is invalid."
    ),
    "InvalidRange": "The range specified is invalid for the current size of the resource.",
    "InvalidResourceName": "The specifed resource name contains invalid characters.",
    "InvalidUri": "The requested URI does not represent any resource on the server.",
    "InvalidXmlDocument": "XML specified is not syntactically valid.",
    "KeyBasedAuthenticationNotPermitted": (
        "Key based authentication is not permitted on this storage account."
    ),
    "Md5Mismatch": (
        "The MD5 value specified in the request did not match with the MD5 value "
        "calculated by the server."
    ),
    "MissingRequiredQueryParameter": (
        "A query parameter that's mandatory for this request is not specified."
    ),
    "MissingRequiredHeader": "An HTTP header that's mandatory for this request is not specified.",
    "NoAuthenticationInformation": (
        "Server failed to authenticate the request. Please refer to the information in the "
        "www-authenticate header."
    ),
    "OutOfRangeQueryParameterValue": (
        "One of the query parameters specified in the request URI is outside the permissible range."
    ),
    "RequestBodyTooLarge": (
        "The request body is too large and exceeds the maximum permissible limit."
    ),
    "ResourceNotFound": "The specified resource does not exist.",
    "ServerBusy": "The server is currently unable to receive requests. Please retry your request.",
    "UnsupportedHttpVerb": "The resource doesn't support specified Http Verb.",
}

#: The code an injected fault of each status answers with.
FAULT_CODES = {
    403: "AuthorizationFailure",
    429: "ServerBusy",  # Storage throttles with ServerBusy; 429 keeps its status
    500: "InternalError",
    503: "ServerBusy",
}


class BlobError(Exception):
    """An Azure Storage error to answer with (status, code, extra XML elements)."""

    def __init__(
        self,
        status: int,
        code: str,
        *,
        message: str | None = None,
        extra: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def document(self) -> tuple[bytes, dict[str, str]]:
        """The XML body and the headers that go with it (``x-ms-error-code``, request ID,
        which the message repeats as Azure's does, and this error's own headers)."""
        request_id = str(uuid.uuid4())
        root = ET.Element("Error")
        ET.SubElement(root, "Code").text = self.code
        text = self.message or MESSAGES.get(self.code, self.code)
        ET.SubElement(root, "Message").text = f"{text}\nRequestId:{request_id}\nTime:{_iso_now()}"
        for name, value in self.extra.items():
            ET.SubElement(root, name).text = value
        headers = {"x-ms-request-id": request_id, "x-ms-error-code": self.code, **self.headers}
        return xml_bytes(root), headers

    def response(self, *, head: bool = False, version: str | None = None) -> Response:
        """The HTTP answer: XML body (none for HEAD or 304), common headers,
        ``x-ms-error-code``."""
        body, own = self.document()
        headers = {**common_headers(version, None), **own}
        if head:
            return Response(status_code=self.status, headers=headers)
        if self.status == 304:  # Not Modified has no body; the code is in the header
            return Response(status_code=304, headers=headers, media_type="application/xml")
        return Response(
            body, status_code=self.status, headers=headers, media_type="application/xml"
        )

    @classmethod
    def fault(cls, status: int) -> BlobError:
        """The error an injected fault of ``status`` answers with: Storage's own code."""
        return cls(status, FAULT_CODES.get(status, "InternalError"))


def fault_error_body(status: int) -> Any:
    """For :class:`~verify.sandbox.middleware.ServiceMiddleware`: Storage's XML error body."""
    from verify.sandbox.middleware import RawBody  # noqa: PLC0415 - avoid an import cycle

    body, headers = BlobError.fault(status).document()
    return RawBody("application/xml", body, headers)


def _iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
