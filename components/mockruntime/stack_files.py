"""Read a ``stacks/Pulumi.<stack>.yaml`` file into the config mapping ``run_program`` takes.

Tests and the sandbox deploy run the stack program with the very config users deploy
with, so the topology under test cannot drift from the one in the stack files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from components.errors import ConfigError


def load_stack_config(path: Path | str) -> dict[str, Any]:
    """The ``config:`` block of a stack file, keys as written (``mikit:vms``).

    Encrypted values (``{secure: v1:...}``) cannot be decrypted without the Pulumi CLI,
    so they are left out: callers supply those values themselves (as tests do).
    """
    file = Path(path)
    try:
        document = yaml.safe_load(file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            "stack file", str(file), f"cannot be read ({exc})", "give a Pulumi.<stack>.yaml path"
        ) from exc
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(
            f"{file.name}: config", config, "is not a mapping", "write `config:` as key: value"
        )
    return {
        key: value
        for key, value in config.items()
        if not (isinstance(value, dict) and set(value) == {"secure"})
    }
