"""``remove-app-reference-grant``: remove the one grant through which an app's Key Vault
reference resolves; ARM reports the reference ``AccessToKeyVaultDenied`` and the resolving
identity, asked from inside the app, is refused the secret."""

from __future__ import annotations

from verify.lifecycle import apps
from verify.lifecycle.context import Lifecycle
from verify.lifecycle.steps import timed
from verify.results import Step


def remove_app_reference_grant(lc: Lifecycle) -> list[Step]:
    app, setting, resolver, grant = apps.pick_reference_grant(lc)
    host = apps.host(app)
    secret = lc.current.apps[app].key_vault_references[setting]
    steps = lc.new_steps()
    steps.append(apps.references_step(lc, app, f"before: {app}'s Key Vault references"))
    reads = [e for e in lc.expectations([host], resolver) if e.target == secret]
    step, _ = lc.probe_step(
        f"before: inside {host}, {resolver} reads {secret}", "allowed, as the matrix says", reads
    )
    steps.append(step)
    steps.append(
        timed(
            f"remove grant {grant.role_name} of {resolver} on {grant.scope.rsplit('/', 2)[-1]}",
            "role assignment deleted",
            lambda: lc.target.delete_assignment(grant.id),
            "deleted",
        )
    )
    apps.forget_grant(lc, grant)
    after = apps.expected_statuses(lc, app)
    step = apps.references_step(lc, app, f"after: {setting} turns AccessToKeyVaultDenied")
    step.passed = step.passed and after.get(setting) == "AccessToKeyVaultDenied"
    steps.append(step)
    refused = [e for e in lc.expectations([host], resolver) if e.target == secret]
    step, _ = lc.probe_step(
        f"after: inside {host}, {resolver} is refused {secret}",
        "denied (403 ForbiddenByRbac), as the matrix now says",
        refused,
    )
    step.passed = step.passed and all(e.expected == "denied" for e in refused)
    steps.append(step)
    return steps
