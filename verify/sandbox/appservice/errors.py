"""The identity endpoint's one error factory.

App Service answers a missing or wrong ``X-IDENTITY-HEADER`` with 403 and an empty body,
a method other than GET with 405, and everything else it cannot serve (an identity the app
does not hold, a failed token request) with 500 and ``{"statusCode", "message",
"correlationId"}``; msal reads ``statusCode`` and ``message`` from that body.
"""

from __future__ import annotations

import uuid

from starlette.responses import JSONResponse, Response

NO_IDENTITY = (
    "No User Assigned or Delegated Managed Identity found for specified "
    "ClientId/ResourceId/PrincipalId."
)


class AppServiceError(Exception):
    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or str(status))
        self.status = status
        self.message = message

    def body(self) -> dict[str, object] | None:
        """The JSON body, or None where App Service sends none (403, 405)."""
        if self.status in (403, 405):
            return None
        return {
            "statusCode": self.status,
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
        }

    def response(self) -> Response:
        body = self.body()
        if body is None:
            return Response(b"", status_code=self.status)
        return JSONResponse(body, status_code=self.status)


def fault_error_body(status: int) -> dict[str, object]:
    """The body of an injected fault (throttling, outage) in the endpoint's own shape."""
    return (
        AppServiceError(
            status, "The managed identity endpoint failed to process the request."
        ).body()
        or {}
    )
