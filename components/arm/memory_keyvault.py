"""Key Vault in the in-memory ARM: vaults (with soft delete) and management-plane secrets.

A mixin of :class:`components.arm.memory.InMemoryArm` (one concept per file):

* a vault's name is held by its soft-deleted vault for the retention days; creating a vault
  of that name is refused unless ``createMode: recover`` brings it back
  (``rules.check_vault_create``), and purging is refused under purge protection;
* a secret needs its vault (404); its value is kept in ``secret_values``, never in the
  document, for a data-plane emulator.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from components.arm import rules
from components.arm import shapes as arm_shapes
from components.arm.errors import ArmError
from components.arm.store import ArmStore
from components.arm.tokens import PULUMI_KEY_VAULT, PULUMI_KEY_VAULT_SECRET

JSON = dict[str, Any]


def default_vault_uri(vault_name: str) -> str:
    """Public-cloud vault URI; the sandbox passes its own loopback URI instead."""
    return f"https://{vault_name}.vault.azure.net/"


class KeyVaultArm:
    """Handlers for the Key Vault tokens; the host provides ``get``, ``_location``,
    ``_new_guid``, ``_mutex``, ``vault_uri``, ``tenant_id``, ``subscription_id`` and
    ``store``."""

    _new_guid: Callable[[], str]
    _mutex: threading.RLock
    vault_uri: Callable[[str], str]

    @property
    def store(self) -> ArmStore:  # provided by InMemoryArm
        raise NotImplementedError

    @property
    def tenant_id(self) -> str:  # provided by InMemoryArm
        raise NotImplementedError

    @property
    def subscription_id(self) -> str:  # provided by InMemoryArm
        raise NotImplementedError

    @property
    def deleted_vaults(self) -> dict[str, JSON]:  # provided by InMemoryArm
        raise NotImplementedError

    @property
    def secret_values(self) -> dict[str, str]:  # provided by InMemoryArm
        raise NotImplementedError

    def get(self, arm_id: str) -> JSON | None:  # provided by InMemoryArm
        raise NotImplementedError

    def _location(self, inputs: JSON) -> str:  # provided by InMemoryArm
        raise NotImplementedError

    def keyvault_handlers(self) -> dict[str, Callable[[str, JSON], JSON]]:
        return {PULUMI_KEY_VAULT: self._vault, PULUMI_KEY_VAULT_SECRET: self._secret}

    def _soft_delete_vault(self, doc: JSON) -> None:
        """Key Vault soft delete is always on: the name stays held for the retention days."""
        props = doc["properties"]
        now = datetime.now(UTC)
        days = int(props.get("softDeleteRetentionInDays") or 90)
        self.deleted_vaults[doc["name"].lower()] = arm_shapes.deleted_key_vault(
            subscription_id=self.subscription_id,
            name=doc["name"],
            location=doc["location"],
            vault_id=doc["id"],
            deletion_date=now,
            scheduled_purge_date=now + timedelta(days=days),
            purge_protection_enabled=bool(props.get("enablePurgeProtection", False)),
            tags=doc.get("tags"),
        )

    def deleted_vault(self, name: str) -> JSON | None:
        """The soft-deleted vault holding ``name``, if any."""
        return self.deleted_vaults.get(name.lower())

    def purge_deleted_vault(self, name: str) -> bool:
        """Free a deleted vault's name; refused while purge protection holds it."""
        with self._mutex:
            held = self.deleted_vaults.get(name.lower())
            if held is None:
                return False
            if held["properties"]["purgeProtectionEnabled"]:
                raise rules.deleted_vault_purge_refused()
            del self.deleted_vaults[name.lower()]
            return True

    def _vault(self, arm_id: str, inputs: JSON) -> JSON:
        props = inputs.get("properties") or {}
        name = arm_id.rsplit("/", 1)[-1]
        held = self.deleted_vaults.get(name.lower())
        rules.check_vault_create(held is not None, props.get("createMode"))
        if held is not None:  # createMode: recover brings the deleted vault back
            del self.deleted_vaults[name.lower()]
        return arm_shapes.key_vault(
            arm_id=arm_id,
            location=self._location(inputs),
            tenant_id=props.get("tenantId") or self.tenant_id,
            vault_uri=self.vault_uri(name),
            enable_rbac_authorization=bool(props.get("enableRbacAuthorization", False)),
            enable_soft_delete=bool(props.get("enableSoftDelete", True)),
            soft_delete_retention_in_days=int(props.get("softDeleteRetentionInDays", 90)),
            enable_purge_protection=bool(props.get("enablePurgeProtection", False)),
            public_network_access=str(props.get("publicNetworkAccess") or "Enabled"),
            sku_name=str((props.get("sku") or {}).get("name") or "standard"),
            tags=inputs.get("tags"),
        )

    def _secret(self, arm_id: str, inputs: JSON) -> JSON:
        vault_id = arm_id.rsplit("/secrets/", 1)[0]
        vault = self.get(vault_id)
        if vault is None:
            raise ArmError(404, "ResourceNotFound", f"vault {vault_id} was not found")
        props = inputs.get("properties") or {}
        if "value" in props:
            self.secret_values[arm_id.lower()] = str(props["value"])
        attributes = props.get("attributes") or {}
        return arm_shapes.key_vault_secret(
            arm_id=arm_id,
            location=vault["location"],
            vault_uri=vault["properties"]["vaultUri"],
            version=uuid.UUID(self._new_guid()).hex,
            content_type=props.get("contentType"),
            enabled=bool(attributes.get("enabled", True)),
            tags=inputs.get("tags"),
        )
