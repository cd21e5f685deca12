"""Azure built-in role catalog: resolve a role by name or ID and evaluate its permissions.

The catalog is Microsoft's role reference (shipped in ``components/data``), so a role
name is checked and resolved to its GUID with no cloud call, and an unknown name fails
with the closest matches. The same permission matching (wildcards, NotActions,
NotDataActions, case-insensitive as ARM does it) serves the access-matrix derivation
and the sandbox's RBAC evaluator, so both agree on what a role allows.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

from components.armid import is_guid
from components.errors import ConfigError

# Data actions this toolkit cares about; named once so nobody retypes them.
GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"  # noqa: S105 (an action name)
READ_SECRET_METADATA = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"  # noqa: S105 (an action name)
SET_SECRET = "Microsoft.KeyVault/vaults/secrets/setSecret/action"  # noqa: S105 (an action name)
DELETE_SECRET = "Microsoft.KeyVault/vaults/secrets/delete"  # noqa: S105 (an action name)
WRITE_ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments/write"
DELETE_ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments/delete"

# Blob Storage data actions (Microsoft: "Permissions for Blob service operations").
_BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
READ_BLOB = f"{_BLOBS}/read"  # Get Blob, Get Blob Properties; also List Blobs (below)
LIST_BLOBS = READ_BLOB  # List Blobs is blobs/read with suboperation Blob.List
LIST_BLOBS_SUBOPERATION = "Blob.List"
WRITE_BLOB = f"{_BLOBS}/write"  # Put Blob (update or create)
ADD_BLOB = f"{_BLOBS}/add/action"  # Put Blob (create only), append
DELETE_BLOB = f"{_BLOBS}/delete"
READ_BLOB_TAGS = f"{_BLOBS}/tags/read"  # Get Blob Tags
WRITE_BLOB_TAGS = f"{_BLOBS}/tags/write"  # Set Blob Tags

_ROLE_DEF_ID = re.compile(
    r"^(/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/"
    r"(?P<guid>[0-9a-fA-F-]{36})$",
    re.IGNORECASE,
)


def matches_operation(pattern: str, operation: str) -> bool:
    """ARM operation matching: ``*`` spans any characters, comparison ignores case.

    Also what a condition's ``ActionMatches{'<pattern>'}`` does ("equivalent to the
    action matching logic ... inside a Permission", condition syntax page).
    """
    regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
    return re.match(regex, operation, re.IGNORECASE | re.DOTALL) is not None


_matches = matches_operation


def _permits(allowed: Iterable[str], denied: Iterable[str], operation: str) -> bool:
    return any(_matches(p, operation) for p in allowed) and not any(
        _matches(p, operation) for p in denied
    )


@dataclass(frozen=True)
class RoleDefinition:
    """One role: its GUID and what it permits on the control and data planes."""

    name: str
    guid: str
    description: str = ""
    category: str = ""
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def permits_action(self, operation: str) -> bool:
        return _permits(self.actions, self.not_actions, operation)

    def permits_data_action(self, operation: str) -> bool:
        """True when the role grants ``operation`` on the data plane.

        Owner, Contributor and Reader return False for every Key Vault data action:
        in an RBAC-mode vault they cannot read a secret value.
        """
        return _permits(self.data_actions, self.not_data_actions, operation)

    @property
    def privileged(self) -> bool:
        """Whether a grant of this role at broad scope should need an explicit opt-in.

        Microsoft's privileged administrator roles, any role that can write role
        assignments (and so escalate), and any role holding a whole service's data
        plane (``Microsoft.KeyVault/vaults/*``, ``Microsoft.Batch/*``).
        """
        return (
            self.category == "privileged"
            or self.permits_action(WRITE_ROLE_ASSIGNMENT)
            or any(a.endswith("/*") and a.count("/") <= 2 for a in self.data_actions)
        )

    def definition_id(self, subscription_id: str) -> str:
        """The full ARM role-definition ID that role assignments require."""
        return role_definition_id(subscription_id, self.guid)


def role_definition_id(subscription_id: str, guid: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    )


def guid_from_role_reference(value: str) -> str | None:
    """The GUID inside a bare GUID or a role-definition ID; None for anything else."""
    if is_guid(value):
        return value.lower()
    match = _ROLE_DEF_ID.match(value)
    return match.group("guid").lower() if match else None


class RoleCatalog:
    """Roles indexed by name and GUID, both case-insensitive (as Azure treats them)."""

    def __init__(self, roles: Iterable[RoleDefinition]) -> None:
        self._roles = tuple(roles)
        self._by_name = {r.name.lower(): r for r in self._roles}
        self._by_guid = {r.guid.lower(): r for r in self._roles}

    @classmethod
    @cache
    def builtin(cls) -> RoleCatalog:
        """Microsoft's built-in roles as shipped with this package (loaded once)."""
        raw = resources.files("components.data").joinpath("builtin_roles.json").read_text()
        return cls(
            RoleDefinition(
                name=r["roleName"],
                guid=r["id"].lower(),
                description=r.get("description", ""),
                category=r.get("category", ""),
                actions=tuple(r.get("actions", ())),
                not_actions=tuple(r.get("notActions", ())),
                data_actions=tuple(r.get("dataActions", ())),
                not_data_actions=tuple(r.get("notDataActions", ())),
            )
            for r in json.loads(raw)["roles"]
        )

    def __iter__(self) -> Iterator[RoleDefinition]:
        return iter(self._roles)

    def __len__(self) -> int:
        return len(self._roles)

    def find(self, reference: str) -> RoleDefinition | None:
        """The role named by a name, GUID or role-definition ID, or None if not known."""
        guid = guid_from_role_reference(reference)
        if guid is not None:
            return self._by_guid.get(guid)
        return self._by_name.get(reference.strip().lower())

    def closest_names(self, reference: str, n: int = 3) -> list[str]:
        names = {r.name.lower(): r.name for r in self._roles}
        hits = difflib.get_close_matches(reference.lower(), list(names), n=n, cutoff=0.5)
        return [names[h] for h in hits]

    def get(self, reference: str, field: str = "role") -> RoleDefinition:
        """Like :meth:`find`, but an unknown role raises naming the closest matches."""
        role = self.find(reference)
        if role is not None:
            return role
        close = self.closest_names(reference)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigError(
            field,
            reference,
            "is not a built-in role in the catalog",
            f"{hint}use a built-in role name (e.g. 'Key Vault Secrets User'); custom roles "
            "are looked up by name or GUID when deploying to Azure (ARM_SUBSCRIPTION_ID set)",
        )
