"""The scenario planner on topologies deployed in the mock runtime (no sandbox needed).

It replays the scenarios' own subject choices on a copy of the outputs: distinct VMs for
delete-vm and disable-system-identity, a granted shared identity for the sharing
scenarios, and for each scenario it cannot run the reason and what to add.
"""

from __future__ import annotations

from typing import Any

from components.testing import AzureMocks, InMemoryArm, load_stack_config, run_program
from verify.lifecycle import SCENARIO_NAMES
from verify.lifecycle.planner import PlannedScenario, plan
from verify.model import StackOutputs, load_outputs
from verify.stacks import PACKAGED_SANDBOX_STACK, PROGRAM

BASE: dict[str, Any] = {
    "mikit:location": "westeurope",
    "mikit:resourceGroup": "rg-plan",
    "mikit:sshPublicKey": "ssh-ed25519 "
    "AAAAC3NzaC1lZDI1NTE5AAAAIJLVFMIXrgzADPBSTYezYSlnCLrMmPku+3yCgAiifuvd x",
    "mikit:vault": {"name": "kv-plan-1"},
    "mikit:secrets": ["db"],
    "mikit:secret-db": "v",
}


def outputs_of(config: dict[str, Any]) -> StackOutputs:
    raw = run_program(PROGRAM, config, mocks=AzureMocks(InMemoryArm()), stack="plan")
    return load_outputs(dict(raw), "test")


def planned(config: dict[str, Any]) -> dict[str, PlannedScenario]:
    return {p.name: p for p in plan(outputs_of(config), SCENARIO_NAMES)}


def test_dev_topology_runs_every_scenario_on_distinct_subjects() -> None:
    result = planned(load_stack_config(PACKAGED_SANDBOX_STACK))
    assert all(p.runnable for p in result.values()), result
    assert result["delete-vm"].subjects == "VM batch (deleted, with its system identity)"
    assert result["disable-system-identity"].subjects == "VM solo (system identity turned off)"
    assert result["delete-one-sharing-vm"].subjects == (
        "identity shared: VM hybrid deleted, worker1, worker2 keep reading"
    )
    assert result["scale-in-and-out"].subjects == (
        "scale set web (scaled out by one, then in, then back)"
    )
    assert result["delete-scale-set"].subjects == (
        "scale set web (deleted, with its system identity; shared stays for app:func, app:jobs, "
        "app:web, hybrid, worker1, worker2, workload:api)"
    )


def test_one_system_only_vm_serves_delete_vm_and_disable_is_skipped_with_the_fix() -> None:
    """The issue's failure: delete-vm took the only system-only VM, then
    disable-system-identity found none and FAILED the run. Now it is planned as skipped."""
    result = planned(
        BASE
        | {
            "mikit:identities": {"app": {"name": "id-app"}},
            "mikit:vms": {
                "web1": {"name": "vm-web1", "userAssigned": ["app"]},
                "batch": {"name": "vm-batch", "systemIdentity": True},
            },
            "mikit:grants": [
                {"principal": "vm:batch", "role": "Key Vault Secrets User", "target": "vault"}
            ],
        }
    )
    assert result["delete-vm"].subjects == "VM batch (deleted, with its system identity)"
    skipped = result["disable-system-identity"]
    assert skipped.skip_reason == "no VM with a granted system-assigned identity is left"
    assert skipped.fix == (
        "add a VM with a system identity and a grant to it (delete-vm and "
        "disable-system-identity each need their own; batch is taken): mikit:vms.<key>: "
        "{name: <vm name>, systemIdentity: true} and in mikit:grants "
        "{principal: vm:<key>, role: Key Vault Secrets User, target: secret:db}"
    )
    assert result["delete-one-sharing-vm"].skip_reason == (
        "no user-assigned identity with a grant is shared by two standing VMs"
    )
    assert result["delete-shared-identity"].fix == (
        "grant identity:app something: add to mikit:grants "
        "{principal: identity:app, role: Key Vault Secrets User, target: secret:db}"
    )


def test_ungranted_identity_with_more_vms_is_not_picked_over_a_granted_one() -> None:
    """Picking by VM count alone chose 'ops' (3 VMs, no grant), whose assignment steps
    can only pass vacuously; the granted 'app' is the subject."""
    result = planned(
        BASE
        | {
            "mikit:identities": {"app": {"name": "id-app"}, "ops": {"name": "id-ops"}},
            "mikit:vms": {
                "a": {"name": "vm-a", "userAssigned": ["app", "ops"]},
                "b": {"name": "vm-b", "userAssigned": ["app", "ops"]},
                "c": {"name": "vm-c", "userAssigned": ["ops"]},
            },
            "mikit:grants": [
                {"principal": "identity:app", "role": "Key Vault Secrets User", "target": "vault"}
            ],
        }
    )
    assert result["delete-one-sharing-vm"].subjects == "identity app: VM a deleted, b keep reading"
    assert result["delete-shared-identity"].subjects == "identity app (used by b)"
    assert result["recreate-identity"].subjects == "identity app, attached again to b"


def test_scale_set_scenarios_pick_a_granted_set_or_say_what_to_add() -> None:
    """A scale set granted nothing is named in the fix; without one, the fix says to add one
    (the dev topology's scale-set subjects are asserted with its other subjects above)."""
    ungranted = planned(
        BASE
        | {
            "mikit:scaleSets": {
                "web": {"name": "vmss-web", "instances": 2, "systemIdentity": True}
            },
            "mikit:vms": {"batch": {"name": "vm-batch", "systemIdentity": True}},
            "mikit:grants": [
                {"principal": "vm:batch", "role": "Key Vault Secrets User", "target": "vault"}
            ],
        }
    )
    for name in ("scale-in-and-out", "delete-scale-set"):
        skipped = ungranted[name]
        assert skipped.skip_reason == "no scale set whose identities are granted something"
        assert skipped.fix == (
            "grant scaleset:web's identities something: add to mikit:grants "
            "{principal: scaleset:web, role: Key Vault Secrets User, target: secret:db}"
        )
    none = planned(BASE | {"mikit:vms": {"batch": {"name": "vm-batch", "systemIdentity": True}}})
    assert none["delete-scale-set"].fix is not None
    assert none["delete-scale-set"].fix.startswith("add a scale set with a granted system identity")
