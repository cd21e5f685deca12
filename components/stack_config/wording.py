"""Schema failures in the project's words: pydantic's first error as a :class:`ConfigError`
naming the ``mikit:`` key, the value and the fix (never pydantic's own text)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from components.config_rules import config_set_command, did_you_mean
from components.errors import NOT_SET, ConfigError
from components.stack_config.keys import NAMESPACE
from components.stack_config.schema import StackConfig

#: pydantic error type -> (problem, fix) in our words; ``{ctx}`` fields come from pydantic.
_WORDING: Mapping[str, tuple[str, str]] = {
    "bool_parsing": ("is not true or false", "use true or false"),
    "bool_type": ("is not true or false", "use true or false"),
    "int_parsing": ("is not a whole number", "use a whole number"),
    "int_type": ("is not a whole number", "use a whole number"),
    "int_from_float": ("is not a whole number", "use a whole number"),
    "string_type": ("is not a string", "write it as text (quote it in YAML)"),
    "list_type": ("is not a list", "write a YAML list: [a, b] or one '- item' per line"),
    "dict_type": ("is not a mapping", "write key: value pairs"),
    "model_type": ("is not a mapping", "write key: value pairs"),
    "greater_than_equal": ("is below the minimum {ge}", "use a number from {ge}"),
    "less_than_equal": ("is above the maximum {le}", "use a number up to {le}"),
    "literal_error": ("is not one of {expected}", "use one of {expected}"),
}


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys accepted at the mapping that holds ``loc`` (for 'unknown key' errors)."""
    model: Any = StackConfig
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        field = fields.get(str(part))
        if field is None:
            continue  # a user key in a dict, e.g. vms.<key>
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        inner = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = inner[0] if inner else None
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _first_required(loc: tuple[int | str, ...]) -> str | None:
    """For a missing section (``vault``), its first required key (``name``), if any."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        field = fields.get(str(part))
        if field is None:
            continue
        annotation = field.annotation
        inner = [
            a
            for a in (annotation, *getattr(annotation, "__args__", ()))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        model = inner[0] if inner else None
    if model is None or model is StackConfig:
        return None
    required = [f.alias or n for n, f in model.model_fields.items() if f.is_required()]
    return required[0] if required else None


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _from_pydantic(error: ValidationError) -> ConfigError:
    """The first schema failure as a ConfigError in the project's words (never pydantic's)."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = _dotted(loc)
    kind = first["type"]
    if kind == "missing":
        first_part = _first_required(loc)
        command = config_set_command(f"{key}.{first_part}" if first_part else key)
        also = " and its other keys" if first_part else ""
        return ConfigError(
            key,
            NOT_SET,
            "is required but not set",
            f"set it: {command}{also} (see docs/stack-config.md)",
        )
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        hint = did_you_mean(str(loc[-1]), allowed)
        return ConfigError(
            key,
            first["input"],
            "is not a known setting",
            f"{hint}remove it or fix its spelling; allowed here: "
            + (", ".join(allowed) or "(see docs/stack-config.md)"),
        )
    if loc and loc[-1] == "userAssigned" and kind == "value_error":
        return ConfigError(
            key,
            first.get("input"),
            "is an empty list",
            "list at least one identity key (from mikit:identities), or leave the key out",
        )
    if kind == "value_error":
        problem = str(first["msg"]).removeprefix("Value error, ").rstrip(".")
        return ConfigError(key, first.get("input"), problem, "see docs/stack-config.md")
    ctx = {k: v for k, v in (first.get("ctx") or {}).items()}
    problem, fix = _WORDING.get(kind, ("has the wrong type", "see docs/stack-config.md"))
    return ConfigError(key, first.get("input"), problem.format(**ctx), fix.format(**ctx))


def parse(raw: Mapping[str, Any]) -> StackConfig:
    """Validate raw config values (keys without the namespace) into a StackConfig."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise _from_pydantic(exc) from None
