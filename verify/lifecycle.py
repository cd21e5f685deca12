"""The deletion lifecycle: what happens, measured, when identities and VMs go away.

Five scenarios, each a list of named steps that say what they expected and what they
observed. They run one after another on ONE deployment (a throw-away stack on Azure, a
fresh sandbox locally), each choosing its subjects from what is still standing, so the
same code serves both targets:

* ``delete-vm``: delete a VM with a system identity (again preferring a system-only
  one, so the reference topology has two of them); its principal is gone, its role
  assignments stay, orphaned, and are found with ``principalId eq``;
* ``disable-system-identity``: turn the system identity off on a running VM (one whose
  only identity it is, when the stack has one); a fresh probe gets IMDS 400 "Identity not
  found" (on a VM with one user-assigned identity left, that identity's token, reported);
  a token obtained before is replayed and the outcome reported with its remaining
  lifetime (accepted or refused: observed, not assumed);
* ``delete-one-sharing-vm``: delete one of the VMs sharing a user-assigned identity; the
  identity and the other VMs keep working;
* ``delete-shared-identity``: delete that identity; every VM that used it fails fresh
  probes; its assignments are orphaned;
* ``recreate-identity``: same name, new principal and client ID; the old grants do not
  apply until made again; then reads work.

Orphan cleanup (``cleanup=True``) deletes only assignments whose principal no longer
exists, re-checked against ARM right before deleting; if a candidate belongs to a live
principal the cleanup refuses everything and the step fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from verify.check import (
    CheckResult,
    Expectation,
    compare,
    expectations_from,
)
from verify.model import (
    Grant,
    Identity,
    IdentityReport,
    StackOutputs,
    TokenReport,
    derive_matrix,
)
from verify.results import ScenarioResult, Step
from verify.targets.base import Assignment, ProbeRequest, Target
from verify.targets.probing import requests_for

Progress = Callable[[str], None]

#: How long a probe may retry 403s right after a grant (RBAC propagation; Azure documents
#: "up to 10 minutes" for some paths, usually seconds). The probe's budget grows with it.
PROPAGATION_WAIT = 120.0
PROBE_BUDGET = 30.0


class ScenarioSkippedError(Exception):
    """The deployment has nothing this scenario can act on (e.g. no shared identity)."""


@dataclass
class Lifecycle:
    """State carried from scenario to scenario: the outputs as they are *now*."""

    target: Target
    cleanup: bool = False
    progress: Progress = lambda _msg: None
    propagation_wait: float = PROPAGATION_WAIT
    probe_budget: float = PROBE_BUDGET
    current: StackOutputs = field(init=False)
    used: set[str] = field(default_factory=set)
    #: (key, identity, VMs that used it, its grants) once delete-shared-identity ran, so
    #: recreate-identity recreates that one instead of deleting another.
    deleted_identity: tuple[str, Identity, list[str], list[Grant]] | None = None
    active_steps: list[Step] | None = None

    def __post_init__(self) -> None:
        self.current = self.target.outputs()

    def new_steps(self) -> StepLog:
        """A step list that reports each step as it is recorded (live progress); kept
        so a scenario that raises half-way still reports the steps it completed."""
        self.active_steps = StepLog(self.progress)
        return self.active_steps

    # -- probing -------------------------------------------------------------------

    def expectations(
        self, vms: Iterable[str], identity: str | None = None, outputs: StackOutputs | None = None
    ) -> list[Expectation]:
        """Cells for ``vms`` (optionally one identity) from the grants as they are now."""
        outputs = outputs or self.current
        wanted = set(vms)
        cells = [
            e
            for e in expectations_from(outputs, derived=True)
            if e.vm in wanted and (identity is None or e.identity == identity)
        ]
        return cells

    def probe_and_compare(
        self,
        expectations: Sequence[Expectation],
        *,
        stash: bool = False,
        replay: bool = False,
        propagation_wait: float = 0.0,
        outputs: StackOutputs | None = None,
    ) -> CheckResult:
        outputs = outputs or self.current
        requests = requests_for(
            expectations,
            sorted(outputs.secrets),
            propagation_wait=propagation_wait,
            stash_token=stash,
            replay=replay,
            budget=self.probe_budget + propagation_wait,
        )
        self.progress(f"    probing {len(requests)} VM(s): {', '.join(r.vm for r in requests)}")
        probes = self.target.probe(requests)
        return compare(outputs, expectations, probes)

    def probe_step(
        self,
        name: str,
        expected: str,
        expectations: Sequence[Expectation],
        **kwargs: object,
    ) -> tuple[Step, CheckResult]:
        started = time.monotonic()
        result = self.probe_and_compare(expectations, **kwargs)  # type: ignore[arg-type]
        cells = result.cells
        good = sum(c.passed for c in cells)
        observed = f"{good}/{len(cells)} cells as expected"
        step = Step(
            name=name,
            expected=expected,
            observed=observed,
            passed=result.passed and bool(cells),
            seconds=time.monotonic() - started,
            details=result.failures,
        )
        if not cells:
            step.details.append("no cells to probe: the deployment has nothing to check here")
        return step, result

    # -- assignments ---------------------------------------------------------------

    def assignments_step(self, name: str, principal_id: str, expect: set[str]) -> Step:
        """The principal's assignments must be exactly ``expect`` (by ID)."""
        started = time.monotonic()
        found = self.target.list_assignments(principal_id)
        ids = {a.id.lower() for a in found}
        want = {i.lower() for i in expect}
        kinds = sorted({str(a.principal_type) for a in found})
        return Step(
            name=name,
            expected=f"{len(want)} assignment(s) of principal {principal_id} still listed",
            observed=f"{len(ids)} listed (principalType {', '.join(kinds) or '-'})",
            passed=ids == want and bool(want),
            seconds=time.monotonic() - started,
            details=[f"missing {i}" for i in sorted(want - ids)]
            + [f"unexpected {i}" for i in sorted(ids - want)],
        )

    def cleanup_step(self, principal_ids: Sequence[str]) -> Step:
        """Delete orphaned assignments of ``principal_ids``, or say why not."""
        started = time.monotonic()
        candidates = [a for p in principal_ids for a in self.target.list_assignments(p)]
        if not self.cleanup:
            return Step(
                name="orphans left in place",
                expected="orphans are only removed on request (--cleanup)",
                observed=f"{len(candidates)} orphaned assignment(s) left",
                passed=True,
                seconds=time.monotonic() - started,
                details=[f"orphan {a.id} ({a.principal_type})" for a in candidates],
            )
        try:
            removed = cleanup_orphans(self.target, candidates)
        except LiveAssignmentError as exc:
            return Step(
                name="cleanup orphans",
                expected="only assignments of deleted principals are removed",
                observed=f"refused: {exc}",
                passed=False,
                seconds=time.monotonic() - started,
            )
        left = [a for p in principal_ids for a in self.target.list_assignments(p)]
        return Step(
            name="cleanup orphans",
            expected="every orphan removed, nothing else touched",
            observed=f"removed {len(removed)}, {len(left)} left",
            passed=not left,
            seconds=time.monotonic() - started,
            details=[f"removed {a.id}" for a in removed],
        )

    # -- subject selection -----------------------------------------------------------

    def sharing(self) -> dict[str, list[str]]:
        """Identity key -> VMs (still standing) that list it."""
        users: dict[str, list[str]] = {}
        for vm_key, vm in sorted(self.current.vms.items()):
            for ident in vm.user_assigned:
                if ident in self.current.identities:
                    users.setdefault(ident, []).append(vm_key)
        return users

    def granted(self, principal_id: str | None) -> list[Grant]:
        if not principal_id:
            return []
        return [g for g in self.current.grants if g.principal_id.lower() == principal_id.lower()]

    def pick_system_vm(self) -> str:
        """A VM with a granted system identity, preferring one whose ONLY identity it is.

        On such a VM nothing else can answer a system-identity token request, so the
        scenario observes the plain "Identity not found"; a VM that also holds one
        user-assigned identity gets that identity's token instead (see
        :func:`system_token_gone_step`), and a VM sharing an identity takes part in the
        shared-identity scenarios, so those come last.
        """
        shared = {vm for vms in self.sharing().values() if len(vms) > 1 for vm in vms}
        candidates = [
            key
            for key, vm in sorted(self.current.vms.items())
            if vm.system_principal_id
            and key not in self.used
            and self.granted(vm.system_principal_id)
        ]
        if not candidates:
            raise ScenarioSkippedError("no VM with a granted system-assigned identity is left")
        candidates.sort(key=lambda k: (bool(self.user_assigned_of(k)), k in shared, k))
        return candidates[0]

    def user_assigned_of(self, vm: str, outputs: StackOutputs | None = None) -> list[str]:
        """The user-assigned identities ``vm`` lists that still exist."""
        outputs = outputs or self.current
        return [i for i in outputs.vms[vm].user_assigned if i in outputs.identities]

    def pick_shared_identity(self) -> tuple[str, list[str]]:
        best = sorted(
            ((ident, vms) for ident, vms in self.sharing().items() if len(vms) >= 2),
            key=lambda item: (-len(item[1]), item[0]),
        )
        if not best:
            raise ScenarioSkippedError("no user-assigned identity is shared by two VMs")
        return best[0]

    # -- state updates ------------------------------------------------------------------

    def forget_vm(self, vm: str) -> None:
        vms = dict(self.current.vms)
        vms.pop(vm)
        self.current = self.current.model_copy(update={"vms": vms})

    def forget_system_identity(self, vm: str) -> None:
        vms = dict(self.current.vms)
        vms[vm] = vms[vm].model_copy(update={"system_principal_id": None})
        self.current = self.current.model_copy(update={"vms": vms})

    def forget_identity(self, ident: str) -> None:
        identities = dict(self.current.identities)
        identities.pop(ident)
        self.current = self.current.model_copy(update={"identities": identities})

    def replace_identity(self, ident: str, new: Identity) -> None:
        identities = dict(self.current.identities)
        identities[ident] = new
        self.current = self.current.model_copy(update={"identities": identities})

    def add_grants(self, grants: Sequence[Grant]) -> None:
        self.current = self.current.model_copy(update={"grants": (*self.current.grants, *grants)})


class StepLog(list[Step]):
    """The steps of one scenario; appending one prints it at once."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self._progress = progress

    def append(self, step: Step) -> None:
        super().append(step)
        mark = "ok" if step.passed else "FAILED"
        self._progress(f"  {step.name}: {step.observed} [{mark}]")


class LiveAssignmentError(RuntimeError):
    """A cleanup was asked to delete the assignment of a principal that still exists."""


def cleanup_orphans(target: Target, candidates: Sequence[Assignment]) -> list[Assignment]:
    """Delete ``candidates`` only if every one of them belongs to a deleted principal.

    All-or-nothing: the live set is read from ARM first and any live candidate refuses
    the whole cleanup, because a caller who mixed up principals should fix that before
    anything is deleted.
    """
    live = target.live_principals()
    touching = [a for a in candidates if a.principal_id.lower() in live]
    if touching:
        names = ", ".join(f"{a.id} (held by {live[a.principal_id.lower()]})" for a in touching)
        raise LiveAssignmentError(f"would delete live assignment(s): {names}")
    for assignment in candidates:
        target.delete_assignment(assignment.id)
    return list(candidates)


# --------------------------------------------------------------------------- scenarios


def _timed(name: str, expected: str, action: Callable[[], str | None], done: str = "done") -> Step:
    """Run an action (returning what it observed, or None for ``done``); an exception
    is a failed step, not a crash, so the report still shows everything before it."""
    started = time.monotonic()
    try:
        observed = action() or done
        passed = True
    except Exception as exc:
        observed, passed = f"failed: {type(exc).__name__}: {exc}", False
    return Step(name, expected, observed, passed, time.monotonic() - started)


def _check(name: str, expected: str, ok: bool, observed: str) -> Step:
    return Step(name, expected, observed, ok)


def replay_step(lc: Lifecycle, vm: str, identity: str, outputs: StackOutputs) -> Step:
    """Present the token stashed before the change; report what Key Vault did with it."""
    started = time.monotonic()
    selector = outputs.identity_selector(identity)
    secrets = tuple(sorted(outputs.secrets))
    probes = lc.target.probe(
        [
            ProbeRequest(
                vm=vm, selectors=(selector,), secrets=secrets, replay=True, budget=lc.probe_budget
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
        c.secret
        for c in derive_matrix(outputs)
        if c.vm == vm and c.identity == identity and c.expected == "allowed"
    }
    outcomes = {s: report.secrets[s] for s in allowed if s in report.secrets}
    accepted = sorted(s for s, r in outcomes.items() if r.outcome == "read")
    refused = sorted(s for s, r in outcomes.items() if r.outcome == "forbidden")
    unclear = sorted(s for s, r in outcomes.items() if r.outcome not in ("read", "forbidden"))
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
        [ProbeRequest(vm=vm, selectors=("system",), secrets=secrets, budget=lc.probe_budget)]
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


def delete_vm(lc: Lifecycle) -> list[Step]:
    vm = lc.pick_system_vm()
    lc.used.add(vm)
    principal = lc.current.vms[vm].system_principal_id or ""
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {vm} system identity reads what it was granted",
        "matrix holds for this VM",
        lc.expectations([vm], "system"),
    )
    steps.append(step)
    stack_assignments = {g.id for g in lc.granted(principal)}
    steps.append(lc.assignments_step("its assignments before", principal, stack_assignments))
    steps.append(
        _timed(f"delete VM {vm}", "VM deleted", lambda: lc.target.delete_vm(vm), "deleted")
    )
    gone = not lc.target.vm_exists(vm)
    steps.append(_check("VM is gone", "GET returns 404", gone, "404" if gone else "still exists"))
    live = lc.target.live_principals()
    steps.append(
        _check(
            "its system principal is gone",
            f"principal {principal} no longer held by any resource",
            principal.lower() not in live,
            "gone" if principal.lower() not in live else f"still held by {live[principal.lower()]}",
        )
    )
    lc.forget_vm(vm)
    steps.append(
        lc.assignments_step("its assignments remain, orphaned", principal, stack_assignments)
    )
    steps.append(lc.cleanup_step([principal]))
    return steps


def disable_system_identity(lc: Lifecycle) -> list[Step]:
    vm = lc.pick_system_vm()
    lc.used.add(vm)
    principal = lc.current.vms[vm].system_principal_id or ""
    before = lc.current
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {vm} system identity reads what it was granted (token stashed on the VM)",
        "matrix holds for this VM",
        lc.expectations([vm], "system"),
        stash=True,
    )
    steps.append(step)
    steps.append(
        _timed(
            f"turn system identity off on {vm}",
            "identity type changed, VM still running",
            lambda: lc.target.disable_system_identity(vm),
            "updated",
        )
    )
    steps.append(system_token_gone_step(lc, vm, principal, before))
    steps.append(replay_step(lc, vm, "system", before))
    lc.forget_system_identity(vm)
    uai_cells = lc.expectations([vm])
    if uai_cells:
        step, _ = lc.probe_step(
            f"{vm}'s user-assigned identities are unaffected",
            "matrix holds for its user-assigned identities",
            uai_cells,
        )
        steps.append(step)
    steps.append(
        lc.assignments_step(
            "its assignments remain, orphaned",
            principal,
            {g.id for g in lc.granted(principal)},
        )
    )
    steps.append(lc.cleanup_step([principal]))
    return steps


def delete_one_sharing_vm(lc: Lifecycle) -> list[Step]:
    ident, vms = lc.pick_shared_identity()
    victim = next((v for v in vms if v not in lc.used), vms[0])
    others = [v for v in vms if v != victim]
    lc.used.add(victim)
    uai = lc.current.identities[ident]
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: every VM sharing {ident} reads through it",
        "matrix holds",
        lc.expectations(vms, ident),
    )
    steps.append(step)
    expected_assignments = {g.id for g in lc.granted(uai.principal_id)}
    steps.append(
        _timed(f"delete VM {victim}", "VM deleted", lambda: lc.target.delete_vm(victim), "deleted")
    )
    lc.forget_vm(victim)
    exists = lc.target.identity_exists(ident)
    steps.append(
        _check(f"identity {ident} still exists", "GET 200", exists, "exists" if exists else "gone")
    )
    step, _ = lc.probe_step(
        f"the other VMs ({', '.join(others)}) still read through {ident}",
        "matrix holds",
        lc.expectations(others, ident),
    )
    steps.append(step)
    steps.append(
        lc.assignments_step(
            f"{ident}'s assignments untouched", uai.principal_id, expected_assignments
        )
    )
    return steps


def delete_shared_identity(lc: Lifecycle) -> list[Step]:
    users = lc.sharing()
    if not users:
        raise ScenarioSkippedError("no user-assigned identity is attached to a standing VM")
    ident, vms = max(users.items(), key=lambda item: (len(item[1]), item[0]))
    uai = lc.current.identities[ident]
    before = lc.current
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {', '.join(vms)} read through {ident} (tokens stashed on the VMs)",
        "matrix holds",
        lc.expectations(vms, ident),
        stash=True,
    )
    steps.append(step)
    expected_assignments = {g.id for g in lc.granted(uai.principal_id)}
    steps.append(
        _timed(
            f"delete identity {ident}",
            "identity deleted",
            lambda: lc.target.delete_identity(ident),
            "deleted",
        )
    )
    gone_cells = [
        Expectation(
            e.vm, e.identity, e.selector, e.principal_id, e.secret, "no_identity", e.resource_id
        )
        for e in lc.expectations(vms, ident, outputs=before)
    ]
    step, _ = lc.probe_step(
        f"fresh probes on every VM that used {ident}",
        "no_identity everywhere",
        gone_cells,
    )
    steps.append(step)
    steps.append(replay_step(lc, vms[0], ident, before))
    lc.forget_identity(ident)
    steps.append(
        lc.assignments_step(
            "its assignments remain, orphaned", uai.principal_id, expected_assignments
        )
    )
    steps.append(lc.cleanup_step([uai.principal_id]))
    lc.deleted_identity = (
        ident,
        uai,
        vms,
        lc.granted(uai.principal_id),
    )
    return steps


def _attach_all(lc: Lifecycle, vms: Sequence[str], ident: str) -> str:
    for vm in vms:
        lc.target.attach_identity(vm, ident)
    return f"attached to {len(vms)} VM(s)"


def recreate_identity(lc: Lifecycle) -> list[Step]:
    memo = lc.deleted_identity
    steps = lc.new_steps()
    if memo is None:
        users = lc.sharing()
        if not users:
            raise ScenarioSkippedError("no user-assigned identity is attached to a standing VM")
        ident, vms = max(users.items(), key=lambda item: (len(item[1]), item[0]))
        old = lc.current.identities[ident]
        old_grants = lc.granted(old.principal_id)
        steps.append(
            _timed(
                f"delete identity {ident}",
                "identity deleted",
                lambda: lc.target.delete_identity(ident),
                "deleted",
            )
        )
        lc.forget_identity(ident)
    else:
        ident, old, vms, old_grants = memo
    vms = [v for v in vms if v in lc.current.vms]
    created: list[Identity] = []

    def create() -> str:
        info = lc.target.create_identity(ident)
        created.append(
            Identity(
                name=info.name,
                id=info.id,
                client_id=info.client_id,
                principal_id=info.principal_id,
                tenant_id=info.tenant_id,
            )
        )
        return f"principal {info.principal_id}, client {info.client_id}"

    steps.append(_timed(f"create identity {old.name} again", "created", create))
    if not created:
        return steps
    new = created[0]
    steps.append(
        _check(
            "it is a new principal",
            "principal ID and client ID both differ from the deleted identity's",
            new.principal_id.lower() != old.principal_id.lower()
            and new.client_id.lower() != old.client_id.lower(),
            f"principal {old.principal_id} -> {new.principal_id}, "
            f"client {old.client_id} -> {new.client_id}",
        )
    )
    lc.replace_identity(ident, new)
    steps.append(
        _timed(
            f"attach it to {', '.join(vms)}",
            "VMs list the recreated identity",
            lambda: _attach_all(lc, vms, ident),
        )
    )
    step, _ = lc.probe_step(
        "old grants do not apply to the new principal",
        "forbidden for every secret (token oid is the new principal)",
        lc.expectations(vms, ident),
    )
    steps.append(step)
    made: list[Grant] = []

    def regrant() -> str:
        for grant in old_grants:
            a = lc.target.create_assignment(new.principal_id, grant.role_definition_id, grant.scope)
            made.append(
                grant.model_copy(
                    update={"name": a.name, "id": a.id, "principal_id": new.principal_id}
                )
            )
        return f"{len(made)} grant(s) made for the new principal"

    steps.append(_timed("make the grants again", f"{len(old_grants)} grant(s) made", regrant))
    lc.add_grants(made)
    step, _ = lc.probe_step(
        "after the grants are made again, reads work",
        "matrix holds (probe waits out RBAC propagation, bounded)",
        lc.expectations(vms, ident),
        propagation_wait=lc.propagation_wait,
    )
    steps.append(step)
    if memo is None:
        # This scenario deleted the identity itself: report (and clean) its orphans too.
        steps.append(lc.cleanup_step([old.principal_id]))
    return steps


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    run: Callable[[Lifecycle], list[Step]]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "delete-vm",
        "Deleting a VM deletes its system-assigned identity; its role assignments stay "
        "behind, orphaned, until cleaned up.",
        delete_vm,
    ),
    Scenario(
        "disable-system-identity",
        "Turning the system identity off on a running VM: fresh token requests fail; a token "
        "obtained before is checked against Key Vault.",
        disable_system_identity,
    ),
    Scenario(
        "delete-one-sharing-vm",
        "Deleting one VM that shares a user-assigned identity leaves the identity and the "
        "other VMs working.",
        delete_one_sharing_vm,
    ),
    Scenario(
        "delete-shared-identity",
        "Deleting the shared user-assigned identity breaks every VM that used it; its "
        "assignments are orphaned.",
        delete_shared_identity,
    ),
    Scenario(
        "recreate-identity",
        "An identity recreated with the same name is a new principal: old grants do not "
        "apply until they are made again.",
        recreate_identity,
    ),
)
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)


def run_scenarios(lc: Lifecycle, names: Sequence[str] | None = None) -> list[ScenarioResult]:
    """Run the named scenarios (all by default) in their canonical order."""
    chosen = [s for s in SCENARIOS if names is None or s.name in names]
    results: list[ScenarioResult] = []
    for scenario in chosen:
        lc.progress(f"scenario {scenario.name}")
        started = time.monotonic()
        result = ScenarioResult(scenario.name, scenario.description)
        lc.active_steps = None
        try:
            result.steps = list(scenario.run(lc))
        except ScenarioSkippedError as exc:
            result.error = f"cannot run on this deployment: {exc}"
        except Exception as exc:  # reported; the next scenario still runs
            result.steps = list(lc.active_steps or [])
            result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = time.monotonic() - started
        results.append(result)
    return results
