"""The ARM identity ``type``, computed from what a resource holds (never chosen on its own).

Shared by the components (what they send) and the ARM shapes (what ARM answers), so the
two cannot disagree on e.g. ``"SystemAssigned, UserAssigned"`` spelling.
"""

from __future__ import annotations

NONE = "None"
SYSTEM = "SystemAssigned"
USER = "UserAssigned"
BOTH = "SystemAssigned, UserAssigned"


def identity_type(system_assigned: bool, any_user_assigned: bool) -> str:
    if system_assigned and any_user_assigned:
        return BOTH
    if system_assigned:
        return SYSTEM
    if any_user_assigned:
        return USER
    return NONE
