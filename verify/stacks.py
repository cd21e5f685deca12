"""Which topology a run verifies: ``--stack NAME`` / ``--stack-file PATH``, resolved up front.

A run names its stack file and checks all of it (every key, every value, the roles)
before anything starts, so a typo fails in a second with the key and the fix instead of
deploying the wrong topology, and the report says exactly what was verified.

* ``--stack-file PATH``: that file (anywhere: the user's own repository); the stack name
  is taken from ``Pulumi.<name>.yaml`` unless ``--stack`` gives one.
* ``--stack NAME``: ``stacks/Pulumi.NAME.yaml`` under the current directory (Pulumi's
  ``stackConfigDir`` of this project); a missing file is an error naming the path and
  the stacks that do exist, on the sandbox target. On Azure the outputs come from
  ``pulumi stack output``, so there the stack file is checked when present.
* neither: the sandbox target uses ``stacks/Pulumi.sandbox.yaml`` here, or the copy
  shipped in the package (so an installed ``mikit-verify`` works from an empty directory);
  Azure uses the selected Pulumi stack.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config_rules import config_set_command, did_you_mean
from components.errors import NOT_SET, ConfigError
from components.mockruntime.stack_files import is_encrypted, read_stack_document
from components.role_lookup import RoleResolver
from components.stack_config import KEYS, NAMESPACE, secret_value_key, validate

REPO = Path(__file__).resolve().parents[1]
#: Files the wheel ships next to this module (see hatch_build.py); absent in a checkout.
BUNDLED = Path(__file__).resolve().parent / "_bundled"
STACKS_DIR = "stacks"
DEFAULT_SANDBOX_STACK = "sandbox"


def _first_existing(*paths: Path) -> Path:
    return next((p for p in paths if p.exists()), paths[-1])


#: The stack program ``pulumi up`` runs; in the wheel, the same file shipped as data.
PROGRAM = _first_existing(BUNDLED / "__main__.py", REPO / "__main__.py")
#: The throw-away sandbox stack (the dev topology with demo values).
PACKAGED_SANDBOX_STACK = _first_existing(
    BUNDLED / STACKS_DIR / "Pulumi.sandbox.yaml", REPO / STACKS_DIR / "Pulumi.sandbox.yaml"
)


@dataclass(frozen=True)
class StackSelection:
    """The stack a run verifies: its name and the file its topology comes from."""

    name: str | None
    path: Path | None
    #: Value keys (``mikit:secret-*``, ``mikit:blob-*``) the file holds encrypted: only
    #: the Pulumi CLI can decrypt them.
    encrypted_keys: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or "(selected)"

    def describe(self) -> str:
        return f"{self.label} ({self.path})" if self.path else self.label


def stack_file_name(name: str) -> str:
    return f"Pulumi.{name}.yaml"


def available_stacks(directory: Path) -> list[str]:
    """Stack names with a ``Pulumi.<name>.yaml`` in ``directory``."""
    if not directory.is_dir():
        return []
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in directory.glob("Pulumi.*.yaml"))


def name_from_path(path: Path) -> str:
    """``Pulumi.mine.yaml`` -> ``mine``; any other file name -> its stem."""
    name = path.name
    if name.startswith("Pulumi.") and name.endswith((".yaml", ".yml")):
        return name[len("Pulumi.") :].rsplit(".", 1)[0]
    return path.stem


def resolve(
    target: str,
    stack: str | None,
    stack_file: Path | None,
    cwd: Path | None = None,
) -> tuple[str | None, Path | None]:
    """The stack name and file a run means, or a ConfigError saying what exists."""
    here = cwd or Path.cwd()
    if stack is not None and not stack.strip():
        raise ConfigError("--stack", stack, "is empty", "name a stack, e.g. --stack dev")
    if stack_file is not None:
        path = stack_file if stack_file.is_absolute() else here / stack_file
        if not path.is_file():
            problem = "is a directory" if path.is_dir() else "does not exist"
            raise ConfigError(
                "--stack-file",
                str(stack_file),
                f"{problem} ({path})",
                "give the path of a Pulumi.<stack>.yaml file",
            )
        return (stack or name_from_path(path)), path
    stacks_dir = here / STACKS_DIR
    if stack is None:
        if target != "sandbox":
            return None, None
        local = stacks_dir / stack_file_name(DEFAULT_SANDBOX_STACK)
        return DEFAULT_SANDBOX_STACK, local if local.is_file() else PACKAGED_SANDBOX_STACK
    path = stacks_dir / stack_file_name(stack)
    if path.is_file():
        return stack, path
    if stack == DEFAULT_SANDBOX_STACK and target == "sandbox":
        return stack, PACKAGED_SANDBOX_STACK
    if target != "sandbox":
        return stack, None  # outputs come from `pulumi stack output --stack NAME`
    found = available_stacks(stacks_dir)
    listed = (", ".join(found) if found else f"none in {stacks_dir}") + (
        f"; built in: {DEFAULT_SANDBOX_STACK}"
    )
    raise ConfigError(
        "--stack",
        stack,
        f"has no stack file: {path} does not exist (stacks there: {listed})",
        f"{did_you_mean(stack, found)}pass an existing stack, or --stack-file <path> "
        "for a stack file elsewhere",
    )


def config_strings(config: Mapping[str, Any]) -> dict[str, str]:
    """Config values as the Pulumi CLI hands them to a program: strings, structures as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}


def check_namespaces(config: Mapping[str, Any], path: Path) -> None:
    """A key without a namespace is read by no program here: say which one was meant."""
    for key in config:
        if ":" not in key:
            if key in KEYS:
                fix = f"write it as {NAMESPACE}:{key}"
            else:
                fix = f"{did_you_mean(key, KEYS)}write it as {NAMESPACE}:<key>"
            raise ConfigError(
                f"{path.name}: {key}",
                config[key],
                f"has no namespace, so the stack program never reads it (it reads {NAMESPACE}:*)",
                fix,
            )


def load_selection(
    target: str,
    stack: str | None,
    stack_file: Path | None,
    resolver: RoleResolver,
    cwd: Path | None = None,
) -> StackSelection:
    """Resolve and fully validate the stack, before anything starts.

    Encrypted secret values are only known to the Pulumi CLI; for validation they count
    as set. The sandbox target gives them throw-away values of its own (see
    :func:`sandbox_overrides`).
    """
    name, path = resolve(target, stack, stack_file, cwd)
    if path is None:
        return StackSelection(name, None)
    document = read_stack_document(path)
    check_namespaces(document, path)
    encrypted = tuple(
        k
        for k, v in document.items()
        if k.startswith((f"{NAMESPACE}:secret-", f"{NAMESPACE}:blob-")) and is_encrypted(v)
    )
    plain = {k: v for k, v in document.items() if not is_encrypted(v)}
    strings = config_strings(plain)
    for key in encrypted:
        strings[key] = "(encrypted)"
    cfg, _ = validate(strings, resolver)
    if target == "sandbox":
        for secret in cfg.secrets:
            key = f"{NAMESPACE}:{secret_value_key(secret)}"
            if key not in strings:
                raise ConfigError(
                    key,
                    NOT_SET,
                    f"is not set in {path}, so secret {secret!r} has no value to deploy",
                    f"add '{key}: <value>' to the file (the sandbox is local and throw-away), "
                    f"or {config_set_command(key, secret=True)} --stack {name}",
                )
    return StackSelection(name, path, encrypted, plain)


def sandbox_overrides(selection: StackSelection) -> dict[str, str]:
    """Throw-away values for the secrets and blob contents a stack file holds encrypted.

    The sandbox cannot decrypt them and does not need the real ones: the check compares
    each value's fingerprint with the one the deploy exported, whatever the value is.
    """
    return {key: f"sandbox-{secrets.token_hex(8)}" for key in selection.encrypted_keys}
