"""Read a ``stacks/Pulumi.<stack>.yaml`` file into the config mapping ``run_program`` takes.

Tests and the sandbox deploy run the stack program with the very config users deploy
with, so the topology under test cannot drift from the one in the stack files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from components.errors import ConfigError


def read_stack_document(path: Path | str) -> dict[str, Any]:
    """The ``config:`` block of a stack file as written, encrypted values included.

    A stack file is a YAML mapping whose ``config`` is a mapping; anything else (a list,
    a scalar, a file that is not YAML) is a :class:`ConfigError` naming the file.
    """
    file = Path(path)
    try:
        document = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            "stack file",
            str(file),
            f"cannot be read ({reason})",
            "give a Pulumi.<stack>.yaml file (YAML with a config: mapping)",
        ) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            "stack file",
            str(file),
            f"holds a YAML {_yaml_kind(document)}, not a mapping",
            "write it as a mapping with a config: key, e.g. 'config:' then "
            "'  mikit:location: westeurope' on the next line",
        )
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(
            f"{file.name}: config",
            config,
            f"is a YAML {_yaml_kind(config)}, not a mapping",
            "write `config:` as key: value lines (mikit:location: westeurope)",
        )
    return {str(key): value for key, value in config.items()}


def _yaml_kind(value: object) -> str:
    return "list" if isinstance(value, list) else type(value).__name__


def is_encrypted(value: object) -> bool:
    """A ``{secure: v1:...}`` value, which only the Pulumi CLI can decrypt."""
    return isinstance(value, dict) and set(value) == {"secure"}


def load_stack_config(path: Path | str) -> dict[str, Any]:
    """The ``config:`` block of a stack file, keys as written (``mikit:vms``).

    Encrypted values (``{secure: v1:...}``) cannot be decrypted without the Pulumi CLI,
    so they are left out: callers supply those values themselves (as tests do).
    """
    return {
        key: value for key, value in read_stack_document(path).items() if not is_encrypted(value)
    }
