"""StorageAccount: Blob Storage that only Entra ID identities can reach, granted per container.

What it guarantees over a bare ``azure-native:storage:StorageAccount``:

* shared-key access off (no account keys, no SAS signed with them: only Entra ID tokens,
  so every read is an RBAC decision the verifier can check), public blob access off,
  minimum TLS 1.2, HTTPS only, Entra ID the portal's default;
* containers private, each with :meth:`StorageAccount.container_scope` giving its full ARM
  ID (``<account id>/blobServices/default/containers/<name>``), the narrowest scope a
  role assignment can take on Blob Storage;
* seeded blobs whose content is ``Output.secret`` end to end, with optional blob index
  tags (what ABAC conditions read), written by :class:`components.blob_seed.SeededBlob`
  because azure-native's ``storage.Blob`` needs the account key and has no tags input;
* names checked before anything registers (account 3-24 lowercase alphanumerics,
  containers 3-63 per Azure's rules, blob names, index tags).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native

from components import validation
from components.blob_seed import SeededBlob
from components.errors import ConfigError


@dataclass(frozen=True)
class BlobSeed:
    """One blob written at deploy time. ``content`` is wrapped in ``Output.secret``."""

    container: str
    name: str
    content: pulumi.Input[str]
    content_type: str = "text/plain"
    tags: Mapping[str, str] = field(default_factory=dict)
    """Blob index tags (at most 10), readable by conditions as
    ``@Resource[.../blobs/tags:<key><$key_case_sensitive$>]``."""


@dataclass(frozen=True)
class StorageAccountArgs:
    name: str
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str] | None = None
    containers: Sequence[str] = ()
    blobs: Sequence[BlobSeed] = ()
    sku: str = "Standard_LRS"
    public_network_access: bool = True
    tags: Mapping[str, str] = field(default_factory=dict)


def _check(args: StorageAccountArgs) -> None:
    validation.storage_account_name(args.name, "name")
    seen: set[str] = set()
    for i, container in enumerate(args.containers):
        validation.container_name(container, f"containers[{i}]")
        if container in seen:
            raise ConfigError(
                f"containers[{i}]", container, "appears twice", "list each container once"
            )
        seen.add(container)
    blobs: set[tuple[str, str]] = set()
    for i, blob in enumerate(args.blobs):
        if blob.container not in seen:
            raise ConfigError(
                f"blobs[{i}].container",
                blob.container,
                "is not a container of this account",
                f"use one of {', '.join(args.containers) or '(declare containers first)'}",
            )
        validation.blob_name(blob.name, f"blobs[{i}].name")
        validation.blob_index_tags(dict(blob.tags), f"blobs[{i}].tags")
        if (blob.container, blob.name) in blobs:
            raise ConfigError(
                f"blobs[{i}]",
                f"{blob.container}/{blob.name}",
                "appears twice",
                "seed each blob once",
            )
        blobs.add((blob.container, blob.name))
    if args.sku not in ("Standard_LRS", "Standard_ZRS", "Standard_GRS", "Standard_RAGRS"):
        raise ConfigError(
            "sku",
            args.sku,
            "is not a general-purpose v2 SKU this component supports",
            "use Standard_LRS, Standard_ZRS, Standard_GRS or Standard_RAGRS",
        )


class StorageAccount(pulumi.ComponentResource):
    """Outputs: ``id``, ``name``, ``blob_endpoint`` (``https://<name>.blob.core.windows.net/``),
    ``container_ids`` and ``blob_urls`` (keyed ``(container, name)``).

    ``container_scope(name)`` is a container's ARM ID, the container resource's own, so a
    grant on it waits until the container exists.
    """

    def __init__(
        self,
        resource_name: str,
        args: StorageAccountArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _check(args)
        super().__init__("mikit:storage:StorageAccount", resource_name, None, opts)
        account = azure_native.storage.StorageAccount(
            resource_name,
            account_name=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="StorageV2",
            sku=azure_native.storage.SkuArgs(name=args.sku),
            allow_shared_key_access=False,
            allow_blob_public_access=False,
            minimum_tls_version="TLS1_2",
            enable_https_traffic_only=True,
            default_to_o_auth_authentication=True,
            public_network_access="Enabled" if args.public_network_access else "Disabled",
            tags=dict(args.tags) or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id: pulumi.Output[str] = account.id
        self.name: pulumi.Output[str] = account.name
        self.blob_endpoint: pulumi.Output[str] = account.primary_endpoints.apply(
            lambda e: e.blob if e is not None else ""
        )
        self.containers: dict[str, azure_native.storage.BlobContainer] = {
            container: azure_native.storage.BlobContainer(
                f"{resource_name}-{container}",
                account_name=account.name,
                container_name=container,
                resource_group_name=args.resource_group_name,
                public_access=azure_native.storage.PublicAccess.NONE,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for container in args.containers
        }
        self.container_ids: dict[str, pulumi.Output[str]] = {
            name: c.id for name, c in self.containers.items()
        }
        self.blobs: dict[tuple[str, str], SeededBlob] = {}
        for i, blob in enumerate(args.blobs):
            container = self.containers[blob.container]
            self.blobs[(blob.container, blob.name)] = SeededBlob(
                f"{resource_name}-blob-{i}-{blob.container}",
                account_name=account.name,
                resource_group_name=args.resource_group_name,
                container_name=blob.container,
                container_id=container.id,
                blob_name=blob.name,
                blob_endpoint=self.blob_endpoint,
                content=blob.content,
                content_type=blob.content_type,
                tags=blob.tags,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[container]),
            )
        self.blob_urls: dict[tuple[str, str], pulumi.Output[str]] = {
            key: b.url for key, b in self.blobs.items()
        }
        self.register_outputs(
            {
                "id": self.id,
                "name": self.name,
                "blob_endpoint": self.blob_endpoint,
                "container_ids": self.container_ids,
            }
        )

    def container_scope(self, name: str) -> pulumi.Output[str]:
        """The ARM scope of container ``name`` (``<account id>/blobServices/default/
        containers/<name>``), for a grant on that one container."""
        if name not in self.containers:
            raise ConfigError(
                "container",
                name,
                "is not a container of this storage account",
                f"use one of {', '.join(sorted(self.containers)) or '(none declared)'}",
            )
        return self.containers[name].id
