"""Every command-line argument checked before anything runs.

On Azure the lifecycle deletes resources, so a bad ``--propagation-wait`` found after the
run (as it once was) is found too late. Each check raises :class:`ConfigError` naming the
option, the value, the allowed range and the fix; the CLI turns it into exit code 2
without a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from components.errors import ConfigError

PARALLEL_RANGE = (1, 64)
PROPAGATION_WAIT_RANGE = (0.0, 3600.0)


def whole_number(option: str, text: str, low: int, high: int) -> int:
    """``text`` as an int within ``[low, high]``."""
    try:
        value = int(text, 10)
    except ValueError:
        raise ConfigError(
            option,
            text,
            f"is not a whole number (allowed: {low} to {high})",
            f"use e.g. {option} {low}",
        ) from None
    if not low <= value <= high:
        raise ConfigError(
            option,
            value,
            f"is out of range (allowed: {low} to {high})",
            f"use a number from {low} to {high}, e.g. {option} {min(max(value, low), high)}",
        )
    return value


def seconds(option: str, text: str, low: float, high: float) -> float:
    """``text`` as a finite number of seconds within ``[low, high]``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(
            option,
            text,
            f"is not a number of seconds (allowed: {low:g} to {high:g})",
            f"use e.g. {option} 120",
        )
    if not low <= value <= high:
        raise ConfigError(
            option,
            value,
            f"is out of range (allowed: {low:g} to {high:g} seconds)",
            f"use a number of seconds from {low:g} to {high:g}, e.g. {option} 120",
        )
    return value


def outputs_file(path: Path) -> dict[str, Any]:
    """``--outputs``: a readable file holding one JSON object (``pulumi stack output --json``)."""
    how = "save it with: pulumi stack output --json --show-secrets > outputs.json"
    if not path.is_file():
        problem = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError("--outputs", str(path), problem, how)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--outputs", str(path), f"cannot be read ({exc})", how) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            "--outputs",
            str(path),
            f"is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            how,
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            "--outputs", str(path), f"holds a JSON {type(data).__name__}, not an object", how
        )
    return data


def report_dir(path: Path) -> Path:
    """``--report-dir``: a directory (made now, so a bad path fails before the run)."""
    if path.exists() and not path.is_dir():
        raise ConfigError(
            "--report-dir",
            str(path),
            "names an existing file, not a directory",
            "give a directory (it is created if missing), e.g. --report-dir reports",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            "--report-dir",
            str(path),
            f"cannot be created ({exc.strerror or exc})",
            "give a directory you can write to",
        ) from None
    return path


def faults_file(path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(
            "--sandbox-faults",
            str(path),
            "is a directory" if path.is_dir() else "does not exist",
            "give a TOML or JSON fault plan file (see verify/sandbox/faults.py)",
        )
    return path


def check(args: argparse.Namespace) -> dict[str, Any] | None:
    """Validate and normalise ``args`` in place; returns the ``--outputs`` JSON if given."""
    if args.parallel is not None:
        args.parallel = whole_number("--parallel", args.parallel, *PARALLEL_RANGE)
    if getattr(args, "propagation_wait", None) is not None:
        args.propagation_wait = seconds(
            "--propagation-wait", args.propagation_wait, *PROPAGATION_WAIT_RANGE
        )
    outputs: dict[str, Any] | None = None
    if args.outputs is not None:
        if args.target != "azure":
            raise ConfigError(
                "--outputs",
                str(args.outputs),
                "only applies to --target azure",
                "drop it: the sandbox target deploys the stack program itself",
            )
        outputs = outputs_file(args.outputs)
    if args.sandbox_faults is not None:
        if args.target != "sandbox":
            raise ConfigError(
                "--sandbox-faults",
                str(args.sandbox_faults),
                "only applies to --target sandbox",
                "drop it, or use --target sandbox",
            )
        faults_file(args.sandbox_faults)
    report_dir(args.report_dir)
    return outputs
