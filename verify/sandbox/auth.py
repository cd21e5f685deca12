"""Bearer-token authentication shared by every sandbox resource server (ARM, Key Vault, Blob).

Each Azure service checks the same things before it looks at a request: a bearer token
is there, it is signed by the tenant's issuer, every claim has the type Entra issues
(:func:`verify.sandbox.entra.tokens.check_claim_types`), ``aud``/``iss``/``tid``/``nbf``/``exp``
are right, and (in the sandbox's "refuse" mode) its principal still exists. Only the
error *body* differs per service, so this module decides and each service renders::

    try:
        claims = self._auth.authenticate(request.headers.get("authorization"), AUDIENCES)
    except AuthError as failure:
        return my_service_401(failure)   # failure.kind, failure.reason, failure.message

Why one call: a service that forgets one of these checks fails open (an ``oid`` of ``""``
matched every role assignment; ARM ignored the refuse mode), and a new service (Blob)
gets them all by calling this.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

from verify.sandbox.entra.tokens import TokenError, TokenIssuer
from verify.sandbox.state.base import StateBase

#: ``missing``: no bearer token; ``invalid``: the token fails validation (``reason`` says
#: which check, see :class:`TokenError`); ``principal_deleted``: a valid token whose
#: principal no longer exists, refused because ``deleted_principal_tokens == "refuse"``.
FailureKind = Literal["missing", "invalid", "principal_deleted"]


class AuthError(Exception):
    """Why a request is unauthenticated; the service turns it into its own 401 body."""

    def __init__(
        self,
        kind: FailureKind,
        reason: str,
        message: str,
        claims: dict[str, Any] | None = None,  # the verified claims, for principal_deleted
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.reason = reason
        self.message = message
        self.claims = claims


class Authenticator:
    """Verifies bearer tokens for one sandbox: the issuer's key, the state's principals
    and the deleted-principal mode (read on every call, so tests can flip it live)."""

    def __init__(
        self,
        issuer: TokenIssuer,
        state: StateBase,
        deleted_principal_mode: Callable[[], str],
        leeway_seconds: int = 300,
    ) -> None:
        self._issuer = issuer
        self._state = state
        self._mode = deleted_principal_mode
        self.leeway_seconds = leeway_seconds

    @property
    def tenant_id(self) -> str:
        return self._issuer.tenant_id

    def authenticate(self, authorization: str | None, audiences: Iterable[str]) -> dict[str, Any]:
        """The verified claims of an ``Authorization: Bearer <jwt>`` header, or AuthError."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("missing", "missing", "The request carries no bearer token.")
        try:
            claims = self._issuer.verify(token.strip(), audiences, self.leeway_seconds)
        except TokenError as exc:
            raise AuthError("invalid", exc.reason, str(exc)) from exc
        self.check_principal(claims)
        return claims

    def check_principal(self, claims: dict[str, Any]) -> None:
        """AuthError ``principal_deleted`` when the mode is "refuse" and ``oid`` is gone.

        In "accept" mode an unexpired token of a deleted principal keeps working through
        its orphaned role assignments (what Azure documents: tokens are cached and cannot
        be revoked early); "refuse" models a resource server that re-checks the directory.
        """
        if self._mode() == "refuse" and self._state.principal(claims["oid"]) is None:
            raise AuthError(
                "principal_deleted",
                "principal_deleted",
                f"The principal of the token (oid={claims['oid']}) no longer exists "
                f"in tenant {claims['tid']}.",
                claims,
            )
