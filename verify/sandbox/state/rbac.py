"""Role assignments in the sandbox's state, with ARM's write rules.

An assignment's one record is the ARM model's document (``Microsoft.Authorization/
roleAssignments`` in ``arm_store``): what a deploy writes, what the ARM front serves, what
the RBAC evaluator reads. The state keeps beside it only what ARM does not show: the exact
instant it was made, which RBAC propagation is measured from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from components import armid
from components.arm import rules
from components.arm import shapes as arm_shapes
from components.arm.store import ArmStore
from components.conditions import (
    CONDITION_VERSION,
    INVALID_CONDITION_CODE,
    INVALID_CONDITION_MESSAGE,
    arm_condition_refusal,
)
from components.errors import ConfigError
from components.roles import RoleDefinition
from verify.sandbox.state.base import StateBase
from verify.sandbox.state.records import (
    RoleAssignment,
    SandboxError,
    arm_rules_as_sandbox_errors,
    key,
    new_guid,
)


class RoleAssignmentsMixin(StateBase):
    """Role assignments: created, read, listed by scope and principal, deleted."""

    arm_store: ArmStore

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: When each assignment was made (RBAC propagation is measured from it), by key.
        self._assignment_times: dict[str, float] = {}

    def _assignments(self, principal_id: str | None = None) -> dict[str, RoleAssignment]:
        """Every assignment (of ``principal_id``, lower-cased, if given), read from its
        document (lock held). The principal is matched on the document before a record is
        made: RBAC asks for one principal's on every request, among every document."""
        found: dict[str, RoleAssignment] = {}
        for doc_key, doc in list(self.arm_store.resources.items()):
            if doc.get("type") != arm_shapes.ROLE_ASSIGNMENT:
                continue
            if principal_id is not None and doc["properties"]["principalId"].lower() != (
                principal_id
            ):
                continue
            found[doc_key] = self._assignment_record(doc_key, doc)
        return found

    def _assignment(self, doc_key: str) -> RoleAssignment | None:
        """One assignment by its key, read from its document (lock held)."""
        doc = self.arm_store.resources.get(doc_key)
        if doc is None or doc.get("type") != arm_shapes.ROLE_ASSIGNMENT:
            return None
        return self._assignment_record(doc_key, doc)

    def _assignment_record(self, doc_key: str, doc: dict[str, Any]) -> RoleAssignment:
        props = doc["properties"]
        made = self._assignment_times.get(doc_key)
        if made is None:  # written by the model alone: its createdOn
            made = datetime.fromisoformat(props["createdOn"].replace("Z", "+00:00")).timestamp()
        return RoleAssignment(
            doc["id"],
            doc["name"],
            props["scope"],
            props["roleDefinitionId"],
            props["principalId"].lower(),
            props["principalType"],
            made,
            props.get("description"),
            props.get("condition"),
            props.get("conditionVersion"),
        )

    # -------------------------------------------------------- role assignments
    def role_definition(self, reference: str) -> RoleDefinition:
        """A built-in role by name, GUID or role-definition ID (ConfigError if unknown)."""
        return self.catalog.get(reference, field="role_definition_id")

    def create_role_assignment(
        self,
        scope: str,
        role: str,
        principal_id: str,
        *,
        principal_type: str | None = "ServicePrincipal",
        name: str | None = None,
        description: str | None = None,
        condition: str | None = None,
        condition_version: str | None = None,
        created_on: float | None = None,
    ) -> RoleAssignment:
        """Assign ``role`` (name, GUID or definition ID) to a principal at ``scope``.

        ARM's rules: the same name at the same scope with identical content is an
        idempotent PUT; a different principal, role or scope under an existing name is
        ``RoleAssignmentUpdateNotPermitted``; the same principal, role and scope under
        another name is ``RoleAssignmentExists``; without ``principalType`` an unknown
        principal is ``PrincipalNotFound`` (with it, ARM skips the directory lookup, which is
        why it avoids replication-delay failures); a type that contradicts a known principal
        is ``UnmatchedPrincipalType`` (every sandbox principal is a ServicePrincipal); a
        condition on a role that cannot carry one, in a version other than 2.0 or that does
        not parse is ``InvalidRoleAssignmentCondition`` (400).

        ``created_on`` (default: now) is when the assignment was made; RBAC propagation
        is measured from it, so an assignment that stands for access held long before the
        sandbox started is given an old timestamp and is never "recently granted".
        """
        armid.parse(scope, "scope")
        name = (name or new_guid()).lower()
        with arm_rules_as_sandbox_errors():
            rules.check_role_assignment_ids(name, principal_id)
        try:
            role_def = self.role_definition(role)
        except ConfigError as exc:
            raise SandboxError(
                404,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{role}' does not exist.",
            ) from exc
        if arm_condition_refusal(role_def, condition, condition_version):
            # Only Blob/Queue Storage data roles and delegation take a condition, and
            # only conditionVersion 2.0 (Microsoft: conditions troubleshooting).
            raise SandboxError(400, INVALID_CONDITION_CODE, INVALID_CONDITION_MESSAGE)
        definition_id = role_def.definition_id(self.subscription_id)
        assignment_id = (
            f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"
        )
        principal_id = principal_id.lower()
        with self._lock:
            if principal_type is None:
                if principal_id not in self._principals:
                    raise SandboxError(
                        400,
                        "PrincipalNotFound",
                        f"Principal {principal_id.replace('-', '')} does not exist in the "
                        f"directory {self.tenant_id}. Check that you have the correct principal "
                        "ID. If you are creating this principal and then immediately assigning a "
                        "role, this error might be related to a replication delay.",
                    )
                principal_type = "ServicePrincipal"
            elif principal_id in self._principals and principal_type != "ServicePrincipal":
                raise SandboxError(
                    400,
                    "UnmatchedPrincipalType",
                    f"The PrincipalId '{principal_id.replace('-', '')}' has type "
                    f"'ServicePrincipal', which is different from specified PrincipalType "
                    f"'{principal_type}'.",
                )
            existing = self._assignments()
            same_name = existing.get(key(assignment_id))
            if same_name is not None:
                if same_name.principal_id == principal_id and key(
                    same_name.role_definition_id
                ) == key(definition_id):
                    return same_name
                raise SandboxError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )
            for other in existing.values():
                if (
                    key(other.scope) == key(scope)
                    and other.principal_id == principal_id
                    and key(other.role_definition_id) == key(definition_id)
                ):
                    raise SandboxError(
                        409, "RoleAssignmentExists", "The role assignment already exists."
                    )
            with arm_rules_as_sandbox_errors():
                rules.check_role_assignment_limit(len(existing))
            assignment = RoleAssignment(
                assignment_id,
                name,
                scope.rstrip("/"),
                definition_id,
                principal_id,
                principal_type,
                self.clock() if created_on is None else created_on,
                description,
                condition,
                (condition_version or CONDITION_VERSION) if condition else None,
            )
            self._assignment_times[key(assignment_id)] = assignment.created_on
            self.arm_store.resources[key(assignment_id)] = arm_shapes.role_assignment(
                scope=assignment.scope,
                name=assignment.name,
                role_definition_id=assignment.role_definition_id,
                principal_id=assignment.principal_id,
                principal_type=assignment.principal_type,
                condition=assignment.condition,
                condition_version=assignment.condition_version,
                description=assignment.description,
                created_on=arm_shapes.arm_timestamp(
                    datetime.fromtimestamp(assignment.created_on, UTC)
                ),
            )
            return assignment

    def role_assignment(self, assignment_id: str) -> RoleAssignment | None:
        with self._lock:
            return self._assignment(key(assignment_id))

    def delete_role_assignment(self, assignment_id: str) -> RoleAssignment | None:
        with self._lock:
            found = self._assignment(key(assignment_id))
            if found is not None:
                del self.arm_store.resources[key(assignment_id)]
                self._assignment_times.pop(key(assignment_id), None)
            return found

    def role_assignments(
        self,
        scope: str | None = None,
        principal_id: str | None = None,
        at_scope: bool = False,
    ) -> list[RoleAssignment]:
        """Assignments that apply at ``scope`` (at or above it) and, unless ``at_scope``,
        those below it too, as ARM's list-for-scope returns them."""
        with self._lock:  # "" matches nothing (it used to match everything)
            wanted = None if principal_id is None else principal_id.lower()
            found = list(self._assignments(wanted).values())
        if scope:
            found = [
                a
                for a in found
                if armid.is_within(a.scope, scope)
                or (not at_scope and armid.is_within(scope, a.scope))
            ]
        return sorted(found, key=lambda a: a.created_on)

    def is_orphaned(self, assignment: RoleAssignment) -> bool:
        """True when the assignment's principal no longer exists ("Identity not found")."""
        return self.principal(assignment.principal_id) is None
