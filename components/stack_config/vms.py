"""``mikit:vms``: Linux VMs, each with a system and/or user-assigned identities."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import field_validator

from components import validation
from components.stack_config.hosts import HostConfig, check_identity_refs, require_some_identity

if TYPE_CHECKING:
    from components.stack_config.schema import StackConfig


class VmConfig(HostConfig):
    PRINCIPAL_PREFIX: ClassVar[str] = "vm"
    NOUN: ClassVar[str] = "a VM"
    PRINCIPAL_HINT: ClassVar[str] = "vm:<vm key> (its system identity)"

    name: str
    system_identity: bool = False
    user_assigned: list[str] | None = None
    size: str | None = None

    @field_validator("user_assigned")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("is an empty list; a user-assigned identity is required here")
        return value

    def check(self, key: str, where: str, cfg: StackConfig) -> None:
        validation.vm_name(self.name, f"{where}.name")
        if self.size is not None:
            validation.vm_size(self.size, f"{where}.size")
        check_identity_refs(self.user_assigned, where, cfg)
        require_some_identity(self, where)
