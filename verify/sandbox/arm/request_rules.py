"""What ARM accepts in a request, before any handler acts on it: ``$filter`` and body shapes.

Why a module of its own: the ARM slice used to search ``$filter`` for a pattern anywhere
and ignore the rest (an unknown filter returned every assignment; ``principalId eq ''``
matched all of them), and to call ``.get`` on whatever JSON arrived (a ``properties`` list
gave 500). ARM refuses both with 400; each check here raises
:class:`~verify.sandbox.state.records.SandboxError`, which the slice renders as ARM's
``{"error": {"code", "message"}}``.

Role-assignment filters are the four forms ARM documents ("List Azure role assignments
using the REST API"): ``atScope()``, ``principalId eq '{id}'``, ``assignedTo('{id}')`` and
``atScope() and assignedTo('{id}')``; anything else (a compound with ``principalId``, a
``roleDefinitionId`` clause, an empty or non-GUID ID) is 400 ``UnsupportedQuery`` with ARM's
message. The grammar is this small and closed, so whole-string matches are the parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from verify.sandbox.state.records import SandboxError

_GUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
_AT_SCOPE = r"atScope\(\)"
_ASSIGNED_TO = rf"assignedTo\('(?P<assigned>{_GUID})'\)"
_ASSIGNMENT_FILTERS = [
    re.compile(rf"\s*{_AT_SCOPE}\s*", re.IGNORECASE),
    re.compile(rf"\s*principalId\s+eq\s+'(?P<principal>{_GUID})'\s*", re.IGNORECASE),
    re.compile(rf"\s*{_ASSIGNED_TO}\s*", re.IGNORECASE),
    re.compile(rf"\s*{_AT_SCOPE}\s+and\s+{_ASSIGNED_TO}\s*", re.IGNORECASE),
    re.compile(rf"\s*{_ASSIGNED_TO}\s+and\s+{_AT_SCOPE}\s*", re.IGNORECASE),
]
_ROLE_DEFINITION_FILTERS = [
    re.compile(r"\s*roleName\s+eq\s+'(?P<name>[^']+)'\s*", re.IGNORECASE),
    re.compile(r"\s*type\s+eq\s+'(?P<type>BuiltInRole|CustomRole)'\s*", re.IGNORECASE),
]
UNSUPPORTED_ASSIGNMENT_FILTER = (
    "The filter '{filter}' is not supported. Supported filters are either 'atScope()' or "
    "'principalId eq '{{value}}' or assignedTo('{{value}}')'."
)


@dataclass(frozen=True)
class AssignmentFilter:
    """A parsed role-assignment ``$filter``: whose assignments, and only at the scope?"""

    principal_id: str | None = None
    at_scope: bool = False


def assignment_filter(raw: str | None) -> AssignmentFilter:
    """Parse ARM's role-assignment ``$filter`` (None or empty: no filter)."""
    if raw is None or not raw.strip():
        return AssignmentFilter()
    for pattern in _ASSIGNMENT_FILTERS:
        match = pattern.fullmatch(raw)
        if match:
            groups = match.groupdict()
            principal = groups.get("principal") or groups.get("assigned")
            return AssignmentFilter(
                principal.lower() if principal else None,
                at_scope=bool(re.search(_AT_SCOPE, raw, re.IGNORECASE)),
            )
    raise SandboxError(400, "UnsupportedQuery", UNSUPPORTED_ASSIGNMENT_FILTER.format(filter=raw))


@dataclass(frozen=True)
class RoleDefinitionFilter:
    role_name: str | None = None
    role_type: str | None = None


def role_definition_filter(raw: str | None) -> RoleDefinitionFilter:
    """Parse a role-definition ``$filter``: ``roleName eq '...'`` or ``type eq '...'``."""
    if raw is None or not raw.strip():
        return RoleDefinitionFilter()
    for pattern in _ROLE_DEFINITION_FILTERS:
        match = pattern.fullmatch(raw)
        if match:
            groups = match.groupdict()
            return RoleDefinitionFilter(groups.get("name"), groups.get("type"))
    raise SandboxError(
        400,
        "UnsupportedQuery",
        f"The filter '{raw}' is not supported. Supported filters are 'roleName eq "
        "'{value}'' or 'type eq 'BuiltInRole|CustomRole''.",
    )


# ------------------------------------------------------------------ body shapes
def _invalid(path: str, expected: str, value: Any) -> SandboxError:
    return SandboxError(
        400,
        "InvalidRequestContent",
        "The request content was invalid and could not be deserialized: 'Error converting "
        f"value {_shown(value)} to type '{expected}'. Path '{path}'.'",
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def object_field(body: dict[str, Any], name: str, path: str | None = None) -> dict[str, Any]:
    """``body[name]`` as a JSON object (absent or null: ``{}``), else 400."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(path or name, "object", value)
    return value


def string_field(body: dict[str, Any], name: str, path: str | None = None) -> str | None:
    """``body[name]`` as a string (absent or null: None), else 400."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(path or name, "string", value)
    return value


def tags_field(body: dict[str, Any]) -> dict[str, str] | None:
    """``tags``: an object of string values (absent: None), else 400."""
    if body.get("tags") is None:
        return None
    tags = object_field(body, "tags")
    for tag, value in tags.items():
        if not isinstance(value, str):
            raise _invalid(f"tags.{tag}", "string", value)
    return dict(tags)
