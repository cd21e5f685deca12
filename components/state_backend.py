"""A Pulumi state backend in Azure Blob Storage that needs no storage key.

Pulumi's ``azblob://`` backend keeps every stack's state (and a lock per update) in one
blob container. The account is built so that only Entra ID identities with a data role can
reach it: shared-key (account key and SAS) access is off, so there is no key to leak or
rotate; TLS 1.2 is the minimum; anonymous blob access is off; and blob versioning plus
soft delete let an operator recover a state file that a bad run overwrote or deleted.
The container's ARM ID is exposed as ``container_scope`` so the deployer can be granted
Storage Blob Data Contributor on exactly this container, not on the account.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
from pulumi_azure_native import storage

from components.errors import ConfigError

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
MAX_RETENTION_DAYS = 365


def storage_account_name(value: object, field: str = "state.accountName") -> str:
    """3-24 lower-case letters and digits (the name is global and part of a DNS name)."""
    if not isinstance(value, str) or not _ACCOUNT.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid storage account name",
            "use 3-24 lower-case letters and digits only (globally unique: add a short suffix)",
        )
    return value


def container_name(value: object, field: str = "state.containerName") -> str:
    """3-63 lower-case letters, digits and single hyphens, starting and ending alphanumeric."""
    if not isinstance(value, str) or not _CONTAINER.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid blob container name",
            "use 3-63 lower-case letters, digits and hyphens, start and end with a letter "
            "or digit, and never two hyphens in a row",
        )
    return value


@dataclass(frozen=True)
class StateBackendArgs:
    """Where the state lives and how long deleted or overwritten state can be recovered."""

    resource_group_name: pulumi.Input[str]
    account_name: str
    container_name: str = "pulumi-state"
    location: pulumi.Input[str] | None = None
    retention_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Validation first: a bad name must fail before anything is registered.
        storage_account_name(self.account_name)
        container_name(self.container_name)
        if (
            isinstance(self.retention_days, bool)
            or not isinstance(self.retention_days, int)
            or not 1 <= self.retention_days <= MAX_RETENTION_DAYS
        ):
            raise ConfigError(
                "state.retentionDays",
                self.retention_days,
                "is out of range",
                f"give a whole number of days from 1 to {MAX_RETENTION_DAYS}",
            )


class StateBackend(pulumi.ComponentResource):
    """Storage account + versioned, soft-deleted blob container for ``pulumi login azblob://``.

    Outputs: ``account_id``, ``account_name``, ``container_name``, ``container_scope`` (the
    container's ARM ID, the scope for a Storage Blob Data Contributor grant) and
    ``backend_url`` (``azblob://<container>``; the account is named by the
    ``AZURE_STORAGE_ACCOUNT`` environment variable, as Pulumi's Azure Blob backend expects).
    """

    account_id: pulumi.Output[str]
    account_name: pulumi.Output[str]
    container_name: pulumi.Output[str]
    container_scope: pulumi.Output[str]
    backend_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: StateBackendArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mikit:state_backend:StateBackend", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        account = storage.StorageAccount(
            f"{name}-account",
            account_name=args.account_name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind=storage.Kind.STORAGE_V2,
            sku=storage.SkuArgs(name=storage.SkuName.STANDARD_ZRS),
            # No account key, no SAS: only Entra ID identities holding a data role get in.
            allow_shared_key_access=False,
            default_to_o_auth_authentication=True,
            minimum_tls_version=storage.MinimumTlsVersion.TLS1_2,
            enable_https_traffic_only=True,
            allow_blob_public_access=False,
            allow_cross_tenant_replication=False,
            tags=tags,
            # Deleting this account deletes every stack's state: make it a deliberate act.
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        blob_service = storage.BlobServiceProperties(
            f"{name}-blob-service",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            blob_services_name="default",
            is_versioning_enabled=True,
            delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.retention_days
            ),
            container_delete_retention_policy=storage.DeleteRetentionPolicyArgs(
                enabled=True, days=args.retention_days
            ),
            opts=child,
        )
        container = storage.BlobContainer(
            f"{name}-container",
            account_name=account.name,
            resource_group_name=args.resource_group_name,
            container_name=args.container_name,
            public_access=storage.PublicAccess.NONE,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[blob_service]),
        )

        self.account_id = account.id
        self.account_name = account.name
        self.container_name = container.name
        self.container_scope = container.id
        self.backend_url = container.name.apply(lambda c: f"azblob://{c}")
        self.register_outputs(
            {
                "account_id": self.account_id,
                "account_name": self.account_name,
                "container_name": self.container_name,
                "container_scope": self.container_scope,
                "backend_url": self.backend_url,
            }
        )
