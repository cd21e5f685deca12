"""The verifier's identity changes keep a VM's system identity, read through the real
azure-mgmt-compute client (which hands ``identity.type`` over as an enum member)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from azure.mgmt.compute import ComputeManagementClient
from sandbox_world import World

from verify.sandbox import Sandbox
from verify.targets.arm import ArmOperations


class _Ops(ArmOperations):
    def __init__(self, sb: Sandbox, world: World) -> None:
        compute = ComputeManagementClient(
            sb.credential(), sb.subscription_id, **sb.arm_client_kwargs()
        )
        super().__init__(compute, None, None, polling_interval=0)
        self._outputs: Any = SimpleNamespace(
            resource_group=world.rg,
            vms={"both": SimpleNamespace(name=world.vm_both.name)},
            identities={"a": SimpleNamespace(id=world.id_a.id, name=world.id_a.name)},
        )

    def outputs(self) -> Any:
        return self._outputs


def test_detach_and_attach_keep_the_system_identity(sb: Sandbox, world: World) -> None:
    vm = sb.state.vm(world.vm_both.id)
    assert vm is not None and vm.system_principal_id and vm.user_assigned
    principal = vm.system_principal_id
    ops = _Ops(sb, world)
    ops.detach_identity("both", "a")
    after = sb.state.vm(world.vm_both.id)
    assert after is not None and after.system_principal_id == principal
    ops.attach_identity("both", "a")
    again = sb.state.vm(world.vm_both.id)
    assert again is not None and again.system_principal_id == principal
    assert world.id_a.id.lower() in {u.lower() for u in again.user_assigned}
