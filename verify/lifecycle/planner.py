"""Plan the lifecycle from the topology: which scenario acts on what, and which cannot run.

The scenarios share one deployment and each consumes what it acts on (delete-vm deletes
a VM, disable-system-identity turns one VM's identity off, ...). Run blindly, a topology
the scenarios were not written for fails half-way: on a plain 3-VM stack with one
system-only VM, delete-vm took it and disable-system-identity then found nothing and
failed the run. So before anything is deleted, the planner replays the scenarios' own
subject choices (the same ``Lifecycle.pick_*`` methods, on a copy of the outputs, with
each scenario's effect applied in order) and says, per scenario, what it will act on or
why it cannot run and what to add to the stack so it can.

A scenario that cannot run is SKIPPED, not failed: a topology is not wrong for lacking a
shared identity. ``--require-all-scenarios`` makes a skip fail the run (the dev topology
runs all five, and CI keeps it that way).

Each plan also says what the scenario will delete or write (``touches``, ARM IDs): the
management locks over those are lifted for it and put back (:mod:`verify.lifecycle.locks`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from verify.lifecycle import apps
from verify.lifecycle.context import Lifecycle, ScenarioSkippedError
from verify.lifecycle.locks import DELETE, WRITE, Touch
from verify.model import Grant, StackOutputs
from verify.targets.base import Target


@dataclass(frozen=True)
class PlannedScenario:
    """One scenario's place in the plan: what it acts on, or why it cannot run."""

    name: str
    subjects: str | None = None
    skip_reason: str | None = None
    #: What to add to the stack so the scenario can run (only when skipped).
    fix: str | None = None
    #: (ARM ID, ``delete`` | ``write``) the scenario will do: the locks that refuse one
    #: are lifted for it (verify.lifecycle.locks).
    touches: tuple[Touch, ...] = ()

    @property
    def runnable(self) -> bool:
        return self.skip_reason is None


#: A replay's answer: the subjects, and what the scenario deletes or writes.
_Planned = tuple[str, tuple[Touch, ...]]


class _OutputsOnly:
    """The one Target method the planner's Lifecycle copy calls; it never acts."""

    def __init__(self, outputs: StackOutputs) -> None:
        self._outputs = outputs

    def outputs(self) -> StackOutputs:
        return self._outputs


def _example_target(outputs: StackOutputs) -> str:
    return f"secret:{sorted(outputs.secrets)[0]}" if outputs.secrets else "vault"


def _grant_line(principal: str, outputs: StackOutputs) -> str:
    return (
        f"{{principal: {principal}, role: Key Vault Secrets User, "
        f"target: {_example_target(outputs)}}}"
    )


def _fix_system_vm(lc: Lifecycle, outputs: StackOutputs, second: bool) -> str:
    ungranted = [
        k
        for k, vm in sorted(lc.current.vms.items())
        if vm.system_principal_id and k not in lc.used and not lc.granted(vm.system_principal_id)
    ]
    if ungranted:
        return f"grant vm:{ungranted[0]}'s system identity something: add to mikit:grants " + (
            _grant_line(f"vm:{ungranted[0]}", outputs)
        )
    taken = ""
    vms_used = sorted(u for u in lc.used if u in lc.current.vms or ":" not in u)
    if second and vms_used:
        taken = (
            " (delete-vm and disable-system-identity each need their own; "
            f"{', '.join(vms_used)} is taken)"
        )
    return (
        "add a VM with a system identity and a grant to it"
        f"{taken}: mikit:vms.<key>: {{name: <vm name>, systemIdentity: true}} and in "
        f"mikit:grants {_grant_line('vm:<key>', outputs)}"
    )


def _fix_shared(lc: Lifecycle, outputs: StackOutputs) -> str:
    sharing = lc.sharing()
    shared_ungranted = [
        i
        for i, vms in sorted(sharing.items())
        if len(vms) >= 2 and not lc.granted(lc.current.identities[i].principal_id)
    ]
    if shared_ungranted:
        ident = shared_ungranted[0]
        return f"grant identity:{ident} something: add to mikit:grants " + _grant_line(
            f"identity:{ident}", outputs
        )
    granted = [i for i in sorted(sharing) if lc.granted(lc.current.identities[i].principal_id)]
    if granted:
        return (
            f"attach identity {granted[0]} to one more VM (userAssigned: [{granted[0]}] on a "
            "second VM of mikit:vms)"
        )
    return (
        "attach one user-assigned identity to two VMs and grant it: mikit:identities.<id>: "
        "{name: <identity name>}, userAssigned: [<id>] on two VMs of mikit:vms, and in "
        f"mikit:grants {_grant_line('identity:<id>', outputs)}"
    )


def _fix_in_use(lc: Lifecycle, outputs: StackOutputs) -> str:
    locked = [
        i
        for i in sorted(lc.sharing())
        if lc.current.identities[i].locked and lc.granted(lc.current.identities[i].principal_id)
    ]
    if locked:
        return (
            f"run without --keep-locks (the lock is lifted for the scenario and put back), "
            f"or run the lifecycle on a copy of the stack without the lock (mikit:identities."
            f"{locked[0]}.lock: false), or attach and grant another, unlocked identity; a "
            "lock lifted by hand (az lock delete) must be restored after the run"
        )
    ungranted = sorted(lc.sharing())
    if ungranted:
        return f"grant identity:{ungranted[0]} something: add to mikit:grants " + _grant_line(
            f"identity:{ungranted[0]}", outputs
        )
    return (
        "attach a user-assigned identity to a VM and grant it: mikit:identities.<id>: "
        "{name: <identity name>}, userAssigned: [<id>] on a VM of mikit:vms, and in "
        f"mikit:grants {_grant_line('identity:<id>', outputs)}"
    )


# Each step replays one scenario's choice and its effect on the copy; returns subjects.
def _orphans(lc: Lifecycle, principal_id: str | None) -> tuple[Touch, ...]:
    """With ``--cleanup`` the scenario deletes the orphaned assignments of the principal
    it removed (at most the grants it had)."""
    return tuple((g.id, DELETE) for g in lc.granted(principal_id)) if lc.cleanup else ()


def _delete_vm(lc: Lifecycle) -> _Planned:
    vm = lc.pick_system_vm()
    record = lc.current.vms[vm]
    touches = ((record.id, DELETE), *_orphans(lc, record.system_principal_id))
    lc.used.add(vm)
    lc.forget_vm(vm)
    return f"VM {vm} (deleted, with its system identity)", touches


def _disable_system_identity(lc: Lifecycle) -> _Planned:
    vm = lc.pick_system_vm()
    record = lc.current.vms[vm]
    touches = ((record.id, WRITE), *_orphans(lc, record.system_principal_id))
    lc.used.add(vm)
    lc.forget_system_identity(vm)
    return f"VM {vm} (system identity turned off)", touches


def _delete_one_sharing_vm(lc: Lifecycle) -> _Planned:
    ident, vms = lc.pick_shared_identity()
    victim = next((v for v in vms if v not in lc.used), vms[0])
    touches = ((lc.current.vms[victim].id, DELETE),)
    lc.used.add(victim)
    lc.forget_vm(victim)
    others = ", ".join(v for v in vms if v != victim)
    return f"identity {ident}: VM {victim} deleted, {others} keep reading", touches


_LIFTED = "; its CanNotDelete lock is lifted for the scenario and put back"


def _delete_shared_identity(lc: Lifecycle) -> _Planned:
    ident, vms = lc.pick_identity_in_use()
    uai = lc.current.identities[ident]
    lc.deleted_identity = (ident, uai, vms, lc.granted(uai.principal_id))
    lc.forget_identity(ident)
    lifted = _LIFTED if uai.locked else ""
    touches = ((uai.id, DELETE), *_orphans(lc, uai.principal_id))
    return f"identity {ident} (used by {', '.join(vms)}{lifted})", touches


def _regrant_touches(
    lc: Lifecycle, identity_id: str, vms: list[str], grants: list[Grant]
) -> tuple[Touch, ...]:
    """recreate-identity writes the identity, each VM's identity list and each grant."""
    return (
        (identity_id, WRITE),
        *((lc.current.vms[v].id, WRITE) for v in vms),
        *((g.scope, WRITE) for g in grants),
    )


def _recreate_identity(lc: Lifecycle) -> _Planned:
    if lc.deleted_identity is not None:
        ident, uai, vms, grants = lc.deleted_identity
        standing = [v for v in vms if v in lc.current.vms]
        if not standing:
            raise ScenarioSkippedError(f"no VM that used identity {ident} is left to attach it to")
        touches = _regrant_touches(lc, uai.id, standing, grants)
        return f"identity {ident}, attached again to {', '.join(standing)}", touches
    ident, vms = lc.pick_identity_in_use()
    uai = lc.current.identities[ident]
    grants = lc.granted(uai.principal_id)
    touches = (
        (uai.id, DELETE),
        *_regrant_touches(lc, uai.id, vms, grants),
        *_orphans(lc, uai.principal_id),
    )
    lc.forget_identity(ident)
    lifted = _LIFTED if uai.locked else ""
    return f"identity {ident} (deleted here, then recreated for {', '.join(vms)}{lifted})", touches


def _remove_workload_federation(lc: Lifecycle) -> _Planned:
    from verify.lifecycle.scenarios.remove_workload_federation import (  # noqa: PLC0415
        pick_federated_workload,
    )

    host, ident = pick_federated_workload(lc)
    # The credential's name is read from ARM when the scenario runs; any child of the
    # identity stands for it here (a lock on the identity refuses deleting it).
    name = re.sub(r"[^A-Za-z0-9-]", "-", host)
    credential = f"{lc.current.identities[ident].id}/federatedIdentityCredentials/{name}"
    subjects = f"{host} (identity {ident}: its federated credential removed, then made again)"
    return subjects, ((credential, DELETE), (credential, WRITE))


def _fix_workload(lc: Lifecycle, outputs: StackOutputs) -> str:
    del lc
    ident = next(iter(sorted(outputs.identities)), "<id>")
    return (
        "add a cluster workload with a granted identity: mikit:clusters.<c>: {name: <cluster "
        "name>, workloads: {<w>: {namespace: <ns>, serviceAccount: <sa>, identity: "
        f"{ident}}}}}, and in mikit:grants {_grant_line('identity:' + ident, outputs)}"
    )


def _delete_app(lc: Lifecycle) -> _Planned:
    app = apps.pick_app_with_system(lc, keep_references=False)
    record = lc.current.apps[app]
    touches = ((record.id, DELETE), *_orphans(lc, record.system_principal_id))
    lc.used.add(apps.host(app))
    apps.forget_app(lc, app)
    return f"app {app} (deleted, with its system identity)", touches


def _remove_app_reference_grant(lc: Lifecycle) -> _Planned:
    app, setting, resolver, grant = apps.pick_reference_grant(lc)
    apps.forget_grant(lc, grant)
    return f"app {app}: {setting}'s grant to {resolver} removed", ((grant.id, DELETE),)


def _disable_app_system_identity(lc: Lifecycle) -> _Planned:
    app = apps.pick_app_with_system(lc, keep_references=True)
    record = lc.current.apps[app]
    touches = ((record.id, WRITE), *_orphans(lc, record.system_principal_id))
    lc.used.add(apps.host(app))
    apps.forget_app_system_identity(lc, app)
    return f"app {app} (system identity turned off)", touches


def _fix_app_system(lc: Lifecycle, outputs: StackOutputs) -> str:
    return (
        "add an app with a system identity (one for each of delete-app and "
        "disable-app-system-identity): mikit:apps.<key>: {kind: webapp, name: <app name>, "
        f"systemIdentity: true}}, and in mikit:grants {_grant_line('app:<key>', outputs)}"
    )


def _fix_reference(lc: Lifecycle, outputs: StackOutputs) -> str:
    return (
        "give a web or Function app a Key Vault reference that one grant resolves: "
        "keyVaultReferences: {<SETTING>: <secret>} on mikit:apps.<key> (systemIdentity: true), "
        "and in mikit:grants {principal: app:<key>, role: Key Vault Secrets User, "
        "target: secret:<secret>}"
    )


def _scale_in_and_out(lc: Lifecycle) -> _Planned:
    key = lc.pick_scale_set()
    touches = ((lc.current.scale_sets[key].id, WRITE),)
    return f"scale set {key} (scaled out by one, then in, then back)", touches


def _delete_scale_set(lc: Lifecycle) -> _Planned:
    from verify.lifecycle.scenarios.delete_scale_set import holders_of  # noqa: PLC0415

    key = lc.pick_scale_set(prefer_system=True)
    held = [i for i in lc.current.scale_sets[key].user_assigned if i in lc.current.identities]
    others = sorted({h for i in held for h in holders_of(lc, i, f"scaleset:{key}")})
    ss = lc.current.scale_sets[key]
    granted = lc.granted(ss.system_principal_id)
    what = "with its system identity" if granted else "no granted system identity"
    keeps = f"; {', '.join(held)} stays for {', '.join(others) or 'no other host'}" if held else ""
    touches = ((ss.id, DELETE), *_orphans(lc, ss.system_principal_id))
    lc.used.add(f"scaleset:{key}")
    lc.forget_scale_set(key)
    return f"scale set {key} (deleted, {what}{keeps})", touches


def _fix_scale_set(lc: Lifecycle, outputs: StackOutputs) -> str:
    standing = sorted(k for k in lc.current.scale_sets if f"scaleset:{k}" not in lc.used)
    if standing:
        key = standing[0]
        return f"grant scaleset:{key}'s identities something: add to mikit:grants " + (
            _grant_line(f"scaleset:{key}", outputs)
        )
    return (
        "add a scale set with a granted system identity: mikit:scaleSets.<s>: {name: <scale "
        "set name>, instances: 2, systemIdentity: true}, and in mikit:grants "
        + _grant_line("scaleset:<s>", outputs)
    )


_Replay = Callable[[Lifecycle], _Planned]
_Fix = Callable[[Lifecycle, StackOutputs], str]
_STEPS: Mapping[str, tuple[_Replay, _Fix]] = {
    "remove-workload-federation": (_remove_workload_federation, _fix_workload),
    "scale-in-and-out": (_scale_in_and_out, _fix_scale_set),
    "delete-scale-set": (_delete_scale_set, _fix_scale_set),
    "delete-vm": (_delete_vm, lambda lc, o: _fix_system_vm(lc, o, second=False)),
    "disable-system-identity": (
        _disable_system_identity,
        lambda lc, o: _fix_system_vm(lc, o, second=True),
    ),
    "delete-one-sharing-vm": (_delete_one_sharing_vm, _fix_shared),
    "delete-shared-identity": (_delete_shared_identity, _fix_in_use),
    "recreate-identity": (_recreate_identity, _fix_in_use),
    "delete-app": (_delete_app, _fix_app_system),
    "remove-app-reference-grant": (_remove_app_reference_grant, _fix_reference),
    "disable-app-system-identity": (_disable_app_system_identity, _fix_app_system),
}


def plan(
    outputs: StackOutputs,
    names: Sequence[str],
    *,
    keep_locks: bool = False,
    cleanup: bool = False,
    seed: Lifecycle | None = None,
) -> list[PlannedScenario]:
    """Replay ``names`` (canonical order) on a copy of ``outputs``; nothing is touched.
    ``keep_locks``: a locked identity is never chosen for deletion (``--keep-locks``).
    ``cleanup``: the scenarios also delete orphaned assignments (what they touch).
    ``seed``: a running lifecycle whose choices so far (subjects used, the identity
    deleted) the replay starts from, to plan the rest of a run again."""
    shadow = Lifecycle(cast(Target, _OutputsOnly(outputs)), keep_locks=keep_locks, cleanup=cleanup)
    if seed is not None:
        shadow.used = set(seed.used)
        shadow.deleted_identity = seed.deleted_identity
    planned: list[PlannedScenario] = []
    for name in names:
        replay, fix = _STEPS[name]
        try:
            answer = replay(shadow)
        except ScenarioSkippedError as exc:
            planned.append(PlannedScenario(name, skip_reason=str(exc), fix=fix(shadow, outputs)))
            continue
        subjects, touches = answer
        planned.append(PlannedScenario(name, subjects=subjects, touches=touches))
    return _lock_needs_recreate(planned, shadow)


def _lock_needs_recreate(
    planned: list[PlannedScenario], shadow: Lifecycle
) -> list[PlannedScenario]:
    """An identity's own lock cannot outlive the identity: deleting a locked identity is
    planned only when recreate-identity runs after it (the lock is put back once the
    identity exists again), so a run never ends with the lock gone for good."""
    by_name = {p.name: p for p in planned}
    deleting = by_name.get("delete-shared-identity")
    memo = shadow.deleted_identity
    if deleting is None or not deleting.runnable or memo is None or not memo[1].locked:
        return planned
    recreate = by_name.get("recreate-identity")
    if recreate is not None and recreate.runnable:
        return planned
    ident = memo[0]
    skipped = PlannedScenario(
        deleting.name,
        skip_reason=(
            f"identity {ident} has a CanNotDelete lock (mikit:identities.{ident}.lock) that "
            "exists only with the identity: lifted for the delete, it could be put back only "
            "by recreate-identity, which this run does not run"
        ),
        fix="run delete-shared-identity together with recreate-identity (--scenario "
        "delete-shared-identity --scenario recreate-identity), or recreate-identity alone",
    )
    return [skipped if p is deleting else p for p in planned]


def describe(planned: Sequence[PlannedScenario]) -> list[str]:
    """One line per scenario, for progress output."""
    return [
        f"  {p.name}: {p.subjects}" if p.runnable else f"  {p.name}: SKIPPED ({p.skip_reason})"
        for p in planned
    ]


def as_dict(planned: PlannedScenario) -> dict[str, Any]:
    return {
        "name": planned.name,
        "subjects": planned.subjects,
        "skip_reason": planned.skip_reason,
        "fix": planned.fix,
    }
