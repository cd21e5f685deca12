"""The administrator principal: the one human (or group) that can create the first stack.

The deployer identity trusts only GitHub, and the state account has shared keys off, so
without this the administrator who ran the bootstrap holds Owner on the subscription and
still cannot ``pulumi login azblob://...`` (Owner has no Blob *data* actions) nor
``pulumi stack init --secrets-provider azurekeyvault://...`` (Owner has no Key Vault key
data actions on an RBAC vault). Nobody could create the stack file CI needs.

So the bootstrap grants a configured user or group exactly the two data roles the deployer
holds on the same two narrow scopes (the state container, the secrets-provider key), and
nothing else: the administrator can create stacks, set their secrets and read state, and
gains no control-plane right the bootstrap did not already need.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from components.errors import ConfigError

AdministratorType = Literal["User", "Group"]
ADMINISTRATOR_TYPES: tuple[str, ...] = ("User", "Group")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_NIL = "00000000-0000-0000-0000-000000000000"

#: How to find the object ID, shown in every error about it.
FIND_OBJECT_ID = (
    "your own: `az ad signed-in-user show --query id -o tsv`; a group's: "
    "`az ad group show --group <name> --query id -o tsv`"
)


@dataclass(frozen=True)
class Administrator:
    """An Entra ID user or group (object ID) that creates stacks and sets their secrets.

    ``principal_type`` is sent with the role assignment: ARM then checks it against the
    directory (400 ``UnmatchedPrincipalType`` if it does not match) instead of guessing.
    """

    principal_id: str
    principal_type: AdministratorType


def parse_administrator(raw: Any) -> Administrator:
    """``administrator: {principalId: <object id>, principalType: User|Group}``."""
    where = "administrator"
    if not isinstance(raw, Mapping):
        raise ConfigError(
            where,
            raw,
            "is required: without it nobody can create the first stack "
            "(the deployer trusts only GitHub, and the state account takes no shared key)",
            "set administrator: {principalId: <your object ID>, principalType: User}; "
            + FIND_OBJECT_ID,
        )
    principal_id = raw.get("principalId")
    if not isinstance(principal_id, str) or not _GUID.match(principal_id) or principal_id == _NIL:
        raise ConfigError(
            f"{where}.principalId",
            principal_id,
            "is not an Entra ID object ID (a GUID, not a name, e-mail or the nil GUID)",
            FIND_OBJECT_ID,
        )
    principal_type = raw.get("principalType")
    if principal_type not in ADMINISTRATOR_TYPES:
        raise ConfigError(
            f"{where}.principalType",
            principal_type,
            "is not User or Group",
            "write User for a person or Group for a security group (a group survives "
            "people leaving); service principals sign in through GitHub instead",
        )
    unknown = sorted(set(raw) - {"principalId", "principalType"})
    if unknown:
        raise ConfigError(
            where, unknown, "has unknown keys", "only principalId and principalType are read"
        )
    return Administrator(principal_id.lower(), principal_type)
