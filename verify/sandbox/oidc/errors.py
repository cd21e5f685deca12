"""The OIDC issuer's error factory (it stands in for GitHub Actions' issuer).

GitHub's issuer answers errors as a plain JSON ``{"message": ...}``; the only errors this
stand-in gives are injected faults, rendered by :func:`fault_error_body`.
"""

from __future__ import annotations

from typing import Any


def error_body(message: str) -> dict[str, Any]:
    """The issuer's error document."""
    return {"message": message}


def fault_error_body(status: int) -> dict[str, Any]:
    """The issuer's body for an injected fault of ``status``."""
    return error_body(f"sandbox fault: HTTP {status}")
