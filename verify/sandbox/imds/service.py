"""IMDS, the Azure Instance Metadata Service token endpoint, one listener per VM.

On Azure every VM reaches ``http://169.254.169.254`` and gets tokens for *its own*
identities only; the sandbox gives each VM its own loopback port, so code under test
learns which VM it is on only through the endpoint it is pointed at
(``AZURE_POD_IDENTITY_AUTHORITY_HOST``), exactly as on Azure.

Behaviour (from Microsoft's IMDS documentation and what msal 1.39 / azure-identity 1.27
send and parse):

- ``GET /metadata/identity/oauth2/token?api-version=...&resource=...`` with header
  ``Metadata: true`` (else 400 ``bad_request_102``); a request carrying
  ``X-Forwarded-For`` is refused (IMDS serves only the VM itself, never via a proxy);
- one of ``client_id`` / ``object_id`` / ``msi_res_id`` picks an identity attached to
  the VM; none picks the system identity, or the only user-assigned one; several
  user-assigned identities and no system identity is an error; an identity not
  attached, or attached but deleted, is "Identity not found";
- success: ``access_token``, ``expires_in`` / ``expires_on`` / ``not_before`` as
  *strings*, ``resource``, ``token_type``, ``client_id``, ``refresh_token: ""``;
- the platform caches a token per identity and resource and hands out the same one
  until it is close to expiry (Azure: tokens cannot be refreshed early).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from verify.sandbox.entra.tokens import HostTokenCache, IssuedToken, TokenIssuer
from verify.sandbox.imds.errors import ImdsError
from verify.sandbox.state.store import SandboxState, ServicePrincipal, VirtualMachine

TOKEN_PATH = "/metadata/identity/oauth2/token"  # noqa: S105 (a URL path)
SUPPORTED_API_VERSIONS = (
    "2018-02-01",
    "2019-08-01",
    "2019-11-01",
    "2020-06-01",
    "2021-02-01",
    "2025-04-07",
)
MULTIPLE_IDENTITIES = (
    "Multiple user assigned identities exist, please specify the clientId / resourceId of the "
    "identity in the token request"
)
CACHE_MIN_REMAINING_SECONDS = 300


class ImdsService:
    """Resolves which identity a VM's token request names, and issues its token."""

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

    def resolve(self, vm: VirtualMachine, params: dict[str, str]) -> ServicePrincipal:
        """The principal a request selects on ``vm``, or :class:`ImdsError` as IMDS says it."""
        selectors = [k for k in ("client_id", "object_id", "msi_res_id") if params.get(k)]
        if len(selectors) > 1:
            raise ImdsError(
                400,
                "invalid_request",
                "Only one of client_id, object_id or msi_res_id may be specified",
            )
        system = self._state.principal(vm.system_principal_id) if vm.system_principal_id else None
        # Only identities the VM holds: a same-name re-created identity is another principal.
        attached = [self._state.bound_identity(vm.id, uai_id) for uai_id in vm.user_assigned]
        live = [u for u in attached if u is not None]
        if not selectors:
            if vm.system_principal_id:
                if system is None:
                    raise ImdsError(400, "invalid_request", "Identity not found")
                return system
            if len(vm.user_assigned) > 1:
                raise ImdsError(400, "invalid_request", MULTIPLE_IDENTITIES)
            if not live:
                raise ImdsError(400, "invalid_request", "Identity not found")
            principal = self._state.principal(live[0].principal_id)
        else:
            key, wanted = selectors[0], params[selectors[0]].strip().lower()
            principal = None
            if key == "msi_res_id":
                match = next((u for u in live if u.id.lower() == wanted.rstrip("/")), None)
                principal = self._state.principal(match.principal_id) if match else None
            else:
                candidates = [self._state.principal(u.principal_id) for u in live] + [system]
                attr = "client_id" if key == "client_id" else "object_id"
                principal = next((p for p in candidates if p and getattr(p, attr) == wanted), None)
        if principal is None:
            raise ImdsError(400, "invalid_request", "Identity not found")
        return principal

    def token_for(
        self, vm: VirtualMachine, principal: ServicePrincipal, resource: str
    ) -> IssuedToken:
        """The platform's cached token for this identity and resource, or a new one."""
        return self._tokens.token(vm.id, principal, resource)

    def handle(self, vm_id: str, headers: dict[str, str], params: dict[str, str]) -> dict[str, Any]:
        """The token response for one request, or :class:`ImdsError`."""
        if "x-forwarded-for" in headers:
            raise ImdsError(
                400,
                "invalid_request",
                "Request contains X-Forwarded-For header; IMDS does not accept proxied requests",
            )
        if headers.get("metadata", "").lower() != "true":
            raise ImdsError(400, "bad_request_102", "Required metadata header not specified")
        api_version = params.get("api-version")
        if not api_version:
            raise ImdsError(
                400, "invalid_request", "Required query variable 'api-version' is missing"
            )
        if api_version not in SUPPORTED_API_VERSIONS:
            raise ImdsError(400, "invalid_request", f"Invalid api-version '{api_version}'")
        resource = params.get("resource", "").strip()
        if not resource:
            raise ImdsError(400, "invalid_request", "Required query variable 'resource' is missing")
        # A VM, or a scale-set instance (which holds its set's principals).
        vm = self._state.vm(vm_id) or self._state.instance(vm_id)
        if vm is None:  # the listener outlived its VM for a moment
            raise ImdsError(400, "invalid_request", "Identity not found")
        principal = self.resolve(vm, params)
        if not self._issuer.knows_resource(resource):
            raise ImdsError(
                400,
                "invalid_resource",
                f"AADSTS500011: The resource principal named {resource} was not found in the "
                f"tenant named {self._state.tenant_id}.",
            )
        token = self.token_for(vm, principal, resource)
        claims = token.claims or {}
        return {
            "access_token": token.token,
            "client_id": principal.client_id,
            "expires_in": str(int(claims["exp"] - self._clock())),
            "expires_on": str(claims["exp"]),
            "ext_expires_in": str(int(claims["exp"] - self._clock())),
            "not_before": str(claims["nbf"]),
            "resource": resource,
            "token_type": "Bearer",
            "refresh_token": "",
        }

    def app(self, vm_id: str) -> Starlette:
        """The ASGI app of one VM's IMDS listener."""

        async def token(request: Request) -> JSONResponse:
            try:
                body = self.handle(vm_id, dict(request.headers), dict(request.query_params))
            except ImdsError as exc:
                return exc.response()
            request.state.principal_id = body["client_id"]
            return JSONResponse(body)

        return Starlette(routes=[Route(TOKEN_PATH, token, methods=["GET"])])
