"""The one judge: every cell, of every plane and host kind, by the same rules.

* **allowed** holds only when the target was read AND its fingerprint equals the stack's
  (:class:`verify.evidence.plane.Plane` says which output holds them). With the
  fingerprints hidden, only ``allow_unverified_values`` lets a read pass, and says so;
* **denied** holds only for the plane's proof of a denial (Key Vault 403
  ``ForbiddenByRbac``, Blob 403 ``AuthorizationPermissionMismatch``); a read is access
  nobody granted;
* anything else is inconclusive and fails, with the status and code that were seen;
* each token the host presented must be the stack's principal (``oid``), tenant,
  audience and resource (``xms_mirid``), and must come from the credential source its
  host kind uses (:mod:`verify.evidence.sources`); otherwise the probe proved something
  about another identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from verify.evidence.cells import (
    VALUE_NOT_COMPARED,
    CellResult,
    CheckResult,
    Expectation,
    IdentityResult,
    host_of,
    where_of,
)
from verify.evidence.plane import Plane
from verify.evidence.planes import PLANES
from verify.evidence.sources import source_problem
from verify.model import OUTCOME_FOR, IdentityReport, ProbeResult, StackOutputs, TargetReport


def judge(
    outputs: StackOutputs,
    expectations: Iterable[Expectation],
    probes: Mapping[str, ProbeResult | BaseException],
    *,
    allow_unverified_values: bool = False,
) -> CheckResult:
    """Judge every expectation against the probe result of its host.

    ``allow_unverified_values``: accept a read whose value cannot be compared because the
    outputs hide the fingerprints (each such cell then says "value not compared");
    without it such a cell fails, saying how to get the fingerprints.
    """
    result = CheckResult()
    seen_identity: set[tuple[str, str]] = set()
    for exp in expectations:
        probe = probes.get(exp.host)
        if probe is None or isinstance(probe, BaseException):
            why = "was not probed" if probe is None else f"probe failed to run: {probe}"
            result.cells.append(not_probed(exp, why))
            continue
        report = probe.for_selector(exp.selector)
        if report is None:
            result.cells.append(not_probed(exp, "the probe did not try this identity"))
            continue
        if (exp.host, exp.identity) not in seen_identity:
            seen_identity.add((exp.host, exp.identity))
            result.identities.append(judge_identity(exp, report, outputs.tenant_id))
        result.cells.append(judge_cell(exp, report, outputs, allow_unverified_values))
    hidden = {
        PLANES[c.kind].hidden_fingerprints_fix()
        for c in result.cells
        if c.note == VALUE_NOT_COMPARED
        and not c.passed
        and PLANES[c.kind].expected_fingerprints(outputs) is None
    }
    result.errors.extend(fix[0].upper() + fix[1:] for fix in sorted(hidden))
    return result


def not_probed(exp: Expectation, why: str) -> CellResult:
    """A cell that got no observation: it fails, saying why nothing was seen."""
    return CellResult(
        exp.host,
        exp.identity,
        exp.target,
        exp.expected,
        "not_probed",
        False,
        f"{where_of(exp)}: expected {exp.expected}, {why}",
        kind=exp.kind,
        host_kind=exp.host_kind,
    )


# --------------------------------------------------------------------------- identities


def token_problems(
    exp: Expectation, plane: Plane, claims: Mapping[str, object], tenant_id: str
) -> list[str]:
    """How a token's claims disagree with the stack (principal, tenant, audience, resource)."""
    label = plane.bearer_label
    problems = []
    oid = claims.get("oid")
    if exp.principal_id and str(oid).lower() != exp.principal_id.lower():
        problems.append(f"{label} oid {oid} is not the stack's principal {exp.principal_id}")
    tid = claims.get("tid")
    if tid and str(tid).lower() != tenant_id.lower():
        problems.append(f"{label} tid {tid} is not the stack's tenant {tenant_id}")
    aud = claims.get("aud")
    if aud is not None and str(aud) not in plane.audiences:
        problems.append(f"{label} aud {aud} is not for {plane.service} ({plane.audiences[0]})")
    mirid = claims.get("xms_mirid")
    if mirid and exp.resource_id and str(mirid).lower() != exp.resource_id.lower():
        problems.append(f"{label} xms_mirid {mirid} is not {exp.resource_id}")
    return problems


def judge_identity(exp: Expectation, report: IdentityReport, tenant_id: str) -> IdentityResult:
    """Each token the probe got for this identity, whichever plane it was for, must be the
    stack's principal and come from the host kind's credential source. A cell expecting
    no identity is judged by its cells alone (a token there fails each of them)."""
    problems: list[str] = []
    sources: list[str] = []
    for plane in PLANES.values():
        token, claims = plane.token(report), plane.claims(report)
        if token is None or token.outcome != "ok":
            continue
        if token.credential_source and token.credential_source not in sources:
            sources.append(token.credential_source)
        if exp.expected == "no_identity":
            continue
        problems += token_problems(exp, plane, claims or {}, tenant_id)
        if token.credential_source != "stash":  # replayed: judged when it was obtained
            wrong_source = source_problem(exp.host_kind, token.credential_source)
            if wrong_source and wrong_source not in problems:
                problems.append(wrong_source)
    claims = report.claims or {}
    where = f"{host_of(exp)} identity {exp.identity!r}"
    if problems:
        detail = f"{where}: " + "; ".join(problems)
    elif claims:
        detail = f"{where}: token is the stack's principal" + (
            f" (from {', '.join(sources)})" if sources else ""
        )
    else:
        detail = f"{where}: no token ({report.token.error_code})"
    return IdentityResult(
        host=exp.host,
        identity=exp.identity,
        expected_principal=exp.principal_id,
        observed_oid=claims.get("oid"),
        passed=not problems,
        detail=detail,
        claims=dict(claims),
        expires_in_seconds=report.token.expires_in_seconds,
        credential_source=sources[0] if sources else None,
        host_kind=exp.host_kind,
    )


# --------------------------------------------------------------------------- cells


def judge_cell(
    exp: Expectation,
    report: IdentityReport,
    outputs: StackOutputs,
    allow_unverified_values: bool,
) -> CellResult:
    """One cell by its plane's rules (see the module docstring)."""
    plane = PLANES[exp.kind]
    seen = plane.observations(report).get(exp.target)
    if seen is None:
        return not_probed(exp, f"the probe did not try this {exp.kind}")
    observed = plane.observed(seen)
    want = OUTCOME_FOR[exp.expected]
    passed = observed == want
    detail = f"{where_of(exp)}: expected {exp.expected}, observed {observed}"
    fingerprints = plane.expected_fingerprints(outputs)
    fp_match: bool | None = None
    note: str | None = None
    if observed == "read" and fingerprints is not None and exp.target in fingerprints:
        fp_match = seen.fingerprint == fingerprints[exp.target]
        if not fp_match:
            passed = False
            detail += f" but the {plane.value_word}'s fingerprint differs from the stack's"
    elif observed == "read" and exp.expected == "allowed":
        note = VALUE_NOT_COMPARED
        if allow_unverified_values and fingerprints is None:
            detail += f" ({VALUE_NOT_COMPARED}: --allow-unverified-values)"
        else:
            passed = False
            why = (
                plane.hidden_fingerprints_fix()
                if fingerprints is None
                else f"the stack exports no fingerprint for this {exp.kind}"
            )
            detail += f" but the {VALUE_NOT_COMPARED}: {why}"
    if observed != want:
        detail += _why_not(exp, plane, seen, observed)
    return CellResult(
        host=exp.host,
        identity=exp.identity,
        target=exp.target,
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
        kind=exp.kind,
        host_kind=exp.host_kind,
    )


def _why_not(exp: Expectation, plane: Plane, seen: TargetReport, observed: str) -> str:
    """What a cell that did not hold adds to its sentence."""
    text = f" ({seen.http_status} {seen.error_code})" if seen.error_code else ""
    if exp.expected == "denied" and observed == "read":
        return text + ": access nobody granted"
    if exp.expected == "allowed" and observed == "forbidden":
        return text + ": the grant does not work"
    if observed in ("inconclusive", "unreachable"):
        return text + f": inconclusive, proves neither access nor denial ({plane.evidence})"
    return text
