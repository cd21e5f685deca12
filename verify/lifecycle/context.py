"""The state one lifecycle run carries from scenario to scenario, and how it probes.

:class:`Lifecycle` holds the target, the stack outputs as they are *now* (each scenario
deletes or recreates something and updates them), which subjects were used, and the
probing helpers every scenario shares. Scenarios live in :mod:`verify.lifecycle.scenarios`,
orphan cleanup in :mod:`verify.lifecycle.cleanup`, the judging of single observations in
:mod:`verify.lifecycle.verdicts`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from verify.check import expectations_from
from verify.evidence.cells import CheckResult, Expectation
from verify.evidence.judge import judge
from verify.model import AccessCell, Grant, Identity, StackOutputs, derive_matrix
from verify.results import Step
from verify.targets.base import Target
from verify.targets.probing import requests_for

if TYPE_CHECKING:
    from verify.lifecycle.locks import LiftedLock

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
    #: Accept reads whose value cannot be compared (fingerprints hidden); each such
    #: cell then says "value not compared" (verify.evidence.judge).
    allow_unverified_values: bool = False
    #: Never lift a management lock: a scenario a lock refuses is SKIPPED naming it
    #: (``--keep-locks``; verify.lifecycle.locks).
    keep_locks: bool = False
    current: StackOutputs = field(init=False)
    used: set[str] = field(default_factory=set)
    #: (key, identity, VMs that used it, its grants) once delete-shared-identity ran, so
    #: recreate-identity recreates that one instead of deleting another.
    deleted_identity: tuple[str, Identity, list[str], list[Grant]] | None = None
    active_steps: list[Step] | None = None
    #: Locks this run lifted and has not put back yet (verify.lifecycle.locks).
    lifted_locks: list[LiftedLock] = field(default_factory=list)
    #: Lower-cased principal ID -> the step that removed it, recorded only when that step
    #: succeeded: the only principals orphan cleanup may consider (verify.orphans rule 1).
    removed_by: dict[str, str] = field(default_factory=dict)
    #: The matrix derived for the last outputs asked about (each change replaces
    #: ``current`` with a new object, so a state is derived once however often it is used).
    _derived: tuple[StackOutputs, list[AccessCell]] | None = field(
        default=None, init=False, repr=False
    )
    #: Lower-cased principal ID -> IDs of the assignments the deployment made for the
    #: platform (a Function app's host storage), not as grants: they are the principal's
    #: assignments too, so a deletion leaves them orphaned with its grants.
    platform_assignments: dict[str, set[str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.current = self.target.outputs()
        for app in self.current.apps.values():
            if app.host_storage is not None:
                principal = app.host_storage.principal_id.lower()
                self.platform_assignments.setdefault(principal, set()).add(
                    app.host_storage.assignment_id
                )

    def removed(self, principal_id: str | None, step: Step) -> Step:
        """Record that ``step`` removed ``principal_id`` -- if it passed; returns the step."""
        if principal_id and step.passed:
            self.removed_by[principal_id.lower()] = step.name
        return step

    def new_steps(self) -> StepLog:
        """A step list that reports each step as it is recorded (live progress); kept
        so a scenario that raises half-way still reports the steps it completed."""
        self.active_steps = StepLog(self.progress)
        return self.active_steps

    # -- probing -------------------------------------------------------------------

    def matrix(self, outputs: StackOutputs | None = None) -> list[AccessCell]:
        """The access matrix the grants imply for ``outputs`` (default: now), derived once
        per state of the deployment."""
        outputs = outputs or self.current
        if self._derived is None or self._derived[0] is not outputs:
            self._derived = (outputs, derive_matrix(outputs))
        return self._derived[1]

    def expectations(
        self, vms: Iterable[str], identity: str | None = None, outputs: StackOutputs | None = None
    ) -> list[Expectation]:
        """Cells for ``vms`` (optionally one identity) from the grants as they are now."""
        outputs = outputs or self.current
        wanted = set(vms)
        return [
            e
            for e in expectations_from(outputs, self.matrix(outputs))
            if e.host in wanted and (identity is None or e.identity == identity)
        ]

    def probe_and_compare(
        self,
        expectations: Sequence[Expectation],
        *,
        stash: bool = False,
        replay: bool = False,
        propagation_wait: float = 0.0,
        outputs: StackOutputs | None = None,
        instances: Mapping[str, Sequence[str]] | None = None,
    ) -> CheckResult:
        """``instances``: for a scale-set host, the instance IDs to probe (each must prove
        the host's cells); other hosts are probed as the target does by default."""
        outputs = outputs or self.current
        requests = requests_for(
            expectations,
            sorted(outputs.secrets),
            propagation_wait=propagation_wait,
            stash_token=stash,
            replay=replay,
            budget=self.probe_budget + propagation_wait,
        )
        if instances:
            requests = [
                dataclasses.replace(r, instances=tuple(instances[r.host]))
                if r.host in instances
                else r
                for r in requests
            ]
        self.progress(f"    probing {len(requests)} host(s): {', '.join(r.host for r in requests)}")
        probes = self.target.probe(requests)
        return judge(
            outputs, expectations, probes, allow_unverified_values=self.allow_unverified_values
        )

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
        """The principal's assignments must be exactly ``expect`` (by ID; its grants) and
        the deployment's platform assignments of it (:attr:`platform_assignments`)."""
        started = time.monotonic()
        found = self.target.list_assignments(principal_id)
        ids = {a.id.lower() for a in found}
        platform = self.platform_assignments.get(principal_id.lower(), set())
        want = {i.lower() for i in (*expect, *platform)}
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
        """A granted user-assigned identity attached to two or more standing VMs.

        Granted, because the scenario checks that its assignments stay untouched: an
        identity with none would pass that step vacuously.
        """
        best = sorted(
            (
                (ident, vms)
                for ident, vms in self.sharing().items()
                if len(vms) >= 2 and self.granted(self.current.identities[ident].principal_id)
            ),
            key=lambda item: (-len(item[1]), item[0]),
        )
        if not best:
            raise ScenarioSkippedError(
                "no user-assigned identity with a grant is shared by two standing VMs"
            )
        return best[0]

    def pick_identity_in_use(self) -> tuple[str, list[str]]:
        """The granted user-assigned identity attached to the most standing VMs.

        Granted, because the deletion scenarios check that its assignments are orphaned
        (and recreate-identity makes them again): with none there is nothing to observe.
        """
        users = {
            ident: vms
            for ident, vms in self.sharing().items()
            if self.granted(self.current.identities[ident].principal_id)
        }
        if not users:
            raise ScenarioSkippedError(
                "no user-assigned identity with a grant is attached to a standing VM"
            )
        # An unlocked identity first: nothing to lift. A locked one is lifted for the
        # scenario and put back (verify.lifecycle.locks), unless --keep-locks.
        unlocked = {i: vms for i, vms in users.items() if not self.current.identities[i].locked}
        if not unlocked and self.keep_locks:
            ident = max(users.items(), key=lambda item: (len(item[1]), item[0]))[0]
            raise ScenarioSkippedError(
                f"identity {ident} has a CanNotDelete lock (mikit:identities.{ident}.lock), so "
                "Azure refuses to delete it (409 ScopeLocked); lifting the lock for the "
                "scenario needs Microsoft.Authorization/locks/delete and "
                "Microsoft.Authorization/locks/write, and --keep-locks forbids lifting it"
            )
        return max((unlocked or users).items(), key=lambda item: (len(item[1]), item[0]))

    # -- state updates ------------------------------------------------------------------

    def forget_vm(self, vm: str) -> None:
        vms = dict(self.current.vms)
        vms.pop(vm)
        self.current = self.current.model_copy(update={"vms": vms})

    def forget_scale_set(self, scale_set: str) -> None:
        scale_sets = dict(self.current.scale_sets)
        scale_sets.pop(scale_set)
        self.current = self.current.model_copy(update={"scale_sets": scale_sets})

    def pick_scale_set(self, *, prefer_system: bool = False) -> str:
        """A standing scale set (its key) whose identities are granted something (what
        every instance must read). ``prefer_system``: one whose own system identity is
        granted first (its assignments are what deleting the set orphans)."""
        candidates = []
        for key, ss in sorted(self.current.scale_sets.items()):
            if f"scaleset:{key}" in self.used:
                continue
            system = bool(self.granted(ss.system_principal_id))
            held = [
                self.current.identities[i].principal_id
                for i in ss.user_assigned
                if i in self.current.identities
            ]
            if system or any(self.granted(p) for p in held):
                candidates.append((not (prefer_system and system), key))
        if not candidates:
            raise ScenarioSkippedError("no scale set whose identities are granted something")
        return min(candidates)[1]

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
