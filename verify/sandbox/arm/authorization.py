"""The authorization provider of the sandbox's ARM slice: role assignments, role
definitions and management locks at any scope (``{scope}/providers/Microsoft.Authorization/
...``), and the RBAC check every ARM route makes.

- role assignments: list at a scope (``$filter=principalId eq '...'``, ``atScope()``,
  ``assignedTo('...')``), get, create (PUT), delete; list-for-scope returns what applies at
  the scope (at or above it) plus, without ``atScope()``, what lies below; delegation
  conditions read the assignment being made or removed;
- role definitions: list at a scope (``$filter=roleName eq '...'``), get by GUID or ID;
- management locks: list (at or above the scope), get, PUT, delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from components import armid
from components.arm import rules as arm_rules
from components.arm import shapes as arm_shapes
from components.roles import guid_from_role_reference
from verify.sandbox.arm import request_rules as arm_requests
from verify.sandbox.arm.errors import ArmHttpError, body_refused, error
from verify.sandbox.bodies import BodyError, json_object
from verify.sandbox.rbac import RbacEvaluator
from verify.sandbox.state.locks import ManagementLock
from verify.sandbox.state.store import RoleAssignment, SandboxState

AUTHZ = "/providers/microsoft.authorization/"
LOCKS = AUTHZ + "locks"
LOCKS_SEGMENT = "/providers/Microsoft.Authorization/locks/"


class AuthorizationRoutes:
    """Microsoft.Authorization's routes and the RBAC check; :class:`ArmService` sets
    ``_state`` and ``_rbac``."""

    _state: SandboxState
    _rbac: RbacEvaluator

    def _authorize(
        self,
        claims: dict[str, Any],
        action: str,
        scope: str,
        *,
        resource: Mapping[str, object] | None = None,
        request: Mapping[str, object] | None = None,
    ) -> None:
        """Every read and write, lists included, is authorized at the scope it names: a
        deployer with roles on one resource group gets 403 listing at subscription scope."""
        decision = self._rbac.check_action(
            claims["oid"], action, scope, resource=resource, request=request
        )
        if not decision.allowed:
            refused = arm_rules.authorization_failed(claims["oid"], action, scope)
            raise ArmHttpError.of(refused.status, refused.code, refused.message)

    def _known_principal_type(self, principal_id: object) -> str | None:
        """What ARM looks up when the PUT names no principalType (every sandbox principal
        is a ServicePrincipal); None for a principal the directory does not know."""
        if isinstance(principal_id, str) and self._state.principal(principal_id) is not None:
            return "ServicePrincipal"
        return None

    def _assignment_json(self, a: RoleAssignment) -> dict[str, Any]:
        """The assignment's document in the sandbox's ARM model (its one record); rendered
        from the record only once deleted (a DELETE answers what it removed)."""
        doc = self._state.arm_store.resources.get(a.id.rstrip("/").lower())
        if doc is not None:
            return doc
        stamp = arm_shapes.arm_timestamp(datetime.fromtimestamp(a.created_on, UTC))
        return arm_shapes.role_assignment(
            scope=a.scope,
            name=a.name,
            role_definition_id=a.role_definition_id,
            principal_id=a.principal_id,
            principal_type=a.principal_type,
            condition=a.condition,
            condition_version=a.condition_version,
            description=a.description,
            created_on=stamp,
        )

    def _authorization_provider(
        self, request: Request, claims: dict[str, Any], path: str, cut: int
    ) -> Response:
        """``{scope}/providers/Microsoft.Authorization/{roleAssignments|roleDefinitions}...``"""
        scope = path[:cut].rstrip("/")
        kind, _, rest = path[cut + len(AUTHZ) :].partition("/")
        if scope:
            armid.parse(scope, "scope")
        if kind.lower() == "roleassignments":
            return self._role_assignments(request, claims, scope, rest)
        if kind.lower() == "roledefinitions":
            return self._role_definitions(request, claims, scope, rest)
        if kind.lower() == "locks":
            return self._locks(request, claims, scope, rest)
        message = f"The resource type '{kind}' is not in the sandbox's slice."
        return error(400, "InvalidResourceType", message)

    def _locks(self, request: Request, claims: dict[str, Any], scope: str, name: str) -> Response:
        """Management locks at a scope (ManagementLocks_*ByScope): list (at or above the
        scope), get, create or update (PUT ``{"properties": {"level", "notes"}}``), delete.
        A lock is never itself refused by a lock: deleting one is how a lock is lifted."""
        if not name:
            if request.method != "GET":
                raise ArmHttpError.of(405, "MethodNotAllowed", "Only GET lists locks.")
            self._authorize(claims, "Microsoft.Authorization/locks/read", scope or "/")
            found = self._state.management_locks(scope or None)
            return JSONResponse({"value": [self._lock_doc(lock) for lock in found]})
        action = {"GET": "read", "PUT": "write", "DELETE": "delete"}.get(request.method)
        if action is None:
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        self._authorize(claims, f"Microsoft.Authorization/locks/{action}", scope)
        lock_id = f"{scope}{LOCKS_SEGMENT}{name}"
        if request.method == "GET":
            found_lock = self._state.lock(lock_id)
            if found_lock is None:
                return error(404, "LockNotFound", f"The lock '{name}' could not be found.")
            return JSONResponse(self._lock_doc(found_lock))
        if request.method == "DELETE":
            return Response(status_code=200 if self._state.delete_lock(lock_id) else 204)
        props = arm_requests.object_field(json_body(request), "properties")
        level = arm_requests.string_field(props, "level", "properties.level")
        if not level:
            return error(400, "InvalidLockLevel", "properties.level is required.")
        arm_rules.check_scope_exists(scope, self._state.subscription_id, self._state.exists)
        existed = self._state.lock(lock_id) is not None
        made = self._state.create_lock(
            scope, name, level, arm_requests.string_field(props, "notes", "properties.notes")
        )
        return JSONResponse(self._lock_doc(made), status_code=200 if existed else 201)

    def _lock_doc(self, lock: ManagementLock) -> dict[str, Any]:
        """The lock's document in the sandbox's ARM model (its one record)."""
        return self._state.arm_store.resources.get(lock.id.lower()) or _lock_json(lock)

    def _role_assignments(
        self, request: Request, claims: dict[str, Any], scope: str, rest: str
    ) -> Response:
        if rest == "":
            if request.method != "GET":
                raise ArmHttpError.of(405, "MethodNotAllowed", "Only GET lists assignments.")
            return self._list_assignments(request, claims, scope)
        handlers = {
            "GET": self._get_assignment,
            "DELETE": self._delete_assignment,
            "PUT": self._put_assignment,
        }
        handler = handlers.get(request.method)
        if handler is None:
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        return handler(request, claims, scope, rest)

    def _list_assignments(self, request: Request, claims: dict[str, Any], scope: str) -> Response:
        self._authorize(claims, "Microsoft.Authorization/roleAssignments/read", scope or "/")
        wanted = arm_requests.assignment_filter(request.query_params.get("$filter"))
        found = self._state.role_assignments(
            scope=scope or None, principal_id=wanted.principal_id, at_scope=wanted.at_scope
        )
        return JSONResponse({"value": [self._assignment_json(a) for a in found]})

    @staticmethod
    def _assignment_id(scope: str, name: str) -> str:
        return f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"

    def _get_assignment(
        self, request: Request, claims: dict[str, Any], scope: str, name: str
    ) -> Response:
        self._authorize(claims, "Microsoft.Authorization/roleAssignments/read", scope)
        found = self._state.role_assignment(self._assignment_id(scope, name))
        if found is None:
            message = f"The role assignment '{name}' is not found."
            return error(404, "RoleAssignmentNotFound", message)
        return JSONResponse(self._assignment_json(found))

    def _delete_assignment(
        self, request: Request, claims: dict[str, Any], scope: str, name: str
    ) -> Response:
        existing = self._state.role_assignment(self._assignment_id(scope, name))
        # Delegation conditions read the assignment being removed (@Resource[...]).
        attributes = (
            delegation_attributes(
                existing.role_definition_id, existing.principal_id, existing.principal_type
            )
            if existing
            else {}
        )
        self._authorize(
            claims, "Microsoft.Authorization/roleAssignments/delete", scope, resource=attributes
        )
        deleted = self._state.delete_role_assignment(self._assignment_id(scope, name))
        if deleted is None:
            return Response(status_code=204)
        return JSONResponse(self._assignment_json(deleted))

    def _put_assignment(
        self, request: Request, claims: dict[str, Any], scope: str, name: str
    ) -> Response:
        props = arm_requests.object_field(json_body(request), "properties")
        fields = {
            key: arm_requests.string_field(props, key, f"properties.{key}")
            for key in (
                "roleDefinitionId",
                "principalId",
                "principalType",
                "description",
                "condition",
                "conditionVersion",
            )
        }
        role, principal = fields["roleDefinitionId"], fields["principalId"]
        # Delegation conditions read the assignment being made (@Request[...]).
        self._authorize(
            claims,
            "Microsoft.Authorization/roleAssignments/write",
            scope,
            request=delegation_attributes(
                role,
                principal,
                fields["principalType"] or self._known_principal_type(principal),
            ),
        )
        if not role or not principal:
            message = "roleDefinitionId and principalId are required."
            return error(400, "InvalidRoleAssignmentRequest", message)
        existed = self._state.role_assignment(self._assignment_id(scope, name)) is not None
        # The shared model's rule: an assignment goes below a scope that exists (404).
        arm_rules.check_scope_exists(scope, self._state.subscription_id, self._state.exists)
        created = self._state.create_role_assignment(
            scope,
            role,
            principal,
            principal_type=fields["principalType"],
            name=name,
            description=fields["description"],
            condition=fields["condition"],
            condition_version=fields["conditionVersion"],
        )
        return JSONResponse(self._assignment_json(created), status_code=200 if existed else 201)

    def _role_definitions(
        self, request: Request, claims: dict[str, Any], scope: str, rest: str
    ) -> Response:
        if request.method != "GET":
            return error(
                405, "MethodNotAllowed", "The sandbox serves built-in role definitions only."
            )
        if scope:
            self._authorize(claims, "Microsoft.Authorization/roleDefinitions/read", scope)
        sub = self._state.subscription_id
        if rest:
            guid = guid_from_role_reference(rest)
            role = self._state.catalog.find(guid) if guid else None
            if role is None:
                return error(
                    404,
                    "RoleDefinitionDoesNotExist",
                    f"The role definition '{rest}' does not exist.",
                )
            return JSONResponse(arm_shapes.role_definition(role, subscription_id=sub))
        wanted = arm_requests.role_definition_filter(request.query_params.get("$filter"))
        roles = [
            r
            for r in self._state.catalog
            if (not wanted.role_name or r.name.lower() == wanted.role_name.lower())
            and wanted.role_type in (None, "BuiltInRole")  # the catalog holds built-ins only
        ]
        return JSONResponse(
            {"value": [arm_shapes.role_definition(r, subscription_id=sub) for r in roles]}
        )


def _lock_json(lock: ManagementLock) -> dict[str, Any]:
    return arm_shapes.management_lock(
        scope=lock.scope, name=lock.name, level=lock.level, notes=lock.notes
    )


def delegation_attributes(
    role_definition_id: object, principal_id: object, principal_type: object
) -> dict[str, object]:
    """The ``Microsoft.Authorization/roleAssignments:*`` condition attributes of one
    assignment (Microsoft: "Authorization actions and attributes"); absent values are
    left out, so a condition on them cannot be satisfied by default."""
    prefix = "Microsoft.Authorization/roleAssignments"
    out: dict[str, object] = {}
    if isinstance(role_definition_id, str):
        guid = guid_from_role_reference(role_definition_id)
        if guid is not None:
            out[f"{prefix}:RoleDefinitionId"] = guid
    if isinstance(principal_id, str) and principal_id:
        out[f"{prefix}:PrincipalId"] = principal_id
    if isinstance(principal_type, str) and principal_type:
        out[f"{prefix}:PrincipalType"] = principal_type
    return out


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object body, or ARM's 400 for anything else."""
    try:
        return json_object(request.state.json)
    except BodyError as exc:
        raise ArmHttpError(body_refused(exc)) from exc
