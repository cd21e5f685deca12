"""Key Vault references' evidence: the status ARM reports for each app setting.

A web app's or Function app's ``@Microsoft.KeyVault(...)`` setting is resolved by the
platform with the app's system identity or the one ``keyVaultReferenceIdentity`` names;
ARM reports each setting's resolution at ``.../sites/{app}/config/configreferences/appsettings``.
The expected status comes from the matrix cell (that app, the resolving identity, the
secret): ``Resolved`` when allowed, ``AccessToKeyVaultDenied`` when denied or when the
resolving identity no longer exists (its orphaned grants read nothing), ``MSINotEnabled``
when it resolves with a system identity that is off. Only that exact status is evidence;
any other (``OtherReasons``, ``FetchTimedOut``, ``Initialized``...) proves nothing and fails.
The read from inside the app is that same matrix cell, probed as every cell is. Container
apps have no such status (a revision whose secret cannot be resolved fails to start).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from verify.model import AccessCell, StackOutputs

SYSTEM = "system"
RESOLVED = "Resolved"
DENIED = "AccessToKeyVaultDenied"
MSI_NOT_ENABLED = "MSINotEnabled"
#: App kinds whose Key Vault reference statuses ARM reports.
STATUS_KINDS = ("webapp", "functionapp")


def reports_statuses(outputs: StackOutputs, app: str) -> bool:
    found = outputs.apps[app]
    return found.kind in STATUS_KINDS and bool(found.key_vault_references)


def expected_statuses(
    outputs: StackOutputs, matrix: Iterable[AccessCell], app: str
) -> dict[str, str]:
    """Setting -> the status ARM should report for each of ``app``'s references."""
    found = outputs.apps[app]
    resolver = found.key_vault_reference_identity
    cells = {
        c.target: c.expected
        for c in matrix
        if c.host == f"app:{app}" and c.identity == resolver and c.kind == "secret"
    }
    statuses = {}
    for setting, secret in sorted(found.key_vault_references.items()):
        if resolver == SYSTEM and not found.system_principal_id:
            statuses[setting] = MSI_NOT_ENABLED
        elif cells.get(secret) == "allowed":
            statuses[setting] = RESOLVED
        else:
            statuses[setting] = DENIED
    return statuses


def compare(app: str, want: Mapping[str, str], seen: Mapping[str, str]) -> list[str]:
    """Each setting whose reported status is not the expected one, said in one line."""
    return [
        f"app 'app:{app}' Key Vault reference {setting}: expected {status}, ARM reports "
        f"{seen.get(setting, 'nothing')}"
        + ("" if setting in seen else " (the setting is not listed)")
        for setting, status in want.items()
        if seen.get(setting) != status
    ]


def reference_problems(
    target: object, outputs: StackOutputs, matrix: Iterable[AccessCell]
) -> tuple[int, list[str]]:
    """(references checked, problems): every web and Function app's reference statuses,
    read through the target, against the grants. A target that cannot read them is a
    problem too, never a silent pass."""
    cells = list(matrix)
    apps = [a for a in sorted(outputs.apps) if reports_statuses(outputs, a)]
    read: Callable[[str], Mapping[str, str]] | None = getattr(
        target, "key_vault_reference_statuses", None
    )
    checked, problems = 0, []
    for app in apps:
        want = expected_statuses(outputs, cells, app)
        if read is None:
            problems.append(
                f"app 'app:{app}': Key Vault reference statuses not checked: target "
                f"{getattr(target, 'name', '?')} cannot read configreferences/appsettings"
            )
            continue
        try:
            seen = read(app)
        except Exception as exc:
            problems.append(f"app 'app:{app}': Key Vault reference statuses not read: {exc}")
            continue
        checked += len(want)
        problems += compare(app, want, seen)
    return checked, problems
