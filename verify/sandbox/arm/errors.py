"""ARM's error factory: every refusal of the sandbox's ARM slice is rendered here.

ARM answers every error as ``{"error": {"code", "message"}}`` (the resource-provider
contract's error response); :func:`error` renders one, :func:`fault_error_body` renders an
injected fault through the same body, and :func:`unauthorized` / :func:`body_refused` map the
shared decisions of :mod:`verify.sandbox.auth` and :mod:`verify.sandbox.bodies` to ARM's
codes. A handler that must stop deep in a call raises :class:`ArmHttpError`.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from verify.sandbox.auth import AuthError
from verify.sandbox.bodies import BodyError
from verify.sandbox.entra.tokens import ARM_AUDIENCES


def error_body(code: str, message: str) -> dict[str, Any]:
    """ARM's error document."""
    return {"error": {"code": code, "message": message}}


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An ARM error response: ``status`` with :func:`error_body`."""
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


_FAULTS = {
    429: ("TooManyRequests", "The request is being throttled; retry after the indicated time."),
    410: ("Gone", "The resource is temporarily unavailable."),
}


def fault_error_body(status: int) -> dict[str, Any]:
    """ARM's body for an injected fault of ``status``."""
    internal = ("InternalServerError", "Encountered internal server error.")
    code, message = _FAULTS.get(status, internal)
    return error_body(code, message)


class ArmHttpError(Exception):
    """Raised by a handler to answer at once with ``response`` (an ARM error)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response

    @classmethod
    def of(cls, status: int, code: str, message: str) -> ArmHttpError:
        return cls(error(status, code, message))


def body_refused(exc: BodyError) -> JSONResponse:
    """ARM's answer to a body it will not take: 413 past the 4 MB cap (the resource-provider
    contract), else 400 ``InvalidRequestContent`` (what ARM answers to content it cannot
    deserialize)."""
    if exc.problem == "too_large":
        return error(413, "RequestEntityTooLarge", exc.message)
    if exc.problem == "timeout":
        return error(408, "RequestTimeout", exc.message)
    return error(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: {exc.message}",
    )


def unauthorized(failure: AuthError) -> JSONResponse:
    """ARM's 401 for a request that is not authenticated, with its ``WWW-Authenticate``.

    The code follows ARM's per-failure codes: ``AuthenticationFailed`` (no token),
    ``ExpiredAuthenticationToken``, ``InvalidAuthenticationTokenAudience``,
    ``InvalidAuthenticationTokenTenant``, else ``InvalidAuthenticationToken`` ("The access
    token is invalid.": a bad signature, a malformed claim, a deleted principal refused).
    """
    if failure.kind == "missing":
        code, message = (
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        )
    elif failure.reason == "expired":
        code, message = "ExpiredAuthenticationToken", f"The access token has expired. {failure}"
    elif failure.reason == "audience":
        code = "InvalidAuthenticationTokenAudience"
        message = (
            "The access token has been obtained for wrong audience or resource. It should "
            f"exactly match with one of the allowed audiences {', '.join(ARM_AUDIENCES)}. "
            f"{failure}"
        )
    elif failure.reason in ("issuer", "tenant"):
        code = "InvalidAuthenticationTokenTenant"
        message = f"The access token is from the wrong issuer. {failure}"
    else:
        code, message = "InvalidAuthenticationToken", f"The access token is invalid. {failure}"
    challenge = (
        'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
        f'error_description="{message.split(". ")[0]}."'
    )
    return error(401, code, message, headers={"WWW-Authenticate": challenge})
