"""Typed views of what the verifier consumes: the stack outputs and the probe's result.

The stack outputs schema is fixed in docs/contracts.md; parsing it with pydantic turns a
drifted or hand-edited outputs file into one clear error naming the field, instead of a
KeyError deep inside a scenario. The expected-access matrix is also *recomputed* here
from the grants (the single source of truth), because the lifecycle changes grants and
principals as it goes and must know what the new expectation is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components import access
from components.conditions import parse_condition
from components.errors import ConfigError
from components.roles import RoleCatalog, RoleDefinition

Expected = Literal["allowed", "denied", "no_identity"]
Outcome = Literal["read", "forbidden", "not_found", "no_identity", "unreachable", "inconclusive"]

#: What a probe must observe for each expectation to hold.
OUTCOME_FOR: dict[str, str] = {
    "allowed": "read",
    "denied": "forbidden",
    "no_identity": "no_identity",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Vault(_Model):
    name: str
    id: str
    uri: str


class SecretRef(_Model):
    scope: str
    uri: str


class Identity(_Model):
    name: str
    id: str
    client_id: str
    principal_id: str
    tenant_id: str | None = None
    #: A ``CanNotDelete`` lock is on it (``mikit:identities.<key>.lock``): ARM refuses its
    #: delete with 409 ScopeLocked.
    locked: bool = False


class Vm(_Model):
    name: str
    id: str
    system_principal_id: str | None = None
    user_assigned: tuple[str, ...] = ()


class HostStorage(_Model):
    """A Function app's host storage (``apps.<key>.host_storage``): the account, the
    identity the host reaches it with, and that identity's role assignment there. The
    assignment is the platform's, not a grant: it is in no access-matrix cell, but it is
    one of the identity's assignments (a deletion leaves it orphaned like the grants)."""

    account_name: str
    account_id: str
    identity: str
    principal_id: str
    role_name: str
    assignment_id: str


class App(_Model):
    """A web app, Function app or container app (``apps`` output): its host record plus
    what the verifier checks of it (its code's identity, Key Vault references, lifecycles)."""

    kind: str
    name: str
    id: str
    system_principal_id: str | None = None
    user_assigned: tuple[str, ...] = ()
    host_name: str | None = None
    default_identity: str | None = None
    key_vault_references: dict[str, str] = Field(default_factory=dict)
    key_vault_reference_identity: str = "system"
    identity_lifecycles: dict[str, str] = Field(default_factory=dict)
    host_storage: HostStorage | None = None


class ScaleSetRef(_Model):
    """``scale_sets.<key>``: one system principal for every instance."""

    name: str
    id: str
    system_principal_id: str | None = None
    user_assigned: tuple[str, ...] = ()
    instances: int = 0


class KubeletIdentity(_Model):
    object_id: str | None = None
    client_id: str | None = None
    resource_id: str | None = None


class WorkloadRef(_Model):
    namespace: str
    service_account: str
    subject: str
    identity: str | None = None
    client_id: str | None = None


class ClusterRef(_Model):
    """``clusters.<key>``: its issuer, kubelet identity and workloads."""

    name: str
    id: str
    oidc_issuer_url: str
    kubelet_identity: KubeletIdentity = Field(default_factory=KubeletIdentity)
    workloads: dict[str, WorkloadRef] = Field(default_factory=dict)


class WorkloadHost(_Model):
    """A workload as a matrix host (``workload:<key>``): its cluster's ID and kubelet
    identity; it has no system identity of its own."""

    id: str
    cluster: str
    workload: WorkloadRef
    kubelet: KubeletIdentity
    system_principal_id: str | None = None


class Grant(_Model):
    name: str
    id: str
    principal: str
    principal_id: str
    principal_type: str = "ServicePrincipal"
    role_name: str
    role_definition_id: str
    scope: str
    condition: str | None = None
    condition_version: str | None = None


class StorageAccountRef(_Model):
    name: str
    id: str
    blob_endpoint: str


class ContainerRef(_Model):
    account: str
    name: str
    scope: str


class BlobRef(_Model):
    """One seeded blob (docs/contracts.md ``blobs``): where it is and what it is tagged."""

    account: str
    container: str
    name: str
    scope: str
    url: str
    tags: dict[str, str] = Field(default_factory=dict)


class HostRecord(Protocol):
    """What the verifier reads of any exported host: its ARM ID and system principal."""

    @property
    def id(self) -> str: ...

    @property
    def system_principal_id(self) -> str | None: ...


#: Host kind -> the stack output listing those hosts (key -> a record with ``id`` and
#: ``system_principal_id``). A new host kind is one entry here (and its outputs field).
HOST_OUTPUTS: dict[str, str] = {
    "vm": "vms",
    # Keyed ``app:<key>`` / ``scaleset:<key>`` / ``workload:<key>``, so no host key is
    # also a VM's (nor an app's a scale set's: the probes' outcomes are keyed by host).
    "app": "app_hosts",
    "scaleset": "scale_set_hosts",
    "workload": "workload_hosts",
    "workload_without_identity": "workload_hosts",
}


class AccessCell(_Model):
    """One matrix row: a secret row names ``secret``, a blob row ``blob`` (its key).

    The host is ``host`` of kind ``host_kind``; the stack's VM rows name it ``vm`` (the
    exported contract), which stands for ``host`` with ``host_kind`` ``vm``.
    """

    host: str
    host_kind: str = "vm"
    vm: str | None = None
    identity: str
    principal_id: str
    client_id: str | None = None
    secret: str | None = None
    blob: str | None = None
    kind: Literal["secret", "blob"] = "secret"
    expected: Expected

    @model_validator(mode="before")
    @classmethod
    def _host_from_vm(cls, data: Any) -> Any:
        if isinstance(data, dict) and "host" not in data and data.get("vm") is not None:
            return {**data, "host": data["vm"]}
        return data

    @property
    def target(self) -> str:
        """The secret name or the blob key this row is about."""
        return str(self.blob if self.kind == "blob" else self.secret)


class StackOutputs(_Model):
    """The stack's exported outputs (docs/contracts.md)."""

    tenant_id: str
    subscription_id: str
    location: str = ""
    resource_group_id: str
    vault: Vault
    secrets: dict[str, SecretRef]
    secret_fingerprints: dict[str, str] | None = None
    identities: dict[str, Identity] = Field(default_factory=dict)
    vms: dict[str, Vm] = Field(default_factory=dict)
    scale_sets: dict[str, ScaleSetRef] = Field(default_factory=dict)
    clusters: dict[str, ClusterRef] = Field(default_factory=dict)
    apps: dict[str, App] = Field(default_factory=dict)
    grants: tuple[Grant, ...] = ()
    storage_accounts: dict[str, StorageAccountRef] = Field(default_factory=dict)
    containers: dict[str, ContainerRef] = Field(default_factory=dict)
    blobs: dict[str, BlobRef] = Field(default_factory=dict)
    blob_fingerprints: dict[str, str] | None = None
    access_matrix: tuple[AccessCell, ...] = ()

    @field_validator("secret_fingerprints", "blob_fingerprints", mode="before")
    @classmethod
    def _hidden_secret(cls, value: Any) -> Any:
        # `pulumi stack output --json` without --show-secrets prints "[secret]".
        return None if isinstance(value, str) else value

    @property
    def resource_group(self) -> str:
        return self.resource_group_id.rstrip("/").split("/")[-1]

    def identity_selector(self, identity: str) -> str:
        """What the probe is given for a matrix identity: ``system`` or a client ID (the
        kubelet identity is what IMDS answers on a node when nothing is named)."""
        if identity in ("system", "kubelet"):
            return "system"
        return self.identities[identity].client_id

    @property
    def app_hosts(self) -> dict[str, App]:
        """Apps keyed as matrix hosts (``app:<key>``)."""
        return {f"app:{k}": v for k, v in self.apps.items()}

    @property
    def scale_set_hosts(self) -> dict[str, ScaleSetRef]:
        """Scale sets keyed as matrix hosts (``scaleset:<key>``)."""
        return {f"scaleset:{k}": v for k, v in self.scale_sets.items()}

    @property
    def workload_hosts(self) -> dict[str, WorkloadHost]:
        """Cluster workloads keyed as matrix hosts (``workload:<key>``)."""
        return {
            f"workload:{key}": WorkloadHost(
                id=cluster.id, cluster=ckey, workload=w, kubelet=cluster.kubelet_identity
            )
            for ckey, cluster in self.clusters.items()
            for key, w in cluster.workloads.items()
        }

    def host_record(self, host_kind: str, key: str) -> HostRecord | None:
        """The exported record of host ``key`` of ``host_kind`` (None: not in the outputs)."""
        field = HOST_OUTPUTS.get(host_kind)
        found: HostRecord | None = getattr(self, field).get(key) if field else None
        return found

    def _host(self, host_kind: str, key: str) -> HostRecord:
        found = self.host_record(host_kind, key)
        if found is None:
            raise KeyError(f"{host_kind} {key!r} is not in the stack outputs")
        return found

    def principal_of(self, host: str, identity: str, host_kind: str = "vm") -> str | None:
        if identity == "system":
            return self._host(host_kind, host).system_principal_id
        return self.identities[identity].principal_id

    def account_name(self, account_key: str) -> str:
        """The storage account's name for its key in ``storage_accounts``."""
        found = self.storage_accounts.get(account_key)
        return found.name if found is not None else account_key

    def resource_id_of(self, host: str, identity: str, host_kind: str = "vm") -> str:
        """The ARM ID a token's ``xms_mirid`` claim names: the host, or the identity."""
        if identity == "system":
            return self._host(host_kind, host).id
        if identity == "kubelet":  # a workload without identity: the node's kubelet identity
            found = self.workload_hosts.get(host)
            return str(found.kubelet.resource_id or "") if found else ""
        return self.identities[identity].id


def load_outputs(data: Mapping[str, Any] | str, source: str = "stack outputs") -> StackOutputs:
    """Parse outputs (a mapping or JSON text); a schema problem becomes a ConfigError."""
    try:
        raw = json.loads(data) if isinstance(data, str) else dict(data)
        return StackOutputs.model_validate(raw)
    except (ValidationError, json.JSONDecodeError) as exc:
        raise ConfigError(
            source,
            "<outputs>",
            f"do not match the contract in docs/contracts.md: {exc}",
            "re-run `pulumi up` with this version of the stack program, or pass the "
            "output of `pulumi stack output --json --show-secrets`",
        ) from exc


def _role_of(grant: Grant, catalog: RoleCatalog) -> RoleDefinition | None:
    return catalog.find(grant.role_definition_id) or catalog.find(grant.role_name)


def grant_allows(grant: Grant, secret_scope: str, catalog: RoleCatalog | None = None) -> bool:
    """A grant lets its principal read a secret when its role has getSecret and its
    scope contains the secret (vault, resource group... inheritance)."""
    role = _role_of(grant, catalog or RoleCatalog.builtin())
    if role is None:
        return False
    return access.grant_allows(access.GrantRef(grant.principal, role, grant.scope), secret_scope)


def derive_matrix(outputs: StackOutputs, grants: Iterable[Grant] | None = None) -> list[AccessCell]:
    """Every VM x identity x secret, allowed when some grant to that principal allows it.

    The evaluation is the stack program's own (:func:`components.access.access_matrix`);
    what differs is how a grant finds its holder: by principal ID, not by name, because
    a recreated identity has a new principal and the old grants must stop counting for it.
    A grant whose principal no longer exists (orphaned) counts for nobody.
    """
    catalog = RoleCatalog.builtin()
    holders = {
        vm.system_principal_id.lower(): f"vm:{key}"
        for key, vm in outputs.vms.items()
        if vm.system_principal_id
    }
    holders.update({i.principal_id.lower(): f"identity:{k}" for k, i in outputs.identities.items()})
    holders.update(
        {
            ss.system_principal_id.lower(): f"scaleset:{key}"
            for key, ss in outputs.scale_sets.items()
            if ss.system_principal_id
        }
    )
    holders.update(
        {
            app.system_principal_id.lower(): f"app:{key}"
            for key, app in outputs.apps.items()
            if app.system_principal_id
        }
    )
    refs: list[access.GrantRef] = []
    for grant in outputs.grants if grants is None else grants:
        holder = holders.get(grant.principal_id.lower())
        role = _role_of(grant, catalog)
        if holder is not None and role is not None:
            condition = parse_condition(grant.condition) if grant.condition else None
            refs.append(access.GrantRef(holder, role, grant.scope, condition))
    identity_refs = {
        k: access.IdentityRef(i.principal_id, i.client_id) for k, i in outputs.identities.items()
    }
    rows = access.access_matrix(
        {
            key: access.VmIdentities(
                vm.system_principal_id, [u for u in vm.user_assigned if u in outputs.identities]
            )
            for key, vm in sorted(outputs.vms.items())
        },
        identity_refs,
        refs,
        {name: ref.scope for name, ref in sorted(outputs.secrets.items())},
        {  # a condition reads the account's *name*; the outputs key blobs by account key
            key: access.BlobRef(
                outputs.account_name(b.account), b.container, b.name, b.scope, dict(b.tags)
            )
            for key, b in outputs.blobs.items()
        },
        hosts={
            **access.fleet_hosts(
                {
                    key: access.ScaleSetIdentities(ss.system_principal_id, list(ss.user_assigned))
                    for key, ss in sorted(outputs.scale_sets.items())
                },
                {
                    wkey: access.WorkloadIdentities(
                        ckey,
                        w.identity,
                        cluster.kubelet_identity.object_id,
                        cluster.kubelet_identity.client_id,
                    )
                    for ckey, cluster in sorted(outputs.clusters.items())
                    for wkey, w in cluster.workloads.items()
                },
                identity_refs,
            ),
            **access.app_hosts(
                {
                    key: access.AppIdentities(
                        app.system_principal_id,
                        [u for u in app.user_assigned if u in outputs.identities],
                        dict(app.identity_lifecycles),
                    )
                    for key, app in sorted(outputs.apps.items())
                },
                identity_refs,
            ),
        },
    )
    return [AccessCell.model_validate(row) for row in rows]


# --------------------------------------------------------------------------- probe results


class TokenReport(_Model):
    outcome: str
    http_status: int | None = None
    error_code: str | None = None
    message: str | None = None
    #: Which credential source answered (``imds``, ``app_service``, ``workload_identity``,
    #: ``stash`` for a replayed token...; verify.probe.credential_source).
    credential_source: str | None = None
    imds_requests: int | None = None
    waited_ms: int | None = None
    expires_in_seconds: int | None = None
    elapsed_ms: int | None = None


class TargetReport(_Model):
    """What the probe saw reading one target: a secret or a blob."""

    outcome: Outcome
    http_status: int | None = None
    error_code: str | None = None
    message: str | None = None
    fingerprint: str | None = None
    version: str | None = None
    attempts: int = 0
    waited_ms: int = 0
    elapsed_ms: int = 0


class IdentityReport(_Model):
    selector: str
    mode: str = "fresh"
    token: TokenReport
    claims: dict[str, Any] | None = None
    secrets: dict[str, TargetReport]
    #: Blob key -> outcome, read with the same credential's storage token (its claims in
    #: ``blob_claims``); empty when the probe was given no blobs.
    blob_token: TokenReport | None = None
    blob_claims: dict[str, Any] | None = None
    blobs: dict[str, TargetReport] = Field(default_factory=dict)
    elapsed_ms: int | None = None


class ProbeResult(_Model):
    """What verify/probe.py printed, for one VM."""

    probe_version: int
    vault_url: str
    mode: str = "fresh"
    identities: tuple[IdentityReport, ...] = ()
    elapsed_ms: int = 0
    passed: bool = False
    watchdog: str | None = None

    def for_selector(self, selector: str) -> IdentityReport | None:
        for report in self.identities:
            if report.selector.lower() == selector.lower():
                return report
        return None
