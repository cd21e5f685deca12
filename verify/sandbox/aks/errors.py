"""The cluster issuers' error factory.

AKS's issuer is a static discovery document and key set behind a CDN: an unknown path is
a plain 404 and the only other errors are injected faults, rendered here as one small
JSON document.
"""

from __future__ import annotations

from typing import Any


def error_body(message: str) -> dict[str, Any]:
    """The issuer's error document."""
    return {"error": message}


def fault_error_body(status: int) -> dict[str, Any]:
    """The issuer's body for an injected fault of ``status``."""
    return error_body(f"sandbox fault: HTTP {status}")
