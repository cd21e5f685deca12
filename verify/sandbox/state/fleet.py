"""Scale sets and AKS clusters: hosts whose instances share one set of identities.

- A **scale set** (Uniform) has one system principal for the whole set (its ``xms_mirid``
  is the set's ARM ID) and the user-assigned identities attached to the set; each
  instance (``<set id>/virtualMachines/<n>``) is a :class:`VirtualMachine` record with
  those principals, and gets its own IMDS listener (``instance_created``), as every VM
  does. Scaling out adds instances holding the same principals at once; scaling in or
  deleting an instance never touches the set's principal; deleting the set deletes it.
- An **AKS cluster** is an OIDC issuer (its ``issuerURL``), a kubelet identity (a
  user-assigned identity ``<cluster>-agentpool`` in the node resource group
  ``MC_<rg>_<cluster>_<location>``) and a node pool: a scale set in the node resource
  group whose only identity is the kubelet identity, so IMDS on a node answers as the
  kubelet identity, as AKS's nodes do; and the cluster's workloads (namespace, service
  account, the client ID its service account is annotated with, if any).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from components import armid
from components.arm import fleet_shapes
from components.arm.shapes import AttachedIdentity, arm_timestamp, vm_identity
from components.arm.store import ArmStore
from verify.sandbox.state.base import StateBase
from verify.sandbox.state.records import (
    EventKind,
    SandboxError,
    UserAssignedIdentity,
    VirtualMachine,
    key,
    new_guid,
)


@dataclass(frozen=True)
class ScaleSet:
    id: str
    name: str
    resource_group: str
    location: str
    unique_id: str
    system_principal_id: str | None
    user_assigned: tuple[str, ...]
    capacity: int
    tags: dict[str, str] = field(default_factory=dict)
    vm_size: str = "Standard_B2ls_v2"
    admin_username: str = "azureuser"
    created_on: float = 0.0  # ARM's timeCreated: when the set was made, on every read

    def instance_id(self, index: int) -> str:
        return f"{self.id}/virtualMachines/{index}"


@dataclass(frozen=True)
class Workload:
    """A Kubernetes workload: its service account and the identity that account names."""

    key: str
    cluster_id: str
    namespace: str
    service_account: str
    client_id: str | None  # the service account's azure.workload.identity/client-id
    labelled: bool = True  # pods labelled azure.workload.identity/use: "true"

    @property
    def subject(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


@dataclass(frozen=True)
class Cluster:
    id: str
    name: str
    resource_group: str
    location: str
    issuer_url: str
    node_resource_group: str
    kubelet_identity_id: str
    node_scale_set_id: str


class FleetMixin(StateBase):
    """Scale sets, their instances, clusters and workloads."""

    arm_store: ArmStore

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._instances: dict[str, VirtualMachine] = {}
        self._workloads: dict[str, Workload] = {}

    # Provided by SandboxState (identities and their bindings live with the VMs).
    def create_identity(
        self,
        resource_group: str,
        name: str,
        location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> UserAssignedIdentity:
        raise NotImplementedError

    def _bind(self, vm: VirtualMachine, kept: set[str], rebind: Collection[str] | None) -> None:
        raise NotImplementedError

    def _unbind(self, vm_id: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ scale sets
    def create_scale_set(
        self,
        resource_group: str,
        name: str,
        *,
        capacity: int = 2,
        system_assigned: bool = False,
        user_assigned: Sequence[str] = (),
        location: str | None = None,
        tags: dict[str, str] | None = None,
        vm_size: str = "Standard_B2ls_v2",
        admin_username: str = "azureuser",
    ) -> ScaleSet:
        """Create or update (PUT) a scale set: identity block and capacity as given."""
        rg = self._require_group(resource_group)
        set_id = self._resource_id(rg.name, "Microsoft.Compute", "virtualMachineScaleSets", name)
        with self._lock:
            existing = self.scale_set(set_id)
            if existing is None:
                self._save_scale_set(
                    ScaleSet(
                        set_id,
                        name,
                        rg.name,
                        location or rg.location,
                        new_guid(),
                        None,
                        (),
                        0,
                        dict(tags or {}),
                        vm_size,
                        admin_username,
                        self.clock(),
                    )
                )
        self.update_scale_set_identity(set_id, system_assigned, user_assigned)
        return self.scale_scale_set(set_id, capacity)

    def scale_set(self, set_id: str) -> ScaleSet | None:
        """The set, read from its one record (the ARM model's document)."""
        with self._lock:
            doc = self.arm_store.resources.get(key(set_id))
        return _scale_set_record(doc) if doc is not None else None

    def scale_sets(self) -> list[ScaleSet]:
        with self._lock:
            docs = list(self.arm_store.resources.values())
        found = (_scale_set_record(d) for d in docs)
        return [ss for ss in found if ss is not None]

    def _save_scale_set(self, ss: ScaleSet) -> None:
        """Write the set into its ARM document (made on first write); what else the
        document holds (a deploy's network and image profiles) stays."""
        attached = {}
        for uai_id in ss.user_assigned:
            uai = self.identity(uai_id)
            attached[uai_id] = AttachedIdentity(
                uai.principal_id if uai else "", uai.client_id if uai else ""
            )
        identity = vm_identity(
            system_principal_id=ss.system_principal_id,
            tenant_id=self.tenant_id,
            user_assigned=attached,
        )
        with self._lock:
            doc = self.arm_store.resources.get(key(ss.id))
            if doc is None:
                doc = fleet_shapes.virtual_machine_scale_set(
                    arm_id=ss.id,
                    location=ss.location,
                    unique_id=ss.unique_id,
                    identity=identity,
                    sku={"name": ss.vm_size, "capacity": ss.capacity},
                    admin_username=ss.admin_username,
                    computer_name_prefix=ss.name,
                    tags=ss.tags,
                )
                self.arm_store.resources[key(ss.id)] = doc
            doc["location"] = ss.location
            doc["tags"] = dict(ss.tags)
            doc["sku"] = {**doc.get("sku", {}), "name": ss.vm_size, "capacity": ss.capacity}
            if identity is None:
                doc.pop("identity", None)
            else:
                doc["identity"] = identity
            props = doc.setdefault("properties", {})
            props["uniqueId"] = ss.unique_id
            props["timeCreated"] = arm_timestamp(datetime.fromtimestamp(ss.created_on, tz=UTC))
            profile = props.setdefault("virtualMachineProfile", {})
            profile.setdefault("osProfile", {})["adminUsername"] = ss.admin_username

    def instance(self, instance_id: str) -> VirtualMachine | None:
        """A scale-set instance (``<set id>/virtualMachines/<n>``)."""
        with self._lock:
            return self._instances.get(key(instance_id))

    def instances(self, set_id: str | None = None) -> list[VirtualMachine]:
        with self._lock:
            found = list(self._instances.values())
        if set_id is None:
            return found
        prefix = key(set_id) + "/virtualmachines/"
        return [i for i in found if key(i.id).startswith(prefix)]

    def update_scale_set_identity(
        self, set_id: str, system_assigned: bool, user_assigned: Sequence[str]
    ) -> ScaleSet:
        """The set's identity block, for every instance at once; a user-assigned ID left
        out is dropped (a PATCH of ``identity`` replaces the whole map)."""
        events: list[tuple[EventKind, object]] = []
        with self._lock:
            ss = self._require_scale_set(set_id)
            principal_id, ids = self._identity_block(
                (ss.name, ss.id),
                ss.system_principal_id,
                system_assigned,
                user_assigned,
                kept={key(u) for u in ss.user_assigned},
                events=events,
            )
            ss = replace(ss, system_principal_id=principal_id, user_assigned=ids)
            self._save_scale_set(ss)
            for instance in self.instances(ss.id):
                kept = {key(u) for u in instance.user_assigned}
                updated = replace(instance, system_principal_id=principal_id, user_assigned=ids)
                self._instances[key(updated.id)] = updated
                self._bind(updated, kept, None)
        self._emit(events)
        return ss

    def update_scale_set_tags(self, set_id: str, tags: dict[str, str]) -> ScaleSet:
        """The set's tags, replaced (a PATCH's ``tags``); its instances keep theirs."""
        with self._lock:
            ss = replace(self._require_scale_set(set_id), tags=dict(tags))
            self._save_scale_set(ss)
        return ss

    def scale_scale_set(self, set_id: str, capacity: int) -> ScaleSet:
        """Scale to ``capacity`` instances: new ones (highest numbers) hold the set's
        principals from their first request; removed ones take nothing with them."""
        if capacity < 0:
            raise SandboxError(400, "InvalidParameter", "The capacity must not be negative.")
        events: list[tuple[EventKind, object]] = []
        with self._lock:
            ss = replace(self._require_scale_set(set_id), capacity=capacity)
            self._save_scale_set(ss)
            current = self.instances(ss.id)
            numbers = sorted(int(i.id.rsplit("/", 1)[-1]) for i in current)
            while len(numbers) > capacity:
                gone = self._instances.pop(key(ss.instance_id(numbers.pop())))
                self._unbind(gone.id)
                events.append(("instance_deleted", gone))
            next_number = (numbers[-1] + 1) if numbers else 0
            while len(numbers) < capacity:
                instance = VirtualMachine(
                    ss.instance_id(next_number),
                    f"{ss.name}_{next_number}",
                    ss.resource_group,
                    ss.location,
                    str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ss.unique_id}/{next_number}")),
                    ss.system_principal_id,
                    ss.user_assigned,
                    dict(ss.tags),
                    ss.vm_size,
                    ss.admin_username,
                    self.clock(),
                )
                self._instances[key(instance.id)] = instance
                self._bind(instance, set(), None)
                events.append(("instance_created", instance))
                numbers.append(next_number)
                next_number += 1
        self._emit(events)
        return ss

    def delete_scale_set(self, set_id: str) -> ScaleSet | None:
        """Delete the set, its instances and its system principal (assignments stay)."""
        events: list[tuple[EventKind, object]] = []
        with self._lock:
            ss = self.scale_set(set_id)
            if ss is None:
                return None
            self.arm_store.resources.pop(key(set_id), None)  # the set's one record
            for instance in self.instances(ss.id):
                del self._instances[key(instance.id)]
                self._unbind(instance.id)
                events.append(("instance_deleted", instance))
            if ss.system_principal_id:
                events.append(("principal_deleted", self._delete_principal(ss.system_principal_id)))
        self._emit(events)
        return ss

    def _require_scale_set(self, set_id: str) -> ScaleSet:
        ss = self.scale_set(set_id)
        if ss is None:
            raise SandboxError(404, "ResourceNotFound", f"The Resource '{set_id}' was not found.")
        return ss

    # -------------------------------------------------------------------- clusters
    def create_cluster(
        self,
        resource_group: str,
        name: str,
        *,
        issuer_url: str,
        kubelet_identity_id: str,
        node_resource_group: str,
        node_count: int = 1,
        location: str | None = None,
    ) -> Cluster:
        """A cluster whose kubelet identity exists: its node pool (a scale set in the node
        resource group holding only the kubelet identity) and, unless the ARM model is
        writing it, its one record: the cluster's ARM document."""
        rg = self._require_group(resource_group)
        cluster_id = self._resource_id(
            rg.name, "Microsoft.ContainerService", "managedClusters", name
        )
        where = location or rg.location
        nodes = self.create_scale_set(
            node_resource_group,
            _node_pool_name(cluster_id),
            capacity=node_count,
            user_assigned=[kubelet_identity_id],
            location=where,
        )
        kubelet = self.identity(kubelet_identity_id)
        doc = fleet_shapes.managed_cluster(
            arm_id=cluster_id,
            location=where,
            tenant_id=self.tenant_id,
            identity={
                "type": "SystemAssigned",
                "principalId": new_guid(),
                "tenantId": self.tenant_id,
            },
            dns_prefix=name,
            fqdn_suffix=uuid.uuid5(uuid.NAMESPACE_URL, key(cluster_id)).hex[:8],
            kubernetes_version=CLUSTER_KUBERNETES_VERSION,
            agent_pool_profiles=[{"name": "system", "count": node_count}],
            node_resource_group=nodes.resource_group,
            issuer_url=issuer_url or None,
            workload_identity=bool(issuer_url),
            kubelet_identity={
                "resourceId": kubelet_identity_id,
                "clientId": kubelet.client_id if kubelet else "",
                "objectId": kubelet.principal_id if kubelet else "",
            },
        )
        with self._lock:
            self.arm_store.resources.setdefault(key(cluster_id), doc)
        cluster = Cluster(
            cluster_id,
            name,
            rg.name,
            where,
            issuer_url,
            nodes.resource_group,
            kubelet_identity_id,
            nodes.id,
        )
        self._emit([("cluster_created", cluster)])
        return cluster

    def cluster(self, cluster_id: str) -> Cluster | None:
        """The cluster, read from its one record (the ARM model's document)."""
        with self._lock:
            doc = self.arm_store.resources.get(key(cluster_id))
        return self._cluster_record(doc) if doc is not None else None

    def clusters(self) -> list[Cluster]:
        with self._lock:
            docs = list(self.arm_store.resources.values())
        found = (self._cluster_record(d) for d in docs)
        return [c for c in found if c is not None]

    def _cluster_record(self, doc: dict[str, Any]) -> Cluster | None:
        """What the sandbox's behaviour reads of a cluster's document: its issuer, its node
        resource group, its kubelet identity and the node pool's scale set."""
        if str(doc.get("type", "")).lower() != fleet_shapes.MANAGED_CLUSTER.lower():
            return None
        props = doc.get("properties") or {}
        kubelet = (props.get("identityProfile") or {}).get("kubeletidentity") or {}
        node_rg = str(props.get("nodeResourceGroup") or "")
        cluster_id = str(doc["id"])
        return Cluster(
            cluster_id,
            str(doc["name"]),
            armid.parse(cluster_id, "cluster").resource_group or "",
            str(doc["location"]),
            str((props.get("oidcIssuerProfile") or {}).get("issuerURL") or ""),
            node_rg,
            str(kubelet.get("resourceId") or ""),
            self._resource_id(
                node_rg,
                "Microsoft.Compute",
                "virtualMachineScaleSets",
                _node_pool_name(cluster_id),
            ),
        )

    def delete_cluster(self, cluster_id: str) -> Cluster | None:
        """Delete the cluster with its node pool and workloads (its node resource group's
        identities go with it, as AKS deletes ``MC_...``), and its document."""
        cluster = self.cluster(cluster_id)
        if cluster is None:
            return None
        with self._lock:
            for wkey in [
                k for k, w in self._workloads.items() if key(w.cluster_id) == key(cluster_id)
            ]:
                del self._workloads[wkey]
            self.arm_store.resources.pop(key(cluster_id), None)
        self.delete_scale_set(cluster.node_scale_set_id)
        self._emit([("cluster_deleted", cluster)])
        return cluster

    def node_instance(self, cluster_id: str) -> VirtualMachine:
        """The node the cluster's pods run on (its first instance)."""
        cluster = self.cluster(cluster_id)
        instances = self.instances(cluster.node_scale_set_id) if cluster else []
        if cluster is None or not instances:
            raise SandboxError(
                404, "ResourceNotFound", f"The cluster '{cluster_id}' has no running node."
            )
        return min(instances, key=lambda i: int(i.id.rsplit("/", 1)[-1]))

    # ------------------------------------------------------------------- workloads
    def add_workload(
        self,
        cluster_id: str,
        workload_key: str,
        namespace: str,
        service_account: str,
        client_id: str | None = None,
        *,
        labelled: bool | None = None,
    ) -> Workload:
        """A workload in a cluster (what Kubernetes holds: its service account's subject,
        client-id annotation, and whether its pods carry the webhook's label; by default
        exactly when it has a client ID, as the stack's components make them). The
        federated credential is ARM's business, not this."""
        if self.cluster(cluster_id) is None:
            raise SandboxError(
                404, "ResourceNotFound", f"The cluster '{cluster_id}' was not found."
            )
        workload = Workload(
            workload_key,
            cluster_id,
            namespace,
            service_account,
            client_id.lower() if client_id else None,
            bool(client_id) if labelled is None else labelled,
        )
        with self._lock:
            self._workloads[workload_key] = workload
        return workload

    def workload(self, workload_key: str) -> Workload | None:
        with self._lock:
            return self._workloads.get(workload_key)

    def workloads(self, cluster_id: str | None = None) -> list[Workload]:
        with self._lock:
            found = list(self._workloads.values())
        if cluster_id is None:
            return found
        return [w for w in found if key(w.cluster_id) == key(cluster_id)]


#: The Kubernetes version a cluster the state makes directly reports (a deploy's cluster
#: reports the one its inputs name).
CLUSTER_KUBERNETES_VERSION = "1.33"


def _node_pool_name(cluster_id: str) -> str:
    """The node pool's scale set name, the same for every casing of the cluster's ID."""
    return f"aks-system-{uuid.uuid5(uuid.NAMESPACE_URL, key(cluster_id)).hex[:8]}-vmss"


def _scale_set_record(doc: dict[str, Any]) -> ScaleSet | None:
    """What the sandbox's behaviour reads of a scale set's document."""
    if str(doc.get("type", "")).lower() != fleet_shapes.VIRTUAL_MACHINE_SCALE_SET.lower():
        return None
    props = doc.get("properties") or {}
    identity = doc.get("identity") or {}
    sku = doc.get("sku") or {}
    os_profile = (props.get("virtualMachineProfile") or {}).get("osProfile") or {}
    created = props.get("timeCreated")
    set_id = str(doc["id"])
    return ScaleSet(
        set_id,
        str(doc["name"]),
        armid.parse(set_id, "scale set").resource_group or "",
        str(doc["location"]),
        str(props.get("uniqueId") or ""),
        identity.get("principalId"),
        tuple(identity.get("userAssignedIdentities") or {}),
        int(sku.get("capacity") or 0),
        dict(doc.get("tags") or {}),
        str(sku.get("name") or "Standard_B2ls_v2"),
        str(os_profile.get("adminUsername") or "azureuser"),
        _timestamp(created) if isinstance(created, str) else 0.0,
    )


def _timestamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
