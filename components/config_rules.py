"""Stack-config rules a pydantic schema cannot state, checked before anything is registered.

The schema (:mod:`components.stack_config`) sees only the keys it declares: Pulumi hands a
program each key it asks for, so a misspelt ``mikit:vmSzie`` used to be ignored and the
default VM size deployed without a word. These rules look at *every* key of the namespace
as the Pulumi CLI passes them (full key -> string), plus values the schema cannot judge
alone (a region name, an empty or undeclared secret value). Each failure is a
:class:`ConfigError` with the exact ``pulumi config`` command that fixes it.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from importlib import resources

from components.errors import ConfigError

NAMESPACE = "mikit"
SECRET_VALUE_PREFIX = "secret-"  # noqa: S105 (a key prefix, not a secret)
#: Seeded blob contents (``mikit:blob-<account>-<container>-<path>``); which exist depends
#: on ``mikit:storageAccounts``, so they are checked after the schema (check_blob_values).
BLOB_VALUE_PREFIX = "blob-"


def config_set_command(key: str, value: str = "<value>", *, secret: bool = False) -> str:
    """The ``pulumi config set`` line for ``key``; nested keys need ``--path`` and quoting."""
    flags = " --secret" if secret else ""
    if "." in key.partition(":")[2] or "[" in key:
        return f"pulumi config set{flags} --path '{key}' {value}"
    return f"pulumi config set{flags} {key} {value}"


def close_matches(word: str, options: Iterable[str], n: int = 3) -> list[str]:
    """Options spelt like ``word`` (case-insensitive), best first."""
    by_lower = {o.lower(): o for o in options}
    hits = difflib.get_close_matches(word.lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[h] for h in hits]


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` (or nothing) for the start of a fix."""
    close = close_matches(word, options)
    return f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""


# ------------------------------------------------------------------ keys and secrets


def check_keys(
    values: Mapping[str, str],
    schema_keys: Sequence[str],
    declared_secrets: Sequence[str] | None,
) -> None:
    """Every ``mikit:`` key is one the schema reads, and every secret value is declared.

    ``values`` maps full keys (``mikit:vms``) to the strings Pulumi passes. Keys of other
    namespaces (``azure-native:location``) belong to their providers and are left alone.
    Run before the schema so a typo is reported as a typo, not as a missing key.
    ``declared_secrets`` is None when ``mikit:secrets`` is malformed: the schema reports
    that, and secret values are not judged against it.
    """
    known = {f"{NAMESPACE}:{k}" for k in schema_keys}
    secret_keys = {f"{NAMESPACE}:{SECRET_VALUE_PREFIX}{s}" for s in declared_secrets or ()}
    for full_key in sorted(values):
        namespace, sep, bare = full_key.partition(":")
        if not sep or namespace != NAMESPACE or full_key in known:
            continue
        if bare.startswith(BLOB_VALUE_PREFIX):
            continue  # judged against the parsed storage accounts: check_blob_values
        if bare.startswith(SECRET_VALUE_PREFIX):
            name = bare.removeprefix(SECRET_VALUE_PREFIX)
            if full_key in secret_keys or declared_secrets is None:
                continue
            declared = ", ".join(repr(s) for s in declared_secrets) or "none"
            close = close_matches(name, declared_secrets)
            hint = f"did you mean {SECRET_VALUE_PREFIX}{close[0]}? " if close else ""
            raise ConfigError(
                full_key,
                "[secret]",
                f"is a value for secret {name!r}, which {NAMESPACE}:secrets does not declare "
                f"(declared: {declared})",
                f"{hint}add {name!r} to {NAMESPACE}:secrets, "
                f"or remove the value: pulumi config rm {full_key}",
            )
        close = close_matches(bare, schema_keys)
        hint = f"did you mean {' or '.join(f'{NAMESPACE}:{c}' for c in close)}? " if close else ""
        known_list = "" if close else "; known keys: " + ", ".join(sorted(schema_keys))
        raise ConfigError(
            full_key,
            _shown(values[full_key]),
            "is not a known setting",
            f"{hint}remove it (pulumi config rm {full_key}) or fix its spelling{known_list}",
        )


def check_blob_values(values: Mapping[str, str], declared: Mapping[str, str]) -> None:
    """Every ``mikit:blob-*`` value belongs to a blob ``mikit:storageAccounts`` declares.

    ``declared`` maps each declared blob's value key (bare) to its ``account/container/path``.
    """
    for full_key in sorted(values):
        namespace, _, bare = full_key.partition(":")
        if namespace != NAMESPACE or not bare.startswith(BLOB_VALUE_PREFIX) or bare in declared:
            continue
        close = close_matches(bare, declared)
        hint = f"did you mean {NAMESPACE}:{close[0]}? " if close else ""
        listed = ", ".join(sorted(declared.values())) or "none"
        raise ConfigError(
            full_key,
            "[secret]",
            f"is the content of a blob that {NAMESPACE}:storageAccounts does not declare "
            f"(declared blobs: {listed})",
            f"{hint}declare the blob under its account's blobs, or remove the value: "
            f"pulumi config rm {full_key}",
        )


def check_secret_values(values: Mapping[str, str], declared_secrets: Sequence[str]) -> None:
    """A declared secret's value, when set, is not empty (Key Vault would store "")."""
    for name in declared_secrets:
        key = f"{NAMESPACE}:{SECRET_VALUE_PREFIX}{name}"
        if key in values and not str(values[key]).strip():
            raise ConfigError(
                key,
                values[key],
                f"is empty, so secret {name!r} would be stored without a value",
                f"give it a value: {config_set_command(key, secret=True)}",
            )


def _shown(text: str) -> object:
    """A config string as the user wrote it (JSON structures decoded) for the message."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


# ------------------------------------------------------------------------- regions


@cache
def regions() -> frozenset[str]:
    """Azure public-cloud region names shipped in ``components/data/azure_regions.json``."""
    raw = resources.files("components.data").joinpath("azure_regions.json").read_text()
    return frozenset(json.loads(raw)["regions"])


def normalise_location(value: str) -> str:
    """ARM takes ``westeurope`` and ``West Europe`` alike: compare without case or spaces."""
    return value.replace(" ", "").lower()


def check_location(value: object, field: str) -> str:
    """A region Azure has (from Microsoft's regions list shipped with the package)."""
    if isinstance(value, str) and normalise_location(value) in regions():
        return value
    shown = normalise_location(value) if isinstance(value, str) else str(value)
    raise ConfigError(
        field,
        value,
        "is not an Azure region",
        f"{did_you_mean(shown, regions())}use a region's programmatic name, e.g. westeurope "
        "(`az account list-locations -o table`); the shipped list is "
        "components/data/azure_regions.json",
    )
