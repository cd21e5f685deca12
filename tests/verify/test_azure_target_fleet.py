"""The Azure target runs the probe on a scale set's instance through Run Command, and says
plainly that a cluster workload (a pod) is not probed by Run Command."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from azure.mgmt.compute.models import InstanceViewStatus, RunCommandResult
from test_azure_target import (
    FakeAuthorization,
    FakeIdentities,
    FakeMsi,
    FakeRoleAssignments,
    FakeVirtualMachines,
    Poller,
)
from verify_world import RG, sample_outputs

from verify.targets.azure import AzureTarget
from verify.targets.base import ProbeRequest


class FakeScaleSetVms:
    """compute.virtual_machine_scale_set_vms: list and begin_run_command."""

    def __init__(self, instances: list[str]) -> None:
        self.instances = instances
        self.calls: list[tuple[str, ...]] = []

    def list(self, rg: str, name: str) -> list[Any]:
        return [SimpleNamespace(instance_id=i) for i in self.instances]

    def begin_run_command(
        self, rg: str, name: str, instance_id: str, parameters: Any, **kwargs: Any
    ) -> Poller:
        self.calls.append(("run_command", rg, name, instance_id, parameters.command_id))
        status = InstanceViewStatus(code="ProvisioningState/succeeded", message="[stdout]\n\n")
        return Poller(RunCommandResult(value=[status]))


def _target(instances: list[str]) -> tuple[AzureTarget, FakeScaleSetVms]:
    raw = sample_outputs()
    raw["scale_sets"] = {
        "web": {
            "name": "vmss-web",
            "id": f"{RG}/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web",
            "system_principal_id": "55555555-5555-5555-5555-555555555555",
            "user_assigned": ["shared"],
            "instances": len(instances),
        }
    }
    scale_set_vms = FakeScaleSetVms(instances)
    compute = SimpleNamespace(
        virtual_machines=FakeVirtualMachines({}), virtual_machine_scale_set_vms=scale_set_vms
    )
    target = AzureTarget(
        outputs=raw,
        compute=compute,
        msi=FakeMsi(FakeIdentities({})),
        authorization=FakeAuthorization(FakeRoleAssignments([])),
    )
    return target, scale_set_vms


def test_a_scale_set_is_probed_on_its_first_instance_through_run_command() -> None:
    target, scale_set_vms = _target(["3", "1", "12"])
    request = ProbeRequest(
        host="scaleset:web", selectors=("system",), secrets=(), host_kind="scaleset"
    )
    with pytest.raises(RuntimeError, match="gave no probe result"):  # the fake prints nothing
        target._probe_one(request)
    assert scale_set_vms.calls == [("run_command", "rg-demo", "vmss-web", "1", "RunShellScript")]


def test_a_scale_set_without_instances_and_a_workload_are_not_probed_and_say_why() -> None:
    target, _ = _target([])
    with pytest.raises(RuntimeError, match="has no instance"):
        target._probe_one(
            ProbeRequest(host="scaleset:web", selectors=(), secrets=(), host_kind="scaleset")
        )
    with pytest.raises(RuntimeError, match="Kubernetes Job"):
        target._probe_one(
            ProbeRequest(host="workload:api", selectors=(), secrets=(), host_kind="workload")
        )
