"""Shared names for the sandbox tests (a plain module: conftest is not importable by name)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from verify.sandbox import UserAssignedIdentity, Vault, VirtualMachine

VAULT_SCOPE = "https://vault.azure.net/.default"
ARM_SCOPE = "https://management.azure.com/.default"

OnVm = Callable[[VirtualMachine], None]


@dataclass
class World:
    """A topology covering every access case the issue lists.

    - ``vm_sys``: system identity only; Key Vault Secrets User on secret ``db`` only.
    - ``vm_multi``: user-assigned ``id_a`` and ``id_b``, no system identity.
    - ``vm_both``: system identity (no grant) and ``id_a``.
    - ``id_a``: Key Vault Secrets User on the vault (every secret).
    - ``id_b``: Contributor on the vault (no data actions).
    - ``id_lone``: not attached to any VM.
    """

    rg: str
    vault: Vault
    values: dict[str, str]
    id_a: UserAssignedIdentity
    id_b: UserAssignedIdentity
    id_lone: UserAssignedIdentity
    vm_sys: VirtualMachine
    vm_multi: VirtualMachine
    vm_both: VirtualMachine


def first_json_listing(lines: Iterable[str]) -> dict[str, Any]:
    """The JSON document ``python -m verify.sandbox --json`` prints first (it ends with a
    line holding only ``}``), read without waiting for the command to end: it keeps serving."""
    taken = []
    for line in lines:
        taken.append(line)
        if line.rstrip() == "}":
            break
    listing: dict[str, Any] = json.loads("".join(taken))
    return listing
