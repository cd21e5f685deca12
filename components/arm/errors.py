"""The error ARM answers with: an HTTP status, ARM's error code and its message.

Its own module so the rule functions (:mod:`components.arm.rules`), the in-memory model
(:mod:`components.arm.memory`) and the sandbox can all raise and catch the same type.
"""

from __future__ import annotations


class ArmError(Exception):
    """An error ARM would answer with (status, code, message), e.g. a 409 conflict."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")
