"""The sandbox's records: what its state holds, as frozen values, and the error it raises.

Kept apart from :mod:`verify.sandbox.state.store` so every service module and every state mixin
can import the same types without importing each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from components.arm import shapes as arm_shapes
from components.arm.errors import ArmError
from components.identity_type import identity_type

PrincipalKind = Literal["system", "user", "application"]
PrincipalType = Literal["ServicePrincipal", "User", "Group", "ForeignGroup", "Device"]
EventKind = Literal[
    "vm_created", "vm_updated", "vm_deleted", "identity_created", "identity_deleted",
    "vault_created", "vault_deleted", "principal_deleted",
    "storage_account_created", "storage_account_deleted",
    "instance_created", "instance_deleted", "cluster_created", "cluster_deleted",
    "app_created", "app_deleted",
]  # fmt: skip


class SandboxError(Exception):
    """A request the state refuses, carrying the ARM/Key Vault error code and HTTP status.

    The service modules turn it into the service's own error body, so the same rule
    (say, a duplicate role assignment) answers identically however it is reached.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def new_guid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class ServicePrincipal:
    """An Entra service principal: what a token's ``oid`` and ``appid`` name."""

    object_id: str
    client_id: str
    display_name: str
    kind: PrincipalKind
    resource_id: str | None  # the ARM ID a managed identity belongs to (``xms_mirid``)


@dataclass(frozen=True)
class ResourceGroup:
    id: str
    name: str
    location: str


@dataclass(frozen=True)
class UserAssignedIdentity:
    id: str
    name: str
    resource_group: str
    location: str
    principal_id: str
    client_id: str
    tenant_id: str
    tags: dict[str, str] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The identity as ARM returns it: the sandbox's one record of it."""
        return arm_shapes.user_assigned_identity(
            arm_id=self.id,
            location=self.location,
            tenant_id=self.tenant_id,
            principal_id=self.principal_id,
            client_id=self.client_id,
            tags=self.tags,
        )


@dataclass(frozen=True)
class VirtualMachine:
    """A VM reduced to what identities need: its system principal and identity IDs."""

    id: str
    name: str
    resource_group: str
    location: str
    vm_id: str  # the VM's unique ID (``properties.vmId``)
    system_principal_id: str | None
    user_assigned: tuple[str, ...]  # ARM IDs, kept even after the identity is deleted
    tags: dict[str, str] = field(default_factory=dict)
    vm_size: str = "Standard_B2s"
    admin_username: str = "azureuser"
    created_on: float = 0.0

    @property
    def identity_type(self) -> str:
        """ARM's computed ``identity.type``."""
        return identity_type(bool(self.system_principal_id), bool(self.user_assigned))


@dataclass(frozen=True)
class SecretVersion:
    name: str
    version: str
    value: str = field(repr=False)
    created: int
    updated: int
    enabled: bool = True
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    expires: int | None = None  # ``attributes.exp`` (informational: get still works after it)
    not_before: int | None = None  # ``attributes.nbf`` (likewise)


@dataclass(frozen=True)
class DeletedSecret:
    latest: SecretVersion
    deleted_date: int
    scheduled_purge_date: int


@dataclass
class Vault:
    """A Key Vault in RBAC mode; secrets keep every version, newest last."""

    id: str
    name: str
    resource_group: str
    location: str
    soft_delete_retention_days: int = 90
    purge_protection: bool = False
    secrets: dict[str, list[SecretVersion]] = field(default_factory=dict)
    deleted: dict[str, tuple[list[SecretVersion], DeletedSecret]] = field(default_factory=dict)

    @property
    def recovery_level(self) -> str:
        """Key Vault's ``DeletionRecoveryLevel`` for this vault's soft-delete settings.

        90 days: ``Recoverable`` (purge protection) or ``Recoverable+Purgeable``; 7-89 days:
        ``CustomizedRecoverable`` or ``CustomizedRecoverable+Purgeable`` (the enum's own
        descriptions in azure-keyvault-secrets' generated models).
        """
        prefix = "Recoverable" if self.soft_delete_retention_days >= 90 else "CustomizedRecoverable"
        return prefix if self.purge_protection else f"{prefix}+Purgeable"

    def secret_scope(self, name: str) -> str:
        """The ARM scope of one secret, which a role assignment can target."""
        return f"{self.id}/secrets/{name}"


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    name: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str
    created_on: float
    description: str | None = None
    condition: str | None = None
    condition_version: str | None = None


def key(value: str) -> str:
    return value.rstrip("/").lower()


@dataclass(frozen=True)
class DeletedVault:
    """A soft-deleted vault: it holds its (global) name, with its secrets, until it is
    recovered, purged, or its retention days have passed."""

    vault: Vault
    deletion_date: float
    scheduled_purge_date: float


@contextmanager
def arm_rules_as_sandbox_errors() -> Iterator[None]:
    """Run a shared ARM rule (``components.arm.rules``) and answer its refusal the way
    every sandbox service does (``SandboxError``), with the same status, code and text."""
    try:
        yield
    except ArmError as exc:
        raise SandboxError(exc.status, exc.code, exc.message) from exc
