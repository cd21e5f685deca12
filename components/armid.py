"""Azure Resource Manager IDs: parse, validate, build and compare scopes.

Role assignments, Key Vault RBAC and the sandbox all reason about scopes, and ARM
compares them case-insensitively on whole path segments. One module does that so the
components, the mocks and the sandbox cannot disagree about what "inside a scope" means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from components.errors import ConfigError

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

ScopeLevel = Literal["subscription", "resource_group", "resource", "child_resource"]


def is_guid(value: str) -> bool:
    """True when ``value`` is a GUID in its 8-4-4-4-12 form."""
    return bool(_GUID.match(value))


@dataclass(frozen=True)
class ArmId:
    """A parsed ARM ID.

    ``types`` and ``names`` hold the resource path below the provider, e.g. for
    ``.../providers/Microsoft.KeyVault/vaults/kv1/secrets/s1``: provider
    ``Microsoft.KeyVault``, types ``("vaults", "secrets")``, names ``("kv1", "s1")``.
    """

    subscription_id: str
    resource_group: str | None = None
    provider: str | None = None
    types: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @property
    def level(self) -> ScopeLevel:
        if self.resource_group is None and self.provider is None:
            return "subscription"
        if self.provider is None:
            return "resource_group"
        return "resource" if len(self.types) == 1 else "child_resource"

    @property
    def resource_type(self) -> str | None:
        """The full type, e.g. ``Microsoft.KeyVault/vaults/secrets``."""
        if self.provider is None:
            return None
        return "/".join((self.provider, *self.types))

    @property
    def name(self) -> str | None:
        return self.names[-1] if self.names else self.resource_group

    def __str__(self) -> str:
        path = f"/subscriptions/{self.subscription_id}"
        if self.resource_group is not None:
            path += f"/resourceGroups/{self.resource_group}"
        if self.provider is not None:
            path += f"/providers/{self.provider}"
            for type_, name in zip(self.types, self.names, strict=True):
                path += f"/{type_}/{name}"
        return path

    def child(self, type_: str, name: str) -> ArmId:
        """The ID of a child resource, e.g. a secret below its vault."""
        if self.provider is None:
            raise ValueError(f"{self} is not a resource; it cannot have child {type_}/{name}")
        return ArmId(
            self.subscription_id,
            self.resource_group,
            self.provider,
            (*self.types, type_),
            (*self.names, name),
        )


def parse(value: str, field: str = "scope") -> ArmId:
    """Parse an ARM ID, raising :class:`ConfigError` naming ``field`` when malformed.

    Accepts subscription, resource-group, resource and child-resource IDs; extension
    resources (a second ``/providers/`` segment) are refused because no scope this
    toolkit grants on has one.
    """
    fix = (
        "give a full ARM ID such as /subscriptions/<guid>/resourceGroups/<rg>"
        "/providers/Microsoft.KeyVault/vaults/<vault>[/secrets/<name>]"
    )
    if not isinstance(value, str) or not value.startswith("/subscriptions/"):
        raise ConfigError(
            field, value, "is not an ARM ID (it must start with /subscriptions/)", fix
        )
    parts = value.rstrip("/").split("/")[1:]
    if any(p == "" for p in parts):
        raise ConfigError(field, value, "has an empty path segment", fix)
    sub = parts[1] if len(parts) > 1 else ""
    if not is_guid(sub):
        raise ConfigError(field, value, f"has subscription {sub!r}, which is not a GUID", fix)
    rest = parts[2:]
    rg: str | None = None
    if rest[:1] and rest[0].lower() == "resourcegroups":
        if len(rest) < 2:
            raise ConfigError(field, value, "ends after resourceGroups without a name", fix)
        rg, rest = rest[1], rest[2:]
    if not rest:
        return ArmId(sub, rg)
    if rg is None or rest[0].lower() != "providers" or len(rest) < 4:
        raise ConfigError(field, value, "is not a resource group or resource path", fix)
    provider, path = rest[1], rest[2:]
    if len(path) % 2:
        raise ConfigError(field, value, "has a resource type without a name", fix)
    if any(p.lower() == "providers" for p in path[::2]):
        raise ConfigError(field, value, "is an extension resource ID, not a scope", fix)
    return ArmId(sub, rg, provider, tuple(path[::2]), tuple(path[1::2]))


def is_within(scope: str, resource_id: str) -> bool:
    """True when ``resource_id`` equals ``scope`` or lies below it (ARM inheritance).

    Case-insensitive and segment-aware: ``.../vaults/kv1`` does not contain
    ``.../vaults/kv10``. The root scope ``/`` contains everything.
    """
    s = scope.rstrip("/").lower()
    r = resource_id.rstrip("/").lower()
    return s in ("", r) or r.startswith(s + "/")


def subscription(subscription_id: str) -> ArmId:
    return ArmId(subscription_id)


def resource_group(subscription_id: str, name: str) -> ArmId:
    return ArmId(subscription_id, name)


def resource(
    subscription_id: str, resource_group_name: str, provider: str, type_: str, name: str
) -> ArmId:
    """A top-level resource ID such as a vault, VM or user-assigned identity."""
    return ArmId(subscription_id, resource_group_name, provider, (type_,), (name,))
