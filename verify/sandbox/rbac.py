"""The one RBAC evaluator behind Key Vault and ARM in the sandbox.

Azure decides an operation by asking: does any role assignment of this principal, at a
scope that contains the resource, carry a role whose (data) actions permit the
operation? Inheritance is plain ARM-ID containment (``components.armid.is_within``) and
role matching is ``components.roles`` (wildcards, NotActions), so the sandbox agrees with
the access matrix the verifier derives from the same grants.

An assignment with a condition (Azure ABAC) grants an operation only when its condition,
parsed and evaluated by ``components.conditions``, is true for that request: callers pass
the attributes Azure would have (Blob Storage: container, path, tags; ARM role-assignment
writes: the requested role and principal type). An assignment whose stored condition does
not parse grants nothing.

New assignments take effect only after a configurable propagation delay (Azure documents
"up to 10 minutes"; the default here is 0), so clients that retry through the delay can
be tested without waiting for real replication.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from components.armid import is_within
from components.conditions import (
    Condition,
    ConditionSyntaxError,
    RequestContext,
    parse_condition,
)
from components.roles import RoleDefinition
from verify.sandbox.state.store import RoleAssignment, SandboxState

Attributes = Mapping[str, object]


@lru_cache(maxsize=512)
def _parsed(text: str) -> Condition | None:
    try:
        return parse_condition(text)
    except ConditionSyntaxError:
        return None


def condition_holds(assignment: RoleAssignment, ctx: RequestContext) -> bool:
    """True when the assignment has no condition or its condition admits ``ctx``."""
    if not assignment.condition:
        return True
    condition = _parsed(assignment.condition)
    return condition is not None and condition.evaluate(ctx)


@dataclass(frozen=True)
class Decision:
    """The outcome of one check, with the assignment that granted it (for the 403 text)."""

    allowed: bool
    assignment: RoleAssignment | None = None


class RbacEvaluator:
    def __init__(
        self,
        state: SandboxState,
        propagation_delay: Callable[[], float] = lambda: 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._propagation_delay = propagation_delay
        self._clock = clock

    def _effective(
        self, principal_id: str, resource_id: str
    ) -> list[tuple[RoleAssignment, RoleDefinition]]:
        cutoff = self._clock() - self._propagation_delay()
        found = []
        for assignment in self._state.role_assignments(principal_id=principal_id):
            if assignment.created_on > cutoff or not is_within(assignment.scope, resource_id):
                continue
            role = self._state.catalog.find(assignment.role_definition_id)
            if role is not None:
                found.append((assignment, role))
        return found

    def check_data_action(
        self,
        principal_id: str,
        operation: str,
        resource_id: str,
        *,
        suboperation: str | None = None,
        resource: Attributes | None = None,
        request: Attributes | None = None,
        environment: Attributes | None = None,
    ) -> Decision:
        """Data plane (Key Vault, Blob Storage): only ``dataActions`` count.

        Owner, Contributor and Reader have none, so they never pass here.
        """
        ctx = RequestContext(
            operation, suboperation, resource or {}, request or {}, {}, environment or {}
        )
        for assignment, role in self._effective(principal_id, resource_id):
            if role.permits_data_action(operation) and condition_holds(assignment, ctx):
                return Decision(True, assignment)
        return Decision(False)

    def check_action(
        self,
        principal_id: str,
        operation: str,
        resource_id: str,
        *,
        resource: Attributes | None = None,
        request: Attributes | None = None,
    ) -> Decision:
        """Control plane (ARM): ``actions`` minus ``notActions``, and the assignment's
        condition (delegation: ``roleAssignments/write`` and ``/delete``)."""
        ctx = RequestContext(operation, None, resource or {}, request or {})
        for assignment, role in self._effective(principal_id, resource_id):
            if role.permits_action(operation) and condition_holds(assignment, ctx):
                return Decision(True, assignment)
        return Decision(False)
