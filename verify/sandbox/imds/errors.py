"""IMDS's error factory: every refusal of the sandbox's IMDS is rendered here.

IMDS answers ``{"error", "error_description"}`` (OAuth's shape, which msal parses); a
handler raises :class:`ImdsError`, and :func:`fault_error_body` renders an injected fault
through the same :func:`error_body`.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


def error_body(error: str, description: str) -> dict[str, Any]:
    """IMDS's error document."""
    return {"error": error, "error_description": description}


class ImdsError(Exception):
    """An IMDS error answer: HTTP status plus the ``error`` / ``error_description`` body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> JSONResponse:
        return JSONResponse(error_body(self.error, self.description), status_code=self.status)


_FAULTS = {
    429: ("too_many_requests", "IMDS is throttling requests; retry after the indicated time"),
    410: ("service_unavailable", "IMDS is restarting; retry"),
}


def fault_error_body(status: int) -> dict[str, Any]:
    """IMDS's body for an injected fault (throttling, outage, restart)."""
    error, description = _FAULTS.get(
        status, ("internal_error", "IMDS failed to process the request")
    )
    return error_body(error, description)
