"""What an ARM model holds, in one object: its documents and the values kept beside them.

:class:`~components.arm.memory.InMemoryArm` reads and writes its data through an
:class:`ArmStore`. The mock runtime's model owns one; the sandbox's model
(``verify.sandbox.arm.model.SandboxArm``) uses the one its state holds, so the documents a
deploy writes, the ones the sandbox's ARM front serves, and the locks and federated
credentials the sandbox's behaviour reads are one record, snapshotted with the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ArmStore"]

JSON = dict[str, Any]


@dataclass
class ArmStore:
    """An ARM model's data, keyed by lower-cased ARM ID unless said otherwise."""

    resources: dict[str, JSON] = field(default_factory=dict)
    """ARM documents."""
    secret_values: dict[str, str] = field(default_factory=dict)
    """Secret values sent to the management plane, by secret ID (never in a document)."""
    deleted_vaults: dict[str, JSON] = field(default_factory=dict)
    """Soft-deleted vaults (``DeletedVault`` JSON) by lower-cased vault name: names are
    global, and a deleted vault holds its name until purged or its retention ends."""
    existing: set[str] = field(default_factory=set)
    """IDs that exist before the program runs (e.g. a resource group the stack deploys into
    with ``mikit:createResourceGroup: false``): valid scopes."""
    blob_values: dict[str, bytes] = field(default_factory=dict)
    """Seeded blob contents by blob ID."""
    app_settings: dict[str, dict[str, str]] = field(default_factory=dict)
    """App settings by site ID."""
    next_ip: int = 4
    """The host part of the next private IP address a NIC gets."""
