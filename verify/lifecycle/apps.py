"""What the app scenarios share: choosing an app, the state updates, and the Key Vault
reference statuses they expect (from the same derived matrix the probe is judged by).

An app is a matrix host ``app:<key>``. A web app's or Function app's Key Vault reference
resolves with its system identity or the identity its ``keyVaultReferenceIdentity``
names; ARM reports each setting's resolution at ``.../config/configreferences/appsettings``.
Its expected status comes from the cell (that app, the resolving identity, the secret) of
the matrix the grants imply now: ``Resolved`` when allowed, ``AccessToKeyVaultDenied``
when denied or when the resolving identity no longer exists, ``MSINotEnabled`` when it
resolves with a system identity that is off. Container apps have no such ARM status (a
revision whose secret cannot be resolved fails), so only web and Function apps are read.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from verify.evidence import references
from verify.lifecycle.context import Lifecycle, ScenarioSkippedError
from verify.model import Grant, StackOutputs, grant_allows
from verify.results import Step

SYSTEM = "system"


def host(app: str) -> str:
    return f"app:{app}"


def reports_statuses(outputs: StackOutputs, app: str) -> bool:
    return references.reports_statuses(outputs, app)


def expected_statuses(
    lc: Lifecycle, app: str, outputs: StackOutputs | None = None
) -> dict[str, str]:
    """Setting -> the status ARM should report for each of the app's Key Vault references
    (:func:`verify.evidence.references.expected_statuses` on the matrix the grants imply now)."""
    outputs = outputs or lc.current
    return references.expected_statuses(outputs, lc.matrix(outputs), app)


def references_step(lc: Lifecycle, app: str, name: str) -> Step:
    """ARM's status of each Key Vault reference of ``app`` must be what the grants imply."""
    started = time.monotonic()
    want = expected_statuses(lc, app)
    expected = "; ".join(f"{k} {v}" for k, v in want.items())
    read: Callable[[str], dict[str, str]] | None = getattr(
        lc.target, "key_vault_reference_statuses", None
    )
    if read is None:
        return Step(
            name,
            expected,
            f"not read: target {lc.target.name} cannot read Key Vault reference statuses",
            False,
            time.monotonic() - started,
        )
    try:
        seen = read(app)
    except Exception as exc:
        observed, passed = f"failed: {type(exc).__name__}: {exc}", False
    else:
        got = {k: seen.get(k, "not listed") for k in want}
        observed = "; ".join(f"{k} {v}" for k, v in got.items())
        passed = bool(want) and got == want
    return Step(name, expected, observed, passed, time.monotonic() - started)


# -- subject selection ------------------------------------------------------------------


def standing_apps(lc: Lifecycle) -> list[str]:
    return sorted(lc.current.apps)


def apps_using(lc: Lifecycle, identity: str) -> list[str]:
    """Apps whose code can use ``identity`` (held and not hidden by its lifecycle)."""
    return [
        key
        for key, app in sorted(lc.current.apps.items())
        if identity in app.user_assigned
        and app.identity_lifecycles.get(identity) not in ("None", "Init")
    ]


def pick_app_with_system(lc: Lifecycle, *, keep_references: bool) -> str:
    """An app with a system identity not taken by another scenario. ``keep_references``
    prefers an app whose ARM-reported references resolve through it (turning it off must
    show MSINotEnabled); otherwise such apps come last, kept for that scenario."""
    candidates = [
        key
        for key, app in sorted(lc.current.apps.items())
        if app.system_principal_id and host(key) not in lc.used
    ]
    if not candidates:
        raise ScenarioSkippedError("no app with a system-assigned identity is left")

    def through_system(key: str) -> bool:
        app = lc.current.apps[key]
        return reports_statuses(lc.current, key) and app.key_vault_reference_identity == SYSTEM

    def granted(key: str) -> bool:
        return bool(lc.granted(lc.current.apps[key].system_principal_id))

    if keep_references:
        candidates.sort(key=lambda k: (not through_system(k), not granted(k), k))
    else:
        candidates.sort(key=lambda k: (through_system(k), not granted(k), k))
    return candidates[0]


def pick_reference_grant(lc: Lifecycle) -> tuple[str, str, str, Grant]:
    """(app, setting, resolving identity, the one grant that lets it read the secret): a
    reference ARM reports whose resolution hangs on exactly one grant."""
    found: list[tuple[bool, str, str, str, Grant]] = []
    for key, app in sorted(lc.current.apps.items()):
        if host(key) in lc.used or not reports_statuses(lc.current, key):
            continue
        resolver = app.key_vault_reference_identity
        if resolver == SYSTEM:
            principal = app.system_principal_id
        else:
            held = lc.current.identities.get(resolver)
            principal = held.principal_id if held else None
        if not principal:
            continue
        for setting, secret in sorted(app.key_vault_references.items()):
            ref = lc.current.secrets.get(secret)
            if ref is None:
                continue
            reading = [g for g in lc.granted(principal) if grant_allows(g, ref.scope)]
            if len(reading) == 1:
                found.append((resolver != SYSTEM, key, setting, resolver, reading[0]))
    if not found:
        raise ScenarioSkippedError(
            "no web or Function app has a Key Vault reference that exactly one grant resolves"
        )
    _, key, setting, resolver, grant = min(found, key=lambda f: f[:3])
    return key, setting, resolver, grant


# -- state updates ----------------------------------------------------------------------


def forget_app(lc: Lifecycle, app: str) -> None:
    apps = dict(lc.current.apps)
    apps.pop(app)
    lc.current = lc.current.model_copy(update={"apps": apps})


def forget_app_system_identity(lc: Lifecycle, app: str) -> None:
    apps = dict(lc.current.apps)
    apps[app] = apps[app].model_copy(update={"system_principal_id": None})
    lc.current = lc.current.model_copy(update={"apps": apps})


def forget_grant(lc: Lifecycle, grant: Grant) -> None:
    kept = tuple(g for g in lc.current.grants if g.id.lower() != grant.id.lower())
    lc.current = lc.current.model_copy(update={"grants": kept})
