"""The fleet hosts of the reference topology: scale sets, clusters and their workloads.

Built by :class:`components.topology.Topology` from ``mikit:scaleSets`` and
``mikit:clusters``: each scale set holds the identities its entry names; each cluster
gets its workloads, every workload with an identity federated to it from the cluster's
issuer output (:class:`~components.workload_identity.WorkloadIdentityBinding`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pulumi

from components.access import (
    HostRef,
    IdentityRef,
    ScaleSetIdentities,
    WorkloadIdentities,
    fleet_hosts,
)
from components.aks import AksCluster, AksClusterArgs, NodePool
from components.grants import Grantable
from components.identity import ManagedIdentities, UserAssignedIdentity
from components.scale_set import LinuxScaleSet, LinuxScaleSetArgs
from components.stack_config import StackConfig
from components.stack_config.scale_sets import ScaleSetConfig
from components.workload_identity import (
    WorkloadIdentityBinding,
    WorkloadIdentityBindingArgs,
    service_account_subject,
)


class FleetHosts:
    """Scale sets (``scaleset:<key>`` grant holders), clusters and workload bindings."""

    def __init__(
        self,
        cfg: StackConfig,
        *,
        resource_group_name: pulumi.Input[str],
        subnet_id: pulumi.Input[str],
        identities: Mapping[str, UserAssignedIdentity],
        tags: Mapping[str, str],
    ) -> None:
        self.cfg = cfg
        self.scale_sets = {
            key: LinuxScaleSet(
                f"vmss-{key}",
                LinuxScaleSetArgs(
                    name=ss.name,
                    resource_group_name=resource_group_name,
                    subnet_id=subnet_id,
                    admin_username=cfg.admin_username,
                    ssh_public_key=cfg.ssh_public_key or "",  # required with hosts (stack check)
                    instances=ss.instances,
                    identities=_identities(ss, identities),
                    location=cfg.location,
                    size=ss.size or cfg.vm_size,
                    tags=tags,
                ),
            )
            for key, ss in cfg.scale_sets.items()
        }
        self.clusters = {
            key: AksCluster(
                f"aks-{key}",
                AksClusterArgs(
                    name=cluster.name,
                    resource_group_name=resource_group_name,
                    location=cfg.location,
                    node_pool=NodePool(
                        count=cluster.node_count, vm_size=cluster.node_size or cfg.vm_size
                    ),
                    tags=tags,
                ),
            )
            for key, cluster in cfg.clusters.items()
        }
        self.workloads = {
            wkey: WorkloadIdentityBinding(
                f"workload-{wkey}",
                WorkloadIdentityBindingArgs(
                    cluster=self.clusters[ckey],
                    namespace=workload.namespace,
                    service_account=workload.service_account,
                    identity=identities[workload.identity] if workload.identity else None,
                    credential_name=f"aks-{ckey}-{wkey}",
                ),
            )
            for ckey, cluster in cfg.clusters.items()
            for wkey, workload in cluster.workloads.items()
        }
        #: ``scaleset:<key>`` -> the component whose system identity a grant names.
        self.hosts: dict[str, Grantable] = {
            f"{ScaleSetConfig.PRINCIPAL_PREFIX}:{k}": ss for k, ss in self.scale_sets.items()
        }

    def matrix_leaves(self) -> list[pulumi.Output[Any]]:
        """The Outputs the matrix reads, in the order :meth:`matrix_hosts` consumes them:
        each scale set's system principal, each cluster's kubelet identity."""
        leaves: list[pulumi.Output[Any]] = [ss.principal_id for ss in self.scale_sets.values()]
        leaves += [aks.kubelet_identity for aks in self.clusters.values()]
        return leaves

    def matrix_hosts(
        self, values: Iterator[Any], identities: Mapping[str, IdentityRef]
    ) -> dict[str, HostRef]:
        """The matrix's ``scaleset:<key>`` and ``workload:<key>`` hosts
        (:func:`components.access.fleet_hosts`), from the values :meth:`matrix_leaves` gave."""
        scale_sets = {
            key: ScaleSetIdentities(next(values), list(ss.user_assigned or []))
            for key, ss in self.cfg.scale_sets.items()
        }
        kubelets = {key: next(values) for key in self.cfg.clusters}
        workloads = {
            wkey: WorkloadIdentities(
                ckey,
                w.identity,
                kubelets[ckey]["object_id"],
                kubelets[ckey]["client_id"],
            )
            for ckey, cluster in self.cfg.clusters.items()
            for wkey, w in cluster.workloads.items()
        }
        return fleet_hosts(scale_sets, workloads, identities)

    def exports(self) -> dict[str, Any]:
        """``scale_sets`` and ``clusters`` (docs/contracts.md "Stack outputs")."""
        scale_sets = {
            key: {
                "name": ss.name,
                "id": ss.id,
                "system_principal_id": ss.principal_id,
                "user_assigned": list(self.cfg.scale_sets[key].user_assigned or []),
                "instances": ss.instances,
            }
            for key, ss in self.scale_sets.items()
        }
        clusters = {
            key: {
                "name": aks.name,
                "id": aks.id,
                "oidc_issuer_url": aks.oidc_issuer_url,
                "kubelet_identity": aks.kubelet_identity,
                "workloads": {
                    wkey: {
                        "namespace": w.namespace,
                        "service_account": w.service_account,
                        "subject": service_account_subject(w.namespace, w.service_account),
                        "identity": w.identity,
                        "client_id": self.workloads[wkey].client_id,
                    }
                    for wkey, w in self.cfg.clusters[key].workloads.items()
                },
            }
            for key, aks in self.clusters.items()
        }
        return {"scale_sets": scale_sets, "clusters": clusters}


def _identities(
    host: ScaleSetConfig, identities: Mapping[str, UserAssignedIdentity]
) -> ManagedIdentities:
    return ManagedIdentities(
        system_assigned=host.system_identity,
        user_assigned_ids=[identities[k].id for k in host.user_assigned or []],
    )
