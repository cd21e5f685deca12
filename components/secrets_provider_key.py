"""A Key Vault key that Pulumi's ``azurekeyvault://`` secrets provider encrypts with.

With this provider, each stack's data key is wrapped by a key that never leaves Key
Vault, so no passphrase has to be stored anywhere (the usual alternative is a
``PULUMI_CONFIG_PASSPHRASE`` kept as a CI secret, which is exactly what this project
avoids). Whoever holds Key Vault Crypto User on this one key can encrypt and decrypt
stack secrets; nobody needs a role on the whole vault. ``key_scope`` is the key's ARM ID,
the scope for that grant, and ``secrets_provider_url`` is what ``pulumi stack init
--secrets-provider`` takes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pulumi
from pulumi_azure_native import keyvault

from components.errors import ConfigError

_KEY = re.compile(r"^[A-Za-z0-9-]{1,127}$")
RSA_KEY_SIZES = (2048, 3072, 4096)
# What Pulumi's provider does with the key: RSA-OAEP encrypt/decrypt of the stack data key.
KEY_OPERATIONS = ("encrypt", "decrypt", "wrapKey", "unwrapKey")


def key_name(value: object, field: str = "secretsProvider.keyName") -> str:
    if not isinstance(value, str) or not _KEY.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid Key Vault key name",
            "use 1-127 letters, digits and hyphens",
        )
    return value


def secrets_provider_url(vault_uri: str, name: str) -> str:
    """``https://kv.vault.azure.net/`` + ``k`` -> ``azurekeyvault://kv.vault.azure.net/keys/k``."""
    host = urlsplit(vault_uri).netloc
    if not host:
        raise ConfigError("vault_uri", vault_uri, "has no host", "pass the vault's https URI")
    return f"azurekeyvault://{host}/keys/{name}"


@dataclass(frozen=True)
class SecretsProviderKeyArgs:
    """The vault the key lives in (an RBAC-mode vault) and the key's name and size."""

    resource_group_name: pulumi.Input[str]
    vault_name: pulumi.Input[str]
    vault_uri: pulumi.Input[str]
    key_name: str = "pulumi-secrets"
    key_size: int = 3072
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        key_name(self.key_name)
        if self.key_size not in RSA_KEY_SIZES:
            raise ConfigError(
                "secretsProvider.keySize",
                self.key_size,
                "is not an RSA key size Key Vault offers",
                f"use one of {', '.join(map(str, RSA_KEY_SIZES))}",
            )


class SecretsProviderKey(pulumi.ComponentResource):
    """An RSA key for ``--secrets-provider azurekeyvault://...``.

    Outputs: ``key_scope`` (ARM ID of the key, for a Key Vault Crypto User grant at key
    scope) and ``secrets_provider_url``.
    """

    key_scope: pulumi.Output[str]
    secrets_provider_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: SecretsProviderKeyArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mikit:secrets_provider_key:SecretsProviderKey", name, None, opts)
        key = keyvault.Key(
            f"{name}-key",
            resource_group_name=args.resource_group_name,
            vault_name=args.vault_name,
            key_name=args.key_name,
            properties=keyvault.KeyPropertiesArgs(
                kty=keyvault.JsonWebKeyType.RSA,
                key_size=args.key_size,
                key_ops=list(KEY_OPERATIONS),
            ),
            tags=dict(args.tags),
            # Losing this key makes every stack's secrets unreadable: deleting it must be
            # a deliberate act (and the vault's purge protection keeps it recoverable).
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.key_scope = key.id
        self.secrets_provider_url = pulumi.Output.from_input(args.vault_uri).apply(
            lambda uri: secrets_provider_url(uri, args.key_name)
        )
        self.register_outputs(
            {"key_scope": self.key_scope, "secrets_provider_url": self.secrets_provider_url}
        )
