"""``delete-shared-identity``: delete the shared identity; every VM and app that used it
fails fresh probes, the Key Vault references it resolved turn ``AccessToKeyVaultDenied``;
its assignments are orphaned."""

from __future__ import annotations

import dataclasses

from verify.lifecycle import apps
from verify.lifecycle.cleanup import cleanup_step
from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import timed
from verify.lifecycle.verdicts import replay_step
from verify.results import Step


def delete_shared_identity(lc: Lifecycle) -> list[Step]:
    ident, vms = lc.pick_identity_in_use()
    uai = lc.current.identities[ident]
    before = lc.current
    app_hosts = [apps.host(a) for a in apps.apps_using(lc, ident)]
    resolving = [
        a
        for a in apps.apps_using(lc, ident)
        if apps.reports_statuses(lc.current, a)
        and lc.current.apps[a].key_vault_reference_identity == ident
    ]
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {', '.join(vms)} read through {ident} (tokens stashed on the VMs)",
        "matrix holds",
        lc.expectations(vms, ident),
        stash=True,
    )
    steps.append(step)
    if app_hosts:
        step, _ = lc.probe_step(
            f"before: inside {', '.join(app_hosts)}, {ident} reads what it was granted",
            "matrix holds",
            lc.expectations(app_hosts, ident),
        )
        steps.append(step)
    for app in resolving:
        steps.append(apps.references_step(lc, app, f"before: {app}'s Key Vault references"))
    expected_assignments = {g.id for g in lc.granted(uai.principal_id)}
    steps.append(
        lc.removed(
            uai.principal_id,
            timed(
                f"delete identity {ident}",
                "identity deleted",
                lambda: lc.target.delete_identity(ident),
                "deleted",
            ),
        )
    )
    gone_cells = [
        dataclasses.replace(e, expected="no_identity")  # keeps each cell's kind (blob/secret)
        for e in lc.expectations(vms, ident, outputs=before)
    ]
    step, _ = lc.probe_step(
        f"fresh probes on every VM that used {ident}",
        "no_identity everywhere",
        gone_cells,
    )
    steps.append(step)
    if app_hosts:
        gone_in_apps = [
            dataclasses.replace(e, expected="no_identity")
            for e in lc.expectations(app_hosts, ident, outputs=before)
        ]
        step, _ = lc.probe_step(
            f"fresh token requests in every app that used {ident}",
            "refused by each app's identity endpoint (no_identity) for every target",
            gone_in_apps,
        )
        steps.append(step)
    steps.append(replay_step(lc, vms[0], ident, before))
    lc.forget_identity(ident)
    for app in resolving:
        steps.append(
            apps.references_step(
                lc, app, f"after: {app}'s references through {ident} turn AccessToKeyVaultDenied"
            )
        )
    steps.append(
        lc.assignments_step(
            "its assignments remain, orphaned", uai.principal_id, expected_assignments
        )
    )
    steps.append(cleanup_step(lc, [uai.principal_id]))
    lc.deleted_identity = (
        ident,
        uai,
        vms,
        lc.granted(uai.principal_id),
    )
    return steps
