"""Refuse a role-assignment condition before any resource exists, as ARM would.

Checked in this order, each failure a :class:`ConfigError` naming the field, the value,
the problem and the fix:

1. ``condition_version`` other than ``"2.0"`` (unset means 2.0, ARM's default) -- ARM:
   400 "The given role assignment condition is invalid." (Microsoft's troubleshooting
   page, cause 1: conditionVersion 1.0).
2. A role that cannot carry a condition: ARM accepts conditions only on roles whose data
   actions are Blob or Queue Storage actions (syntax page, "Actions") and on role
   assignment write/delete for delegation ("Delegate Azure role assignment management
   using conditions"); anything else is the same 400.
3. Syntax, with line and column.
4. An attribute the targeted action does not carry, or an operator its type does not
   take (Microsoft's attribute lists, ``catalog.py``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from components.conditions.catalog import (
    ActionInfo,
    AttributeCatalog,
    AttributeInfo,
    canonical_name,
)
from components.conditions.model import (
    SUBOPERATION_ATTRIBUTE,
    ActionMatches,
    And,
    Attribute,
    Comparison,
    Condition,
    Exists,
    LiteralValue,
    Node,
    Not,
    Or,
    SubOperationMatches,
)
from components.conditions.syntax import ConditionSyntaxError, parse_condition
from components.errors import ConfigError
from components.roles import RoleDefinition

CONDITION_VERSION = "2.0"
#: ARM's answer to a condition it refuses (status 400).
INVALID_CONDITION_CODE = "InvalidRoleAssignmentCondition"
INVALID_CONDITION_MESSAGE = "The given role assignment condition is invalid."

WRITE_ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments/write"
DELETE_ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments/delete"
_STORAGE_DATA_PREFIXES = (
    "microsoft.storage/storageaccounts/blobservices/",
    "microsoft.storage/storageaccounts/queueservices/",
)
_TYPE_FAMILY = {
    "String": "string",
    "StringList": "string",
    "Boolean": "bool",
    "DateTime": "datetime",
    "GUID": "guid",
}

Target = tuple[ActionInfo, str | None]


def storage_data_actions(role: RoleDefinition) -> list[str]:
    return [a for a in role.data_actions if a.lower().startswith(_STORAGE_DATA_PREFIXES)]


def is_delegation_role(role: RoleDefinition) -> bool:
    return role.permits_action(WRITE_ROLE_ASSIGNMENT) or role.permits_action(DELETE_ROLE_ASSIGNMENT)


def condition_capable(role: RoleDefinition) -> bool:
    """Whether ARM accepts a condition on an assignment of ``role``."""
    return bool(storage_data_actions(role)) or is_delegation_role(role)


def arm_condition_refusal(
    role: RoleDefinition, condition: str | None, condition_version: str | None
) -> str | None:
    """Why ARM would answer a role-assignment PUT with 400 ``InvalidRoleAssignmentCondition``
    ("The given role assignment condition is invalid."), or None when it would accept it.

    ARM's own checks (troubleshooting page): conditionVersion 2.0 (absent means 2.0, the
    REST page's default), a condition-capable role, and a condition it can parse. The
    attribute-per-action checks of :func:`validate_condition` are this toolkit's, not
    documented ARM behaviour, so the ARM emulations do not apply them.
    """
    if not condition:
        return None
    if (condition_version or CONDITION_VERSION) != CONDITION_VERSION:
        return f"conditionVersion {condition_version!r} is not 2.0"
    if not condition_capable(role):
        return f"{role.name} has no Blob/Queue Storage data actions and is not a delegation role"
    try:
        parse_condition(condition)
    except ConditionSyntaxError as exc:
        return f"syntax: {exc}"
    return None


def validate_condition(
    role: RoleDefinition,
    condition: str | None,
    condition_version: str | None,
    *,
    field: str = "condition",
    version_field: str = "condition_version",
    catalog: AttributeCatalog | None = None,
) -> Condition | None:
    """The parsed condition (None when unset), or :class:`ConfigError` as described above."""
    if not condition:
        if condition_version is not None:
            raise ConfigError(
                version_field,
                condition_version,
                "is set without a condition",
                "leave condition_version unset, or give the ABAC condition too",
            )
        return None
    if (condition_version or CONDITION_VERSION) != CONDITION_VERSION:
        raise ConfigError(
            version_field,
            condition_version,
            f"is not a condition version ARM accepts (it answers 400 {INVALID_CONDITION_CODE} "
            f"{INVALID_CONDITION_MESSAGE!r})",
            "use '2.0' (or leave it unset: 2.0 is the default)",
        )
    if not condition_capable(role):
        raise ConfigError(
            field,
            condition,
            f"is set on a grant of {role.name!r}, whose data actions are not Blob or Queue "
            "Storage actions and which cannot write or delete role assignments; ARM refuses "
            f"it with 400 {INVALID_CONDITION_CODE} {INVALID_CONDITION_MESSAGE!r}",
            "remove the condition and narrow the scope instead (e.g. grant on one Key Vault "
            "secret, target secret:<name>); conditions apply only to Storage Blob/Queue data "
            "roles and to role-assignment delegation (Role Based Access Control Administrator)",
        )
    try:
        parsed = parse_condition(condition)
    except ConditionSyntaxError as exc:
        lines = condition.splitlines() or [condition]
        snippet = lines[min(exc.line, len(lines)) - 1].strip()
        raise ConfigError(
            field,
            snippet,
            f"is not valid condition syntax: line {exc.line}, column {exc.column}: {exc.message}",
            "correct it as Microsoft's 'Azure role assignment condition format and syntax' "
            "describes, e.g. ((!(ActionMatches{'<action>'})) OR (@Resource[<attribute>] "
            "StringEquals '<value>'))",
        ) from None
    _check_attributes(
        parsed.root,
        _role_targets(role, catalog or AttributeCatalog.builtin()),
        catalog or AttributeCatalog.builtin(),
        field,
    )
    return parsed


def _role_targets(role: RoleDefinition, catalog: AttributeCatalog) -> list[Target]:
    """Where no ActionMatches narrows an expression, it applies to every action of the role."""
    patterns = storage_data_actions(role)
    if is_delegation_role(role):
        patterns += [WRITE_ROLE_ASSIGNMENT, DELETE_ROLE_ASSIGNMENT]
    seen: dict[str, ActionInfo] = {}
    for pattern in patterns:
        for action in catalog.expand(pattern):
            seen[action.name] = action
    return [(a, None) for a in seen.values()]


def _check_attributes(
    node: Node, targets: list[Target], catalog: AttributeCatalog, field: str
) -> None:
    if isinstance(node, Or):
        targeting = [i for i in node.items if _names_actions(i)]
        if targeting:
            narrowed: list[Target] = []
            for item in targeting:
                narrowed += _targets_of(item, catalog, field)
            for item in node.items:
                if item not in targeting:
                    _check_attributes(item, narrowed, catalog, field)
            return
    if isinstance(node, Comparison):
        for attribute in node.attributes():
            _check_one(attribute, node, targets, catalog, field)
        return
    if isinstance(node, Exists):
        _check_one(node.attribute, None, targets, catalog, field)
        return
    for child in node.children():
        _check_attributes(child, targets, catalog, field)


def _names_actions(node: Node) -> bool:
    return any(isinstance(n, ActionMatches) for n in node.walk())


def _targets_of(item: Node, catalog: AttributeCatalog, field: str) -> list[Target]:
    """``!(ActionMatches{a} [AND [NOT] SubOperationMatches{s}])`` -> [(a, s or None)]."""
    inner = item.item if isinstance(item, Not) else item
    parts = inner.items if isinstance(inner, And) else (inner,)
    actions = [p.pattern for p in parts if isinstance(p, ActionMatches)]
    suboperations: list[str | None] = []
    for part in parts:
        if isinstance(part, SubOperationMatches):
            suboperations.append(part.pattern)
        elif isinstance(part, Comparison) and _is_suboperation_test(part):
            literal = part.right if isinstance(part.right, LiteralValue) else part.left
            suboperations += [str(v) for v in getattr(literal, "values", ())]
    if not actions:  # ActionMatches nested deeper: no suboperation narrowing is read
        actions = [n.pattern for n in inner.walk() if isinstance(n, ActionMatches)]
    out: list[Target] = []
    for pattern in actions:
        known = catalog.expand(pattern)
        if not known:
            raise ConfigError(
                field,
                pattern,
                "is an ActionMatches target that no Blob, Queue or role-assignment condition "
                "supports, so no attribute can be checked for it",
                "target a Blob/Queue Storage data action (e.g. "
                "'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read') or "
                "Microsoft.Authorization/roleAssignments/write|delete",
            )
        for action in known:
            out += [(action, s) for s in (suboperations or [None])]
    return out


def _is_suboperation_test(node: Comparison) -> bool:
    return any(
        a.source == "Request" and a.name.lower() == SUBOPERATION_ATTRIBUTE.lower()
        for a in node.attributes()
    )


def _check_one(
    attribute: Attribute,
    comparison: Comparison | None,
    targets: Iterable[Target],
    catalog: AttributeCatalog,
    field: str,
) -> None:
    shown = f"@{attribute.source}[{attribute.name}]"
    where = f"line {attribute.position.line}, column {attribute.position.column}"
    if attribute.source == "Request" and attribute.name.lower() == SUBOPERATION_ATTRIBUTE.lower():
        return
    info = catalog.attribute(attribute.name)
    if info is None and attribute.source != "Principal":
        names = [a.name for a in catalog.attributes.values()]
        close = difflib.get_close_matches(canonical_name(attribute.name), names, n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ConfigError(
            field,
            shown,
            f"({where}) is not an attribute Azure conditions know",
            f"{hint}use an attribute from Microsoft's 'Actions and attributes for Azure role "
            "assignment conditions' pages (Blob Storage, Queue Storage, authorization)",
        )
    if info is not None and attribute.source not in info.sources:
        raise ConfigError(
            field,
            shown,
            f"({where}) is not a {attribute.source} attribute",
            f"write it as @{info.sources[0]}[{attribute.name}]",
        )
    for action, suboperation in targets:
        attrs = action.for_suboperation(suboperation)
        if attrs is None:
            raise ConfigError(
                field,
                suboperation,
                f"is not a suboperation of {action.name}",
                f"use one of {sorted(action.suboperations)} or leave SubOperationMatches out",
            )
        if not attrs.has(attribute.source, attribute.name):
            op = f" with suboperation {suboperation}" if suboperation else ""
            raise ConfigError(
                field,
                shown,
                f"({where}) does not exist for {action.name}{op}: that operation never carries "
                "it, so the condition cannot be evaluated and the access check always fails",
                "use an attribute Microsoft lists for that action, or target the action with "
                "ActionMatches (and SubOperationMatches) in its own clause",
            )
    if comparison is not None and info is not None:
        _check_operator(info, comparison, shown, where, field)


def _check_operator(
    info: AttributeInfo, comparison: Comparison, shown: str, where: str, field: str
) -> None:
    written = comparison.operator.name
    if comparison.quantifier:
        written = f"{comparison.quantifier}:{written}"
    family = _TYPE_FAMILY.get(info.type)
    if family is not None and comparison.operator.family != family:
        raise ConfigError(
            field,
            shown,
            f"({where}) is of type {info.type} and {written} is a "
            f"{comparison.operator.family} operator",
            f"compare it with a {family} operator",
        )
    if info.operators and written.lower() not in {o.lower() for o in info.operators}:
        raise ConfigError(
            field,
            shown,
            f"({where}) supports only {', '.join(info.operators)}, not {written}",
            f"use one of {', '.join(info.operators)}",
        )
