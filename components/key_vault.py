"""KeyVault: a vault in RBAC mode whose secrets are granted one by one.

RBAC authorization only (no access policies, so ``Owner``/``Contributor`` cannot read a
secret value), soft delete always on, purge protection and public network access
configurable, secret values carried as ``Output.secret`` end to end, and
:meth:`KeyVault.secret_scope` giving the ARM scope of one secret so a grant can be as
narrow as a single secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native as azure_native

from components import validation
from components.errors import ConfigError


@dataclass(frozen=True)
class KeyVaultArgs:
    name: str
    resource_group_name: pulumi.Input[str]
    tenant_id: pulumi.Input[str]
    location: pulumi.Input[str] | None = None
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Secret name -> value; values are wrapped in ``Output.secret`` whatever they are."""
    purge_protection: bool = True
    """Once on it cannot be turned off, and the name stays taken for the retention days."""
    public_network_access: bool = True
    soft_delete_retention_days: int = 90
    sku: str = "standard"
    create_mode: str = "default"
    """``recover``: bring back the soft-deleted vault that holds this name (after a
    ``pulumi destroy`` it keeps the name for ``soft_delete_retention_days``) instead of
    failing with 409 ``ConflictError``. Needed for one ``pulumi up``; remove it after."""
    tags: Mapping[str, str] = field(default_factory=dict)


def _check(args: KeyVaultArgs) -> None:
    validation.vault_name(args.name, "name")
    for secret in args.secrets:
        validation.secret_name(secret, f"secrets[{secret!r}]")
    if not 7 <= args.soft_delete_retention_days <= 90:
        raise ConfigError(
            "soft_delete_retention_days",
            args.soft_delete_retention_days,
            "is outside 7-90",
            "pick 7-90 days (Key Vault's soft-delete window)",
        )
    if args.sku not in ("standard", "premium"):
        raise ConfigError("sku", args.sku, "is not a Key Vault SKU", "use 'standard' or 'premium'")
    if args.create_mode not in ("default", "recover"):
        raise ConfigError(
            "create_mode",
            args.create_mode,
            "is not a Key Vault create mode",
            "use 'default', or 'recover' to bring back a soft-deleted vault of this name",
        )


class KeyVault(pulumi.ComponentResource):
    """Outputs: ``id``, ``name``, ``uri``; ``secret_ids``/``secret_uris`` per name.

    ``secret_scope(name)`` is the ARM ID of one secret (``<vault id>/secrets/<name>``),
    the narrowest scope a role assignment can take.
    """

    def __init__(
        self, resource_name: str, args: KeyVaultArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        _check(args)
        super().__init__("mikit:keyvault:KeyVault", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vault = azure_native.keyvault.Vault(
            resource_name,
            vault_name=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            properties=azure_native.keyvault.VaultPropertiesArgs(
                tenant_id=args.tenant_id,
                sku=azure_native.keyvault.SkuArgs(family="A", name=args.sku),  # type: ignore[arg-type]
                enable_rbac_authorization=True,
                access_policies=[],
                enable_soft_delete=True,
                soft_delete_retention_in_days=args.soft_delete_retention_days,
                create_mode="recover" if args.create_mode == "recover" else None,  # type: ignore[arg-type]
                # ARM refuses an explicit false; leaving it out means "off".
                enable_purge_protection=True if args.purge_protection else None,
                public_network_access="Enabled" if args.public_network_access else "Disabled",
                network_acls=azure_native.keyvault.NetworkRuleSetArgs(
                    bypass="AzureServices",
                    default_action="Allow" if args.public_network_access else "Deny",
                ),
            ),
            tags=dict(args.tags) or None,
            opts=child,
        )
        self.id: pulumi.Output[str] = vault.id
        self.name: pulumi.Output[str] = vault.name
        self.uri: pulumi.Output[str] = vault.properties.apply(lambda p: p.vault_uri or "")
        self.secret_names: tuple[str, ...] = tuple(args.secrets)
        self.secrets: dict[str, azure_native.keyvault.Secret] = {
            secret: azure_native.keyvault.Secret(
                f"{resource_name}-{secret}",
                secret_name=secret,
                vault_name=vault.name,
                resource_group_name=args.resource_group_name,
                properties=azure_native.keyvault.SecretPropertiesArgs(
                    value=pulumi.Output.secret(value)
                ),
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["properties"]),
            )
            for secret, value in args.secrets.items()
        }
        self.secret_ids: dict[str, pulumi.Output[str]] = {
            name: s.id for name, s in self.secrets.items()
        }
        self.secret_uris: dict[str, pulumi.Output[str]] = {
            name: pulumi.Output.concat(self.uri, "secrets/", name) for name in self.secrets
        }
        self.register_outputs(
            {"id": self.id, "name": self.name, "uri": self.uri, "secret_ids": self.secret_ids}
        )

    def secret_scope(self, name: str) -> pulumi.Output[str]:
        """The ARM scope of secret ``name``, for a grant on that one secret.

        It is the Secret resource's own ID (``<vault id>/secrets/<name>``), not a string
        built from the vault's, so a grant on it waits until the secret exists: ARM
        refuses a role assignment whose scope is not there yet.
        """
        if name not in self.secrets:
            raise ConfigError(
                "secret",
                name,
                "is not a secret of this vault",
                f"use one of {', '.join(sorted(self.secrets)) or '(none declared)'}",
            )
        return self.secrets[name].id
