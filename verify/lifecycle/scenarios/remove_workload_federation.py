"""``remove-workload-federation``: delete the federated credential a cluster workload's
identity trusts its service account with. The next exchange of the projected token fails
(AADSTS70021 when the identity has no credential left, AADSTS700213 when others of the
same issuer remain); an access token issued before keeps working until it expires, and
the step reports how long that is. The credential is then made again and the workload
reads as before."""

from __future__ import annotations

import time

from verify.lifecycle.context import Lifecycle, ScenarioSkippedError
from verify.lifecycle.steps import observed_step, timed
from verify.model import StackOutputs
from verify.results import Step
from verify.targets.base import ProbeRequest

WORKLOAD_HOST = "workload"


def pick_federated_workload(lc: Lifecycle) -> tuple[str, str]:
    """A workload (``workload:<key>``) whose identity is granted something, and that
    identity's key."""
    for host, record in sorted(lc.current.workload_hosts.items()):
        ident = record.workload.identity
        identity = lc.current.identities.get(ident) if ident else None
        if ident and identity is not None and lc.granted(identity.principal_id):
            return host, ident
    raise ScenarioSkippedError("no cluster workload with a granted identity")


def remove_workload_federation(lc: Lifecycle) -> list[Step]:
    host, ident = pick_federated_workload(lc)
    outputs = lc.current
    record = outputs.workload_hosts[host]
    issuer = outputs.clusters[record.cluster].oidc_issuer_url
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {host} reads what identity {ident} was granted (token stashed in the pod)",
        "matrix holds for this workload",
        lc.expectations([host]),
        stash=True,
    )
    steps.append(step)
    ours = [
        c
        for c in lc.target.federated_credentials(ident)
        if c.subject == record.workload.subject and c.issuer == issuer
    ]
    if not ours:
        steps.append(
            observed_step(
                "the workload's federated credential",
                f"one on {ident} for {record.workload.subject} from {issuer}",
                False,
                "none found",
            )
        )
        return steps
    credential = ours[0]
    steps.append(
        timed(
            f"delete federated credential {credential.name} of {ident}",
            "credential deleted",
            lambda: lc.target.delete_federated_credential(ident, credential.name),
            "deleted",
        )
    )
    steps.append(_fresh_exchange_fails(lc, host, ident, outputs))
    steps.append(_stashed_token(lc, host, ident, outputs))
    steps.append(
        timed(
            f"make federated credential {credential.name} again",
            "credential created",
            lambda: lc.target.create_federated_credential(ident, credential),
            "created",
        )
    )
    step, _ = lc.probe_step(
        f"after: {host} reads again with a fresh exchange",
        "matrix holds for this workload",
        lc.expectations([host]),
    )
    steps.append(step)
    return steps


def _probe(lc: Lifecycle, host: str, ident: str, outputs: StackOutputs, replay: bool) -> object:
    selector = outputs.identity_selector(ident)
    request = ProbeRequest(
        host=host,
        selectors=(selector,),
        secrets=tuple(sorted(outputs.secrets)),
        replay=replay,
        budget=lc.probe_budget,
        host_kind=WORKLOAD_HOST,
    )
    probe = lc.target.probe([request]).get(host)
    if probe is None or isinstance(probe, BaseException):
        return probe
    return probe.for_selector(selector)


def _fresh_exchange_fails(lc: Lifecycle, host: str, ident: str, outputs: StackOutputs) -> Step:
    started = time.monotonic()
    name = "fresh exchange of the projected token"
    expected = "refused by Entra ID (AADSTS70021 or AADSTS700213): no token for the identity"
    report = _probe(lc, host, ident, outputs, replay=False)
    token = getattr(report, "token", None)
    if token is None:
        return Step(name, expected, f"probe failed: {report}", False, time.monotonic() - started)
    text = f"{token.error_code or ''} {token.message or ''}"
    refused = token.outcome != "ok" and ("AADSTS70021" in text or "AADSTS700213" in text)
    observed = (
        f"refused: {token.error_code or token.outcome}"
        if token.outcome != "ok"
        else "a token was issued"
    )
    return Step(name, expected, observed, refused, time.monotonic() - started)


def _stashed_token(lc: Lifecycle, host: str, ident: str, outputs: StackOutputs) -> Step:
    """The access token issued before the deletion: Entra ID does not revoke it, so Key
    Vault keeps accepting it until its ``exp``; the step says how long that is."""
    started = time.monotonic()
    name = "access token issued before the deletion"
    expected = "still accepted by Key Vault until it expires (lifetime reported)"
    report = _probe(lc, host, ident, outputs, replay=True)
    token = getattr(report, "token", None)
    if token is None or token.outcome != "ok":
        why = token.error_code if token is not None else report
        return Step(name, expected, f"no stashed token ({why})", False, time.monotonic() - started)
    allowed = {
        c.target
        for c in lc.matrix(outputs)
        if c.host == host and c.kind == "secret" and c.expected == "allowed"
    }
    secrets = getattr(report, "secrets", {})
    accepted = sorted(s for s in allowed if s in secrets and secrets[s].outcome == "read")
    lifetime = token.expires_in_seconds
    observed = (
        f"still ACCEPTED for {', '.join(accepted)}; expires in {lifetime} s"
        if accepted
        else f"not accepted ({[secrets[s].outcome for s in allowed if s in secrets]})"
    )
    return Step(name, expected, observed, bool(accepted), time.monotonic() - started)
