"""Key Vault references: how App Service / Functions app settings name a secret.

The platform resolves ``@Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/<name>[/<version>])``
or ``@Microsoft.KeyVault(VaultName=<vault>;SecretName=<name>[;SecretVersion=<version>])``
with the site's system identity, or with the user-assigned identity its
``keyVaultReferenceIdentity`` names; a reference that does not resolve reaches the app as
the literal text. ARM lists each setting's resolution at
``.../sites/{app}/config/configreferences/appsettings`` with one of :data:`STATUSES`
(REST spec: Microsoft.Web ``KeyVaultReferenceResolutionStatus``).

One parser for the component (what it writes), the mock runtime and the sandbox (what they
resolve), so the three agree on the syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

PREFIX = "@Microsoft.KeyVault("

INITIALIZED = "Initialized"
RESOLVED = "Resolved"
INVALID_SYNTAX = "InvalidSyntax"
MSI_NOT_ENABLED = "MSINotEnabled"
VAULT_NOT_FOUND = "VaultNotFound"
SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 (a status)
SECRET_VERSION_NOT_FOUND = "SecretVersionNotFound"  # noqa: S105 (a status)
ACCESS_DENIED = "AccessToKeyVaultDenied"
OTHER_REASONS = "OtherReasons"
FETCH_TIMED_OUT = "FetchTimedOut"
UNAUTHORIZED_CLIENT = "UnauthorizedClient"
STATUSES = (
    INITIALIZED,
    RESOLVED,
    INVALID_SYNTAX,
    MSI_NOT_ENABLED,
    VAULT_NOT_FOUND,
    SECRET_NOT_FOUND,
    SECRET_VERSION_NOT_FOUND,
    ACCESS_DENIED,
    OTHER_REASONS,
    FETCH_TIMED_OUT,
    UNAUTHORIZED_CLIENT,
)

#: ``keyVaultReferenceIdentity`` value meaning the site's system identity.
SYSTEM_ASSIGNED = "SystemAssigned"

_VAULT_HOST = re.compile(r"^([A-Za-z0-9-]{3,24})\.vault\.azure\.net$", re.IGNORECASE)
_SECRET = re.compile(r"^[A-Za-z0-9-]{1,127}$")


@dataclass(frozen=True)
class ParsedReference:
    vault: str
    secret: str
    version: str | None = None
    #: The vault's URL as written (``https://<host>/``); None for the VaultName form.
    vault_url: str | None = None


def reference_value(secret_uri: str) -> str:
    """The app-setting value that makes App Service fetch ``secret_uri`` from Key Vault."""
    return f"{PREFIX}SecretUri={secret_uri})"


def is_reference(value: str) -> bool:
    return value.strip().startswith(PREFIX)


def parse_secret_uri(uri: str, *, any_host: bool = False) -> ParsedReference | None:
    """``https://<vault>.vault.azure.net/secrets/<name>[/<version>]`` (None if malformed).

    ``any_host`` accepts another host (the sandbox's loopback vault): the vault is then
    known only by its URL (``vault`` empty, ``vault_url`` set).
    """
    parts = urlsplit(uri.strip())
    host = parts.hostname or ""
    match = _VAULT_HOST.match(host)
    if parts.scheme != "https" or not host or (match is None and not any_host):
        return None
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) not in (2, 3) or segments[0] != "secrets" or not _SECRET.match(segments[1]):
        return None
    vault = match.group(1) if match else ""
    version = segments[2] if len(segments) == 3 else None
    netloc = parts.netloc
    return ParsedReference(vault, segments[1], version, f"https://{netloc}/")


def parse_reference(value: str, *, any_host: bool = False) -> ParsedReference | None:
    """The secret a ``@Microsoft.KeyVault(...)`` setting names; None when its syntax is
    invalid (what ARM reports as ``InvalidSyntax``). Call only on :func:`is_reference` values."""
    text = value.strip()
    if not text.startswith(PREFIX) or not text.endswith(")"):
        return None
    body = text[len(PREFIX) : -1]
    if body.startswith("SecretUri="):
        return parse_secret_uri(body.removeprefix("SecretUri="), any_host=any_host)
    fields: dict[str, str] = {}
    for part in body.split(";"):
        key, eq, val = part.partition("=")
        if not eq or not val or key in fields:
            return None
        fields[key] = val
    allowed = {"VaultName", "SecretName", "SecretVersion"}
    if not {"VaultName", "SecretName"} <= fields.keys() or not fields.keys() <= allowed:
        return None
    if not _SECRET.match(fields["SecretName"]):
        return None
    return ParsedReference(fields["VaultName"], fields["SecretName"], fields.get("SecretVersion"))
