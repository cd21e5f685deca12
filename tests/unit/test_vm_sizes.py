"""VM sizes: a current default, and every size checked against the shipped list.

``Standard_B1s`` (B-series v1) is previous-generation and retires on 2028-11-15; the
default is now a current x64 burstable size that fits the probe, and a size outside
``components/data/vm_sizes.json`` is a ConfigError naming the closest listed sizes.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

import pytest
from conftest import PROGRAM, SSH_KEY, STACKS, dev_config

from components import validation
from components.errors import ConfigError
from components.testing import AzureMocks, InMemoryArm, load_stack_config, run_program
from components.vm import LinuxVirtualMachine, LinuxVirtualMachineArgs
from components.vm_sizes import DEFAULT_VM_SIZE, VmSizeCatalog

SUB = "11111111-2222-3333-4444-555555555555"
SUBNET = (
    f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
    "/subnets/s"
)
VM = "azure-native:compute:VirtualMachine"


def shipped() -> dict[str, Any]:
    text = resources.files("components.data").joinpath("vm_sizes.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def deploy_vm(**changes: Any) -> AzureMocks:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))
    args: dict[str, Any] = {
        "name": "vm-one",
        "resource_group_name": "rg",
        "subnet_id": SUBNET,
        "admin_username": "opsadmin",
        "ssh_public_key": SSH_KEY,
        **changes,
    }
    run_program(lambda: LinuxVirtualMachine("vm", LinuxVirtualMachineArgs(**args)), {}, mocks=mocks)
    return mocks


def test_the_default_is_a_current_size_and_is_what_arm_gets() -> None:
    data = shipped()
    assert DEFAULT_VM_SIZE == data["default"] == "Standard_B2ls_v2"
    assert DEFAULT_VM_SIZE in data["current"]["Bsv2"]
    assert "Standard_B1s" in data["previous"]["Bv1"]
    assert data["sources"]
    (vm,) = deploy_vm().of_type(VM)
    assert vm.inputs["hardwareProfile"]["vmSize"] == "Standard_B2ls_v2"


def test_a_size_outside_the_list_names_the_closest_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        validation.vm_size("Standard_B2ls_v3", "size")
    assert caught.value.field == "size"
    assert "Standard_B2ls_v2" in caught.value.fix
    with pytest.raises(ConfigError):
        deploy_vm(size="Standard_D2s_v9")


def test_sizes_are_matched_case_insensitively_and_sent_as_azure_spells_them() -> None:
    (vm,) = deploy_vm(size="standard_d2s_v5").of_type(VM)
    assert vm.inputs["hardwareProfile"]["vmSize"] == "Standard_D2s_v5"


def test_a_previous_generation_size_deploys_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        (vm,) = deploy_vm(size="Standard_B1s").of_type(VM)
    assert vm.inputs["hardwareProfile"]["vmSize"] == "Standard_B1s"
    assert any("previous-generation" in r.getMessage() for r in caplog.records)
    assert validation.is_previous_generation_vm_size("Standard_B1s")
    assert not validation.is_previous_generation_vm_size(DEFAULT_VM_SIZE)


def test_the_stack_config_checks_the_size_up_front() -> None:
    mocks = AzureMocks(InMemoryArm())
    with pytest.raises(ConfigError) as caught:
        run_program(PROGRAM, dev_config(**{"mikit:vmSize": "Standard_B2ss_v2"}), mocks=mocks)
    assert (caught.value.field, caught.value.value) == ("mikit:vmSize", "Standard_B2ss_v2")
    assert mocks.custom_registrations() == []


@pytest.mark.parametrize("stack", ["dev", "prod", "sandbox"])
def test_every_stack_uses_a_current_size(stack: str) -> None:
    config = load_stack_config(STACKS / f"Pulumi.{stack}.yaml")
    size = config["mikit:vmSize"]
    found = VmSizeCatalog.shipped().lookup(size)
    assert found == (size, "current")
