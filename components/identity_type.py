"""The ARM identity ``type``: built from what a resource holds, and parsed back.

One function builds it (:func:`identity_type`, from "has a system identity" and "lists
user-assigned identities"; never chosen on its own) and one parses it
(:func:`parse_identity_type`), so the components (what they send), the ARM model and the
sandbox (what ARM answers) and the verifier (what it reads back from ARM) cannot disagree on
e.g. the ``"SystemAssigned, UserAssigned"`` spelling.

ARM's values are ``None``, ``SystemAssigned``, ``UserAssigned`` and
``SystemAssigned, UserAssigned`` (``ResourceIdentityType`` in the Compute, Web and MSI specs);
Microsoft.App spells the last one without the space (``SystemAssigned,UserAssigned``). Enum
values are matched case-insensitively, as ARM does; anything else (another word, the two
kinds reversed or repeated, a substring such as ``NotSystemAssigned``) is not an identity
type and is refused, where a ``"systemassigned" in type.lower()`` test accepted it.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

NONE = "None"
SYSTEM = "SystemAssigned"
USER = "UserAssigned"
BOTH = "SystemAssigned, UserAssigned"
#: Microsoft.App (Container Apps, managed environments) spells BOTH without the space.
BOTH_COMPACT = "SystemAssigned,UserAssigned"


class IdentityKinds(NamedTuple):
    """What an identity ``type`` says a resource holds."""

    system: bool
    user: bool


_KINDS = {
    NONE.lower(): IdentityKinds(system=False, user=False),
    SYSTEM.lower(): IdentityKinds(system=True, user=False),
    USER.lower(): IdentityKinds(system=False, user=True),
    BOTH.lower(): IdentityKinds(system=True, user=True),
    BOTH_COMPACT.lower(): IdentityKinds(system=True, user=True),
}


def identity_type(system_assigned: bool, any_user_assigned: bool, *, compact: bool = False) -> str:
    """ARM's ``type`` for a resource with (or without) a system identity and user-assigned
    identities; ``compact``: Microsoft.App's spelling of both."""
    if system_assigned and any_user_assigned:
        return BOTH_COMPACT if compact else BOTH
    if system_assigned:
        return SYSTEM
    if any_user_assigned:
        return USER
    return NONE


def parse_identity_type(value: object) -> IdentityKinds:
    """The kinds an ARM identity ``type`` names; :class:`ValueError` for anything ARM does
    not use (see the module docstring). ``None`` (no identity block) is ``None``; an SDK
    enum member (azure-mgmt's ``ResourceIdentityType``) is read by its value."""
    if isinstance(value, Enum):
        value = value.value
    if value is None:
        return _KINDS[NONE.lower()]
    kinds = _KINDS.get(str(value).lower()) if isinstance(value, str) else None
    if kinds is None:
        raise ValueError(
            f"{value!r} is not an identity type; ARM's are {NONE}, {SYSTEM}, {USER} and '{BOTH}'"
        )
    return kinds
