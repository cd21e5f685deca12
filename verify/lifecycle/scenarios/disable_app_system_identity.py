"""``disable-app-system-identity``: turn the system identity off on an app; its identity
endpoint refuses new token requests for it, and the Key Vault references it resolved
turn ``MSINotEnabled``; its assignments stay, orphaned."""

from __future__ import annotations

import dataclasses

from verify.lifecycle import apps
from verify.lifecycle.cleanup import cleanup_step
from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import timed
from verify.results import Step


def disable_app_system_identity(lc: Lifecycle) -> list[Step]:
    app = apps.pick_app_with_system(lc, keep_references=True)
    host = apps.host(app)
    lc.used.add(host)
    principal = lc.current.apps[app].system_principal_id or ""
    before = lc.current
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {host} system identity reads what it was granted",
        "matrix holds for this app's system identity",
        lc.expectations([host], "system"),
    )
    steps.append(step)
    with_statuses = apps.reports_statuses(lc.current, app)
    if with_statuses:
        steps.append(apps.references_step(lc, app, f"before: {app}'s Key Vault references"))
    steps.append(
        lc.removed(
            principal,
            timed(
                f"turn system identity off on {app}",
                "identity type changed, app still running",
                lambda: lc.target.set_app_system_identity(app, False),  # type: ignore[attr-defined]
                "updated",
            ),
        )
    )
    gone = [
        dataclasses.replace(e, expected="no_identity")
        for e in lc.expectations([host], "system", outputs=before)
    ]
    step, _ = lc.probe_step(
        f"fresh token requests on {host} for its system identity",
        "refused by the app's identity endpoint (no_identity) for every target",
        gone,
    )
    steps.append(step)
    apps.forget_app_system_identity(lc, app)
    if with_statuses:
        steps.append(apps.references_step(lc, app, "after: its references say MSINotEnabled"))
    expected_assignments = {g.id for g in lc.granted(principal)}
    if expected_assignments:
        steps.append(
            lc.assignments_step("its assignments remain, orphaned", principal, expected_assignments)
        )
        steps.append(cleanup_step(lc, [principal]))
    return steps
