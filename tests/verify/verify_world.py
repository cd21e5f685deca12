"""Shared shapes for the verifier tests (imported by conftest and the test modules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verify.sandbox import Sandbox

SECRET_VALUES = {"db-password": "correct horse battery staple", "api-key": "k-123456"}


@dataclass
class World:
    sb: Sandbox
    vault_name: str
    vm_a: Any  # system + shared UAI
    vm_b: Any  # shared UAI only
    shared: Any  # the user-assigned identity

    @property
    def vault_url(self) -> str:
        return self.sb.vault_url(self.vault_name)


ProbeRunner = Callable[..., dict[str, Any]]
