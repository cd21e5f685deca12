"""Which of an app's identities does what: resolving Key Vault references, and the one
its code uses (``AZURE_CLIENT_ID``). Each choice is explicit and checked against what the
app holds, before any resource exists."""

from __future__ import annotations

from typing import Any, Protocol

import pulumi

from components.errors import NOT_SET, ConfigError
from components.identity import ManagedIdentities

#: How a caller names the app's system identity (Container Apps' own spelling).
SYSTEM = "system"
#: The app setting azure-identity reads for a user-assigned identity's client ID.
CLIENT_ID_SETTING = "AZURE_CLIENT_ID"


class HasClientId(Protocol):
    """A user-assigned identity as the app's code needs it (a UserAssignedIdentity fits)."""

    @property
    def id(self) -> pulumi.Input[str]: ...

    @property
    def client_id(self) -> pulumi.Input[str]: ...


def shown(value: Any) -> Any:
    """A value for an error message (an Output has no useful repr before deployment)."""
    return value if isinstance(value, str) else "<an identity id Output>"


def holds(identities: ManagedIdentities, chosen: pulumi.Input[str]) -> bool:
    """Whether ``chosen`` (:data:`SYSTEM` or a user-assigned ID) is one the app holds.

    An Output matches the very Output the app was given (``identity.id``); a string
    matches case-insensitively, as ARM compares IDs."""
    if isinstance(chosen, str) and chosen == SYSTEM:
        return identities.system_assigned
    for held in identities.user_assigned_ids:
        if held is chosen:
            return True
        if isinstance(held, str) and isinstance(chosen, str) and held.lower() == chosen.lower():
            return True
    return False


def check_held(
    identities: ManagedIdentities, chosen: pulumi.Input[str], field: str, purpose: str
) -> None:
    if holds(identities, chosen):
        return
    if isinstance(chosen, str) and chosen == SYSTEM:
        raise ConfigError(
            field,
            chosen,
            f"names the system identity for {purpose}, but the app's system identity is off",
            "turn on system_assigned, or name one of the app's user-assigned identities",
        )
    raise ConfigError(
        field,
        shown(chosen),
        f"is not an identity the app holds, so it cannot be used for {purpose}",
        "add it to the app's user_assigned_ids, or name one the app holds",
    )


def code_client_id(
    identities: ManagedIdentities, default: HasClientId | None, field: str
) -> pulumi.Input[str] | None:
    """The client ID the app's code gets as ``AZURE_CLIENT_ID`` (None: the system identity).

    With a system identity, azure-identity uses it unless told otherwise. Without one it
    needs a client ID: ``default`` must then be given (for one identity as for several;
    the stack config fills it in for an app with exactly one)."""
    if default is not None:
        check_held(identities, default.id, field, "the app's code (AZURE_CLIENT_ID)")
        return default.client_id
    if identities.system_assigned or not identities.user_assigned_ids:
        return None
    several = len(identities.user_assigned_ids) > 1
    raise ConfigError(
        field,
        NOT_SET,
        (
            "is not set, but the app holds several user-assigned identities and no system "
            "identity, so its code cannot know which to use"
            if several
            else "is not set, but the app's only identity is user-assigned, whose client ID "
            "its code needs (AZURE_CLIENT_ID)"
        ),
        "pass default_identity=<the UserAssignedIdentity its code uses>",
    )
