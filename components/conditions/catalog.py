"""Which attributes exist, and for which data actions: Microsoft's lists, shipped as data.

``data/attributes.json`` is transcribed from Microsoft's pages "Actions and attributes
for Azure role assignment conditions" for Azure Blob Storage and for Azure Queue
Storage, and "Authorization actions and attributes" (delegation). The validator uses it
to refuse an attribute that a targeted action never carries: such a condition can never
be true for that action (the Blob page: the operation "cannot evaluate this condition,
and will fail the authorization access check"), which is a mistake to catch before
deploying rather than a silent denial after.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from components.roles import matches_operation

_TAG_VALUE = re.compile(r"^(?P<base>.+/tags):(?P<key>.+)<\$key_case_sensitive\$>$", re.IGNORECASE)
_TAG_TEMPLATE = "{base}:<key><$key_case_sensitive$>"


@dataclass(frozen=True)
class AttributeInfo:
    name: str
    sources: tuple[str, ...]
    type: str  # String, StringList, Boolean, DateTime, GUID
    operators: tuple[str, ...] = ()  # non-empty: only these (e.g. UtcNow)


@dataclass(frozen=True)
class OperationAttributes:
    """What one action (optionally one suboperation) carries, per source."""

    resource: frozenset[str]
    request: frozenset[str]
    principal: bool
    environment: frozenset[str]

    def has(self, source: str, name: str) -> bool:
        key = canonical_name(name).lower()
        if source == "Principal":
            return self.principal
        pool = {"Resource": self.resource, "Request": self.request, "Environment": self.environment}
        return key in pool.get(source, frozenset())


def canonical_name(name: str) -> str:
    """A tag-value attribute with its key replaced by ``<key>``; others unchanged."""
    match = _TAG_VALUE.match(name)
    return _TAG_TEMPLATE.format(base=match["base"]) if match else name


def _operation(raw: dict[str, Any]) -> OperationAttributes:
    return OperationAttributes(
        resource=frozenset(n.lower() for n in raw["Resource"]),
        request=frozenset(n.lower() for n in raw["Request"]),
        principal=bool(raw["Principal"]),
        environment=frozenset(n.lower() for n in raw["Environment"]),
    )


@dataclass(frozen=True)
class ActionInfo:
    name: str
    default: OperationAttributes
    suboperations: dict[str, OperationAttributes]

    def for_suboperation(self, suboperation: str | None) -> OperationAttributes | None:
        """``None``: the action without a suboperation; an unknown suboperation: None."""
        if suboperation is None:
            return self.default
        for name, attrs in self.suboperations.items():
            if name.lower() == suboperation.lower():
                return attrs
        return None


class AttributeCatalog:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.attributes = {
            name.lower(): AttributeInfo(
                name, tuple(a["sources"]), a["type"], tuple(a.get("operators", ()))
            )
            for name, a in raw["attributes"].items()
        }
        self.actions = {
            name.lower(): ActionInfo(
                name,
                _operation(a["default"]),
                {k: _operation(v) for k, v in a.get("suboperations", {}).items()},
            )
            for name, a in raw["actions"].items()
        }

    @classmethod
    @cache
    def builtin(cls) -> AttributeCatalog:
        text = resources.files("components.conditions.data").joinpath("attributes.json").read_text()
        return cls(json.loads(text))

    def attribute(self, name: str) -> AttributeInfo | None:
        return self.attributes.get(canonical_name(name).lower())

    def expand(self, pattern: str) -> list[ActionInfo]:
        """The known actions an ``ActionMatches`` pattern (or a role's data action) names."""
        return [a for a in self.actions.values() if matches_operation(pattern, a.name)]

    def suboperation_names(self) -> set[str]:
        return {s for a in self.actions.values() for s in a.suboperations}
