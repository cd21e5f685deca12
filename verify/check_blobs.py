"""Judging one blob cell: Blob Storage's evidence rules, apart from Key Vault's.

* **allowed** holds only when the blob was read AND the SHA-256 the probe reports equals
  the stack's ``blob_fingerprints`` entry (the content is secret configuration: a read of
  something else proves nothing about this blob). With the fingerprints hidden, only
  ``--allow-unverified-values`` lets a read pass, and says so;
* **denied** holds only for Blob Storage's 403 ``AuthorizationPermissionMismatch``
  (RBAC, conditions included, found no grant); a read is access nobody granted;
* everything else (401, ``AuthorizationFailure`` and other 403s, 5xx, resets, timeouts,
  a missing blob) is inconclusive and fails, with the status and code that were seen;
* the storage token must be the stack's principal (its ``oid``) and for
  ``https://storage.azure.com``, or the probe proved something about another identity.
"""

from __future__ import annotations

from typing import Any

from verify.check import (
    HIDDEN_FINGERPRINTS_FIX,
    VALUE_NOT_COMPARED,
    CellResult,
    Expectation,
    where_of,
)
from verify.model import OUTCOME_FOR, IdentityReport, SecretReport, StackOutputs

BLOB_DENIAL = (403, "AuthorizationPermissionMismatch")
STORAGE_AUDIENCES = ("https://storage.azure.com", "https://storage.azure.com/")


def blob_denial_proven(seen: SecretReport) -> bool:
    """Only 403 ``AuthorizationPermissionMismatch`` proves "denied" (checked from the
    status and code, not only the probe's label, so no other 403 can become a verdict)."""
    status, code = BLOB_DENIAL
    return seen.outcome == "forbidden" and seen.http_status == status and seen.error_code == code


def _token_problems(exp: Expectation, claims: dict[str, Any] | None) -> list[str]:
    if not claims:
        return []
    problems = []
    oid = claims.get("oid")
    if exp.principal_id and str(oid).lower() != exp.principal_id.lower():
        problems.append(f"storage token oid {oid} is not the stack's principal {exp.principal_id}")
    aud = claims.get("aud")
    if aud is not None and str(aud) not in STORAGE_AUDIENCES:
        problems.append(f"storage token aud {aud} is not https://storage.azure.com")
    return problems


def _why_not(exp: Expectation, seen: SecretReport, observed: str) -> str:
    """What a cell that did not hold adds to its sentence."""
    text = f" ({seen.http_status} {seen.error_code})" if seen.error_code else ""
    if exp.expected == "denied" and observed == "read":
        return text + ": access nobody granted"
    if exp.expected == "allowed" and observed == "forbidden":
        return text + ": the grant does not work"
    if observed in ("inconclusive", "unreachable"):
        return text + (
            ": inconclusive, proves neither access nor denial (only content read with "
            "the stack's fingerprint, or 403 AuthorizationPermissionMismatch, is evidence)"
        )
    return text


def blob_cell(
    exp: Expectation, report: IdentityReport, outputs: StackOutputs, allow_unverified: bool
) -> CellResult:
    """The verdict on one blob cell from the probe's report of that identity."""
    where = where_of(exp)
    seen = report.blobs.get(exp.secret)
    if seen is None:
        return CellResult(
            exp.vm,
            exp.identity,
            exp.secret,
            exp.expected,
            "not_probed",
            False,
            f"{where}: expected {exp.expected}, the probe did not try this blob",
            kind="blob",
        )
    observed = seen.outcome
    if observed == "forbidden" and not blob_denial_proven(seen):
        observed = "inconclusive"
    want = OUTCOME_FOR[exp.expected]
    passed = observed == want
    detail = f"{where}: expected {exp.expected}, observed {observed}"
    fingerprints = outputs.blob_fingerprints
    fp_match: bool | None = None
    note: str | None = None
    if observed == "read" and fingerprints is not None and exp.secret in fingerprints:
        fp_match = seen.fingerprint == fingerprints[exp.secret]
        if not fp_match:
            passed = False
            detail += " but the content's fingerprint differs from the stack's"
    elif observed == "read" and exp.expected == "allowed":
        note = VALUE_NOT_COMPARED
        if allow_unverified and fingerprints is None:
            detail += f" ({VALUE_NOT_COMPARED}: --allow-unverified-values)"
        else:
            passed = False
            why = (
                HIDDEN_FINGERPRINTS_FIX.replace("secret fingerprints", "blob fingerprints")
                if fingerprints is None
                else "the stack exports no fingerprint for this blob"
            )
            detail += f" but the {VALUE_NOT_COMPARED}: {why}"
    problems = _token_problems(exp, report.blob_claims)
    if problems and observed == "read":
        passed = False
        detail += ": " + "; ".join(problems)
    if observed != want:
        detail += _why_not(exp, seen, observed)
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
        kind="blob",
    )
