"""Entra ID's error factory: every refusal of the sandbox's issuer is rendered here.

Entra answers ``{"error", "error_description": "AADSTS<n>: ...\\r\\nTrace ID: ...\\r\\n
Correlation ID: ...\\r\\nTimestamp: ...", "error_codes": [n], "timestamp", "trace_id",
"correlation_id", "error_uri"}`` (what msal parses and azure-identity quotes). A handler
raises :class:`EntraError`; :func:`fault_error_body` renders an injected fault through the
same :func:`error_body`, with the codes Microsoft lists for throttling (AADSTS90055
``TenantThrottlingError``) and an unavailable directory (AADSTS90033
``MsodsServiceUnavailable``) in "Microsoft Entra authentication and authorization error codes".
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse

#: Where error_uri points when no request says which host answered (injected faults).
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


def error_body(error: str, code: int, message: str, base_url: str) -> dict[str, Any]:
    """Entra's error document for AADSTS ``code``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    description = (
        f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"
    )
    return {
        "error": error,
        "error_description": description,
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{base_url.rstrip('/')}/error?code={code}",
    }


class EntraError(Exception):
    """One AADSTS refusal: HTTP status, OAuth ``error``, AADSTS number and message."""

    def __init__(self, status: int, error: str, code: int, message: str) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.status = status
        self.error = error
        self.code = code
        self.message = message

    def response(self, base_url: str) -> JSONResponse:
        body = error_body(self.error, self.code, self.message, base_url)
        return JSONResponse(body, status_code=self.status)


_FAULTS = {
    429: (
        "temporarily_unavailable",
        90055,
        "TenantThrottlingError - There are too many incoming requests.",
    ),
}


def fault_error_body(status: int) -> dict[str, Any]:
    """Entra's body for an injected fault of ``status`` on the issuer's listener."""
    error, code, message = _FAULTS.get(
        status,
        (
            "temporarily_unavailable",
            90033,
            "MsodsServiceUnavailable - The Microsoft Online Directory Service isn't available.",
        ),
    )
    return error_body(error, code, message, DEFAULT_AUTHORITY)
