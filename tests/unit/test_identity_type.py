"""The ARM identity ``type``: one function builds it, one parses it, and the parse refuses
what ARM never returns."""

from __future__ import annotations

import pytest
from azure.mgmt.compute.models import ResourceIdentityType

from components.identity_type import (
    BOTH,
    BOTH_COMPACT,
    NONE,
    SYSTEM,
    USER,
    IdentityKinds,
    identity_type,
    parse_identity_type,
)


@pytest.mark.parametrize("system", [False, True])
@pytest.mark.parametrize("user", [False, True])
def test_build_then_parse_round_trips(system: bool, user: bool) -> None:
    for compact in (False, True):
        built = identity_type(system, user, compact=compact)
        assert parse_identity_type(built) == IdentityKinds(system=system, user=user)
    assert identity_type(system, user) in (NONE, SYSTEM, USER, BOTH)


def test_microsoft_app_spelling_and_arm_s_case_insensitivity() -> None:
    assert identity_type(True, True, compact=True) == BOTH_COMPACT
    assert parse_identity_type("systemassigned, userassigned") == (True, True)
    assert parse_identity_type(None) == (False, False)


def test_sdk_enum_members_parse_by_value() -> None:
    """azure-mgmt-compute hands ``identity.type`` over as an enum member whose ``str()`` is
    ``ResourceIdentityType.SYSTEM_ASSIGNED``: the old substring test never saw "systemassigned"."""
    assert "systemassigned" not in str(ResourceIdentityType.SYSTEM_ASSIGNED).lower()
    assert parse_identity_type(ResourceIdentityType.SYSTEM_ASSIGNED) == (True, False)
    assert parse_identity_type(ResourceIdentityType.SYSTEM_ASSIGNED_USER_ASSIGNED) == (True, True)
    assert parse_identity_type(ResourceIdentityType.NONE) == (False, False)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "NotSystemAssigned",
        "SystemAssignedUserAssigned",
        "UserAssigned, SystemAssigned",
        "SystemAssigned, SystemAssigned",
        "System Assigned",
        "SystemAssigned,  UserAssigned",
        "None, SystemAssigned",
        "Managed",
        42,
    ],
)
def test_parse_refuses_what_arm_does_not_return(value: object) -> None:
    with pytest.raises(ValueError, match="is not an identity type"):
        parse_identity_type(value)
