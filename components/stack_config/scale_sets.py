"""``mikit:scaleSets``: Linux VM scale sets, one identity set shared by every instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from components import validation
from components.scale_set import instance_count
from components.stack_config.hosts import (
    HostConfig,
    UserAssignedKeys,
    check_identity_refs,
    require_some_identity,
)

if TYPE_CHECKING:
    from components.stack_config.schema import StackConfig


class ScaleSetConfig(HostConfig):
    PRINCIPAL_PREFIX: ClassVar[str] = "scaleset"
    NOUN: ClassVar[str] = "a scale set"
    PRINCIPAL_HINT: ClassVar[str] = "scaleset:<scale set key> (its system identity)"

    name: str
    instances: int = 2
    system_identity: bool = False
    user_assigned: UserAssignedKeys = None
    size: str | None = None

    def check(self, key: str, where: str, cfg: StackConfig) -> None:
        validation.vm_name(self.name, f"{where}.name")
        instance_count(self.instances, f"{where}.instances")
        if self.size is not None:
            validation.vm_size(self.size, f"{where}.size")
        check_identity_refs(self.user_assigned, where, cfg)
        require_some_identity(self, where)
