"""The stack config's schema (pydantic): what each ``mikit:`` key holds.

Host maps (``vms`` ...) are registered here as fields typed ``dict[str, <HostConfig>]``;
see :mod:`components.stack_config.hosts`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from components.stack_config.apps import AppConfig
from components.stack_config.base import ConfigModel
from components.stack_config.clusters import ClusterConfig
from components.stack_config.hosts import HostKind, host_kinds_of
from components.stack_config.scale_sets import ScaleSetConfig
from components.stack_config.vms import VmConfig
from components.vm_sizes import DEFAULT_VM_SIZE


class NetworkConfig(ConfigModel):
    address_space: str = "10.42.0.0/16"
    subnet_prefix: str = "10.42.1.0/24"
    nat_gateway: bool = True


class VaultConfig(ConfigModel):
    name: str
    purge_protection: bool = True
    public_network_access: bool = True
    soft_delete_retention_days: Annotated[int, Field(ge=7, le=90)] = 90
    #: ``recover`` brings back a soft-deleted vault of this name (with its secrets) instead
    #: of failing with 409 ConflictError; set it for the one `pulumi up` after a destroy
    #: (`python -m verify preflight` says when), then remove it.
    create_mode: Literal["default", "recover"] = "default"


class FederatedCredentialConfig(ConfigModel):
    name: str
    issuer: str
    subject: str
    audiences: list[str] = Field(default_factory=lambda: ["api://AzureADTokenExchange"])


class IdentityConfig(ConfigModel):
    name: str
    lock: bool = False
    federated_credentials: list[FederatedCredentialConfig] = Field(default_factory=list)


class GrantConfig(ConfigModel):
    principal: str
    role: str
    target: str
    description: str | None = None
    #: An Azure ABAC condition (Storage Blob/Queue data roles only), e.g. limiting an
    #: account-wide grant to one container or to blobs with an index tag.
    condition: str | None = None
    condition_version: str | None = None
    #: A privileged role (Owner, User Access Administrator, Key Vault Administrator, ...)
    #: at any scope, the vault and one secret included, needs this explicit opt-in.
    allow_privileged: bool = False


class BlobConfig(ConfigModel):
    container: str
    name: str
    content_type: str = "text/plain"
    #: Blob index tags (what conditions read as @Resource[.../blobs/tags:<key>...]).
    tags: dict[str, str] = Field(default_factory=dict)


class StorageAccountConfig(ConfigModel):
    name: str
    containers: list[str] = Field(default_factory=list)
    blobs: list[BlobConfig] = Field(default_factory=list)
    public_network_access: bool = True


class StackConfig(ConfigModel):
    """Everything ``__main__.py`` needs; every key is described in docs/stack-config.md."""

    location: str
    resource_group: str
    #: False: the group already exists (made by an administrator or the CI bootstrap,
    #: because a deployer scoped to the group cannot create it); the program then
    #: registers no ResourceGroup and deploys into the group by name.
    create_resource_group: bool = True
    #: Only VMs and scale sets log in with it; a stack of apps and clusters needs none.
    ssh_public_key: str | None = None
    vault: VaultConfig
    admin_username: str = "azureuser"
    vm_size: str = DEFAULT_VM_SIZE
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    secrets: list[str] = Field(default_factory=list)
    identities: dict[str, IdentityConfig] = Field(default_factory=dict)
    # Host maps: one field per host kind (components.stack_config.hosts).
    vms: dict[str, VmConfig] = Field(default_factory=dict)
    apps: dict[str, AppConfig] = Field(default_factory=dict)
    scale_sets: dict[str, ScaleSetConfig] = Field(default_factory=dict)
    clusters: dict[str, ClusterConfig] = Field(default_factory=dict)
    grants: list[GrantConfig] = Field(default_factory=list)
    storage_accounts: dict[str, StorageAccountConfig] = Field(default_factory=dict)


# Top-level keys in the order the schema documents them.
KEYS: tuple[str, ...] = tuple((f.alias or name) for name, f in StackConfig.model_fields.items())
#: The registered host kinds, in field order.
HOST_KINDS: tuple[HostKind, ...] = host_kinds_of(StackConfig)
