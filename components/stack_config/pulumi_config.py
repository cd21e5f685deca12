"""Reading the config as Pulumi passes it: every ``mikit:`` key, decrypted values, in order.

:func:`validate` runs every check on a mapping of full keys to strings (what ``pulumi
config`` holds); :func:`load` is the stack program's entry: it validates the run's config
and returns the secret values as secret Outputs. Nothing is registered until all of it
passes, so a typo never leaves half a topology behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, get_origin

from components import config_rules
from components.config_rules import config_set_command
from components.errors import NOT_SET, ConfigError
from components.role_lookup import RoleResolver
from components.roles import RoleDefinition
from components.stack_config.keys import (
    BLOB_VALUE_PREFIX,
    NAMESPACE,
    blob_key,
    blob_value_key,
    secret_value_key,
)
from components.stack_config.references import check
from components.stack_config.schema import KEYS, StackConfig
from components.stack_config.wording import parse


def read_pulumi_config(config: Any) -> dict[str, Any]:
    """Raw values of every schema key from a ``pulumi.Config(NAMESPACE)``.

    Structured keys are JSON in Pulumi config; a value that is not valid JSON where a
    structure is expected fails here with the key named.
    """
    raw: dict[str, Any] = {}
    for key in KEYS:
        text = config.get(key)
        if text is None:
            continue
        if key in _STRING_KEYS or key in _BOOL_KEYS:
            raw[key] = text  # a bool is checked (and its error worded) by pydantic
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            is_list = key in _LIST_KEYS
            part = "[0]" if is_list else ".<key>"
            raise ConfigError(
                f"{NAMESPACE}:{key}",
                text,
                f"is not a {'list' if is_list else 'mapping'}",
                f"write it as a YAML {'list' if is_list else 'mapping'} in the stack file "
                f"({NAMESPACE}:{key}: {'[a, b]' if is_list else '{k: v}'}), or set its parts "
                f"with {config_set_command(f'{NAMESPACE}:{key}{part}')}",
            ) from None
    return raw


_STRING_KEYS = frozenset({"location", "resourceGroup", "sshPublicKey", "adminUsername", "vmSize"})
_BOOL_KEYS = frozenset({"createResourceGroup"})
_LIST_KEYS = frozenset(
    (f.alias or n) for n, f in StackConfig.model_fields.items() if get_origin(f.annotation) is list
)


def all_config() -> dict[str, str]:
    """Every config key of this run as the Pulumi CLI passed it (full key -> string).

    ``pulumi.Config`` only answers for keys one asks about; the unknown-key check needs
    them all, and the Python SDK keeps them in its runtime config.
    """
    from pulumi.runtime.config import CONFIG  # noqa: PLC0415 -- the SDK's own store

    return {str(k): str(v) for k, v in CONFIG.get().items()}


def check_rules(
    cfg: StackConfig, roles: Mapping[int, RoleDefinition], values: Mapping[str, str]
) -> None:
    """The rules beyond the schema and the cross-references (see :mod:`config_rules`)."""
    config_rules.check_location(cfg.location, f"{NAMESPACE}:location")
    config_rules.check_secret_values(values, cfg.secrets)
    for i, grant in enumerate(cfg.grants):
        role = roles[i]
        if role.privileged and not grant.allow_privileged:
            where = f"{NAMESPACE}:grants[{i}]"
            opt_in = config_set_command(f"{where}.allowPrivileged", "true")
            raise ConfigError(
                f"{where}.role",
                grant.role,
                f"is a privileged role (it can change access or holds a whole data plane), "
                f"here at {grant.target!r}",
                "grant a data role such as 'Key Vault Secrets User', or opt in with "
                f"allowPrivileged: true on that grant ({opt_in})",
            )


def validate(
    values: Mapping[str, str], resolver: RoleResolver
) -> tuple[StackConfig, dict[int, RoleDefinition]]:
    """All of the checks on the config as Pulumi passes it, before anything else runs.

    ``values`` maps full keys to strings (what ``pulumi config`` holds, decrypted). The
    verifier calls this on a stack file before it starts anything; the stack program
    calls it through :func:`load`.
    """
    declared = _declared_secrets(values)
    config_rules.check_keys(values, KEYS, declared)
    cfg = parse(read_pulumi_config(_MappingConfig(values)))
    roles = check(cfg, resolver)
    config_rules.check_blob_values(
        values,
        {
            blob_value_key(key, blob.container, blob.name): blob_key(key, blob.container, blob.name)
            for key, account in cfg.storage_accounts.items()
            for blob in account.blobs
        },
    )
    check_rules(cfg, roles, values)
    return cfg, roles


def _declared_secrets(values: Mapping[str, str]) -> list[str] | None:
    """``mikit:secrets``, or None when it is malformed (the schema then reports it)."""
    try:
        secrets = json.loads(values.get(f"{NAMESPACE}:secrets", "[]"))
    except json.JSONDecodeError:
        return None
    if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
        return None
    return secrets


class _MappingConfig:
    """The ``pulumi.Config(NAMESPACE).get`` slice over a plain mapping of full keys."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def get(self, key: str) -> str | None:
        return self._values.get(f"{NAMESPACE}:{key}")


def load(config: Any, resolver: RoleResolver) -> tuple[StackConfig, dict[str, Any]]:
    """Read, validate and cross-check the stack config; fetch each declared secret value.

    ``config`` is a ``pulumi.Config(NAMESPACE)``. Returns the config and the secret
    values as secret Outputs: each Key Vault secret's by its name, each seeded blob's
    content under ``blob:<account key>/<container>/<path>``. Raises :class:`ConfigError`
    before anything is registered.
    """
    cfg, _ = validate(all_config(), resolver)
    values: dict[str, Any] = {}
    for account_key, account in cfg.storage_accounts.items():
        for blob in account.blobs:
            key = blob_value_key(account_key, blob.container, blob.name)
            value = config.get_secret(key)
            if value is None:
                raise ConfigError(
                    f"{NAMESPACE}:{key}",
                    NOT_SET,
                    f"is not set, so blob {blob_key(account_key, blob.container, blob.name)!r} "
                    "has no content",
                    f"run: {config_set_command(f'{NAMESPACE}:{key}', '<content>', secret=True)}",
                )
            values[BLOB_VALUE_PREFIX + blob_key(account_key, blob.container, blob.name)] = value
    for name in cfg.secrets:
        key = secret_value_key(name)
        value = config.get_secret(key)
        if value is None:
            raise ConfigError(
                f"{NAMESPACE}:{key}",
                NOT_SET,
                f"is not set, so secret {name!r} has no value",
                f"run: {config_set_command(f'{NAMESPACE}:{key}', secret=True)}",
            )
        values[name] = value
    return cfg, values
