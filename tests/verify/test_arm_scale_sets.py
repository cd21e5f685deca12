"""Scale-set actions of the targets (ArmOperations, shared by the sandbox and Azure), with
azure-mgmt-compute faked at its boundary: the fakes have the SDK's method names and return
its own model types, so what Azure would be sent is what is asserted."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.compute.models import (
    VirtualMachineScaleSet,
    VirtualMachineScaleSetUpdate,
    VirtualMachineScaleSetVM,
)
from verify_world import RG, sample_outputs

from verify.targets.azure import AzureTarget

SET_PID = "55555555-0000-0000-0000-000000000001"
SET_ID = f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web"


class Poller:
    def __init__(self, done: list[str], what: str) -> None:
        self._done, self._what = done, what

    def result(self) -> None:
        self._done.append(self._what)


class FakeScaleSets:
    """``virtual_machine_scale_sets``: get, begin_update, begin_delete."""

    def __init__(self) -> None:
        self.capacity: int | None = 2
        self.updates: list[tuple[str, str, VirtualMachineScaleSetUpdate, dict[str, Any]]] = []
        self.done: list[str] = []

    def get(self, rg: str, name: str) -> VirtualMachineScaleSet:
        if self.capacity is None or name != "vmss-web":
            raise ResourceNotFoundError(f"{name} not found")
        return VirtualMachineScaleSet(
            {
                "id": SET_ID,
                "name": name,
                "location": "westeurope",
                "sku": {"name": "Standard_B2ls_v2", "capacity": self.capacity},
                "identity": {"type": "SystemAssigned", "principalId": SET_PID},
            }
        )

    def begin_update(self, rg: str, name: str, parameters: Any, **kwargs: Any) -> Poller:
        self.updates.append((rg, name, parameters, kwargs))
        self.capacity = parameters.sku.capacity
        return Poller(self.done, "update")

    def begin_delete(self, rg: str, name: str, **kwargs: Any) -> Poller:
        self.capacity = None
        return Poller(self.done, f"delete {rg}/{name}")


class FakeScaleSetVms:
    def __init__(self, ids: list[str]) -> None:
        self.ids = ids

    def list(self, rg: str, name: str) -> list[VirtualMachineScaleSetVM]:
        return [
            VirtualMachineScaleSetVM(
                {"id": f"{SET_ID}/virtualMachines/{i}", "location": "westeurope", "instanceId": i}
            )
            for i in self.ids
        ]


class FakeVirtualMachines:
    def get(self, rg: str, name: str) -> Any:
        raise ResourceNotFoundError(name)


class FakeCompute:
    def __init__(self) -> None:
        self.virtual_machine_scale_sets = FakeScaleSets()
        self.virtual_machine_scale_set_vms = FakeScaleSetVms(["10", "2", "9"])
        self.virtual_machines = FakeVirtualMachines()


class FakeIdentities:
    def get(self, rg: str, name: str) -> Any:
        raise ResourceNotFoundError(name)


class FakeMsi:
    user_assigned_identities = FakeIdentities()


def _target() -> tuple[AzureTarget, FakeCompute]:
    raw = sample_outputs()
    raw["scale_sets"] = {
        "web": {"name": "vmss-web", "id": SET_ID, "system_principal_id": SET_PID, "instances": 2}
    }
    compute = FakeCompute()
    return AzureTarget(outputs=raw, compute=compute, msi=FakeMsi(), authorization=object()), compute


def test_scaling_patches_only_the_capacity_and_waits_for_the_operation() -> None:
    target, compute = _target()
    target.scale_scale_set("web", 3)
    ((rg, name, update, kwargs),) = compute.virtual_machine_scale_sets.updates
    assert (rg, name) == ("rg-demo", "vmss-web")
    # sku.capacity alone: an identity in the PATCH would replace the set's identity map
    assert update.as_dict() == {"sku": {"capacity": 3}}
    assert "polling_interval" in kwargs
    assert compute.virtual_machine_scale_sets.done == ["update"]


def test_instances_are_listed_in_numeric_order() -> None:
    target, _ = _target()
    assert target.scale_set_instances("web") == ["2", "9", "10"]


def test_delete_existence_and_the_sets_principal() -> None:
    target, compute = _target()
    assert target.scale_set_exists("web")
    assert target.live_principals() == {SET_PID: "scaleset:web (system)"}
    target.delete_scale_set("web")
    assert compute.virtual_machine_scale_sets.done == ["delete rg-demo/vmss-web"]
    assert not target.scale_set_exists("web")
    assert target.live_principals() == {}
