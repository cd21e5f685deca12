"""The cell model: one host, presenting one identity, and one target, with the verdicts.

A *host* is where the probe runs and whose identities it presents: a VM today (``host_kind``
``vm``); a scale-set instance, an app or a cluster workload are further host kinds. A
*target* is what the identity tries to read: a Key Vault secret (``kind`` ``secret``, named
by the secret) or a blob (``kind`` ``blob``, named by its key
``<account>/<container>/<path>``). Messages name all four so a failure reads on its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from verify.model import Expected

#: Said in every report next to a verdict whose value could not be compared.
VALUE_NOT_COMPARED = "value not compared"


@dataclass(frozen=True)
class Expectation:
    """One cell of the access matrix: this host, presenting this identity, and this target."""

    host: str
    identity: str
    #: What the probe is given for the identity: ``system`` or a client ID.
    selector: str
    principal_id: str | None
    target: str
    expected: Expected
    #: The ARM ID a token's ``xms_mirid`` names (the host for ``system``, else the identity).
    resource_id: str | None = None
    #: The data plane: ``secret`` (Key Vault) or ``blob`` (Blob Storage).
    kind: str = "secret"
    host_kind: str = "vm"


@dataclass
class CellResult:
    host: str
    identity: str
    target: str
    expected: str
    observed: str
    passed: bool
    detail: str
    http_status: int | None = None
    error_code: str | None = None
    attempts: int = 0
    waited_ms: int = 0
    fingerprint_match: bool | None = None
    #: Said in every report next to the verdict, e.g. :data:`VALUE_NOT_COMPARED`.
    note: str | None = None
    kind: str = "secret"
    host_kind: str = "vm"


@dataclass
class IdentityResult:
    """Were the host's tokens the ones the stack says this identity has, from the source
    this kind of host must use?"""

    host: str
    identity: str
    expected_principal: str | None
    observed_oid: str | None
    passed: bool
    detail: str
    claims: dict[str, Any] = field(default_factory=dict)
    expires_in_seconds: int | None = None
    #: Which credential source answered (``imds``, ``app_service``, ...), as the probe saw it.
    credential_source: str | None = None
    host_kind: str = "vm"


@dataclass
class CheckResult:
    cells: list[CellResult] = field(default_factory=list)
    identities: list[IdentityResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return (
            not self.errors
            and all(c.passed for c in self.cells)
            and all(i.passed for i in self.identities)
        )

    @property
    def failures(self) -> list[str]:
        return (
            list(self.errors)
            + [i.detail for i in self.identities if not i.passed]
            + [c.detail for c in self.cells if not c.passed]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "cells": [asdict(c) for c in self.cells],
            "identities": [asdict(i) for i in self.identities],
            "errors": list(self.errors),
        }


def host_of(exp: Expectation) -> str:
    """``vm 'web'``: the host as every message names it."""
    return f"{exp.host_kind} {exp.host!r}"


def where_of(exp: Expectation) -> str:
    """``vm 'a' identity 'system' secret 'db'`` / ``... blob 'st/c/p'``, for every message."""
    return f"{host_of(exp)} identity {exp.identity!r} {exp.kind} {exp.target!r}"
