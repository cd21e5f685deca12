"""The lifecycle plans around a management lock instead of deleting a locked identity.

``stacks/Pulumi.prod.yaml`` locks its shared identity (``lock: true``); on Azure the
delete-shared-identity scenario gets 409 ScopeLocked, and so does the sandbox's ARM now.
The planner picks an unlocked identity when there is one and otherwise reports both
identity-deleting scenarios SKIPPED, naming the lock and the permissions lifting it needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from components.stack_config import secret_config_keys
from components.testing import AzureMocks, InMemoryArm, load_stack_config, run_program
from verify.lifecycle import SCENARIO_NAMES
from verify.lifecycle.planner import PlannedScenario, plan
from verify.model import StackOutputs, load_outputs
from verify.stacks import PACKAGED_SANDBOX_STACK, PROGRAM

PROD = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.prod.yaml"


def outputs_of(config: dict[str, Any]) -> StackOutputs:
    raw = run_program(PROGRAM, config, mocks=AzureMocks(InMemoryArm()), stack="plan")
    return load_outputs(dict(raw), "test")


def planned(config: dict[str, Any]) -> dict[str, PlannedScenario]:
    return {p.name: p for p in plan(outputs_of(config), SCENARIO_NAMES)}


def _prod_outputs() -> tuple[dict[str, Any], StackOutputs]:
    """The prod stack, deployed with stand-in values for its secrets and blob contents
    (encrypted in the file, or set with ``pulumi config set --secret``)."""
    config = dict(load_stack_config(PROD))
    config.update({key: "v" for key in secret_config_keys(config)})
    return config, outputs_of(config)


def test_the_prod_stack_s_locked_identity_is_not_planned_for_deletion() -> None:
    config, outputs = _prod_outputs()
    assert config["mikit:identities"]["shared"]["lock"] is True
    assert outputs.identities["shared"].locked
    result = {p.name: p for p in plan(outputs, SCENARIO_NAMES)}
    for name in ("delete-shared-identity", "recreate-identity"):
        skipped = result[name]
        assert not skipped.runnable
        assert skipped.skip_reason is not None
        assert "CanNotDelete lock (mikit:identities.shared.lock)" in skipped.skip_reason
        assert "409 ScopeLocked" in skipped.skip_reason
        assert "Microsoft.Authorization/locks/delete" in skipped.skip_reason
        assert skipped.fix is not None and "lock: false" in skipped.fix
    assert result["delete-vm"].runnable and result["delete-one-sharing-vm"].runnable


def test_an_unlocked_identity_in_use_is_chosen_over_a_locked_one() -> None:
    config = load_stack_config(PACKAGED_SANDBOX_STACK)
    identities = dict(config["mikit:identities"])
    assert not identities["shared"].get("lock")
    locked = {**identities["shared"], "lock": True}
    result = planned({**config, "mikit:identities": {**identities, "shared": locked}})
    deleting = result["delete-shared-identity"]
    if deleting.runnable:  # another granted identity in use: that one is deleted instead
        assert deleting.subjects is not None and "identity shared " not in deleting.subjects
    else:
        assert deleting.skip_reason is not None and "CanNotDelete lock" in deleting.skip_reason
