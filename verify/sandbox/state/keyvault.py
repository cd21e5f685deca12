"""Key Vault in the sandbox's state: vaults and their secrets, with soft delete."""

from __future__ import annotations

import uuid
from typing import Any

from components.arm import rules as arm_rules
from verify.sandbox.keyvault.secret_rules import check_secret
from verify.sandbox.state.base import StateBase
from verify.sandbox.state.records import (
    DeletedSecret,
    DeletedVault,
    SandboxError,
    SecretVersion,
    Vault,
    arm_rules_as_sandbox_errors,
    key,
)


class VaultsMixin(StateBase):
    """Vaults (names are global, as on Azure) and their versioned secrets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._vaults: dict[str, Vault] = {}
        self._deleted_vaults: dict[str, DeletedVault] = {}

    # ----------------------------------------------------------------- vaults
    def create_vault(
        self,
        resource_group: str,
        name: str,
        location: str | None = None,
        purge_protection: bool = False,
        soft_delete_retention_days: int = 90,
        *,
        recover: bool = False,
    ) -> Vault:
        """Create a vault (idempotent for the same ID; vault names are global).

        ``soft_delete_retention_days`` (7-90, the vault's ``softDeleteRetentionInDays``)
        sets what its secrets report: ``recoverableDays``, ``recoveryLevel`` and a deleted
        secret's ``scheduledPurgeDate``.

        A name held by a soft-deleted vault is refused (409 ``ConflictError``) unless
        ``recover`` (ARM's ``createMode: recover``), which brings that vault back with its
        secrets.
        """
        if (
            isinstance(soft_delete_retention_days, bool)
            or not isinstance(soft_delete_retention_days, int)
            or not 7 <= soft_delete_retention_days <= 90
        ):
            raise SandboxError(
                400,
                "BadRequest",
                f"softDeleteRetentionInDays is {soft_delete_retention_days!r}; it must be an "
                "integer from 7 to 90.",
            )
        rg = self._require_group(resource_group)
        vault_id = self._resource_id(rg.name, "Microsoft.KeyVault", "vaults", name)
        with self._lock:
            held = self._held_by_deleted_vault(name)
            with arm_rules_as_sandbox_errors():
                arm_rules.check_vault_create(held is not None, "recover" if recover else None)
            if held is not None:
                del self._deleted_vaults[name.lower()]
                self._vaults[name.lower()] = held.vault
        if held is not None:
            self._emit([("vault_created", held.vault)])
            return held.vault
        with self._lock:
            existing = self._vaults.get(name.lower())
            if existing:
                if key(existing.id) != key(vault_id):
                    raise SandboxError(
                        409, "VaultAlreadyExists", f"The vault name '{name}' is already in use."
                    )
                return existing
            vault = Vault(
                vault_id,
                name,
                rg.name,
                location or rg.location,
                soft_delete_retention_days=soft_delete_retention_days,
                purge_protection=purge_protection,
            )
            self._vaults[name.lower()] = vault
        self._emit([("vault_created", vault)])
        return vault

    def vault(self, name_or_id: str) -> Vault | None:
        """A vault by name (vault names are global) or by ARM ID."""
        name = name_or_id.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            vault = self._vaults.get(name.lower())
            if vault and "/" in name_or_id and key(vault.id) != key(name_or_id):
                return None
            return vault

    def vaults(self) -> list[Vault]:
        with self._lock:
            return list(self._vaults.values())

    def delete_vault(self, name_or_id: str) -> Vault | None:
        """Soft-delete a vault (soft delete is always on): it keeps its name and secrets
        for its retention days, until recovered or purged."""
        with self._lock:
            vault = self.vault(name_or_id)
            if vault is None:
                return None
            del self._vaults[vault.name.lower()]
            now = self.clock()
            self._deleted_vaults[vault.name.lower()] = DeletedVault(
                vault, now, now + vault.soft_delete_retention_days * 86400
            )
        self._emit([("vault_deleted", vault)])
        return vault

    # ------------------------------------------------------- deleted vaults
    def _held_by_deleted_vault(self, name: str) -> DeletedVault | None:
        """The deleted vault holding ``name``; one past its purge date is gone (call
        with the lock held)."""
        held = self._deleted_vaults.get(name.lower())
        if held is not None and held.scheduled_purge_date <= self.clock():
            del self._deleted_vaults[name.lower()]
            return None
        return held

    def deleted_vault(self, name: str) -> DeletedVault | None:
        with self._lock:
            return self._held_by_deleted_vault(name)

    def deleted_vaults(self) -> list[DeletedVault]:
        with self._lock:
            return [
                d for d in list(self._deleted_vaults.values()) if self.deleted_vault(d.vault.name)
            ]

    def purge_deleted_vault(self, name: str) -> bool:
        """Free the name for good; refused while purge protection holds it (Azure purges
        it itself at the scheduled purge date)."""
        with self._lock:
            held = self._held_by_deleted_vault(name)
            if held is None:
                return False
            if held.vault.purge_protection:
                refused = arm_rules.deleted_vault_purge_refused()
                raise SandboxError(refused.status, refused.code, refused.message)
            del self._deleted_vaults[name.lower()]
            return True

    def _require_vault(self, name_or_id: str) -> Vault:
        vault = self.vault(name_or_id)
        if vault is None:
            raise SandboxError(404, "VaultNotFound", f"Vault '{name_or_id}' was not found.")
        return vault

    # ---------------------------------------------------------------- secrets
    def set_secret(
        self,
        vault: str,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        enabled: bool = True,
        expires: int | None = None,
        not_before: int | None = None,
    ) -> SecretVersion:
        """Add a new version (the newest becomes the current value).

        Key Vault's limits apply (:mod:`verify.sandbox.keyvault.secret_rules`: name, 25 KB value,
        content type, tags). ``expires``/``not_before`` are stored and returned as ``exp``/
        ``nbf``; like Key Vault, they do not stop a get ("Date-time controlled operations").
        """
        check_secret(name, value, content_type, tags)
        with self._lock:
            v = self._require_vault(vault)
            key = name.lower()
            if key in v.deleted:
                raise SandboxError(
                    409,
                    "Conflict",
                    f"Secret {name} is currently in a deleted but recoverable state, and its "
                    "name cannot be reused; in this state, the secret can only be recovered "
                    "or purged.",
                )
            versions = v.secrets.setdefault(key, [])
            stored_name = versions[0].name if versions else name
            now = int(self.clock())
            version = SecretVersion(
                stored_name,
                uuid.uuid4().hex,
                value,
                now,
                now,
                enabled,
                content_type,
                dict(tags or {}),
                expires,
                not_before,
            )
            versions.append(version)
            return version

    def get_secret(self, vault: str, name: str, version: str | None = None) -> SecretVersion | None:
        with self._lock:
            versions = self._require_vault(vault).secrets.get(name.lower(), [])
            if not version:
                return versions[-1] if versions else None
            return next((s for s in versions if s.version == version.lower()), None)

    def secret_names(self, vault: str) -> list[str]:
        with self._lock:
            return [vs[0].name for vs in self._require_vault(vault).secrets.values() if vs]

    def secret_versions(self, vault: str, name: str) -> list[SecretVersion]:
        with self._lock:
            return list(self._require_vault(vault).secrets.get(name.lower(), []))

    def delete_secret(self, vault: str, name: str) -> DeletedSecret | None:
        """Soft-delete every version of a secret (the vault keeps it for its retention)."""
        with self._lock:
            v = self._require_vault(vault)
            versions = v.secrets.pop(name.lower(), None)
            if not versions:
                return None
            now = int(self.clock())
            deleted = DeletedSecret(versions[-1], now, now + v.soft_delete_retention_days * 86400)
            v.deleted[name.lower()] = (versions, deleted)
            return deleted

    def deleted_secret(self, vault: str, name: str) -> DeletedSecret | None:
        with self._lock:
            entry = self._require_vault(vault).deleted.get(name.lower())
            return entry[1] if entry else None

    def purge_secret(self, vault: str, name: str) -> bool:
        with self._lock:
            v = self._require_vault(vault)
            if v.purge_protection:
                raise SandboxError(
                    403, "Forbidden", "Operation 'purge' is not allowed: purge protection is on."
                )
            return v.deleted.pop(name.lower(), None) is not None

    def recover_secret(self, vault: str, name: str) -> SecretVersion | None:
        with self._lock:
            v = self._require_vault(vault)
            entry = v.deleted.pop(name.lower(), None)
            if entry is None:
                return None
            v.secrets[name.lower()] = entry[0]
            return entry[0][-1]
