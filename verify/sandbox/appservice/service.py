"""The managed-identity endpoint App Service, Functions and Container Apps give each app.

The platform sets ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` in the app's environment
(Container Apps also ``MSI_ENDPOINT``); azure-identity picks this source when both are set
and asks through msal (``msal/managed_identity.py``, ``_obtain_token_on_app_service``):

- ``GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=<uri>``, header
  ``X-IDENTITY-HEADER: $IDENTITY_HEADER`` (msal adds ``Metadata: true``); a missing or wrong
  header is 403 with an empty body; another method 405;
- at most one selector: ``client_id``, ``principal_id`` (msal sends its alias ``object_id``)
  or ``mi_res_id`` (IMDS spells it ``msi_res_id``); none is the system identity, even when
  the app holds user-assigned ones;
- an identity the app does not hold, or one a Container Apps ``identitySettings``
  lifecycle hides from the app's code (``None``, or ``Init`` for the main container), is
  500 ``{"statusCode", "message", "correlationId"}``;
- 200: ``access_token``, ``expires_on`` as a string of epoch seconds, ``resource``,
  ``token_type: Bearer``, ``client_id``; no ``expires_in`` (msal computes it from
  ``expires_on``). The platform caches a token per identity and resource.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from verify.sandbox.appservice.errors import NO_IDENTITY, AppServiceError
from verify.sandbox.entra.tokens import HostTokenCache, IssuedToken, TokenIssuer
from verify.sandbox.state.apps import SYSTEM, AppHost
from verify.sandbox.state.store import SandboxState, ServicePrincipal

TOKEN_PATH = "/msi/token"  # noqa: S105 (a URL path, as App Service's IDENTITY_ENDPOINT has)
API_VERSION = "2019-08-01"
IDENTITY_HEADER = "x-identity-header"
SELECTORS = ("client_id", "principal_id", "object_id", "mi_res_id")
CACHE_MIN_REMAINING_SECONDS = 300


class AppServiceIdentity:
    """Resolves which of an app's identities a request names, and issues its token."""

    def __init__(
        self, state: SandboxState, issuer: TokenIssuer, clock: Callable[[], float] = time.time
    ) -> None:
        self._state = state
        self._issuer = issuer
        self._clock = clock
        self._tokens = HostTokenCache(issuer, clock, CACHE_MIN_REMAINING_SECONDS)

    def clear_tokens(self) -> None:
        """Forget the tokens cached for every host."""
        self._tokens.clear()

    def resolve(self, app: AppHost, params: dict[str, str]) -> ServicePrincipal:
        given = [k for k in SELECTORS if params.get(k)]
        if len(given) > 1:
            raise AppServiceError(
                400, "Only one of client_id, principal_id, object_id or mi_res_id may be given."
            )
        if not given:
            if app.system_principal_id is None or SYSTEM in app.hidden:
                raise AppServiceError(500, NO_IDENTITY)
            system = self._state.principal(app.system_principal_id)
            if system is None:
                raise AppServiceError(500, NO_IDENTITY)
            return system
        selector, wanted = given[0], params[given[0]].strip().lower()
        candidates: list[tuple[str, ServicePrincipal]] = []
        for uai_id in app.user_assigned:
            bound = self._state.bound_identity(app.id, uai_id)
            principal = self._state.principal(bound.principal_id) if bound else None
            if bound is not None and principal is not None and uai_id.lower() not in app.hidden:
                candidates.append((bound.id.lower(), principal))
        if app.system_principal_id and SYSTEM not in app.hidden:
            system = self._state.principal(app.system_principal_id)
            if system is not None:
                candidates.append((app.id.lower(), system))
        for resource_id, principal in candidates:
            if selector == "mi_res_id" and resource_id == wanted.rstrip("/"):
                return principal
            if selector == "client_id" and principal.client_id == wanted:
                return principal
            if selector in ("principal_id", "object_id") and principal.object_id == wanted:
                return principal
        raise AppServiceError(500, NO_IDENTITY)

    def token_for(self, app: AppHost, principal: ServicePrincipal, resource: str) -> IssuedToken:
        return self._tokens.token(app.id, principal, resource)

    def handle(
        self, app_id: str, method: str, headers: dict[str, str], params: dict[str, str]
    ) -> dict[str, Any]:
        """The token response for one request, or :class:`AppServiceError`."""
        if method != "GET":
            raise AppServiceError(405)
        app = self._state.app(app_id)
        if app is None or headers.get(IDENTITY_HEADER) != app.identity_header:
            raise AppServiceError(403)
        if params.get("api-version") != API_VERSION:
            raise AppServiceError(
                400, f"The api-version '{params.get('api-version', '')}' is not supported."
            )
        resource = params.get("resource", "").strip()
        if not resource:
            raise AppServiceError(400, "The 'resource' query parameter is required.")
        principal = self.resolve(app, params)
        if not self._issuer.knows_resource(resource):
            raise AppServiceError(
                500,
                f"AADSTS500011: The resource principal named {resource} was not found in the "
                f"tenant named {self._state.tenant_id}.",
            )
        token = self.token_for(app, principal, resource)
        return {
            "access_token": token.token,
            "expires_on": str(token.expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": principal.client_id,
        }

    def app(self, app_id: str) -> Starlette:
        """The ASGI app of one app's identity endpoint."""

        async def token(request: Request) -> Response:
            try:
                body = self.handle(
                    app_id, request.method, dict(request.headers), dict(request.query_params)
                )
            except AppServiceError as exc:
                return exc.response()
            request.state.principal_id = body["client_id"]
            return JSONResponse(body)

        return Starlette(
            routes=[Route(TOKEN_PATH, token, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])]
        )
