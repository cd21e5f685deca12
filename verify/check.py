"""Compare what the probes observed with what the stack says should be possible.

Both directions count: a grant that does not work fails, and so does access nobody
granted. A cell passes only when ``allowed`` was read (with the expected fingerprint when
the stack exported one) or ``denied`` was forbidden; every other combination fails with
a sentence naming the VM, identity, secret, expected and observed. The token's ``oid``
must be the principal the stack says the identity has; otherwise the probe proved
something about the wrong identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from verify.model import (
    OUTCOME_FOR,
    Expected,
    ProbeResult,
    SecretReport,
    StackOutputs,
    derive_matrix,
)

#: Key Vault's only proof of a denial (see :func:`keyvault_denial_proven`).
KEYVAULT_DENIAL = (403, "ForbiddenByRbac")
VALUE_NOT_COMPARED = "value not compared"
HIDDEN_FINGERPRINTS_FIX = (
    "the stack outputs hide the secret fingerprints (`[secret]`: outputs taken without "
    "--show-secrets), so a value that was read cannot be compared with the stack's; pass "
    "`pulumi stack output --json --show-secrets` (--outputs FILE), or accept unverified "
    "values explicitly with --allow-unverified-values"
)

VAULT_AUDIENCES = (
    "https://vault.azure.net",
    "https://vault.azure.net/",
    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",
)


@dataclass(frozen=True)
class Expectation:
    """One cell of the access matrix: this VM, presenting this identity, and this target.

    ``secret`` names the target: the secret's name, or for ``kind == "blob"`` the blob's
    key (``<account>/<container>/<path>``), so scenario code treats both alike.
    """

    vm: str
    identity: str
    selector: str
    principal_id: str | None
    secret: str
    expected: Expected
    resource_id: str | None = None
    kind: str = "secret"


@dataclass
class CellResult:
    vm: str
    identity: str
    secret: str
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
    #: ``secret`` or ``blob`` (then ``secret`` holds the blob key).
    kind: str = "secret"


@dataclass
class IdentityResult:
    """Was the token the one the stack says this VM's identity has?"""

    vm: str
    identity: str
    expected_principal: str | None
    observed_oid: str | None
    passed: bool
    detail: str
    claims: dict[str, Any] = field(default_factory=dict)
    expires_in_seconds: int | None = None


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


def expectations_from(outputs: StackOutputs, *, derived: bool = False) -> list[Expectation]:
    """The stack's exported matrix as expectations (or one derived from current grants)."""
    cells = derive_matrix(outputs) if derived else list(outputs.access_matrix)
    found: list[Expectation] = []
    for cell in cells:
        if cell.vm not in outputs.vms:
            continue
        if cell.identity != "system" and cell.identity not in outputs.identities:
            continue
        found.append(
            Expectation(
                vm=cell.vm,
                identity=cell.identity,
                selector=outputs.identity_selector(cell.identity),
                principal_id=cell.principal_id,
                secret=cell.target,
                expected=cell.expected,
                resource_id=outputs.resource_id_of(cell.vm, cell.identity),
                kind=cell.kind,
            )
        )
    return found


def matrix_consistency(outputs: StackOutputs) -> list[str]:
    """Disagreements between the exported matrix and the one the grants imply.

    The matrix is exported for readers; the grants are what ARM holds. If they differ
    the stack program has a bug and the check would be testing the wrong thing.
    """
    exported = {(c.vm, c.identity, c.kind, c.target): c.expected for c in outputs.access_matrix}
    derived = {(c.vm, c.identity, c.kind, c.target): c.expected for c in derive_matrix(outputs)}
    problems = []
    for key in sorted(set(exported) | set(derived)):
        if exported.get(key) != derived.get(key):
            vm, identity, kind, target = key
            problems.append(
                f"access_matrix says {exported.get(key) or 'nothing'} for vm {vm!r} identity "
                f"{identity!r} {kind} {target!r}, the grants imply "
                f"{derived.get(key) or 'nothing'}"
            )
    return problems


def _check_token(exp: Expectation, claims: Mapping[str, Any], tenant_id: str) -> list[str]:
    problems = []
    oid = claims.get("oid")
    if exp.principal_id and str(oid).lower() != exp.principal_id.lower():
        problems.append(f"token oid {oid} is not the stack's principal {exp.principal_id}")
    tid = claims.get("tid")
    if tid and str(tid).lower() != tenant_id.lower():
        problems.append(f"token tid {tid} is not the stack's tenant {tenant_id}")
    aud = claims.get("aud")
    if aud is not None and str(aud) not in VAULT_AUDIENCES:
        problems.append(f"token aud {aud} is not Key Vault")
    mirid = claims.get("xms_mirid")
    if mirid and exp.resource_id and str(mirid).lower() != exp.resource_id.lower():
        problems.append(f"token xms_mirid {mirid} is not {exp.resource_id}")
    return problems


def _identity_detail(
    exp: Expectation, problems: list[str], has_token: bool, error_code: str | None
) -> str:
    where = f"vm {exp.vm!r} identity {exp.identity!r}"
    if problems:
        return f"{where}: " + "; ".join(problems)
    if has_token:
        return f"{where}: token is the stack's principal"
    return f"{where}: no token ({error_code})"


def _not_probed(exp: Expectation, why: str) -> CellResult:
    """A cell that got no observation: it fails, saying why nothing was seen."""
    return CellResult(
        exp.vm,
        exp.identity,
        exp.secret,
        exp.expected,
        "not_probed",
        False,
        f"{where_of(exp)}: expected {exp.expected}, {why}",
        kind=exp.kind,
    )


def where_of(exp: Expectation) -> str:
    """``vm 'a' identity 'system' secret 'db'`` / ``... blob 'st/c/p'``, for every message."""
    return f"vm {exp.vm!r} identity {exp.identity!r} {exp.kind} {exp.secret!r}"


def compare(
    outputs: StackOutputs,
    expectations: Iterable[Expectation],
    probes: Mapping[str, ProbeResult | BaseException],
    *,
    allow_unverified_values: bool = False,
) -> CheckResult:
    """Judge every expectation against the probe result of its VM.

    ``allow_unverified_values``: accept a read whose value cannot be compared because the
    outputs hide the fingerprints (each such cell then says "value not compared");
    without it such a cell fails, saying how to get the fingerprints.
    """
    result = CheckResult()
    fingerprints = outputs.secret_fingerprints or {}
    seen_identity: set[tuple[str, str]] = set()
    for exp in expectations:
        probe = probes.get(exp.vm)
        if probe is None or isinstance(probe, BaseException):
            why = "was not probed" if probe is None else f"probe failed to run: {probe}"
            result.cells.append(_not_probed(exp, why))
            continue
        report = probe.for_selector(exp.selector)
        if report is None:
            result.cells.append(_not_probed(exp, "the probe did not try this identity"))
            continue
        if (exp.vm, exp.identity) not in seen_identity:
            seen_identity.add((exp.vm, exp.identity))
            claims = report.claims or {}
            token_problems = _check_token(exp, claims, outputs.tenant_id) if claims else []
            if exp.expected == "no_identity":
                # No token is the expectation; a token here is itself a failure below.
                token_problems = []
            result.identities.append(
                IdentityResult(
                    vm=exp.vm,
                    identity=exp.identity,
                    expected_principal=exp.principal_id,
                    observed_oid=claims.get("oid"),
                    passed=not token_problems,
                    detail=_identity_detail(
                        exp, token_problems, bool(claims), report.token.error_code
                    ),
                    claims=dict(claims),
                    expires_in_seconds=report.token.expires_in_seconds,
                )
            )
        if exp.kind == "blob":
            from verify import check_blobs  # noqa: PLC0415 - it builds on this module

            result.cells.append(
                check_blobs.blob_cell(exp, report, outputs, allow_unverified_values)
            )
            continue
        seen = report.secrets.get(exp.secret)
        if seen is None:
            result.cells.append(_not_probed(exp, "the probe did not try this secret"))
            continue
        result.cells.append(judge_keyvault_cell(exp, seen, fingerprints, allow_unverified_values))
    if any(c.note == VALUE_NOT_COMPARED and not c.passed for c in result.cells):
        result.errors.append(HIDDEN_FINGERPRINTS_FIX[0].upper() + HIDDEN_FINGERPRINTS_FIX[1:])
    return result


def keyvault_denial_proven(seen: SecretReport) -> bool:
    """Only Key Vault's 403 with inner code ``ForbiddenByRbac`` proves "denied".

    A 401 (token refused, challenge failed), any other 403 (firewall, policy), a 5xx, a
    reset or a timeout says nothing about what the role assignments allow. Checked here
    from the status and code, not only the probe's label, so an older probe on a VM
    cannot turn a 401 into a verdict.
    """
    status, inner = KEYVAULT_DENIAL
    code = (seen.error_code or "").rsplit("/", 1)[-1]
    return seen.outcome == "forbidden" and seen.http_status == status and code == inner


def _observed_label(seen: SecretReport) -> str:
    if seen.outcome == "forbidden" and not keyvault_denial_proven(seen):
        return "inconclusive"
    return seen.outcome


def judge_keyvault_cell(
    exp: Expectation,
    seen: SecretReport,
    fingerprints: Mapping[str, str],
    allow_unverified_values: bool,
) -> CellResult:
    """One Key Vault cell: the evidence rules for "allowed" and "denied".

    * allowed: the value was read AND its fingerprint equals the stack's; with no
      fingerprint to compare, only ``allow_unverified_values`` lets it pass, noted;
    * denied: :func:`keyvault_denial_proven`; a read is access nobody granted;
    * anything else is inconclusive and fails, with the status and code that were seen.
    """
    where = where_of(exp)
    observed = _observed_label(seen)
    want = OUTCOME_FOR[exp.expected]
    passed = observed == want
    fp_match: bool | None = None
    note: str | None = None
    detail = f"{where}: expected {exp.expected}, observed {observed}"
    code = f" ({seen.http_status} {seen.error_code})" if seen.error_code else ""
    if observed == "read" and exp.secret in fingerprints:
        fp_match = seen.fingerprint == fingerprints[exp.secret]
        if not fp_match:
            passed = False
            detail += " but the value's fingerprint differs from the stack's"
    elif observed == "read" and exp.expected == "allowed":
        note = VALUE_NOT_COMPARED
        if allow_unverified_values:
            detail += f" ({VALUE_NOT_COMPARED}: --allow-unverified-values)"
        else:
            passed = False
            detail += f" but the {VALUE_NOT_COMPARED}: {HIDDEN_FINGERPRINTS_FIX}"
    if observed != want:
        detail += code
        if exp.expected == "denied" and observed == "read":
            detail += ": access nobody granted"
        elif exp.expected == "allowed" and observed == "forbidden":
            detail += ": the grant does not work"
        elif observed in ("inconclusive", "unreachable"):
            detail += (
                ": inconclusive, proves neither access nor denial (only a value read, "
                "or Key Vault's 403 ForbiddenByRbac, is evidence)"
            )
    return CellResult(
        vm=exp.vm,
        identity=exp.identity,
        secret=exp.secret,
        expected=exp.expected,
        observed=observed,
        passed=passed,
        detail=detail,
        http_status=seen.http_status,
        error_code=seen.error_code,
        attempts=seen.attempts,
        waited_ms=seen.waited_ms,
        fingerprint_match=fp_match,
        note=note,
    )


def selectors_by_vm(expectations: Iterable[Expectation]) -> dict[str, list[str]]:
    """Which identities to probe on which VM, in a stable order."""
    plan: dict[str, list[str]] = {}
    for exp in expectations:
        selectors = plan.setdefault(exp.vm, [])
        if exp.selector not in selectors:
            selectors.append(exp.selector)
    return plan
