"""The expected-access matrix, derived from the grants (never typed in twice).

For every VM x each identity it holds x every secret: allowed when some grant to that
identity has a role that permits ``getSecret`` at a scope containing the secret. The
verifier checks both directions against it, so a wrong row here would either hide a
leak or fail a correct deployment; keeping it a pure function keeps it testable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components import armid
from components.roles import GET_SECRET, RoleDefinition

SYSTEM = "system"


@dataclass(frozen=True)
class VmIdentities:
    """What one VM holds: its system principal (None when off) and attached identity keys."""

    system_principal_id: str | None
    user_assigned: Sequence[str]


@dataclass(frozen=True)
class IdentityRef:
    principal_id: str
    client_id: str


@dataclass(frozen=True)
class GrantRef:
    """A grant as the matrix needs it: principal reference (vm:<key> / identity:<key>)."""

    principal: str
    role: RoleDefinition
    scope: str


def grant_allows(grant: GrantRef, secret_scope: str) -> bool:
    return grant.role.permits_data_action(GET_SECRET) and armid.is_within(grant.scope, secret_scope)


def access_matrix(
    vms: Mapping[str, VmIdentities],
    identities: Mapping[str, IdentityRef],
    grants: Sequence[GrantRef],
    secrets: Mapping[str, str],
) -> list[dict[str, Any]]:
    """Rows ``{vm, identity, principal_id, client_id, secret, expected}`` in stable order.

    ``secrets`` maps secret name -> its ARM scope. Order: VMs, then the system identity
    before user-assigned ones (in attachment order), then secrets, as given.
    """
    rows: list[dict[str, Any]] = []
    for vm_key, vm in vms.items():
        holders: list[tuple[str, str, str, str | None]] = []
        if vm.system_principal_id is not None:
            holders.append((SYSTEM, f"vm:{vm_key}", vm.system_principal_id, None))
        for key in vm.user_assigned:
            ref = identities[key]
            holders.append((key, f"identity:{key}", ref.principal_id, ref.client_id))
        for identity, principal_ref, principal_id, client_id in holders:
            mine = [g for g in grants if g.principal == principal_ref]
            for secret, scope in secrets.items():
                allowed = any(grant_allows(g, scope) for g in mine)
                rows.append(
                    {
                        "vm": vm_key,
                        "identity": identity,
                        "principal_id": principal_id,
                        "client_id": client_id,
                        "secret": secret,
                        "expected": "allowed" if allowed else "denied",
                    }
                )
    return rows
