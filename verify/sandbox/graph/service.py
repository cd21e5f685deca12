"""The slice of Microsoft Graph that proves a principal exists (or is gone), over HTTPS.

The verifier's cleanup asks Graph whether an orphaned assignment's principal is really
gone, and ``az role assignment create/list/delete --assignee`` resolves assignees through
Graph; both are served from the sandbox's principals:

- ``GET /v1.0/servicePrincipals/{id}``: the service principal, or 404
  ``Request_ResourceNotFound``; an ID that is not a GUID is 400 ``Request_BadRequest``
  ("Invalid object identifier");
- ``GET /v1.0/servicePrincipals?$filter=...``: ``appId eq '...'``, ``id eq '...'``,
  ``displayName eq '...'`` and ``servicePrincipalNames/any(c:c eq '...')`` (what the
  Azure CLI sends); any other filter is 400 ``Request_UnsupportedQuery``, never "all";
- ``GET /v1.0/directoryObjects/{id}`` and ``POST /v1.0/directoryObjects/getByIds``
  (``{"ids": [...], "types": [...]}``; unknown IDs are left out, as Graph does).

A managed identity's service principal has ``servicePrincipalType: ManagedIdentity`` and
``alternativeNames: ["isExplicit=True|False", "<ARM ID>"]`` (True for user-assigned),
which is how Graph tells a managed identity's resource apart.

Every call needs a Graph token (``aud`` ``https://graph.microsoft.com``, its ``/`` form, the
Graph application ID ``00000003-0000-0000-c000-000000000000``, or this listener's own URL:
a cloud whose Graph lives elsewhere, as a sovereign cloud's does, uses that URL as the
resource, and so does ``az`` registered against the sandbox). A missing or invalid token
is 401 ``InvalidAuthenticationToken``. With directory read switched off
(``SandboxConfig(graph_directory_read=False)`` or ``sandbox.graph_directory_read = False``)
every call is 403 ``Authorization_RequestDenied``, as Graph answers an identity that was
never granted Directory.Read.All. Errors carry Graph's body:
``{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from components.armid import is_guid
from verify.sandbox.auth import Authenticator, AuthError
from verify.sandbox.entra.tokens import GRAPH_AUDIENCES
from verify.sandbox.graph.errors import GraphError, error_response
from verify.sandbox.state.store import SandboxState, ServicePrincipal

_ODATA_TYPE = "#microsoft.graph.servicePrincipal"
INSUFFICIENT_PRIVILEGES = "Insufficient privileges to complete the operation."
#: ``getByIds`` takes at most this many IDs (Graph's documented limit).
MAX_IDS = 1000
_FILTERS = {
    "appId": re.compile(r"^\s*appId\s+eq\s+'(?P<v>[^']*)'\s*$", re.IGNORECASE),
    "id": re.compile(r"^\s*id\s+eq\s+'(?P<v>[^']*)'\s*$", re.IGNORECASE),
    "displayName": re.compile(r"^\s*displayName\s+eq\s+'(?P<v>[^']*)'\s*$", re.IGNORECASE),
    "servicePrincipalNames": re.compile(
        r"^\s*servicePrincipalNames/any\(\s*(?P<var>\w+)\s*:\s*(?P=var)\s+eq\s+'(?P<v>[^']*)'\s*\)\s*$",
        re.IGNORECASE,
    ),
}


def service_principal_json(sp: ServicePrincipal) -> dict[str, Any]:
    """A sandbox principal as Graph v1.0 returns a ``servicePrincipal`` (no ``@odata`` keys)."""
    managed = sp.kind in ("system", "user")
    alternative = (
        [f"isExplicit={'True' if sp.kind == 'user' else 'False'}", sp.resource_id]
        if managed and sp.resource_id
        else []
    )
    return {
        "id": sp.object_id,
        "deletedDateTime": None,
        "accountEnabled": True,
        "alternativeNames": alternative,
        "appDisplayName": None if managed else sp.display_name,
        "appDescription": None,
        "appId": sp.client_id,
        "applicationTemplateId": None,
        "appOwnerOrganizationId": None,
        "appRoleAssignmentRequired": False,
        "createdDateTime": None,
        "description": None,
        "disabledByMicrosoftStatus": None,
        "displayName": sp.display_name,
        "homepage": None,
        "loginUrl": None,
        "logoutUrl": None,
        "notes": None,
        "notificationEmailAddresses": [],
        "preferredSingleSignOnMode": None,
        "preferredTokenSigningKeyThumbprint": None,
        "replyUrls": [],
        "servicePrincipalNames": [sp.client_id],
        "servicePrincipalType": "ManagedIdentity" if managed else "Application",
        "signInAudience": None if managed else "AzureADMyOrg",
        "tags": [],
        "tokenEncryptionKeyId": None,
        "info": None,
        "samlSingleSignOnSettings": None,
        "addIns": [],
        "appRoles": [],
        "keyCredentials": [],
        "oauth2PermissionScopes": [],
        "passwordCredentials": [],
        "resourceSpecificApplicationPermissions": [],
        "verifiedPublisher": {
            "displayName": None,
            "verifiedPublisherId": None,
            "addedDateTime": None,
        },
    }


class GraphService:
    """Serves the Graph slice from the sandbox's principals."""

    def __init__(
        self,
        state: SandboxState,
        authenticator: Authenticator,
        *,
        directory_read: Callable[[], bool],
        own_audiences: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self._state = state
        self._auth = authenticator
        self._directory_read = directory_read
        self._own_audiences = own_audiences

    # -------------------------------------------------------------- auth
    def audiences(self) -> tuple[str, ...]:
        return (*GRAPH_AUDIENCES, *self._own_audiences())

    def authenticate(self, authorization: str) -> dict[str, Any]:
        """The claims of a valid Graph token, or :class:`GraphError` 401/403."""
        try:
            claims = self._auth.authenticate(authorization, self.audiences())
        except AuthError as failure:
            message = {
                "missing": "Access token is empty.",
                "audience": "Access token validation failure. Invalid audience.",
                "expired": "Lifetime validation failed, the token is expired.",
            }.get(failure.kind if failure.kind == "missing" else failure.reason)
            raise GraphError(
                401, "InvalidAuthenticationToken", message or "Access token validation failure."
            ) from failure
        if not self._directory_read():
            raise GraphError(403, "Authorization_RequestDenied", INSUFFICIENT_PRIVILEGES)
        return claims

    # ------------------------------------------------------------ lookups
    def _principal(self, object_id: str) -> ServicePrincipal:
        if not is_guid(object_id):
            raise GraphError(400, "Request_BadRequest", f"Invalid object identifier '{object_id}'.")
        sp = self._state.principal(object_id.lower())
        if sp is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{object_id}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return sp

    def list_service_principals(self, flt: str | None) -> list[ServicePrincipal]:
        """The principals a ``$filter`` selects; an unknown filter is refused, not ignored."""
        principals = sorted(self._state.principals(), key=lambda p: p.object_id)
        if flt is None:
            return principals
        for field, pattern in _FILTERS.items():
            match = pattern.match(flt)
            if match is None:
                continue
            wanted = match.group("v")
            if field == "appId":
                return [p for p in principals if p.client_id == wanted.lower()]
            if field == "id":
                return [p for p in principals if p.object_id == wanted.lower()]
            if field == "displayName":
                return [p for p in principals if p.display_name == wanted]
            return [p for p in principals if wanted.lower() == p.client_id]
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Unsupported or invalid query filter clause specified for resource "
            f"'ServicePrincipal': {flt!r}.",
        )

    def get_by_ids(self, body: Any) -> list[ServicePrincipal]:
        """``directoryObjects/getByIds``: the known principals among ``ids``, in that order."""
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
            raise GraphError(
                400, "Request_BadRequest", "The request body must contain an 'ids' array."
            )
        ids = body["ids"]
        if not all(isinstance(i, str) for i in ids):
            raise GraphError(400, "Request_BadRequest", "Every entry of 'ids' must be a string.")
        if len(ids) > MAX_IDS:
            raise GraphError(
                400, "Request_BadRequest", f"At most {MAX_IDS} ids may be requested at once."
            )
        types = body.get("types")
        if types is not None:
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise GraphError(
                    400, "Request_BadRequest", "'types' must be an array of type names."
                )
            wanted_types = {t.lower().removeprefix("microsoft.graph.") for t in types}
            if wanted_types and not wanted_types & {"serviceprincipal", "directoryobject"}:
                return []
        found = []
        for object_id in ids:
            sp = self._state.principal(object_id.lower()) if is_guid(object_id) else None
            if sp is not None and sp not in found:
                found.append(sp)
        return found

    # ------------------------------------------------------------ routing
    def app(self) -> Starlette:
        def context(request: Request, fragment: str) -> str:
            return f"{str(request.base_url).rstrip('/')}/v1.0/$metadata#{fragment}"

        async def handle(request: Request) -> Response:
            client_request_id = request.headers.get("client-request-id")
            try:
                claims = self.authenticate(request.headers.get("authorization", ""))
                request.state.principal_id = claims["oid"]
                return await route(request)
            except GraphError as exc:
                return error_response(exc.status, exc.code, exc.message, client_request_id)

        async def route(request: Request) -> Response:
            kind = request.path_params["kind"]
            rest = request.path_params.get("rest", "")
            if kind == "servicePrincipals" and request.method == "GET":
                if rest:
                    sp = self._principal(rest)
                    return JSONResponse(
                        {
                            "@odata.context": context(request, "servicePrincipals/$entity"),
                            **service_principal_json(sp),
                        }
                    )
                found = self.list_service_principals(request.query_params.get("$filter"))
                return JSONResponse(
                    {
                        "@odata.context": context(request, "servicePrincipals"),
                        "value": [service_principal_json(p) for p in found],
                    }
                )
            if kind == "directoryObjects" and rest == "getByIds" and request.method == "POST":
                try:
                    body = json.loads(await request.body() or b"null")
                except ValueError as exc:
                    raise GraphError(
                        400, "BadRequest", "Unable to read JSON request payload."
                    ) from exc
                found = self.get_by_ids(body)
                return JSONResponse(
                    {
                        "@odata.context": context(request, "directoryObjects"),
                        "value": [
                            {"@odata.type": _ODATA_TYPE, **service_principal_json(p)} for p in found
                        ],
                    }
                )
            if kind == "directoryObjects" and rest and request.method == "GET":
                sp = self._principal(rest)
                return JSONResponse(
                    {
                        "@odata.context": context(request, "directoryObjects/$entity"),
                        "@odata.type": _ODATA_TYPE,
                        **service_principal_json(sp),
                    }
                )
            raise GraphError(
                400,
                "BadRequest",
                f"Resource not found for the segment '{kind}'.",
            )

        async def elsewhere(request: Request) -> Response:
            """Paths outside the slice (``/beta``, deeper segments): Graph's 400, after auth."""
            client_request_id = request.headers.get("client-request-id")
            try:
                self.authenticate(request.headers.get("authorization", ""))
            except GraphError as exc:
                return error_response(exc.status, exc.code, exc.message, client_request_id)
            return error_response(
                400,
                "BadRequest",
                f"The sandbox's Graph serves only /v1.0/servicePrincipals and "
                f"/v1.0/directoryObjects; not '{request.url.path}'.",
                client_request_id,
            )

        methods = ["GET", "POST", "PATCH", "DELETE", "PUT"]
        return Starlette(
            routes=[
                Route("/v1.0/{kind}", handle, methods=methods),
                Route("/v1.0/{kind}/{rest}", handle, methods=methods),
                Route("/{path:path}", elsewhere, methods=methods),
            ]
        )
