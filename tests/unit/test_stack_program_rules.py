"""The stack program itself (what ``pulumi up`` runs) refuses what the verifier refuses.

``load()`` validates every key Pulumi passes, not only the ones the schema asks for, so a
misspelt key, a region Azure does not have or a privileged grant without its opt-in fails
before any resource is registered, in ``pulumi up`` as in ``mikit-verify``.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.errors import ConfigError
from components.testing import AzureMocks, InMemoryArm, run_program
from tests.unit.conftest import PROGRAM, dev_config

RA = "azure-native:authorization:RoleAssignment"


def refused(config: dict[str, Any]) -> tuple[ConfigError, AzureMocks]:
    mocks = AzureMocks(InMemoryArm())
    with pytest.raises(ConfigError) as caught:
        run_program(PROGRAM, config, mocks=mocks, stack="dev")
    return caught.value, mocks


def test_a_misspelt_key_is_refused_by_the_program_before_anything_is_registered() -> None:
    """`mikit:vmSzie` used to be ignored and the default size deployed without a word."""
    error, mocks = refused(dev_config(**{"mikit:vmSzie": "Standard_B2s"}))
    assert (error.field, error.value) == ("mikit:vmSzie", "Standard_B2s")
    assert error.fix.startswith("did you mean mikit:vmSize or mikit:vms?")
    assert mocks.registrations == []


def test_a_location_azure_does_not_have_is_refused() -> None:
    error, mocks = refused(dev_config(**{"mikit:location": "mars"}))
    assert (error.field, error.problem) == ("mikit:location", "is not an Azure region")
    assert mocks.registrations == []


def test_owner_at_vault_scope_needs_allow_privileged_and_is_deployed_with_it() -> None:
    grant = {"principal": "vm:solo", "role": "Owner", "target": "vault"}
    config = dev_config()
    error, mocks = refused({**config, "mikit:grants": [*config["mikit:grants"], grant]})
    index = len(config["mikit:grants"])  # the appended grant
    assert error.field == f"mikit:grants[{index}].role" and "allowPrivileged: true" in error.fix
    assert mocks.registrations == []
    opted_in = {
        **config,
        "mikit:grants": [*config["mikit:grants"], grant | {"allowPrivileged": True}],
    }
    mocks = AzureMocks(InMemoryArm())
    run_program(PROGRAM, opted_in, mocks=mocks, stack="dev")
    owner = [r for r in mocks.of_type(RA) if r.inputs["roleDefinitionId"].endswith(
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635")]  # fmt: skip
    assert len(owner) == 1 and owner[0].inputs["scope"].endswith("/vaults/kv-mikit-dev-4821")
