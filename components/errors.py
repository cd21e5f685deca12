"""The one error type raised for bad input, before any resource is registered.

Every message names the field, the offending value and how to fix it, so a user who
mistyped a stack config key learns what to change without reading our source.
"""

from __future__ import annotations

from typing import Any


class _NotSet:
    """The value of a required setting nobody set (rendered as "is not set", not None)."""

    def __repr__(self) -> str:
        return "(not set)"


#: Pass as ``value`` when the problem is that nothing was given at all.
NOT_SET: Any = _NotSet()


class ConfigError(ValueError):
    """Bad input to a component or to the stack config.

    Raised during argument validation, i.e. before any Pulumi resource is registered,
    so a failed run never leaves a half-created topology behind.
    """

    def __init__(self, field: str, value: Any, problem: str, fix: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix
        shown = "" if value is NOT_SET else f" {value!r}"
        super().__init__(f"{field}:{shown} {problem}. Fix: {fix}")
