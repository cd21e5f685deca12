"""Small constructors for lifecycle steps: an action that may raise, and an observation."""

from __future__ import annotations

import time
from collections.abc import Callable

from verify.results import Step


def timed(name: str, expected: str, action: Callable[[], str | None], done: str = "done") -> Step:
    """Run an action (returning what it observed, or None for ``done``); an exception
    is a failed step, not a crash, so the report still shows everything before it."""
    started = time.monotonic()
    try:
        observed = action() or done
        passed = True
    except Exception as exc:
        observed, passed = f"failed: {type(exc).__name__}: {exc}", False
    return Step(name, expected, observed, passed, time.monotonic() - started)


def observed_step(name: str, expected: str, ok: bool, observed: str) -> Step:
    return Step(name, expected, observed, ok)
