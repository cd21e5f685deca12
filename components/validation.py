"""Input checks Azure would otherwise make minutes into a deployment.

Every check raises :class:`ConfigError` naming the field, the value and the fix, and
runs while arguments are read, before any resource is registered: a typo in a vault
name should cost a second, not a half-created topology.
"""

from __future__ import annotations

import re

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from components.errors import ConfigError
from components.vm_sizes import VmSizeCatalog

_VAULT = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
_SECRET = re.compile(r"^[A-Za-z0-9-]{1,127}$")
_IDENTITY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$")
_VM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}[A-Za-z0-9]$|^[A-Za-z0-9]$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{0,89}[-\w_()]$")
_LINUX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_VM_SIZE = re.compile(r"^(Standard|Basic)_[A-Za-z0-9_]+$", re.IGNORECASE)
_LOGICAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")

# Names Azure refuses as a VM administrator (Microsoft's documented list, lower-cased).
FORBIDDEN_ADMIN_USERNAMES = frozenset(
    {
        "1", "123", "a", "actuser", "adm", "admin", "admin1", "admin2", "administrator",
        "aspnet", "backup", "console", "david", "guest", "john", "owner", "root", "server",
        "sql", "support", "support_388945a0", "sys", "test", "test1", "test2", "test3",
        "user", "user1", "user2", "user3", "user4", "user5",
    }
)  # fmt: skip

MIN_RSA_BITS = 2048


def vault_name(value: object, field: str = "vault.name") -> str:
    """3-24 letters/digits/hyphens, starts with a letter, ends alphanumeric, no ``--``."""
    fix = (
        "use 3-24 letters, digits and hyphens, starting with a letter, not ending with a "
        "hyphen and without '--' (vault names are global: add a short unique suffix)"
    )
    if not isinstance(value, str) or not _VAULT.match(value):
        raise ConfigError(field, value, "is not a valid Key Vault name", fix)
    if "--" in value:
        raise ConfigError(field, value, "contains consecutive hyphens", fix)
    return value


def secret_name(value: object, field: str = "secret name") -> str:
    if not isinstance(value, str) or not _SECRET.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid Key Vault secret name",
            "use 1-127 letters, digits and hyphens (no underscores, dots or spaces)",
        )
    return value


def identity_name(value: object, field: str = "identity name") -> str:
    if not isinstance(value, str) or not _IDENTITY.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid user-assigned identity name",
            "use 3-128 letters, digits, hyphens and underscores, starting with a letter or digit",
        )
    return value


def vm_name(value: object, field: str = "vm name") -> str:
    if not isinstance(value, str) or not _VM.match(value) or value.isdigit():
        raise ConfigError(
            field,
            value,
            "is not a valid Linux VM name",
            "use 1-64 letters, digits and hyphens, not starting or ending with a hyphen "
            "and not only digits",
        )
    return value


def vm_size(value: object, field: str = "vmSize") -> str:
    """A size from the shipped list (``components/data/vm_sizes.json``), as Azure spells it.

    Whether the region offers it, only Azure knows (``az vm list-skus``). A listed
    previous-generation size is accepted (it still deploys); see
    :func:`is_previous_generation_vm_size`.
    """
    catalog = VmSizeCatalog.shipped()
    if not isinstance(value, str) or not _VM_SIZE.match(value):
        raise ConfigError(
            field, value, "is not a VM size", f"use e.g. {catalog.default!r} (Standard_<size>)"
        )
    found = catalog.lookup(value)
    if found is None:
        near = catalog.close_matches(value)
        hint = f"did you mean {', '.join(near)}? " if near else ""
        raise ConfigError(
            field,
            value,
            "is not a VM size this toolkit knows (components/data/vm_sizes.json)",
            f"{hint}use a listed size such as {catalog.default!r}, or add the size to that "
            "list if Azure offers it (az vm list-skus --location <region> --size <size>)",
        )
    return found[0]


def is_previous_generation_vm_size(size: str) -> bool:
    """True for a listed size of a previous-generation series (e.g. B-series v1)."""
    found = VmSizeCatalog.shipped().lookup(size)
    return found is not None and found[1] == "previous"


def resource_group_name(value: object, field: str = "resourceGroup") -> str:
    if not isinstance(value, str) or not _RESOURCE_GROUP.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid resource group name",
            "use 1-90 letters, digits, '-', '_', '.', '(' or ')', not ending with '.'",
        )
    return value


def logical_key(value: object, field: str) -> str:
    """Keys users pick for VMs, identities and grants; they become Pulumi resource names."""
    if not isinstance(value, str) or not _LOGICAL.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid key",
            "use 1-63 letters, digits, '-' and '_', starting with a letter or digit",
        )
    return value


def admin_username(value: object, field: str = "adminUsername") -> str:
    """A Linux admin name Azure accepts: not reserved, lower-case POSIX form, 1-32 characters."""
    if not isinstance(value, str) or not _LINUX_USER.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid Linux user name",
            "use 1-32 lower-case letters, digits, '_' or '-', starting with a letter or '_'",
        )
    if value in FORBIDDEN_ADMIN_USERNAMES:
        raise ConfigError(
            field,
            value,
            "is a user name Azure reserves and refuses for VM administrators",
            "pick a personal or service name such as 'azureuser' or 'opsadmin'",
        )
    return value


def ssh_public_key(value: object, field: str = "sshPublicKey") -> str:
    """An OpenSSH public key line Azure accepts: RSA >= 2048 bits, Ed25519 or ECDSA.

    Parsed with ``cryptography`` so a truncated paste or a private key fails here,
    not as an opaque ``InvalidParameter`` from the compute API.
    """
    fix = (
        "paste the single line of your *.pub file, e.g. 'ssh-ed25519 AAAAC3... you@host' "
        "(create one with: ssh-keygen -t ed25519)"
    )
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(field, value, "is empty or not text", fix)
    shown = value if len(value) <= 60 else value[:57] + "..."
    if "PRIVATE KEY" in value:
        raise ConfigError(field, "<private key, not shown>", "is a private key", fix)
    try:
        key = load_ssh_public_key(value.strip().encode())
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(field, shown, f"is not an OpenSSH public key ({exc})", fix) from exc
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ConfigError(
            field,
            shown,
            f"is a {key.key_size}-bit RSA key; Azure requires at least {MIN_RSA_BITS} bits",
            fix,
        )
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise ConfigError(field, shown, "is a key type Azure Linux VMs do not accept", fix)
    return value.strip()


# -- Blob Storage (Microsoft: "Naming and referencing containers, blobs, and metadata";
#    "Manage and find Azure Blob data with blob index tags") -------------------------------

_STORAGE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_TAG_CHARS = re.compile(r"^[A-Za-z0-9 +\-./:=_]*$")
MAX_BLOB_NAME = 1024
MAX_BLOB_SEGMENTS = 254
MAX_BLOB_TAGS = 10


def storage_account_name(value: object, field: str = "storage account name") -> str:
    if not isinstance(value, str) or not _STORAGE_ACCOUNT.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid storage account name",
            "use 3-24 lowercase letters and digits only (names are global: add a short "
            "unique suffix)",
        )
    return value


def container_name(value: object, field: str = "container name") -> str:
    if not isinstance(value, str) or not _CONTAINER.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid blob container name",
            "use 3-63 lowercase letters, digits and hyphens, starting with a letter or digit, "
            "each hyphen between two letters or digits (no '--', no trailing '-')",
        )
    return value


def blob_name(value: object, field: str = "blob name") -> str:
    """1-1024 characters, at most 254 path segments, not ending in '.' or '/'."""
    fix = (
        "use 1-1024 characters with at most 254 '/'-separated segments, no empty segment "
        "and not ending with '.' or '/', e.g. 'reports/2026/q1.csv'"
    )
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_BLOB_NAME:
        raise ConfigError(field, value, "is not a valid blob name", fix)
    segments = value.split("/")
    if len(segments) > MAX_BLOB_SEGMENTS or "" in segments:
        raise ConfigError(field, value, "has an empty or too many path segments", fix)
    if value.endswith((".", "/")) or any(ord(c) < 0x20 or c == "\\" for c in value):
        # Microsoft: avoid names ending in a dot or slash; control characters and '\'
        # are not valid in a URL path the clients build.
        raise ConfigError(field, value, "is not a valid blob name", fix)
    return value


def blob_index_tags(value: object, field: str = "tags") -> dict[str, str]:
    """At most 10 tags; keys 1-128, values 0-256 characters of
    letters, digits, space and ``+ - . / : = _``."""
    fix = (
        "give at most 10 tags; keys 1-128 and values 0-256 characters using letters, digits, "
        "spaces and + - . / : = _"
    )
    if not isinstance(value, dict) or len(value) > MAX_BLOB_TAGS:
        raise ConfigError(field, value, "is not a valid set of blob index tags", fix)
    for key, tag in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 128 or not _TAG_CHARS.match(key):
            raise ConfigError(f"{field}.{key}", key, "is not a valid blob index tag key", fix)
        if not isinstance(tag, str) or len(tag) > 256 or not _TAG_CHARS.match(tag):
            raise ConfigError(f"{field}.{key}", tag, "is not a valid blob index tag value", fix)
    return dict(value)
