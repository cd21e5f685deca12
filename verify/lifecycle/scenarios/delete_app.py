"""``delete-app``: delete an app; its system identity goes with it, and the role
assignments of that identity stay behind, orphaned, until cleanup's rules remove them."""

from __future__ import annotations

from verify.lifecycle import apps
from verify.lifecycle.cleanup import cleanup_step
from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import observed_step, timed
from verify.results import Step


def delete_app(lc: Lifecycle) -> list[Step]:
    app = apps.pick_app_with_system(lc, keep_references=False)
    host = apps.host(app)
    lc.used.add(host)
    principal = lc.current.apps[app].system_principal_id or ""
    steps = lc.new_steps()
    step, _ = lc.probe_step(
        f"before: {host} system identity reads what it was granted",
        "matrix holds for this app's system identity",
        lc.expectations([host], "system"),
    )
    steps.append(step)
    expected_assignments = {g.id for g in lc.granted(principal)}
    steps.append(
        lc.removed(
            principal,
            timed(
                f"delete app {app}",
                "app deleted, with its system identity",
                lambda: lc.target.delete_app(app),  # type: ignore[attr-defined]
                "deleted",
            ),
        )
    )
    exists = lc.target.app_exists(app)  # type: ignore[attr-defined]
    steps.append(
        observed_step(
            f"{host} is gone",
            "ARM no longer lists the app",
            not exists,
            "still listed" if exists else "404: not found",
        )
    )
    apps.forget_app(lc, app)
    if expected_assignments:
        steps.append(
            lc.assignments_step(
                "its system identity's assignments remain, orphaned",
                principal,
                expected_assignments,
            )
        )
        steps.append(cleanup_step(lc, [principal]))
    return steps
