"""SeededBlob: a blob written at deploy time with Entra ID, content secret, index tags set.

Why not azure-native's ``storage.Blob``: it writes with the account key, so on an account
with shared-key access off (as :class:`components.storage.StorageAccount` configures it)
``pulumi up`` fails with 403 ``KeyBasedAuthenticationNotPermitted`` (pulumi-azure-native
issues #2015 and #2948, open), and it has no input for blob index tags at all (its
inputs: accountName, containerName, blobName, source, contentType, contentMd5, metadata,
accessTier, type). So this is a Pulumi dynamic resource whose provider uploads with
azure-storage-blob and ``DefaultAzureCredential`` in one Put Blob carrying ``x-ms-tags``.

The identity running ``pulumi up`` needs a Blob data role that writes blobs *and* their
tags on the account or container: Storage Blob Data Owner (Contributor lacks
``blobs/tags/write``). Inputs use azure-native's names, so the mock runtime and the
sandbox treat it like a blob; the content is a secret input and never an output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import pulumi
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import DefaultAzureCredential
from azure.storage.blob import BlobClient, ContentSettings
from pulumi import dynamic

_REPLACE_ON = ("accountName", "containerName", "blobName", "blobEndpoint")
_UPDATE_ON = ("source", "contentType", "tags")


def _url(props: Mapping[str, Any]) -> str:
    endpoint = str(props["blobEndpoint"]).rstrip("/")
    return f"{endpoint}/{props['containerName']}/{quote(str(props['blobName']), safe='/')}"


def _outs(props: Mapping[str, Any]) -> dict[str, Any]:
    """Everything but the content."""
    return {
        "accountName": props["accountName"],
        "containerName": props["containerName"],
        "blobName": props["blobName"],
        "contentType": props.get("contentType"),
        "tags": dict(props.get("tags") or {}),
        "url": _url(props),
    }


class _BlobSeeder(dynamic.ResourceProvider):
    """Create/update = one Put Blob with tags; delete = Delete Blob (gone is fine)."""

    def _client(self, props: Mapping[str, Any]) -> BlobClient:
        return BlobClient(
            account_url=str(props["blobEndpoint"]),
            container_name=str(props["containerName"]),
            blob_name=str(props["blobName"]),
            credential=DefaultAzureCredential(),
        )

    def _upload(self, props: Mapping[str, Any]) -> None:
        with self._client(props) as client:
            client.upload_blob(
                str(props["source"]).encode("utf-8"),
                overwrite=True,
                content_settings=ContentSettings(content_type=props.get("contentType")),
                tags=dict(props.get("tags") or {}) or None,
            )

    def create(self, props: Any) -> dynamic.CreateResult:
        self._upload(props)
        return dynamic.CreateResult(
            f"{props['containerId']}/blobs/{props['blobName']}", _outs(props)
        )

    def diff(self, _id: str, olds: Any, news: Any) -> dynamic.DiffResult:
        replaces = [k for k in _REPLACE_ON if olds.get(k) != news.get(k)]
        changed = replaces + [k for k in _UPDATE_ON if olds.get(k) != news.get(k)]
        return dynamic.DiffResult(
            changes=bool(changed), replaces=replaces, delete_before_replace=True
        )

    def update(self, _id: str, _olds: Any, news: Any) -> dynamic.UpdateResult:
        self._upload(news)
        return dynamic.UpdateResult(_outs(news))

    def delete(self, _id: str, props: Any) -> None:
        with self._client(props) as client, contextlib.suppress(ResourceNotFoundError):
            client.delete_blob(delete_snapshots="include")


class SeededBlob(dynamic.Resource, module="mikit", name="SeededBlob"):
    """Type token ``pulumi-python:dynamic/mikit:SeededBlob``. Outputs ``url``, ``tags``."""

    url: pulumi.Output[str]
    tags: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        resource_name: str,
        *,
        account_name: pulumi.Input[str],
        resource_group_name: pulumi.Input[str],
        container_name: str,
        container_id: pulumi.Input[str],
        blob_name: str,
        blob_endpoint: pulumi.Input[str],
        content: pulumi.Input[str],
        content_type: str,
        tags: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            _BlobSeeder(),
            resource_name,
            {
                "accountName": account_name,
                "resourceGroupName": resource_group_name,
                "containerName": container_name,
                "containerId": container_id,
                "blobName": blob_name,
                "blobEndpoint": blob_endpoint,
                "source": pulumi.Output.secret(content),
                "contentType": content_type,
                "tags": dict(tags),
                "url": None,
            },
            pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(additional_secret_outputs=["source"])
            ),
        )
