"""Federated identity credentials over the sandbox's ARM front, through its one ARM model.

``.../userAssignedIdentities/{identity}/federatedIdentityCredentials[/{name}]``: list, get,
PUT and DELETE. A PUT is the model's handler (the deploy's): at most 20 credentials per
identity, and no write while another credential of the same identity is in flight (409
``ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity``; the writes in
flight are :class:`~verify.sandbox.arm.inflight.WritesInFlight`). The document it writes is
the record Entra's token endpoint reads (:mod:`verify.sandbox.state.federation`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from components import armid
from components.arm import rules as arm_rules
from components.arm import shapes as arm_shapes
from components.arm.memory import InMemoryArm
from components.arm.tokens import PULUMI_FEDERATED_CREDENTIAL
from verify.sandbox.arm import request_rules as arm_requests
from verify.sandbox.arm.authorization import json_body
from verify.sandbox.arm.errors import ArmHttpError, error
from verify.sandbox.state.federation import FederatedCredential
from verify.sandbox.state.store import SandboxState

_FEDERATED = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/[^/]+/providers/"
    r"microsoft\.managedidentity/userassignedidentities/[^/]+"
    r"(?P<segment>/federatedidentitycredentials)(?:/(?P<name>[^/]+))?$",
    re.IGNORECASE,
)


class FederatedCredentialRoutes:
    """The routes; :class:`~verify.sandbox.arm.service.ArmService` sets ``_state`` and
    ``_model`` and provides ``_authorize``."""

    _state: SandboxState
    _model: Callable[[], InMemoryArm]

    def _authorize(self, claims: dict[str, Any], action: str, scope: str) -> None:
        raise NotImplementedError  # AuthorizationRoutes._authorize

    def _fic_doc(self, fic: FederatedCredential) -> dict[str, Any]:
        """The credential's document in the sandbox's ARM model (its one record)."""
        return self._state.arm_store.resources.get(fic.id.lower()) or _fic_json(fic)

    def federated_route(
        self, request: Request, claims: dict[str, Any], path: str
    ) -> Response | None:
        """The answer for a federated-credential path, or None when ``path`` is not one."""
        fic = _FEDERATED.match(path)
        if fic is None or fic.group("sub").lower() != self._state.subscription_id.lower():
            return None
        identity_id = path[: fic.start("segment")]
        return self._federated_credentials(request, claims, identity_id, fic.group("name"))

    def _federated_credentials(
        self, request: Request, claims: dict[str, Any], identity_id: str, name: str | None
    ) -> Response:
        """Federated identity credentials of a user-assigned identity: list, get, PUT,
        delete, with the shared model's write rule (at most 20 per identity)."""
        actions = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
        if self._state.identity(identity_id) is None:
            parsed = armid.parse(identity_id, "identity")
            return error(
                404,
                "ResourceNotFound",
                "The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/"
                f"{parsed.names[0]}' under resource group '{parsed.resource_group}' was not found.",
            )
        if name is None:
            if request.method != "GET":
                raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
            self._authorize(claims, f"{actions}/read", identity_id)
            docs = [self._fic_doc(f) for f in self._state.federated_credentials(identity_id)]
            return JSONResponse({"value": docs})
        fic_id = f"{identity_id}{arm_rules.FEDERATED_CREDENTIALS_SEGMENT}{name}"
        action = {"GET": "read", "PUT": "write", "DELETE": "delete"}.get(request.method)
        if action is None:
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        self._authorize(claims, f"{actions}/{action}", fic_id)
        if request.method == "GET":
            found = self._state.federated_credential(fic_id)
            if found is None:
                message = f"Federated Identity Credential '{name}' was not found."
                return error(404, "NotFound", message)
            return JSONResponse(self._fic_doc(found))
        if request.method == "DELETE":
            gone = self._model().delete(fic_id)  # the model's lock rule, its one document
            return Response(status_code=200 if gone else 204)
        return self._put_federated_credential(request, identity_id, fic_id, name)

    def _put_federated_credential(
        self, request: Request, identity_id: str, fic_id: str, name: str
    ) -> Response:
        """Through the sandbox's one ARM model: its rules (at most 20 per identity, no write
        while another credential of the identity is in flight) and its document, which is
        the record Entra's token endpoint reads."""
        props = arm_requests.object_field(json_body(request), "properties")
        audiences = props.get("audiences") or ["api://AzureADTokenExchange"]
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            return error(400, "BadRequest", "properties.audiences must be a list of strings.")
        issuer = arm_requests.string_field(props, "issuer", "properties.issuer") or ""
        subject = arm_requests.string_field(props, "subject", "properties.subject") or ""
        existed = self._state.federated_credential(fic_id) is not None
        doc = self._model().create_or_update(
            PULUMI_FEDERATED_CREDENTIAL,
            fic_id,
            {"issuer": issuer, "subject": subject, "audiences": audiences},
            ordering=getattr(request.state, "ordering", None),  # the writes in flight
        )
        return JSONResponse(doc, status_code=200 if existed else 201)

    def federated_write(self, request: Request) -> str | None:
        """The federated credential a request writes (a PUT of one), else None."""
        if request.method != "PUT":
            return None
        path = "/" + re.sub("/+", "/", request.path_params["path"]).strip("/")
        fic = _FEDERATED.match(path)
        if fic is None or fic.group("name") is None:
            return None
        return path


def _fic_json(fic: FederatedCredential) -> dict[str, Any]:
    return arm_shapes.federated_identity_credential(
        arm_id=fic.id, issuer=fic.issuer, subject=fic.subject, audiences=fic.audiences
    )
