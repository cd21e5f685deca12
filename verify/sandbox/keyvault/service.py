"""Key Vault data plane (secrets), over HTTPS, one listener per vault.

What azure-keyvault-secrets 4.12 sends and expects, checked against its source:

- the first request carries no token; the vault answers 401 with
  ``WWW-Authenticate: Bearer authorization="https://login.windows.net/<tid>",
  resource="https://vault.azure.net"`` and the client asks its credential for a token
  for that resource, then retries (a URL outside ``*.vault.azure.net`` needs
  ``verify_challenge_resource=False`` on the client);
- tokens are checked like Key Vault does: signature against the tenant's issuer key,
  ``aud`` = ``https://vault.azure.net``, ``iss``/``tid`` of the vault's tenant,
  ``nbf``/``exp`` with 5 minutes' clock skew; a bad token gets 401 and the error shape
  ``{"error": {"code": "Unauthorized", "message": ...}}``;
- authorization is Azure RBAC on data actions with scope inheritance: an assignment on
  the vault (or above) covers every secret; one on ``<vault>/secrets/<name>`` covers
  only that secret; Owner/Contributor/Reader carry no data actions and get 403
  ``ForbiddenByRbac``; authorization precedes existence (no grant + missing secret is
  403, grant + missing secret is 404 ``SecretNotFound``);
- secrets: get (latest, by version), set (new version), list (paged by ``maxresults``
  with ``nextLink``), list versions, soft delete, get/purge/recover deleted.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from components.roles import DELETE_SECRET, GET_SECRET, READ_SECRET_METADATA, SET_SECRET
from verify.evidence import keyvault as keyvault_evidence
from verify.sandbox.api_versions import check_keyvault
from verify.sandbox.auth import Authenticator, AuthError
from verify.sandbox.bodies import KEYVAULT_MAX_BODY_BYTES, BodyError, read_body
from verify.sandbox.keyvault.bodies import set_secret_fields
from verify.sandbox.keyvault.errors import KeyVaultHttpError, error
from verify.sandbox.keyvault.secret_rules import check_name
from verify.sandbox.rbac import RbacEvaluator
from verify.sandbox.state.store import (
    DeletedSecret,
    SandboxError,
    SandboxState,
    SecretVersion,
    Vault,
)

RECOVER_SECRET = "Microsoft.KeyVault/vaults/secrets/recover/action"  # noqa: S105 (an action)
PURGE_SECRET = "Microsoft.KeyVault/vaults/secrets/purge/action"  # noqa: S105 (an action)
DEFAULT_PAGE_SIZE = 25
Handler = Callable[[Request, Vault, dict[str, Any]], Response]
NOT_FOUND_HELP = (
    "If you recently deleted this secret you may be able to recover it using the correct "
    "recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)


class KeyVaultService:
    """The secrets data plane of every vault in the shared state, one app per vault."""

    def __init__(
        self,
        state: SandboxState,
        authenticator: Authenticator,
        rbac: RbacEvaluator,
    ) -> None:
        self._state = state
        self._rbac = rbac
        self._auth = authenticator

    @property
    def challenge(self) -> str:
        return (
            f'Bearer authorization="https://login.windows.net/{self._state.tenant_id}", '
            f'resource="{keyvault_evidence.AUDIENCE}"'
        )

    # --------------------------------------------------------------- auth
    def _unauthorized(self, message: str) -> KeyVaultHttpError:
        return KeyVaultHttpError(
            error(401, "Unauthorized", message, headers={"WWW-Authenticate": self.challenge})
        )

    def authenticate(self, request: Request) -> dict[str, Any]:
        """The verified claims of the request's bearer token, or a 401 to send back.

        Every failure is Key Vault's 401 ``Unauthorized`` with the challenge header, so a
        client that sent a bad token is told where to get a good one.
        """
        try:
            claims = self._auth.authenticate(
                request.headers.get("authorization"), keyvault_evidence.AUDIENCES
            )
        except AuthError as failure:
            prefix = {
                "missing": "AKV10000: Request is missing a Bearer or PoP token.",
                "audience": "AKV10022: ",
                "issuer": "AKV10032: ",
            }
            if failure.kind == "missing":
                raise self._unauthorized(prefix["missing"]) from failure
            raise self._unauthorized(prefix.get(failure.reason, "") + str(failure)) from failure
        request.state.principal_id = claims["oid"]
        return claims

    def authorize(
        self, vault: Vault, claims: dict[str, Any], action: str, resource_id: str
    ) -> None:
        if self._rbac.check_data_action(claims["oid"], action, resource_id).allowed:
            return
        message = (
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, "
            "please observe propagation time.\r\n"
            f"Caller: appid={claims.get('appid')};oid={claims['oid']};iss={claims['iss']}\r\n"
            f"Action: '{action}'\r\n"
            f"Resource: '{resource_id.lower()}'\r\n"
            "Assignment: (not found)\r\n"
            "DenyAssignmentId: null\r\n"
            "DecisionReason: null \r\n"
            f"Vault: {vault.name};location={vault.location}\r\n"
        )
        raise KeyVaultHttpError(error(403, "Forbidden", message, inner="ForbiddenByRbac"))

    # ------------------------------------------------------------ bodies
    @staticmethod
    def _base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    @staticmethod
    def _attributes(vault: Vault, s: SecretVersion) -> dict[str, Any]:
        attributes: dict[str, Any] = {"enabled": s.enabled}
        if s.not_before is not None:
            attributes["nbf"] = s.not_before
        if s.expires is not None:
            attributes["exp"] = s.expires
        attributes.update(
            {
                "created": s.created,
                "updated": s.updated,
                "recoveryLevel": vault.recovery_level,
                "recoverableDays": vault.soft_delete_retention_days,
            }
        )
        return attributes

    def _bundle(
        self,
        request: Request,
        vault: Vault,
        s: SecretVersion,
        value: bool = True,
        versioned: bool = True,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if value:
            body["value"] = s.value
        body["id"] = f"{self._base(request)}/secrets/{s.name}" + (
            f"/{s.version}" if versioned else ""
        )
        if s.content_type is not None:
            body["contentType"] = s.content_type
        body["attributes"] = self._attributes(vault, s)
        body["tags"] = dict(s.tags)
        return body

    def _deleted_bundle(self, request: Request, vault: Vault, d: DeletedSecret) -> dict[str, Any]:
        body = self._bundle(request, vault, d.latest, value=False)
        body["recoveryId"] = f"{self._base(request)}/deletedsecrets/{d.latest.name}"
        body["deletedDate"] = d.deleted_date
        body["scheduledPurgeDate"] = d.scheduled_purge_date
        return body

    @staticmethod
    def _not_found(name: str) -> JSONResponse:
        return error(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {name} was not found in this key vault. {NOT_FOUND_HELP}",
        )

    def _page(self, request: Request, items: list[dict[str, Any]], path: str) -> JSONResponse:
        try:
            size = int(request.query_params.get("maxresults", DEFAULT_PAGE_SIZE))
            start = int(
                base64.urlsafe_b64decode(request.query_params.get("$skiptoken", "") + "==").decode()
                or 0
            )
        except ValueError:
            return error(400, "BadParameter", "Invalid maxresults or $skiptoken.")
        if not 1 <= size <= DEFAULT_PAGE_SIZE:
            return error(
                400, "BadParameter", f"maxresults must be between 1 and {DEFAULT_PAGE_SIZE}."
            )
        page = items[start : start + size]
        next_link = None
        if start + size < len(items):
            token = base64.urlsafe_b64encode(str(start + size).encode()).decode().rstrip("=")
            api = request.query_params.get("api-version", "")
            query = f"api-version={api}&$skiptoken={token}&maxresults={size}"
            next_link = f"{self._base(request)}{path}?{query}"
        return JSONResponse({"value": page, "nextLink": next_link})

    # ----------------------------------------------------------- handlers
    # Each handler authorizes first (as Key Vault does: no grant + missing secret is 403).
    def _get_secret(self, request: Request, vault: Vault, claims: dict[str, Any]) -> Response:
        name, version = request.path_params["name"], request.path_params.get("version", "")
        self.authorize(vault, claims, GET_SECRET, vault.secret_scope(name))
        s = self._state.get_secret(vault.name, name, version or None)
        if s is None:
            return self._not_found(f"{name}/{version}" if version else name)
        if not s.enabled:  # exp/nbf do not block a get (documented); disabled does
            message = "Operation get is not allowed on a disabled secret."
            return error(403, "Forbidden", message, inner="SecretDisabled")
        return JSONResponse(self._bundle(request, vault, s))

    def _set_secret(self, request: Request, vault: Vault, claims: dict[str, Any]) -> Response:
        name = request.path_params["name"]
        self.authorize(vault, claims, SET_SECRET, vault.secret_scope(name))
        fields = set_secret_fields(request.state.body)
        s = self._state.set_secret(vault.name, name, **fields)
        return JSONResponse(self._bundle(request, vault, s))

    def _delete_secret(self, request: Request, vault: Vault, claims: dict[str, Any]) -> Response:
        name = request.path_params["name"]
        self.authorize(vault, claims, DELETE_SECRET, vault.secret_scope(name))
        d = self._state.delete_secret(vault.name, name)
        if d is None:
            return self._not_found(name)
        return JSONResponse(self._deleted_bundle(request, vault, d))

    def _list_secrets(self, request: Request, vault: Vault, claims: dict[str, Any]) -> Response:
        self.authorize(vault, claims, READ_SECRET_METADATA, vault.id)
        items = []
        for name in self._state.secret_names(vault.name):
            latest = self._state.get_secret(vault.name, name)
            if latest is not None:
                items.append(self._bundle(request, vault, latest, value=False, versioned=False))
        return self._page(request, items, "/secrets")

    def _list_versions(self, request: Request, vault: Vault, claims: dict[str, Any]) -> Response:
        name = request.path_params["name"]
        self.authorize(vault, claims, READ_SECRET_METADATA, vault.secret_scope(name))
        versions = self._state.secret_versions(vault.name, name)
        if not versions:
            return self._not_found(name)
        items = [self._bundle(request, vault, s, value=False) for s in versions]
        return self._page(request, items, f"/secrets/{name}/versions")

    def _get_deleted(self, request: Request, vault: Vault, claims: dict[str, Any]) -> Response:
        name = request.path_params["name"]
        self.authorize(vault, claims, READ_SECRET_METADATA, vault.secret_scope(name))
        d = self._state.deleted_secret(vault.name, name)
        if d is None:
            return error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return JSONResponse(self._deleted_bundle(request, vault, d))

    def _purge_deleted(self, request: Request, vault: Vault, claims: dict[str, Any]) -> Response:
        name = request.path_params["name"]
        self.authorize(vault, claims, PURGE_SECRET, vault.secret_scope(name))
        if not self._state.purge_secret(vault.name, name):
            return error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return Response(status_code=204)

    def _recover_deleted(self, request: Request, vault: Vault, claims: dict[str, Any]) -> Response:
        name = request.path_params["name"]
        self.authorize(vault, claims, RECOVER_SECRET, vault.secret_scope(name))
        s = self._state.recover_secret(vault.name, name)
        if s is None:
            return error(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return JSONResponse(self._bundle(request, vault, s, value=False))

    # ------------------------------------------------------------ routing
    def _admit(self, request: Request, vault_name: str) -> Vault:
        """The checks between authentication and the handler: api-version, vault, name."""
        version = request.query_params.get("api-version")
        if not version:
            raise SandboxError(400, "BadParameter", "The api-version query parameter is missing.")
        check_keyvault(version)
        vault = self._state.vault(vault_name)
        if vault is None:
            raise SandboxError(404, "VaultNotFound", f"Vault {vault_name} was not found.")
        if "name" in request.path_params:
            check_name(request.path_params["name"])
        return vault

    def _endpoint(self, vault_name: str, handler: Handler) -> Callable[[Request], Any]:
        """Authenticate, check api-version and the vault, then run ``handler``."""

        async def run(request: Request) -> Response:
            try:
                claims = self.authenticate(request)
                vault = self._admit(request, vault_name)
                request.state.body = await _read_body(request)
                return handler(request, vault, claims)
            except KeyVaultHttpError as denied:
                return denied.response
            except SandboxError as exc:
                return error(exc.status, exc.code, exc.message)

        return run

    def app(self, vault_name: str) -> Starlette:
        """The ASGI app of one vault's listener."""
        routes = [
            ("/secrets", self._list_secrets, "GET"),
            ("/secrets/", self._list_secrets, "GET"),
            ("/secrets/{name}/versions", self._list_versions, "GET"),
            ("/secrets/{name}", self._get_secret, "GET"),
            ("/secrets/{name}/", self._get_secret, "GET"),
            ("/secrets/{name}/{version}", self._get_secret, "GET"),
            ("/secrets/{name}", self._set_secret, "PUT"),
            ("/secrets/{name}", self._delete_secret, "DELETE"),
            ("/deletedsecrets/{name}", self._get_deleted, "GET"),
            ("/deletedsecrets/{name}", self._purge_deleted, "DELETE"),
            ("/deletedsecrets/{name}/recover", self._recover_deleted, "POST"),
        ]
        return Starlette(
            routes=[
                Route(path, self._endpoint(vault_name, handler), methods=[method])
                for path, handler, method in routes
            ]
        )


async def _read_body(request: Request) -> bytes:
    """The body, bounded (read only after authentication), or SandboxError."""
    try:
        return await read_body(request, KEYVAULT_MAX_BODY_BYTES)
    except BodyError as exc:
        if exc.problem == "too_large":
            raise SandboxError(413, "RequestEntityTooLarge", exc.message) from exc
        raise SandboxError(400, "BadParameter", exc.message) from exc
