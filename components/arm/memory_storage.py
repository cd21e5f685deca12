"""Blob Storage in the in-memory ARM: accounts, containers and seeded blobs.

A mixin of :class:`components.arm.memory.InMemoryArm` (its own module so the ARM model
stays one concept per file). The rules are Azure's, where our components meet them:

* an account name must be 3-24 lowercase letters and digits (400 ``AccountNameInvalid``);
* a container needs its account (404 ``ParentResourceNotFound``) and cannot be public on
  an account with public blob access off (409 ``PublicAccessNotPermitted``);
* azure-native's ``storage.Blob`` writes with the account key, so on an account with
  shared-key access off it fails with 403 ``KeyBasedAuthenticationNotPermitted``
  (pulumi-azure-native issues #2015 and #2948, both open); the toolkit's SeededBlob
  writes with Entra ID instead and is accepted.

Blob contents sent through the mock runtime are kept in :attr:`blob_values` (never in the
documents), like Key Vault secret values, for a data-plane emulator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from components.arm import shapes as arm_shapes
from components.arm.tokens import (
    PULUMI_BLOB,
    PULUMI_BLOB_CONTAINER,
    PULUMI_SEEDED_BLOB,
    PULUMI_STORAGE_ACCOUNT,
)

JSON = dict[str, Any]


_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")


def default_blob_endpoint(account_name: str) -> str:
    """Public-cloud blob endpoint; a sandbox passes its own loopback URL instead."""
    return f"https://{account_name}.blob.core.windows.net/"


def blob_url(endpoint: str, container: str, name: str) -> str:
    return f"{endpoint.rstrip('/')}/{container}/{quote(name, safe='/')}"


class StorageArm:
    """Handlers for the storage tokens; the host provides ``get``, ``_location``,
    ``blob_endpoint`` and ``_arm_error``."""

    blob_endpoint: Callable[[str], str]

    @property
    def blob_values(self) -> dict[str, bytes]:  # provided by InMemoryArm
        raise NotImplementedError

    def get(self, arm_id: str) -> JSON | None:  # provided by InMemoryArm
        raise NotImplementedError

    def _location(self, inputs: JSON) -> str:  # provided by InMemoryArm
        raise NotImplementedError

    def _arm_error(self, status: int, code: str, message: str) -> Exception:
        raise NotImplementedError

    def storage_handlers(self) -> dict[str, Callable[[str, JSON], JSON]]:
        return {
            PULUMI_STORAGE_ACCOUNT: self._storage_account,
            PULUMI_BLOB_CONTAINER: self._blob_container,
            PULUMI_BLOB: self._blob,
            PULUMI_SEEDED_BLOB: self._seeded_blob,
        }

    def _storage_account(self, arm_id: str, inputs: JSON) -> JSON:
        name = str(inputs.get("accountName") or arm_id.rsplit("/", 1)[-1])
        if not _ACCOUNT_NAME.match(name):
            raise self._arm_error(
                400,
                "AccountNameInvalid",
                f"{name} is not a valid storage account name. Storage account name must be "
                "between 3 and 24 characters in length and use numbers and lower-case letters "
                "only.",
            )
        return arm_shapes.storage_account(
            arm_id=arm_id,
            location=self._location(inputs),
            blob_endpoint=self.blob_endpoint(name),
            sku_name=str((inputs.get("sku") or {}).get("name") or "Standard_LRS"),
            kind=str(inputs.get("kind") or "StorageV2"),
            # ARM's defaults when a property is not sent: shared key allowed, https only.
            allow_shared_key_access=inputs.get("allowSharedKeyAccess") is not False,
            allow_blob_public_access=bool(inputs.get("allowBlobPublicAccess", False)),
            minimum_tls_version=str(inputs.get("minimumTlsVersion") or "TLS1_0"),
            supports_https_traffic_only=inputs.get("enableHttpsTrafficOnly") is not False,
            public_network_access=str(inputs.get("publicNetworkAccess") or "Enabled"),
            tags=inputs.get("tags"),
        )

    def _account_of(self, arm_id: str) -> JSON:
        account_id = arm_id.split("/blobServices/", 1)[0]
        account = self.get(account_id)
        if account is None:
            raise self._arm_error(
                404,
                "ParentResourceNotFound",
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{account_id.rsplit('/', 1)[-1]}' not found.",
            )
        return account

    def _blob_container(self, arm_id: str, inputs: JSON) -> JSON:
        account = self._account_of(arm_id)
        public = str(inputs.get("publicAccess") or "None")
        if public != "None" and not account["properties"]["allowBlobPublicAccess"]:
            raise self._arm_error(
                409,
                "PublicAccessNotPermitted",
                "Public access is not permitted on this storage account.",
            )
        return arm_shapes.blob_container(arm_id=arm_id, public_access=public)

    def _container_of(self, arm_id: str) -> JSON:
        container_id = arm_id.split("/blobs/", 1)[0]
        if self.get(container_id) is None:
            raise self._arm_error(
                404, "ContainerNotFound", "The specified container does not exist."
            )
        return self._account_of(arm_id)

    def _blob(self, arm_id: str, inputs: JSON) -> JSON:
        account = self._container_of(arm_id)
        if not account["properties"]["allowSharedKeyAccess"]:
            raise self._arm_error(
                403,
                "KeyBasedAuthenticationNotPermitted",
                "Key based authentication is not permitted on this storage account.",
            )
        return self._stored_blob(arm_id, inputs, account)

    def _seeded_blob(self, arm_id: str, inputs: JSON) -> JSON:
        return self._stored_blob(arm_id, inputs, self._container_of(arm_id))

    def _stored_blob(self, arm_id: str, inputs: JSON, account: JSON) -> JSON:
        container = arm_id.split("/containers/", 1)[1].split("/blobs/", 1)[0]
        name = arm_id.split("/blobs/", 1)[1]
        source = inputs.get("source")
        text = getattr(source, "text", source)
        self.blob_values[arm_id.lower()] = text.encode() if isinstance(text, str) else b""
        tags = inputs.get("tags")
        return arm_shapes.blob(
            arm_id=arm_id,
            url=blob_url(account["properties"]["primaryEndpoints"]["blob"], container, name),
            content_type=str(inputs.get("contentType") or "application/octet-stream"),
            tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else None,
        )
