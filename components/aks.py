"""AksCluster: an AKS cluster ready for workload identity, with Entra ID as its only door.

What the workload-identity pieces need, on by default and not switchable off: the OIDC
issuer (``oidcIssuerProfile.enabled``; ARM answers the read-only ``issuerURL`` a federated
credential must match exactly) and the workload identity webhook
(``securityProfile.workloadIdentity.enabled``). What a reviewer expects: local accounts off
(no static admin kubeconfig), AKS-managed Entra integration with Azure RBAC for Kubernetes
authorization, node pools without public IPs.

The cluster's own identity (control plane) is a system identity by default or exactly one
user-assigned identity, the only shapes AKS accepts. The kubelet identity
(``identityProfile.kubeletidentity``) is created by AKS in the node resource group; it is
what a pod *without* workload identity gets from IMDS, so it is an output, to be checked,
never granted by this component.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_azure_native as azure_native
import yaml

from components import validation
from components.errors import ConfigError
from components.grants import Grantable, system_identity_principal
from components.identity import ManagedIdentities
from components.vm_sizes import DEFAULT_VM_SIZE

_CLUSTER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,61}[A-Za-z0-9]$|^[A-Za-z0-9]$")
_DNS_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,52}[A-Za-z0-9]$|^[A-Za-z0-9]$")
_POOL = re.compile(r"^[a-z][a-z0-9]{0,11}$")
BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
#: kubelogin login modes that need no person at a keyboard (``kubelogin get-token --login``).
KUBELOGIN_MODES = ("azurecli", "workloadidentity", "msi", "spn", "devicecode")


def cluster_name(value: object, field: str = "cluster name") -> str:
    if not isinstance(value, str) or not _CLUSTER.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid AKS cluster name",
            "use 1-63 letters, digits, '-' and '_', starting and ending with a letter or digit",
        )
    return value


def node_pool_name(value: object, field: str = "node pool name") -> str:
    if not isinstance(value, str) or not _POOL.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid Linux node pool name",
            "use 1-12 lower-case letters and digits, starting with a letter",
        )
    return value


def kubeconfig_with_login(kubeconfig: str, login: str) -> str:
    """The AKS ``exec`` kubeconfig with kubelogin's ``--login`` set to ``login``.

    AKS answers ``listClusterUserCredential?format=exec`` with ``kubelogin get-token
    --login devicecode`` (a person at a keyboard); a deployment pipeline needs e.g.
    ``azurecli`` (the CLI's login, such as GitHub's OIDC one). Like ``kubelogin
    convert-kubeconfig -l <mode>``: the interactive client ID goes, kubelogin reads the
    non-interactive one from the environment.
    """
    if login not in KUBELOGIN_MODES:
        raise ConfigError(
            "kubelogin", login, "is not a kubelogin login mode", f"use one of {KUBELOGIN_MODES}"
        )
    doc = yaml.safe_load(kubeconfig) or {}
    for user in doc.get("users") or []:
        exec_ = (user.get("user") or {}).get("exec")
        if not exec_ or exec_.get("command") != "kubelogin":
            continue
        args = [str(a) for a in exec_.get("args") or []]
        kept: list[str] = []
        i = 0
        while i < len(args):
            flag = args[i]
            takes_value = flag.startswith("--") and i + 1 < len(args)
            if flag == "--login" or (flag == "--client-id" and login != "devicecode"):
                i += 2 if takes_value else 1
                continue
            kept.append(flag)
            i += 1
        exec_["args"] = [*kept, "--login", login]
    return str(yaml.safe_dump(doc, sort_keys=False))


@dataclass(frozen=True)
class NodePool:
    """The system node pool (Linux, no public IPs)."""

    name: str = "system"
    count: int = 1
    vm_size: str = DEFAULT_VM_SIZE
    subnet_id: pulumi.Input[str] | None = None
    """A subnet for the nodes (Azure CNI overlay); None lets AKS create its own network."""


@dataclass(frozen=True)
class AksClusterArgs:
    name: str
    resource_group_name: pulumi.Input[str]
    identities: ManagedIdentities = field(
        default_factory=lambda: ManagedIdentities(system_assigned=True)
    )
    """The control plane's identity: system (default) or exactly one user-assigned."""
    location: pulumi.Input[str] | None = None
    dns_prefix: str | None = None
    node_pool: NodePool = field(default_factory=NodePool)
    admin_group_object_ids: Sequence[str] = ()
    """Entra groups that are cluster admins (Azure RBAC for Kubernetes grants the rest)."""
    authorized_ip_ranges: Sequence[str] = ()
    """CIDRs allowed to reach the API server; empty means any (Entra ID still required)."""
    kubernetes_version: str | None = None
    kubelogin: str = "azurecli"
    """The kubelogin login mode written into :attr:`AksCluster.kubeconfig`."""
    tags: Mapping[str, str] = field(default_factory=dict)


def _check_control_plane_identity(identities: ManagedIdentities) -> None:
    ids = list(identities.user_assigned_ids)
    if identities.system_assigned == bool(ids) or len(ids) > 1:
        raise ConfigError(
            "identities",
            identities.type,
            "is not one identity for the cluster's control plane",
            "use ManagedIdentities(system_assigned=True) or exactly one user-assigned "
            "identity (AKS accepts no other combination)",
        )


class AksCluster(pulumi.ComponentResource, Grantable):
    """An AKS cluster with OIDC issuer and workload identity on, local accounts off.

    Outputs: ``id``, ``name``, ``oidc_issuer_url`` (exactly as ARM returns it, trailing
    slash included: a federated credential must match it character for character),
    ``kubelet_identity`` (``{object_id, client_id, resource_id}``), ``principal_id``
    (the control plane's system identity, None when user-assigned), ``kubeconfig``
    (secret; Entra ID through kubelogin, no static credentials) and ``provider`` (a
    pulumi-kubernetes provider for it). ``grant(role, scope)`` grants the control plane's
    system identity (e.g. Network Contributor on a node subnet).
    """

    def __init__(
        self,
        resource_name: str,
        args: AksClusterArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        cluster_name(args.name, "name")
        dns_prefix = args.dns_prefix or args.name.replace("_", "-")[:54].strip("-")
        if not _DNS_PREFIX.match(dns_prefix):
            raise ConfigError(
                "dns_prefix",
                dns_prefix,
                "is not a valid DNS prefix",
                "use 1-54 letters, digits and hyphens, starting and ending with a letter or digit",
            )
        _check_control_plane_identity(args.identities)
        pool = args.node_pool
        node_pool_name(pool.name, "node_pool.name")
        size = validation.vm_size(pool.vm_size, "node_pool.vm_size")
        if isinstance(pool.count, bool) or not isinstance(pool.count, int) or pool.count < 1:
            raise ConfigError(
                "node_pool.count", pool.count, "is not a positive node count", "use 1 or more"
            )
        if args.kubelogin not in KUBELOGIN_MODES:
            raise ConfigError(
                "kubelogin",
                args.kubelogin,
                "is not a kubelogin login mode",
                f"use one of {KUBELOGIN_MODES}",
            )
        super().__init__("mikit:containerservice:AksCluster", resource_name, None, opts)
        self._grant_name = resource_name
        self.identities = args.identities
        cs = azure_native.containerservice
        ids = list(args.identities.user_assigned_ids)
        cluster = cs.ManagedCluster(
            resource_name,
            resource_name_=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            dns_prefix=dns_prefix,
            kubernetes_version=args.kubernetes_version,
            identity=cs.ManagedClusterIdentityArgs(
                type=cs.ResourceIdentityType.USER_ASSIGNED
                if ids
                else cs.ResourceIdentityType.SYSTEM_ASSIGNED,
                user_assigned_identities=ids or None,
            ),
            agent_pool_profiles=[
                cs.ManagedClusterAgentPoolProfileArgs(
                    name=pool.name,
                    mode="System",
                    os_type="Linux",
                    count=pool.count,
                    vm_size=size,
                    vnet_subnet_id=pool.subnet_id,
                    enable_node_public_ip=False,
                )
            ],
            network_profile=cs.ContainerServiceNetworkProfileArgs(
                network_plugin="azure", network_plugin_mode="overlay"
            ),
            oidc_issuer_profile=cs.ManagedClusterOIDCIssuerProfileArgs(enabled=True),
            security_profile=cs.ManagedClusterSecurityProfileArgs(
                workload_identity=cs.ManagedClusterSecurityProfileWorkloadIdentityArgs(enabled=True)
            ),
            enable_rbac=True,
            disable_local_accounts=True,
            aad_profile=cs.ManagedClusterAADProfileArgs(
                managed=True,
                enable_azure_rbac=True,
                admin_group_object_ids=list(args.admin_group_object_ids) or None,
            ),
            api_server_access_profile=cs.ManagedClusterAPIServerAccessProfileArgs(
                authorized_ip_ranges=list(args.authorized_ip_ranges)
            )
            if args.authorized_ip_ranges
            else None,
            tags=dict(args.tags) or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id: pulumi.Output[str] = cluster.id
        self.name: pulumi.Output[str] = cluster.name
        self.oidc_issuer_url: pulumi.Output[str] = cluster.oidc_issuer_profile.apply(
            lambda p: p.issuer_url if p else ""
        )
        self.kubelet_identity: pulumi.Output[dict[str, str | None]] = (
            cluster.identity_profile.apply(_kubelet)
        )
        self.principal_id: pulumi.Output[str | None] = cluster.identity.apply(
            lambda i: i.principal_id if i and not ids else None
        )
        credentials = cs.list_managed_cluster_user_credentials_output(
            resource_group_name=args.resource_group_name,
            resource_name=cluster.name,
            format="exec",
        )
        login = args.kubelogin
        self.kubeconfig: pulumi.Output[str] = pulumi.Output.secret(
            credentials.kubeconfigs.apply(
                lambda ks: kubeconfig_with_login(base64.b64decode(ks[0].value).decode(), login)
            )
        )
        self._provider: Any = None
        self._namespaces: dict[str, Any] = {}
        self.register_outputs(
            {
                "id": self.id,
                "name": self.name,
                "oidc_issuer_url": self.oidc_issuer_url,
                "kubelet_identity": self.kubelet_identity,
                "principal_id": self.principal_id,
            }
        )

    @property
    def provider(self) -> Any:
        """A pulumi-kubernetes provider for this cluster (made on first use, so programs
        without Kubernetes resources do not load pulumi-kubernetes)."""
        if self._provider is None:
            import pulumi_kubernetes as k8s  # noqa: PLC0415 (a heavy import, paid on use)

            self._provider = k8s.Provider(
                f"{self._grant_name}-k8s",
                kubeconfig=self.kubeconfig,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return self._provider

    def namespace(self, name: str) -> Any:
        """The pulumi-kubernetes Namespace ``name`` (made once per cluster); None for the
        namespaces every cluster has."""
        if name in BUILTIN_NAMESPACES:
            return None
        if name not in self._namespaces:
            import pulumi_kubernetes as k8s  # noqa: PLC0415 (a heavy import, paid on use)

            self._namespaces[name] = k8s.core.v1.Namespace(
                f"{self._grant_name}-ns-{name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=name),
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
        return self._namespaces[name]

    def _grant_principal(self) -> pulumi.Output[str]:
        if self.identities.user_assigned_ids:
            raise ConfigError(
                "grant",
                self._grant_name,
                "targets the cluster's system identity, but its control plane uses a "
                "user-assigned identity",
                "grant the user-assigned identity instead",
            )
        return system_identity_principal(
            self.identities, self.principal_id, self._grant_name, "cluster"
        )


def _kubelet(profile: Mapping[str, Any] | None) -> dict[str, str | None]:
    kubelet = (profile or {}).get("kubeletidentity")
    if kubelet is None:
        return {"object_id": None, "client_id": None, "resource_id": None}
    return {
        "object_id": kubelet.object_id,
        "client_id": kubelet.client_id,
        "resource_id": kubelet.resource_id,
    }
