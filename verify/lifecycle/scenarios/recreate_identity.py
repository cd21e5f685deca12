"""``recreate-identity``: same name, new principal and client ID; the old grants do not
apply until made again; then reads work."""

from __future__ import annotations

from collections.abc import Sequence

from verify.lifecycle.cleanup import cleanup_step
from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import observed_step, timed
from verify.model import Grant, Identity
from verify.results import Step


def _attach_all(lc: Lifecycle, vms: Sequence[str], ident: str) -> str:
    for vm in vms:
        lc.target.attach_identity(vm, ident)
    return f"attached to {len(vms)} VM(s)"


def _listing_step(lc: Lifecycle, vms: Sequence[str], identity_id: str, listed: bool) -> Step:
    """Observe from ARM whether each VM lists ``identity_id`` (after a detach or attach)."""
    wrong = [
        vm
        for vm in vms
        if (identity_id.lower() in {u.lower() for u in lc.target.vm_identity_ids(vm)}) != listed
    ]
    verb = "list" if listed else "no longer list"
    return observed_step(
        f"the VMs {verb} it",
        f"ARM shows {', '.join(vms)} {'listing' if listed else 'without'} {identity_id}",
        not wrong and bool(vms),
        f"wrong on {', '.join(wrong)}" if wrong else f"as expected on {len(vms)} VM(s)",
    )


def _detach_all(lc: Lifecycle, vms: Sequence[str], ident: str) -> str:
    for vm in vms:
        lc.target.detach_identity(vm, ident)
    return f"removed from {len(vms)} VM(s)"


def recreate_identity(lc: Lifecycle) -> list[Step]:
    memo = lc.deleted_identity
    steps = lc.new_steps()
    if memo is None:
        ident, vms = lc.pick_identity_in_use()
        old = lc.current.identities[ident]
        old_grants = lc.granted(old.principal_id)
        steps.append(
            lc.removed(
                old.principal_id,
                timed(
                    f"delete identity {ident}",
                    "identity deleted",
                    lambda: lc.target.delete_identity(ident),
                    "deleted",
                ),
            )
        )
        lc.forget_identity(ident)
    else:
        ident, old, vms, old_grants = memo
    vms = [v for v in vms if v in lc.current.vms]
    # A VM keeps listing a deleted identity; take that dangling reference off first, so
    # the recreated identity reaches a VM only through the attach below (and a skipped
    # or failed attach shows as the failure it is).
    steps.append(
        timed(
            f"remove the deleted {ident} from {', '.join(vms)}",
            "the VMs no longer list the deleted identity",
            lambda: _detach_all(lc, vms, ident),
        )
    )
    steps.append(_listing_step(lc, vms, old.id, listed=False))
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

    steps.append(timed(f"create identity {old.name} again", "created", create))
    if not created:
        return steps
    new = created[0]
    steps.append(
        observed_step(
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
        timed(
            f"attach it to {', '.join(vms)}",
            "VMs list the recreated identity",
            lambda: _attach_all(lc, vms, ident),
        )
    )
    steps.append(_listing_step(lc, vms, new.id, listed=True))
    step, _ = lc.probe_step(
        "old grants do not apply to the new principal",
        "forbidden for every secret (token oid is the new principal)",
        lc.expectations(vms, ident),
    )
    steps.append(step)
    made: list[Grant] = []

    def regrant() -> str:
        for grant in old_grants:
            # The condition too: without it an account-wide blob grant would read every blob.
            a = lc.target.create_assignment(
                new.principal_id, grant.role_definition_id, grant.scope, grant.condition
            )
            made.append(
                grant.model_copy(
                    update={"name": a.name, "id": a.id, "principal_id": new.principal_id}
                )
            )
        return f"{len(made)} grant(s) made for the new principal"

    steps.append(timed("make the grants again", f"{len(old_grants)} grant(s) made", regrant))
    lc.add_grants(made)
    step, _ = lc.probe_step(
        "after the grants are made again, reads work",
        "matrix holds (probe waits out RBAC propagation, bounded)",
        lc.expectations(vms, ident),
        propagation_wait=lc.propagation_wait,
    )
    steps.append(step)
    steps += _federation_gone_steps(lc, ident)
    if memo is None:
        # This scenario deleted the identity itself: report (and clean) its orphans too.
        steps.append(cleanup_step(lc, [old.principal_id]))
    return steps


def _federation_gone_steps(lc: Lifecycle, ident: str) -> list[Step]:
    """Cluster workloads federated to the identity: their federated credentials went with
    the old principal, so the recreated identity trusts none of their service accounts
    (their pods' exchanges fail until the stack federates them again)."""
    steps: list[Step] = []
    for host, record in sorted(lc.current.workload_hosts.items()):
        if record.workload.identity != ident:
            continue
        subject = record.workload.subject
        trusted = [c.name for c in lc.target.federated_credentials(ident) if c.subject == subject]
        steps.append(
            observed_step(
                f"{host}: its federation went with the old principal",
                f"the recreated identity {ident} has no federated credential for {subject}",
                not trusted,
                "none" if not trusted else f"still trusted by {', '.join(trusted)}",
            )
        )
    return steps
