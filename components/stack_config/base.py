"""The base of every stack-config model: camelCase keys, unknown keys refused."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from components.errors import ConfigError


class ConfigModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


def unique(values: list[str], field: str, norm: Callable[[str], str]) -> None:
    """Refuse the second of two values equal after ``norm`` (names Azure compares so)."""
    seen: set[str] = set()
    for value in values:
        if norm(value) in seen:
            raise ConfigError(field, value, "appears twice", "give each a distinct name")
        seen.add(norm(value))


def choices(prefix: str, keys: Mapping[str, Any] | list[str]) -> str:
    """``use one of 'a', 'b'`` (or ``declare it first`` when there is nothing to use)."""
    listed = ", ".join(repr(k) for k in keys)
    return f"{prefix} {listed}" if listed else "declare it first"
