"""Microsoft Graph's error factory: every refusal of the sandbox's Graph slice is rendered here.

Graph answers ``{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}`` with the request IDs repeated as headers; a handler raises
:class:`GraphError`, :func:`error_response` renders it, and :func:`fault_error_body` renders
an injected fault through the same :func:`error_body`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse


class GraphError(Exception):
    """A Graph error answer: status, ``error.code`` and ``error.message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(
    code: str, message: str, request_id: str, client_request_id: str | None = None
) -> dict[str, Any]:
    """Graph's error document, with the ``innerError`` Graph adds to every error."""
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    return {"error": {"code": code, "message": message, "innerError": inner}}


def error_response(
    status: int, code: str, message: str, client_request_id: str | None = None
) -> JSONResponse:
    """A Graph error response: :func:`error_body` plus the request-ID headers."""
    request_id = str(uuid.uuid4())
    body = error_body(code, message, request_id, client_request_id)
    headers = {"request-id": request_id, "client-request-id": client_request_id or request_id}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="", authorization_uri="", client_id=""'
    return JSONResponse(body, status_code=status, headers=headers)


_FAULTS = {
    429: ("TooManyRequests", "Too many requests. Please retry after the indicated time."),
    503: ("serviceNotAvailable", "Service unavailable. Please retry."),
}


def fault_error_body(status: int) -> dict[str, Any]:
    """Graph's body for an injected fault of ``status`` (throttling, outage)."""
    code, message = _FAULTS.get(status, ("generalException", "An internal server error occurred."))
    return error_body(code, message, str(uuid.uuid4()))
