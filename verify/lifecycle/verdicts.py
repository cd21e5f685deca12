"""Judging one observation the lifecycle makes after a change: a replayed old token, and
IMDS's answer for a system identity that was turned off.

The rules are strict on purpose: a step passes only on the signal that proves what it
claims, never on "something failed".
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from verify.evidence import keyvault
from verify.lifecycle.context import Lifecycle
from verify.model import (
    Identity,
    IdentityReport,
    StackOutputs,
    TargetReport,
    TokenReport,
)
from verify.results import Step
from verify.targets.base import ProbeRequest


def replay_step(lc: Lifecycle, vm: str, identity: str, outputs: StackOutputs) -> Step:
    """Present the token stashed before the change; report what Key Vault did with it."""
    started = time.monotonic()
    selector = outputs.identity_selector(identity)
    secrets = tuple(sorted(outputs.secrets))
    probes = lc.target.probe(
        [
            ProbeRequest(
                host=vm, selectors=(selector,), secrets=secrets, replay=True, budget=lc.probe_budget
            )
        ]
    )
    probe = probes.get(vm)
    name = "token obtained before the change"
    expected = (
        "Key Vault's verdict on the old token observed (accepted or refused), with its lifetime"
    )
    if probe is None or isinstance(probe, BaseException):
        return Step(name, expected, f"probe failed: {probe}", False, time.monotonic() - started)
    report = probe.for_selector(selector)
    if report is None or report.token.outcome != "ok":
        why = report.token.error_code if report else "no report"
        return Step(name, expected, f"no stashed token ({why})", False, time.monotonic() - started)
    allowed = {
        c.target
        for c in lc.matrix(outputs)
        if c.host == vm
        and c.identity == identity
        and c.kind == "secret"
        and c.expected == "allowed"
    }
    outcomes = {s: report.secrets[s] for s in allowed if s in report.secrets}
    accepted = sorted(s for s, r in outcomes.items() if r.outcome == "read")
    refused = sorted(s for s, r in outcomes.items() if old_token_refused(r))
    unclear = sorted(
        s for s, r in outcomes.items() if r.outcome != "read" and not old_token_refused(r)
    )
    lifetime = report.token.expires_in_seconds
    exp = (report.claims or {}).get("exp")
    if accepted and not refused:
        verdict = "still ACCEPTED"
    elif refused and not accepted:
        codes = sorted({f"{outcomes[s].http_status} {outcomes[s].error_code}" for s in refused})
        verdict = "REFUSED (" + ", ".join(codes) + ")"
    else:
        verdict = f"mixed: accepted {accepted}, refused {refused}"
    observed = f"{verdict}; token lifetime left {lifetime} s (exp {exp})"
    details = [
        f"{s}: {outcomes[s].outcome} {outcomes[s].http_status} {outcomes[s].error_code}"
        for s in unclear
    ]
    if accepted:
        details.append(
            f"a token obtained before the change still reads {accepted} for up to {lifetime} s: "
            "managed-identity tokens cannot be revoked early; remove the grants to cut access"
        )
    return Step(
        name,
        expected,
        observed,
        passed=bool(outcomes) and not unclear,
        seconds=time.monotonic() - started,
        details=details,
    )


def old_token_refused(report: TargetReport) -> bool:
    """Key Vault refused the replayed token: its RBAC denial (the check's own rule,
    :meth:`verify.evidence.plane.Plane.denial_proven`), or its own 401 ``Unauthorized``
    for the token itself. An injected or proxy 401 carries another code and, like a 5xx
    or a reset, is unclear, not a refusal."""
    if report.outcome == "forbidden":
        return keyvault.PLANE.denial_proven(report)
    return report.http_status == 401 and (report.error_code or "") == "Unauthorized"


IDENTITY_NOT_FOUND = "Identity not found"


def system_token_gone_step(lc: Lifecycle, vm: str, principal: str, before: StackOutputs) -> Step:
    """A fresh request for the disabled system identity must no longer yield its principal.

    What IMDS answers depends on the identities the VM still holds, so the expectation is
    chosen from them and checked strictly:

    * none (a system-only VM): 400 "Identity not found", and nothing else passes -- not
      the disabled principal's token, not any other identity's token, not a 5xx;
    * exactly one user-assigned identity: Azure answers a request that names no identity
      with that identity's token (msal documents this), so either "Identity not found" or
      a token whose ``oid`` is THAT identity passes, and the step says which happened;
    * several: IMDS refuses with a 400 (it cannot choose); any 400 refusal passes.
    """
    started = time.monotonic()
    name = "fresh token request for the system identity"
    uais = lc.user_assigned_of(vm, before)
    lone = before.identities[uais[0]] if len(uais) == 1 else None
    if not uais:
        expected = f'IMDS 400 "{IDENTITY_NOT_FOUND}": no token for principal {principal}'
    elif lone is not None:
        expected = (
            f'no token for principal {principal}: "{IDENTITY_NOT_FOUND}", or the token of the '
            f"VM's one user-assigned identity {uais[0]}"
        )
    else:
        expected = f"no token for principal {principal}: IMDS 400 (several identities left)"

    secrets = tuple(sorted(before.secrets))
    probes = lc.target.probe(
        [ProbeRequest(host=vm, selectors=("system",), secrets=secrets, budget=lc.probe_budget)]
    )
    probe = probes.get(vm)
    report = None if probe is None or isinstance(probe, BaseException) else probe
    verdict = (
        Verdict(f"probe failed: {probe}", False)
        if report is None
        else judge_system_request(report.for_selector("system"), principal, uais, lone)
    )
    return Step(
        name,
        expected,
        verdict.observed,
        verdict.passed,
        time.monotonic() - started,
        list(verdict.details),
    )


@dataclass(frozen=True)
class Verdict:
    """What a step observed and whether that is what it expected."""

    observed: str
    passed: bool
    details: tuple[str, ...] = ()


def judge_system_request(
    report: IdentityReport | None, principal: str, uais: Sequence[str], lone: Identity | None
) -> Verdict:
    """Judge IMDS's answer to a system-identity request after the identity was turned off
    (the rules are in :func:`system_token_gone_step`)."""
    if report is None:
        return Verdict("probe did not try it", False)
    if report.token.outcome == "no_identity":
        return _judge_refusal(report.token, several=len(uais) > 1)
    return _judge_token(report, principal, uais, lone)


def _judge_refusal(token: TokenReport, *, several: bool) -> Verdict:
    message = token.message or ""
    observed = f"no token: {token.http_status} {token.error_code}"
    if token.http_status == 400 and IDENTITY_NOT_FOUND.lower() in message.lower():
        return Verdict(f"{observed} ({IDENTITY_NOT_FOUND})", True, (message,))
    if token.http_status == 400 and several:
        return Verdict(observed, True, (message,))
    return Verdict(observed, False, (f'IMDS said "{message}", not "{IDENTITY_NOT_FOUND}"',))


def _judge_token(
    report: IdentityReport, principal: str, uais: Sequence[str], lone: Identity | None
) -> Verdict:
    token = report.token
    claims = report.claims or {}
    oid = str(claims.get("oid") or "")
    if token.outcome != "ok" or not oid:
        observed = f"{token.outcome} ({token.http_status} {token.error_code})"
        return Verdict(observed, False, (token.message or "",))
    if oid.lower() == principal.lower():
        return Verdict(f"the disabled principal still gets tokens (oid {oid})", False)
    holder = str(claims.get("xms_mirid") or oid).rsplit("/", 1)[-1]
    observed = f"IMDS answered with another identity: {holder} (oid {oid})"
    if lone is not None and oid.lower() == lone.principal_id.lower():
        return Verdict(
            observed,
            True,
            (
                "the VM has exactly one user-assigned identity left, and IMDS answers a "
                "system-identity request with it; code asking for the system identity now "
                f"silently acts as {holder}",
            ),
        )
    if not uais:
        why = "the VM holds no other identity"
    elif lone is not None:
        why = f"it is not the VM's one user-assigned identity {uais[0]}"
    else:
        why = "the VM holds several user-assigned identities, so IMDS must not pick one"
    return Verdict(observed, False, (f"no identity should have answered: {why}",))
