"""``mikit:vms``: Linux VMs, each with a system and/or user-assigned identities."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from components import validation
from components.stack_config.hosts import (
    HostConfig,
    UserAssignedKeys,
    check_identity_refs,
    require_some_identity,
)

if TYPE_CHECKING:
    from components.stack_config.schema import StackConfig


class VmConfig(HostConfig):
    PRINCIPAL_PREFIX: ClassVar[str] = "vm"
    NOUN: ClassVar[str] = "a VM"
    PRINCIPAL_HINT: ClassVar[str] = "vm:<vm key> (its system identity)"

    name: str
    system_identity: bool = False
    user_assigned: UserAssignedKeys = None
    size: str | None = None

    def check(self, key: str, where: str, cfg: StackConfig) -> None:
        validation.vm_name(self.name, f"{where}.name")
        if self.size is not None:
            validation.vm_size(self.size, f"{where}.size")
        check_identity_refs(self.user_assigned, where, cfg)
        require_some_identity(self, where)
