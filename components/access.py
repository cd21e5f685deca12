"""The expected-access matrix, derived from the grants (never typed in twice).

For every VM x each identity it holds x every secret and every blob: allowed when some
grant to that identity has a role that permits the read (``getSecret`` / blob ``read``),
at a scope containing the target, *and* whose condition (if any) evaluates to true for
that target, as Azure evaluates it per data action (``components.conditions``). The
verifier checks both directions against it, so a wrong row here would either hide a
leak or fail a correct deployment; keeping it a pure function keeps it testable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components import armid
from components.conditions import Condition, RequestContext
from components.roles import GET_SECRET, READ_BLOB, RoleDefinition

SYSTEM = "system"

ACCOUNT_NAME = "Microsoft.Storage/storageAccounts:name"
IS_HNS_ENABLED = "Microsoft.Storage/storageAccounts:isHnsEnabled"
CONTAINER_NAME = "Microsoft.Storage/storageAccounts/blobServices/containers:name"
BLOB_PATH = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path"
BLOB_TAGS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags"
IS_CURRENT_VERSION = (
    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs:isCurrentVersion"
)
ENCRYPTION_SCOPE = "Microsoft.Storage/storageAccounts/encryptionScopes:name"
#: The scope a blob is encrypted with unless another is chosen (Azure's default).
DEFAULT_ENCRYPTION_SCOPE = "$account-encryption-key"


@dataclass(frozen=True)
class VmIdentities:
    """What one VM holds: its system principal (None when off) and attached identity keys."""

    system_principal_id: str | None
    user_assigned: Sequence[str]


@dataclass(frozen=True)
class Holder:
    """One identity a host holds: its matrix name, the grant reference that names its
    principal (``scaleset:<key>``, ``identity:<key>``...), principal and client ID."""

    identity: str
    reference: str
    principal_id: str
    client_id: str | None = None
    #: Held but not given to the host's code (a Container Apps identity lifecycle of
    #: ``None`` or ``Init``): its identity endpoint refuses it, so every cell expects
    #: ``no_identity`` whatever the grants allow.
    hidden: bool = False


@dataclass(frozen=True)
class HostRef:
    """A host other than a VM (``scaleset``, ``workload`` ...) and the identities it holds,
    in the order its rows come."""

    kind: str
    holders: Sequence[Holder]


@dataclass(frozen=True)
class IdentityRef:
    principal_id: str
    client_id: str


@dataclass(frozen=True)
class GrantRef:
    """A grant as the matrix needs it: principal reference (vm:<key> / identity:<key>),
    role, scope and its parsed condition (None: unconditional)."""

    principal: str
    role: RoleDefinition
    scope: str
    condition: Condition | None = None


@dataclass(frozen=True)
class BlobRef:
    """One blob as a condition sees it. ``scope`` is its container's ARM ID (the
    narrowest scope a role assignment can name); ``name`` is the path in the container."""

    account: str
    container: str
    name: str
    scope: str
    tags: Mapping[str, str] = field(default_factory=dict)


def secret_read(secret_scope: str) -> RequestContext:
    """Get Secret: a Key Vault data action (no condition attributes exist for it)."""
    del secret_scope  # the scope decides by containment; no attribute carries it
    return RequestContext(action=GET_SECRET)


def blob_read(blob: BlobRef) -> RequestContext:
    """Get Blob on the blob's current version, as Azure describes the request.

    Resource attributes from Microsoft's Blob list ("Read a blob"); the request names no
    version or snapshot, so those request attributes are absent. Principal and
    environment attributes are not modelled (no custom security attributes; the matrix
    must not depend on the clock), so a condition reading them denies.
    """
    return RequestContext(
        action=READ_BLOB,
        resource={
            ACCOUNT_NAME: blob.account,
            IS_HNS_ENABLED: False,
            CONTAINER_NAME: blob.container,
            BLOB_PATH: blob.name,
            BLOB_TAGS: dict(blob.tags),
            IS_CURRENT_VERSION: True,
            ENCRYPTION_SCOPE: DEFAULT_ENCRYPTION_SCOPE,
        },
    )


def grant_permits(grant: GrantRef, ctx: RequestContext, target_scope: str) -> bool:
    """Role permits the data action, scope contains the target, condition holds."""
    return (
        grant.role.permits_data_action(ctx.action)
        and armid.is_within(grant.scope, target_scope)
        and (grant.condition is None or grant.condition.evaluate(ctx))
    )


def grant_allows(grant: GrantRef, secret_scope: str) -> bool:
    return grant_permits(grant, secret_read(secret_scope), secret_scope)


def grant_allows_blob(grant: GrantRef, blob: BlobRef) -> bool:
    return grant_permits(grant, blob_read(blob), blob.scope)


def blob_key(account_key: str, container: str, name: str) -> str:
    """``<account key>/<container>/<path>``: how stack outputs and the matrix name a blob."""
    return f"{account_key}/{container}/{name}"


def access_matrix(
    vms: Mapping[str, VmIdentities],
    identities: Mapping[str, IdentityRef],
    grants: Sequence[GrantRef],
    secrets: Mapping[str, str],
    blobs: Mapping[str, BlobRef] | None = None,
    *,
    hosts: Mapping[str, HostRef] | None = None,
) -> list[dict[str, Any]]:
    """Rows in stable order: VMs, the system identity before user-assigned ones (in
    attachment order), then that holder's secrets, then its blobs, as given; then the
    other ``hosts`` the same way.

    ``secrets`` maps secret name -> its ARM scope; ``blobs`` maps blob key
    (:func:`blob_key`) -> :class:`BlobRef`. Secret rows are ``{vm, identity,
    principal_id, client_id, secret, expected, kind: "secret"}`` (the keys they always
    had, in the same order, plus ``kind``); blob rows carry ``blob`` (the key) instead of
    ``secret`` and ``kind: "blob"``. A row of another host names ``host`` (its key, e.g.
    ``scaleset:web``) and ``host_kind`` instead of ``vm``.
    """
    rows: list[dict[str, Any]] = []
    for vm_key, vm in vms.items():
        holders: list[Holder] = []
        if vm.system_principal_id is not None:
            holders.append(Holder(SYSTEM, f"vm:{vm_key}", vm.system_principal_id))
        for key in vm.user_assigned:
            ref = identities[key]
            holders.append(Holder(key, f"identity:{key}", ref.principal_id, ref.client_id))
        rows += _rows({"vm": vm_key}, holders, grants, secrets, blobs or {})
    for host_key, host in (hosts or {}).items():
        where = {"host": host_key, "host_kind": host.kind}
        rows += _rows(where, host.holders, grants, secrets, blobs or {})
    return rows


def _rows(
    where: Mapping[str, str],
    holders: Sequence[Holder],
    grants: Sequence[GrantRef],
    secrets: Mapping[str, str],
    blobs: Mapping[str, BlobRef],
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for holder in holders:
        mine = [g for g in grants if g.principal == holder.reference]
        base = {
            **where,
            "identity": holder.identity,
            "principal_id": holder.principal_id,
            "client_id": holder.client_id,
        }
        for secret, scope in secrets.items():
            allowed = any(grant_allows(g, scope) for g in mine)
            expected = _word(allowed, holder.hidden)
            rows.append({**base, "secret": secret, "expected": expected, "kind": "secret"})
        for key, blob in blobs.items():
            allowed = any(grant_allows_blob(g, blob) for g in mine)
            rows.append(
                {**base, "blob": key, "expected": _word(allowed, holder.hidden), "kind": "blob"}
            )
    return rows


#: Matrix host kinds beside ``vm`` (``verify/evidence/sources.py`` says which credential
#: source each must get its tokens from).
SCALE_SET_HOST = "scaleset"
WORKLOAD_HOST = "workload"
UNBOUND_WORKLOAD_HOST = "workload_without_identity"
KUBELET = "kubelet"


@dataclass(frozen=True)
class ScaleSetIdentities:
    system_principal_id: str | None
    user_assigned: Sequence[str]


@dataclass(frozen=True)
class WorkloadIdentities:
    """A workload's identity key (None: no workload identity) and its cluster's kubelet
    identity, which its pods reach through IMDS when they have none."""

    cluster: str
    identity: str | None
    kubelet_object_id: str | None
    kubelet_client_id: str | None


def fleet_hosts(
    scale_sets: Mapping[str, ScaleSetIdentities],
    workloads: Mapping[str, WorkloadIdentities],
    identities: Mapping[str, IdentityRef],
) -> dict[str, HostRef]:
    """Matrix hosts ``scaleset:<key>`` (the set's system identity, then its user-assigned
    ones; one row set for every instance) and ``workload:<key>`` (its identity; without
    one, the kubelet identity, held by the grant reference ``kubelet:<cluster>`` that no
    grant names, so every cell is denied)."""
    hosts: dict[str, HostRef] = {}
    for key, ss in scale_sets.items():
        holders = (
            [Holder(SYSTEM, f"scaleset:{key}", ss.system_principal_id)]
            if ss.system_principal_id
            else []
        )
        holders += [
            Holder(k, f"identity:{k}", identities[k].principal_id, identities[k].client_id)
            for k in ss.user_assigned
            if k in identities
        ]
        hosts[f"scaleset:{key}"] = HostRef(SCALE_SET_HOST, holders)
    for key, w in workloads.items():
        if w.identity is not None:
            if w.identity not in identities:
                continue
            ref = identities[w.identity]
            holder = Holder(w.identity, f"identity:{w.identity}", ref.principal_id, ref.client_id)
            hosts[f"workload:{key}"] = HostRef(WORKLOAD_HOST, [holder])
        elif w.kubelet_object_id:
            holder = Holder(
                KUBELET, f"kubelet:{w.cluster}", w.kubelet_object_id, w.kubelet_client_id
            )
            hosts[f"workload:{key}"] = HostRef(UNBOUND_WORKLOAD_HOST, [holder])
    return hosts


#: An app (web app, Function app, container app): ``app:<key>``.
APP_HOST = "app"
#: Container Apps identity lifecycles that keep an identity from the app's main container.
HIDDEN_LIFECYCLES = frozenset({"None", "Init"})


@dataclass(frozen=True)
class AppIdentities:
    """What one app holds: its system principal (None when off), its user-assigned
    identity keys, and its identity lifecycles (``system`` or a key -> ``All`` / ``Main``
    / ``Init`` / ``None``; only container apps have them)."""

    system_principal_id: str | None
    user_assigned: Sequence[str]
    lifecycles: Mapping[str, str] = field(default_factory=dict)

    def hides(self, identity: str) -> bool:
        """The app's code cannot use ``identity`` (``system`` or a key)."""
        return self.lifecycles.get(identity) in HIDDEN_LIFECYCLES


def app_hosts(
    apps: Mapping[str, AppIdentities], identities: Mapping[str, IdentityRef]
) -> dict[str, HostRef]:
    """Matrix hosts ``app:<key>``: the app's system identity, then its user-assigned ones,
    each as the app's code sees it (an identity hidden by its lifecycle expects
    ``no_identity`` in every cell: the app's identity endpoint refuses it)."""
    hosts: dict[str, HostRef] = {}
    for key, app in apps.items():
        holders = (
            [Holder(SYSTEM, f"app:{key}", app.system_principal_id, hidden=app.hides(SYSTEM))]
            if app.system_principal_id
            else []
        )
        holders += [
            Holder(
                k,
                f"identity:{k}",
                identities[k].principal_id,
                identities[k].client_id,
                hidden=app.hides(k),
            )
            for k in app.user_assigned
            if k in identities
        ]
        hosts[f"app:{key}"] = HostRef(APP_HOST, holders)
    return hosts


def _word(allowed: bool, hidden: bool = False) -> str:
    if hidden:
        return "no_identity"
    return "allowed" if allowed else "denied"
