"""ABAC conditions that constrain what a role-assignment writer may assign.

Role Based Access Control Administrator can write and delete *any* role assignment at its
scope, including Owner to itself. Microsoft's documented way to narrow it is a condition
on the assignment of that role ("Constrain roles and principal types" in *Examples to
delegate Azure role assignment management with conditions*): one clause for the write
action, checked against the *request* (the assignment being created), and one for the
delete action, checked against the *resource* (the assignment being removed). Both
clauses are needed: a condition that guarded only writes would let the deployer delete
any assignment in its scope, including ones protecting other workloads.

The text is generated in the documented layout, byte for byte stable, so a re-run of the
bootstrap never shows a spurious diff and tests can pin it exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

from components.armid import is_guid
from components.errors import ConfigError
from components.role_assignment import PRINCIPAL_TYPES

WRITE = "Microsoft.Authorization/roleAssignments/write"
DELETE = "Microsoft.Authorization/roleAssignments/delete"
CONDITION_VERSION = "2.0"


def _guid_set(role_guids: Sequence[str]) -> str:
    if not role_guids:
        raise ConfigError(
            "assignableRoles",
            [],
            "is empty",
            "name at least one role, e.g. 'Key Vault Secrets User'",
        )
    bad = [g for g in role_guids if not is_guid(g)]
    if bad:
        raise ConfigError(
            "assignableRoles", bad, "are not role GUIDs", "pass role-definition GUIDs"
        )
    # Sorted and lower-cased: the same set of roles always yields the same text.
    return ", ".join(sorted({g.lower() for g in role_guids}))


def _principal_set(principal_types: Sequence[str]) -> str:
    if not principal_types:
        raise ConfigError(
            "principalTypes", [], "is empty", "name at least one, e.g. 'ServicePrincipal'"
        )
    bad = [p for p in principal_types if p not in PRINCIPAL_TYPES]
    if bad:
        raise ConfigError(
            "principalTypes", bad, "are not principal types", f"use some of {list(PRINCIPAL_TYPES)}"
        )
    return ", ".join(f"'{p}'" for p in sorted(set(principal_types)))


def _clause(action: str, source: str, roles: str, principals: str) -> str:
    attribute = "Microsoft.Authorization/roleAssignments"
    return (
        "(\n"
        " (\n"
        f"  !(ActionMatches{{'{action}'}})\n"
        " )\n"
        " OR\n"
        " (\n"
        f"  @{source}[{attribute}:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{roles}}}\n"
        "  AND\n"
        f"  @{source}[{attribute}:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase"
        f" {{{principals}}}\n"
        " )\n"
        ")"
    )


def constrain_role_assignments(
    role_guids: Sequence[str], principal_types: Sequence[str] = ("ServicePrincipal",)
) -> str:
    """The condition letting its holder assign and remove only ``role_guids`` for
    principals of ``principal_types`` (managed identities are ``ServicePrincipal``)."""
    roles = _guid_set(role_guids)
    principals = _principal_set(principal_types)
    return (
        _clause(WRITE, "Request", roles, principals)
        + "\nAND\n"
        + _clause(DELETE, "Resource", roles, principals)
    )
