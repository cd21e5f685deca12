"""Key Vault's error factory: every refusal of the sandbox's vaults is rendered here.

Key Vault answers ``{"error": {"code", "message", "innererror": {"code"}?}}`` (the
``KeyVaultError`` model azure-keyvault-secrets parses; ``innererror.code`` is what tells
``ForbiddenByRbac`` from other 403s). :func:`error` renders one, :func:`fault_error_body`
renders an injected fault through the same :func:`error_body`, and a handler that must stop
deep in a call raises :class:`KeyVaultHttpError`.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response


def error_body(code: str, message: str, inner: str | None = None) -> dict[str, Any]:
    """Key Vault's error document."""
    body: dict[str, Any] = {"code": code, "message": message}
    if inner:
        body["innererror"] = {"code": inner}
    return {"error": body}


def error(
    status: int,
    code: str,
    message: str,
    inner: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A Key Vault error response: ``status`` with :func:`error_body`."""
    return JSONResponse(error_body(code, message, inner), status_code=status, headers=headers)


_FAULTS = {
    429: (
        "Throttled",
        "Request was not processed because too many requests were received. "
        "Reason: VaultRequestTypeLimitReached",
    )
}


def fault_error_body(status: int) -> dict[str, Any]:
    """Key Vault's body for an injected fault of ``status``."""
    code, message = _FAULTS.get(status, ("InternalServerError", "An unexpected error occurred."))
    return error_body(code, message)


class KeyVaultHttpError(Exception):
    """Raised by a handler to answer at once with ``response`` (a Key Vault error)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response
