"""RoleAssignment: one Azure RBAC grant in the Azure Verified Modules ``role_assignments`` shape.

What it guarantees that a bare ``azure-native:authorization:RoleAssignment`` does not:

* the role is resolved and checked before anything is registered (unknown names fail
  with close matches) and sent as a full role-definition ARM ID;
* the assignment name is a deterministic GUID of (scope, principal, role), so re-runs
  never collide (``RoleAssignmentExists``) and a new stack adopts nothing by accident;
* a change of principal, role or scope replaces the assignment, deleting first
  (ARM forbids updating them: ``RoleAssignmentUpdateNotPermitted``);
* ``principal_type`` defaults to ``ServicePrincipal``, which lets ARM skip the directory
  lookup that fails with ``PrincipalNotFound`` right after an identity is created;
* a condition is parsed and checked as ARM would (``components.conditions``): only on roles
  that can carry one, version 2.0, valid syntax, attributes the targeted actions have;
* a privileged role at any scope (subscription down to one secret) needs ``allow_privileged``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_azure_native as azure_native

from components import armid
from components.conditions import CONDITION_VERSION, Condition, validate_condition
from components.errors import ConfigError
from components.role_lookup import RoleResolver, default_role_resolver
from components.roles import RoleDefinition, role_definition_id

PrincipalType = Literal["ServicePrincipal", "User", "Group", "ForeignGroup", "Device"]
PRINCIPAL_TYPES: tuple[str, ...] = ("ServicePrincipal", "User", "Group", "ForeignGroup", "Device")

# Fixed namespace for assignment names: changing it would rename (and so recreate)
# every assignment ever made with this toolkit.
ASSIGNMENT_NAMESPACE = uuid.UUID("6f1d3c2a-7b8e-5d4f-9a0b-1c2d3e4f5a6b")

BROAD_LEVELS = ("subscription", "resource_group")


def assignment_name(scope: str, principal_id: str, role_guid: str) -> str:
    """uuid5 of the lower-cased (scope, principal, role): the same grant, the same name."""
    key = "|".join(part.strip().rstrip("/").lower() for part in (scope, principal_id, role_guid))
    return str(uuid.uuid5(ASSIGNMENT_NAMESPACE, key))


def check_privileged(role: RoleDefinition, scope: str, allow_privileged: bool, field: str) -> None:
    """Refuse a privileged role at ANY scope unless opted in.

    Broad scopes are the obvious risk, but the narrow ones are no safer: Owner, User
    Access Administrator or Role Based Access Control Administrator on a vault (or one
    secret) can assign themselves Key Vault Secrets Officer there and read or replace
    every value; Key Vault Administrator holds the vault's whole data plane. So the rule
    is the same everywhere: an explicit ``allow_privileged=True``.
    """
    level = armid.parse(scope, field).level
    if role.privileged and not allow_privileged:
        where = (
            f"a whole {level.replace('_', ' ')}"
            if level in BROAD_LEVELS
            else "a resource (it can grant itself, or already holds, the data plane there)"
        )
        raise ConfigError(
            "role",
            role.name,
            f"is a privileged role and {scope!r} is {where}",
            "grant a data role (e.g. 'Key Vault Secrets User') at the narrowest scope "
            "(one secret); if you really mean it, set allow_privileged=True",
        )


@dataclass(frozen=True)
class RoleAssignmentArgs:
    """AVM ``role_assignments`` entry.

    ``role``: built-in name, role GUID or role-definition ID. ``scope``: any ARM ID
    (subscription, group, resource, or a child such as one Key Vault secret).
    ``condition`` is an Azure ABAC condition (Blob/Queue Storage data roles and
    role-assignment delegation only); ``condition_version`` defaults to ``"2.0"`` when a
    condition is set and must stay unset otherwise.
    """

    role: str
    principal_id: pulumi.Input[str]
    scope: pulumi.Input[str]
    principal_type: PrincipalType = "ServicePrincipal"
    description: str | None = None
    condition: str | None = None
    condition_version: str | None = None
    allow_privileged: bool = False
    role_resolver: RoleResolver | None = None


class RoleAssignment(pulumi.ComponentResource):
    """A role assignment with a deterministic name and a privileged-role guard.

    Outputs: ``id``, ``name`` (the assignment GUID), ``principal_id``, ``principal_type``,
    ``role_definition_id`` (full ARM form), ``scope``; plain attributes ``role`` (the
    resolved :class:`RoleDefinition`) and ``role_name``.
    """

    id: pulumi.Output[str]
    name: pulumi.Output[str]
    principal_id: pulumi.Output[str]
    principal_type: pulumi.Output[str]
    role_definition_id: pulumi.Output[str]
    scope: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        args: RoleAssignmentArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        role, condition = self._validate(args)
        super().__init__("mikit:authorization:RoleAssignment", resource_name, None, opts)
        self.role = role
        self.role_name = role.name
        #: The parsed condition (None without one): what the access matrix evaluates.
        self.condition = condition
        condition_version = CONDITION_VERSION if condition is not None else None

        scope = pulumi.Output.from_input(args.scope).apply(
            lambda s: self._checked_scope(s, role, args.allow_privileged)
        )
        principal = pulumi.Output.from_input(args.principal_id)
        definition_id = scope.apply(
            lambda s: role_definition_id(armid.parse(s).subscription_id, role.guid)
        )
        name = pulumi.Output.all(scope, principal).apply(
            lambda sp: assignment_name(sp[0], sp[1], role.guid)
        )
        assignment = azure_native.authorization.RoleAssignment(
            resource_name,
            role_assignment_name=name,
            scope=scope,
            principal_id=principal,
            principal_type=args.principal_type,
            role_definition_id=definition_id,
            description=args.description,
            condition=args.condition,
            condition_version=condition_version,
            opts=pulumi.ResourceOptions(
                parent=self,
                delete_before_replace=True,
                replace_on_changes=["scope", "principalId", "roleDefinitionId"],
            ),
        )
        self.id = assignment.id
        self.name = assignment.name
        self.principal_id = assignment.principal_id
        self.principal_type = assignment.principal_type.apply(lambda t: t or args.principal_type)
        self.role_definition_id = assignment.role_definition_id
        self.scope = assignment.scope
        self.register_outputs(
            {
                "id": self.id,
                "name": self.name,
                "principal_id": self.principal_id,
                "principal_type": self.principal_type,
                "role_definition_id": self.role_definition_id,
                "scope": self.scope,
                "role_name": role.name,
            }
        )

    @staticmethod
    def _validate(args: RoleAssignmentArgs) -> tuple[RoleDefinition, Condition | None]:
        """All checks that need no cloud value; run before anything is registered."""
        resolver = args.role_resolver or default_role_resolver()
        role = resolver.resolve(args.role, "role")
        if args.principal_type not in PRINCIPAL_TYPES:
            raise ConfigError(
                "principal_type",
                args.principal_type,
                "is not a principal type ARM knows",
                f"use one of {', '.join(PRINCIPAL_TYPES)} (managed identities: ServicePrincipal)",
            )
        if isinstance(args.principal_id, str) and not armid.is_guid(args.principal_id):
            raise ConfigError(
                "principal_id",
                args.principal_id,
                "is not a GUID",
                "pass the principal (object) ID, e.g. identity.principal_id",
            )
        if isinstance(args.scope, str):
            check_privileged(role, args.scope, args.allow_privileged, "scope")
        condition = validate_condition(role, args.condition, args.condition_version)
        return role, condition

    @staticmethod
    def _checked_scope(scope: str, role: RoleDefinition, allow_privileged: bool) -> str:
        """The same checks for a scope only known once its resource exists."""
        check_privileged(role, scope, allow_privileged, "scope")
        return scope


def role_assignment_outputs(assignment: RoleAssignment) -> Mapping[str, pulumi.Output[str]]:
    """The fields a stack exports per grant (see docs/contracts.md)."""
    return {
        "name": assignment.name,
        "id": assignment.id,
        "principal_id": assignment.principal_id,
        "principal_type": assignment.principal_type,
        "role_name": pulumi.Output.from_input(assignment.role_name),
        "role_definition_id": assignment.role_definition_id,
        "scope": assignment.scope,
    }
