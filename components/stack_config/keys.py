"""Names in the stack config: the namespace, reference prefixes, and value keys.

A grant's ``target`` is ``vault``, ``secret:<name>``, ``storage:<account key>`` or
``container:<account key>/<container>``; its ``principal`` is ``identity:<key>`` or a host
reference whose prefix each host kind declares (:mod:`components.stack_config.hosts`).
Secret values and seeded blob contents are secret config keys named here, so the
program, the bootstrap and the verifier agree on them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NAMESPACE = "mikit"
VAULT_TARGET = "vault"
SECRET_PREFIX = "secret:"  # noqa: S105 (a reference prefix)
IDENTITY_PREFIX = "identity:"
STORAGE_PREFIX = "storage:"
CONTAINER_PREFIX = "container:"
#: Prefix of a seeded blob's content in the values :func:`load` returns (':' never
#: appears in a Key Vault secret name, so the two cannot collide).
BLOB_VALUE_PREFIX = "blob:"


def secret_value_key(name: str) -> str:
    """The key holding a secret's value: ``pulumi config set --secret mikit:secret-<name>``."""
    return f"secret-{name}"


def blob_key(account: str, container: str, name: str) -> str:
    """``<account key>/<container>/<path>``: how outputs and the matrix name a blob."""
    return f"{account}/{container}/{name}"


def blob_value_key(account: str, container: str, name: str) -> str:
    """The key holding a seeded blob's content:
    ``pulumi config set --secret mikit:blob-<account key>-<container>-<path>``, where every
    character of the path other than a letter or digit becomes ``-`` (so the key needs no
    quoting and no ``--path``). Two blobs mapping to one key are refused by :func:`check`.
    """
    slug = re.sub(r"[^A-Za-z0-9]", "-", name)
    return f"blob-{account}-{container}-{slug}"


def secret_config_keys(config: Mapping[str, Any]) -> list[str]:
    """Every secret-config key a stack's raw config (``mikit:``-prefixed keys, as in a stack
    file) needs a value for: ``mikit:secret-<name>`` per ``mikit:secrets`` entry, then
    ``mikit:blob-...`` per seeded blob of ``mikit:storageAccounts``. The bootstrap's
    next steps and preflight list them from here, so a new kind cannot be forgotten."""
    keys = [f"{NAMESPACE}:{secret_value_key(str(n))}" for n in config.get("mikit:secrets") or []]
    for account, raw in (config.get("mikit:storageAccounts") or {}).items():
        for blob in (raw or {}).get("blobs") or []:
            container, name = str(blob.get("container")), str(blob.get("name"))
            keys.append(f"{NAMESPACE}:{blob_value_key(str(account), container, name)}")
    return keys
