"""The slice of Azure Resource Manager the verifier uses, over HTTPS.

Served to the real azure-mgmt-authorization, azure-mgmt-msi and azure-mgmt-compute
clients (pointed here with ``base_url``), in the JSON of
:mod:`components.arm.shapes`, the same documents the Pulumi mocks answer with:

- role assignments, role definitions and management locks at any scope
  (:mod:`verify.sandbox.arm.authorization`, which also holds the RBAC check);
- user-assigned identities: get, create (PUT), delete, list in a resource group;
- VMs: get, PATCH of ``identity`` (and tags), delete, list in a resource group;
- scale sets: get, PATCH of ``sku.capacity`` / ``identity`` / tags, delete, list the
  instances (:mod:`verify.sandbox.arm.scale_sets`);
- resource groups and vaults: get.

Every call needs an ARM token (``aud`` https://management.azure.com) and is authorized
by RBAC ``actions`` through the shared evaluator, so a VM's identity with Reader can list
assignments but not delete them, as on Azure. Long-running operations (VM PATCH and
DELETE) complete synchronously: 200 with ``provisioningState: Succeeded`` and 204, which
the clients' ARM pollers accept as done without polling.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from components import armid
from components.arm import rules as arm_rules
from components.arm import shapes as arm_shapes
from components.arm.errors import ArmError
from components.arm.memory import InMemoryArm
from components.arm.tokens import PULUMI_RESOURCE_GROUP, PULUMI_USER_ASSIGNED_IDENTITY
from components.errors import ConfigError
from components.identity_type import NONE, parse_identity_type
from verify.sandbox.api_versions import arm_resource_type, check_arm
from verify.sandbox.arm import apps as arm_apps
from verify.sandbox.arm import cli as arm_cli
from verify.sandbox.arm import documents as arm_documents
from verify.sandbox.arm import request_rules as arm_requests
from verify.sandbox.arm import scale_sets as arm_scale_sets
from verify.sandbox.arm.authorization import AUTHZ, LOCKS, AuthorizationRoutes, json_body
from verify.sandbox.arm.errors import ArmHttpError, body_refused, error, unauthorized
from verify.sandbox.arm.federation import FederatedCredentialRoutes
from verify.sandbox.arm.inflight import WritesInFlight
from verify.sandbox.arm.vaults import DELETED_VAULTS, VaultRoutes
from verify.sandbox.auth import Authenticator, AuthError
from verify.sandbox.bodies import ARM_MAX_BODY_BYTES, BodyError, read_body
from verify.sandbox.entra.tokens import ARM_AUDIENCES
from verify.sandbox.rbac import RbacEvaluator
from verify.sandbox.state.store import (
    SandboxError,
    SandboxState,
    VirtualMachine,
)

_SUBSCRIPTIONS = re.compile(r"^/subscriptions(?:/[^/]+)?$", re.IGNORECASE)
_RESOURCE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
    r"(?:/providers/(?P<provider>[^/]+)/(?P<type>[^/]+)(?:/(?P<name>[^/]+))?)?$",
    re.IGNORECASE,
)


#: VirtualMachines_Get ``$expand`` values (InstanceViewTypes), lower-cased.
_VM_EXPANDS = frozenset({"instanceview", "userdata", "resiliencypolicy"})


class ArmService(AuthorizationRoutes, FederatedCredentialRoutes, VaultRoutes):
    """The ARM slice's routes over the shared state; every request authenticated by the
    sandbox's one :class:`~verify.sandbox.auth.Authenticator` and authorized by its RBAC."""

    def __init__(
        self,
        state: SandboxState,
        authenticator: Authenticator,
        rbac: RbacEvaluator,
        vault_uri: Callable[[str], str] = lambda name: f"https://{name}.vault.azure.net/",
        *,
        cloud: Callable[[], dict[str, Any]] | None = None,
        model: Callable[[], InMemoryArm],
        federated_write_seconds: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self._cloud = cloud  # the /metadata/endpoints document (arm_cli.cloud_metadata)
        #: The sandbox's one ARM model (``Sandbox.arm``), read when a request comes in: it
        #: is made after this front, from the same state.
        self._model = model
        #: How long the Managed Identity RP keeps a federated-credential write in flight
        #: after accepting it (a fault knob: 0 by default); overlapping writes meet here.
        self._federated_write_seconds = federated_write_seconds
        self._in_flight = WritesInFlight()
        self._state = state
        self._vault_uri = vault_uri
        self._rbac = rbac
        self._auth = authenticator

    # -------------------------------------------------------------- auth
    def _authenticate(self, request: Request) -> dict[str, Any]:
        """The caller's verified claims, or ARM's 401 (see :func:`unauthorized`)."""
        try:
            claims = self._auth.authenticate(request.headers.get("authorization"), ARM_AUDIENCES)
        except AuthError as failure:
            raise ArmHttpError(unauthorized(failure)) from failure
        request.state.principal_id = claims["oid"]
        return claims

    # ------------------------------------------------------------- shapes
    def _vm_json(self, vm: VirtualMachine) -> dict[str, Any]:
        """The VM's document in the sandbox's one ARM model (its one record), a copy."""
        return copy.deepcopy(self._state.arm_store.resources[vm.id.lower()])

    def _identity_json(self, uai_id: str) -> dict[str, Any] | None:
        """The identity's document in the sandbox's one ARM model (its only record)."""
        if self._state.identity(uai_id) is None:
            return None
        return self._model().get(uai_id)

    # ----------------------------------------------------- resource types
    def _identities(
        self, request: Request, claims: dict[str, Any], rg: str, name: str | None
    ) -> Response:
        base = f"/subscriptions/{self._state.subscription_id}/resourceGroups/{rg}"
        if name is None:
            self._authorize(claims, "Microsoft.ManagedIdentity/userAssignedIdentities/read", base)
            docs = [
                self._identity_json(u.id)
                for u in self._state.identities()
                if u.resource_group.lower() == rg.lower()
            ]
            return JSONResponse({"value": docs})
        uai_id = str(
            armid.resource(
                self._state.subscription_id,
                rg,
                "Microsoft.ManagedIdentity",
                "userAssignedIdentities",
                name,
            )
        )
        action = {"GET": "read", "PUT": "write", "DELETE": "delete"}.get(request.method)
        if action is None:
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        self._authorize(
            claims, f"Microsoft.ManagedIdentity/userAssignedIdentities/{action}", uai_id
        )
        if request.method == "GET":
            doc = self._identity_json(uai_id)
            if doc is None:
                return _not_found("Microsoft.ManagedIdentity/userAssignedIdentities", name, rg)
            return JSONResponse(doc)
        model = self._model()
        if request.method == "DELETE":  # the model's delete: its lock rule, the principal
            return JSONResponse({}) if model.delete(uai_id) else Response(status_code=204)
        body = json_body(request)
        existed = self._state.identity(uai_id) is not None
        inputs = {
            "resourceGroupName": rg,
            "location": arm_requests.string_field(body, "location"),
            "tags": arm_requests.tags_field(body),
        }
        doc = model.create_or_update(PULUMI_USER_ASSIGNED_IDENTITY, uai_id, inputs)
        return JSONResponse(doc, status_code=200 if existed else 201)

    def _vms(self, request: Request, claims: dict[str, Any], rg: str, name: str | None) -> Response:
        if name is None:
            base = f"/subscriptions/{self._state.subscription_id}/resourceGroups/{rg}"
            self._authorize(claims, "Microsoft.Compute/virtualMachines/read", base)
            vms = [
                self._vm_json(v)
                for v in self._state.vms()
                if v.resource_group.lower() == rg.lower()
            ]
            return JSONResponse({"value": vms})
        vm_id = str(
            armid.resource(
                self._state.subscription_id, rg, "Microsoft.Compute", "virtualMachines", name
            )
        )
        action = {"GET": "read", "PATCH": "write", "DELETE": "delete"}.get(request.method)
        if action is None:
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        self._authorize(claims, f"Microsoft.Compute/virtualMachines/{action}", vm_id)
        vm = self._state.vm(vm_id)
        if vm is None:
            if request.method == "DELETE":
                return Response(status_code=204)
            return _not_found("Microsoft.Compute/virtualMachines", name, rg)
        if request.method == "GET":
            return self._get_vm(request, vm)
        if request.method == "DELETE":
            self._state.delete_vm(vm_id)
            return Response(status_code=204)
        return self._patch_vm(claims, vm, json_body(request))

    def _get_vm(self, request: Request, vm: VirtualMachine) -> Response:
        """GET of a VM; ``$expand=instanceView`` adds the power state (``az vm show -d``).

        ``$expand`` takes the spec's ``InstanceViewTypes`` (instanceView, userData,
        resiliencyPolicy; ComputeRP.json 2026-03-01): userData and resiliencyPolicy add
        nothing here, as on a VM created without either."""
        doc = self._vm_json(vm)
        expand = request.query_params.get("$expand")
        if expand is not None:
            if expand.lower() not in _VM_EXPANDS:
                return error(
                    400,
                    "InvalidParameter",
                    f"The value '{expand}' of parameter '$expand' is not valid; use instanceView, "
                    "userData or resiliencyPolicy.",
                )
            if expand.lower() == "instanceview":
                stamp = lambda t: arm_shapes.arm_timestamp(_utc(t))  # noqa: E731
                doc["properties"]["instanceView"] = arm_cli.instance_view(vm, stamp)
        return JSONResponse(doc)

    def _patch_vm(
        self, claims: dict[str, Any], vm: VirtualMachine, body: dict[str, Any]
    ) -> Response:
        """PATCH semantics of ARM: ``identity.type`` sets the kinds; in
        ``userAssignedIdentities`` a null value detaches, an object attaches."""
        tags = arm_requests.tags_field(body)
        if body.get("identity") is not None:
            identity = arm_requests.object_field(body, "identity")
            kind = arm_requests.string_field(identity, "type", "identity.type") or NONE
            try:
                system, wants_user = parse_identity_type(kind)
            except ValueError as bad:
                return error(400, "InvalidParameter", f"identity.type: {bad}")
            changes = arm_requests.object_field(
                identity, "userAssignedIdentities", "identity.userAssignedIdentities"
            )
            for uai_id, value in changes.items():
                if value is not None and not isinstance(value, dict):
                    path = f"identity.userAssignedIdentities['{uai_id}']"
                    arm_requests.object_field({"v": value}, "v", path)
            if not wants_user and changes:
                return error(
                    400,
                    "InvalidParameter",
                    f"The identity type '{identity.get('type')}' does not allow "
                    "userAssignedIdentities: identityIds should not be provided if the type "
                    "is not UserAssigned.",
                )
            current = list(vm.user_assigned) if wants_user else []
            for uai_id, value in changes.items():
                if value is None:
                    current = [u for u in current if u.lower() != uai_id.lower()]
                elif uai_id.lower() not in {u.lower() for u in current}:
                    self._authorize(
                        claims,
                        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
                        uai_id,
                    )
                    current.append(uai_id)
            if wants_user and not current:
                return error(
                    400,
                    "InvalidParameter",
                    "The identity type includes UserAssigned but no user-assigned identity "
                    "is given.",
                )
            named = [u for u, value in changes.items() if value is not None]
            vm = self._state.update_vm_identity(vm.id, system, current, rebind=named)
        if "tags" in body:
            vm = self._state.update_vm_tags(vm.id, tags or {})
        return JSONResponse(self._vm_json(vm))

    # ------------------------------------------------------------ routing
    def dispatch(self, request: Request, claims: dict[str, Any]) -> Response:
        """Route one authenticated ARM request (body already read into ``request.state``);
        every refusal is ARM's ``{"error": {code, message}}``."""
        path = "/" + re.sub("/+", "/", request.path_params["path"]).strip("/")
        try:
            version = request.query_params.get("api-version")
            if not version:
                message = "The api-version query parameter (?api-version=) is required."
                return error(400, "MissingApiVersionParameter", message)
            check_arm(arm_resource_type(path), version, self._state.location)
            self._check_locks(request.method, path)
            answer = self._route(request, claims, path)
            if request.method == "DELETE" and answer.status_code < 300:
                self._state.forget_resource(path)  # no longer a scope or a document
            return answer
        except ArmHttpError as answer:
            return answer.response
        except ArmError as refused:
            return error(refused.status, refused.code, refused.message)
        except SandboxError as exc:
            return error(exc.status, exc.code, exc.message)
        except ConfigError as exc:
            return error(400, "InvalidParameter", str(exc))

    def _check_locks(self, method: str, path: str) -> None:
        """The shared model's lock rule on every mutating call: a DELETE at or below a
        locked scope, or any write under a ``ReadOnly`` lock, is 409 ``ScopeLocked``.
        A lock itself can always be deleted or changed (that is how one is lifted)."""
        if method not in ("PUT", "PATCH", "DELETE") or LOCKS in path.lower():
            return
        operation = "delete" if method == "DELETE" else "write"
        arm_rules.check_not_locked(path, self._state.lock_levels(), operation)

    def _route(self, request: Request, claims: dict[str, Any], path: str) -> Response:
        cut = path.lower().rfind(AUTHZ)
        if cut >= 0:
            return self._authorization_provider(request, claims, path, cut)
        deleted = DELETED_VAULTS.match(path)
        if deleted:
            return self._deleted_vaults(request, claims, deleted)
        return self._subscription_or_resource(request, claims, path)

    def _subscription_or_resource(
        self, request: Request, claims: dict[str, Any], path: str
    ) -> Response:
        """``GET /subscriptions[/{id}]`` (what ``az login`` lists), else :meth:`_resource`."""
        if request.method == "GET" and _SUBSCRIPTIONS.match(path):
            status, body = arm_cli.subscriptions_response(self._state, claims["oid"], path)
            return JSONResponse(body, status_code=status)
        answer = self.federated_route(request, claims, path)
        if answer is None:
            answer = arm_apps.route(self, request, claims, path)
        if answer is None:
            answer = arm_scale_sets.route(self, request, claims, path)
        if answer is None:
            answer = arm_documents.route(self, request, claims, path)
        if answer is not None:
            return answer
        return self._resource(request, claims, path)

    def _resource(self, request: Request, claims: dict[str, Any], path: str) -> Response:
        """A resource group, or a resource of a type in the slice."""
        m = _RESOURCE.match(path)
        if not m or m.group("sub").lower() != self._state.subscription_id.lower():
            code = "SubscriptionNotFound" if m else "NotFound"
            raise ArmHttpError.of(404, code, f"No ARM resource at '{path}' in the sandbox.")
        provider, type_ = (m.group("provider") or "").lower(), (m.group("type") or "").lower()
        if not provider:
            return self._resource_group(request, claims, path, m.group("rg"))
        group = self._state.resource_group(m.group("rg"))
        if group is None:
            message = f"Resource group '{m.group('rg')}' could not be found."
            raise ArmHttpError.of(404, "ResourceGroupNotFound", message)
        name = m.group("name")
        if (provider, type_) == ("microsoft.managedidentity", "userassignedidentities"):
            return self._identities(request, claims, group.name, name)
        if (provider, type_) == ("microsoft.compute", "virtualmachines"):
            return self._vms(request, claims, group.name, name)
        if (
            (provider, type_) == ("microsoft.keyvault", "vaults")
            and name
            and request.method == "GET"
        ):
            return self._vault(claims, group.name, name)
        message = f"'{m.group('provider')}/{m.group('type')}' is not in the sandbox's slice."
        return error(400, "InvalidResourceType", message)

    def _resource_group(
        self, request: Request, claims: dict[str, Any], path: str, name: str
    ) -> Response:
        """A resource group: its one record is the model's document, which GET answers
        with; PUT (create: 201, or update) and PATCH (location kept, tags replaced) write
        it through the model's handler, the one a deploy runs."""
        actions = "Microsoft.Resources/subscriptions/resourceGroups"
        group = self._state.resource_group(name)
        if request.method not in ("GET", "PUT", "PATCH"):
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        if group is None and request.method != "PUT":
            message = f"Resource group '{name}' could not be found."
            raise ArmHttpError.of(404, "ResourceGroupNotFound", message)
        if request.method == "GET":
            self._authorize(claims, f"{actions}/read", path)
            assert group is not None
            return JSONResponse(self._state.arm_store.resources[group.id.lower()])
        self._authorize(claims, f"{actions}/write", path)
        body = json_body(request)
        asked = body.get("location")
        if (
            group is not None
            and request.method == "PUT"
            and isinstance(asked, str)
            and asked.replace(" ", "").lower() != group.location.replace(" ", "").lower()
        ):
            raise ArmHttpError.of(
                409,
                "InvalidResourceGroupLocation",
                f"Invalid resource group location '{asked}'. The Resource group already "
                f"exists in location '{group.location}'.",
            )
        location = asked if group is None else group.location
        if not isinstance(location, str) or not location:
            raise ArmHttpError.of(400, "LocationRequired", "The location property is required.")
        tags = arm_requests.tags_field(body)
        if tags is None and group is not None and request.method == "PATCH":
            tags = self._state.arm_store.resources[group.id.lower()].get("tags")
        if self._model is None:
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        arm_id = group.id if group is not None else path
        doc = self._model().create_or_update(
            PULUMI_RESOURCE_GROUP, arm_id, {"location": location, "tags": tags or {}}
        )
        return JSONResponse(doc, status_code=201 if group is None else 200)

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            # Authenticate before reading a byte of the body, then read it bounded: an
            # anonymous caller must not make the server buffer what it sends.
            try:
                claims = self._authenticate(request)
                request.state.json = await read_body(request, ARM_MAX_BODY_BYTES)
            except ArmHttpError as answer:
                return answer.response
            except BodyError as exc:
                return body_refused(exc)
            fic = self.federated_write(request)
            if fic is None:
                return self.dispatch(request, claims)
            with self._in_flight.writing(fic) as ordering:
                request.state.ordering = ordering
                written = self.dispatch(request, claims)
                self._in_flight.answered(fic)  # another write held for this one may end
                hold = self._federated_write_seconds()
                if hold > 0 and written.status_code < 300:
                    await self._in_flight.hold(ordering, hold)  # accepted, being written
            return written

        async def metadata(request: Request) -> Response:
            """Unauthenticated, as on ARM: ``az cloud register`` has no token yet."""
            if self._cloud is None:
                return error(404, "NotFound", "This ARM has no cloud metadata.")
            status, body = arm_cli.metadata_response(
                request.query_params.get("api-version"), self._cloud()
            )
            return JSONResponse(body, status_code=status)

        methods = ["GET", "PUT", "PATCH", "DELETE", "POST"]
        return Starlette(
            routes=[
                Route("/metadata/endpoints", metadata, methods=["GET"]),
                Route("/{path:path}", handle, methods=methods),
            ]
        )


def vm_identity_json(state: SandboxState, vm: VirtualMachine) -> dict[str, Any] | None:
    """A VM's ``identity`` block as ARM returns it (None when it has no identity): the
    state's :meth:`~verify.sandbox.state.store.SandboxState.vm_identity_block`."""
    return state.vm_identity_block(vm)


def _not_found(type_: str, name: str, rg: str) -> JSONResponse:
    return error(
        404,
        "ResourceNotFound",
        f"The Resource '{type_}/{name}' under resource group '{rg}' was not found.",
    )


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)
