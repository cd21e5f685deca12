"""What both targets share about running the probe: its spec and bounded fan-out.

The probe itself (verify/probe.py) is self-contained and knows nothing of the stack;
this module turns a :class:`ProbeRequest` plus the stack outputs into the probe's JSON
spec, and runs many probes with a fixed number of workers so 40 VMs do not become 40
simultaneous Run Commands (ARM throttles) or 40 processes on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from verify.check import Expectation
from verify.model import ProbeResult, StackOutputs
from verify.targets.base import ProbeOutcome, ProbeRequest

PROBE_SOURCE = Path(__file__).resolve().parent.parent / "probe.py"


def probe_source() -> str:
    """The probe's own source text, as shipped inline through Run Command."""
    return PROBE_SOURCE.read_text(encoding="utf-8")


def build_spec(
    outputs: StackOutputs,
    request: ProbeRequest,
    *,
    ca_bundle: str | None = None,
    verify_challenge_resource: bool = True,
    token_dir: str | None = None,
) -> dict[str, Any]:
    """The probe's JSON spec for one request (see verify/probe.py ``load_spec``)."""
    if (request.stash_token or request.replay) and not token_dir:
        raise ValueError("stashing or replaying a token needs a token_dir on the VM")
    return {
        "vault_url": outputs.vault.uri,
        "secrets": list(request.secrets),
        "identities": list(request.selectors),
        "ca_bundle": ca_bundle,
        "verify_challenge_resource": verify_challenge_resource,
        "budget_seconds": request.budget,
        "propagation_wait_seconds": request.propagation_wait,
        "mode": "replay" if request.replay else "fresh",
        "stash_token": request.stash_token,
        "token_dir": token_dir,
        "expect": {sel: dict(cells) for sel, cells in request.expect.items()} or None,
    }


def expect_map(
    cells: Iterable[tuple[str, str, str]],
) -> dict[str, dict[str, str]]:
    """(selector, secret, expected) -> the probe's ``expect`` mapping (allowed/denied only)."""
    mapping: dict[str, dict[str, str]] = {}
    for selector, secret, expected in cells:
        if expected in ("allowed", "denied"):
            mapping.setdefault(selector, {})[secret] = expected
    return mapping


def requests_for(
    expectations: Iterable[Expectation], secrets: Sequence[str], **options: Any
) -> list[ProbeRequest]:
    """One request per VM covering every identity its expectations name.

    ``options`` are the remaining :class:`ProbeRequest` fields (budget, stash, ...).
    """
    expectations = list(expectations)
    plan: dict[str, list[str]] = {}
    for exp in expectations:
        selectors = plan.setdefault(exp.vm, [])
        if exp.selector not in selectors:
            selectors.append(exp.selector)
    return [
        ProbeRequest(
            vm=vm,
            selectors=tuple(selectors),
            secrets=tuple(secrets),
            expect=expect_map(
                (e.selector, e.secret, e.expected) for e in expectations if e.vm == vm
            ),
            **options,
        )
        for vm, selectors in plan.items()
    ]


def fan_out(
    run_one: Callable[[ProbeRequest], ProbeResult],
    requests: Sequence[ProbeRequest],
    max_workers: int,
) -> Mapping[str, ProbeOutcome]:
    """Run ``run_one`` for each request, at most ``max_workers`` at a time.

    An exception from one VM is kept as that VM's outcome rather than raised: the
    report must still show every other VM.
    """

    def guarded(request: ProbeRequest) -> ProbeOutcome:
        try:
            return run_one(request)
        except Exception as exc:
            return exc

    if not requests:
        return {}
    workers = max(1, min(max_workers, len(requests)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        outcomes = list(pool.map(guarded, requests))
    return {req.vm: outcome for req, outcome in zip(requests, outcomes, strict=True)}
