"""Scale sets and AKS clusters in the in-memory ARM.

A mixin of :class:`components.arm.memory.InMemoryArm` (like :mod:`memory_storage`). What
ARM does that our components and the verifier depend on:

* a scale set's ``identity`` is the VM's: one system principal for the whole set, kept
  across updates; the user-assigned map built from the IDs the PUT sends (a PUT, or a
  PATCH of ``identity``, that leaves an ID out drops it); the set's instances are
  ``virtualMachines`` children sharing that identity (:meth:`scale_set_instances`);
* a managed cluster answers ``oidcIssuerProfile.issuerURL`` (with its trailing slash,
  fixed for the cluster's life) when the issuer is on, and a kubelet identity
  (``identityProfile.kubeletidentity``) that AKS creates as a user-assigned identity in
  the node resource group ``MC_<rg>_<cluster>_<location>``; workload identity needs the
  issuer (400 otherwise, as AKS answers); the control plane holds a system identity or
  exactly one user-assigned identity;
* ``listClusterUserCredential`` answers the ``exec`` kubeconfig (kubelogin, no static
  credentials) for a cluster that exists, 404 otherwise.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

from components import armid
from components.arm import fleet_shapes
from components.arm import shapes as arm_shapes
from components.arm.errors import ArmError
from components.arm.tokens import (
    PULUMI_LIST_CLUSTER_USER_CREDENTIALS,
    PULUMI_MANAGED_CLUSTER,
    PULUMI_VIRTUAL_MACHINE_SCALE_SET,
)

JSON = dict[str, Any]


#: The version AKS reports when the PUT names none (a supported default at the time of
#: writing; the exact default moves with AKS releases).
DEFAULT_KUBERNETES_VERSION = "1.33.5"
# A fixed, well-formed PEM body stands in for the cluster CA in the kubeconfig.
_CA_PLACEHOLDER = base64.b64encode(
    b"-----BEGIN CERTIFICATE-----\nbWlraXQgc2FuZGJveCBjbHVzdGVyIENB\n-----END CERTIFICATE-----\n"
).decode()


class FleetArm:
    """Handlers for scale sets and managed clusters; the host (InMemoryArm) provides
    ``get``, ``_location``, ``_new_guid``, ``_host_identities``, ``resources``,
    ``tenant_id`` and ``subscription_id``."""

    @property
    def resources(self) -> dict[str, JSON]:  # provided by InMemoryArm
        raise NotImplementedError

    _new_guid: Callable[[], str]
    cluster_issuer: Callable[[str, str, str], str] = staticmethod(
        fleet_shapes.default_cluster_issuer
    )
    """Builds ``issuerURL`` from (location, tenant, issuer GUID); the sandbox serves its
    own HTTPS issuers and passes a loopback URL instead."""

    @property
    def tenant_id(self) -> str:  # provided by InMemoryArm
        raise NotImplementedError

    @property
    def subscription_id(self) -> str:  # provided by InMemoryArm
        raise NotImplementedError

    def get(self, arm_id: str) -> JSON | None:  # provided by InMemoryArm
        raise NotImplementedError

    def _location(self, inputs: JSON) -> str:  # provided by InMemoryArm
        raise NotImplementedError

    def _host_identities(
        self, arm_id: str, inputs: JSON, host: str
    ) -> tuple[str | None, dict[str, arm_shapes.AttachedIdentity]]:  # provided by InMemoryArm
        raise NotImplementedError

    def _identity_block(self, arm_id: str, inputs: JSON, host: str) -> JSON | None:
        system_principal, attached = self._host_identities(arm_id, inputs, host)
        return arm_shapes.vm_identity(
            system_principal_id=system_principal, tenant_id=self.tenant_id, user_assigned=attached
        )

    def fleet_handlers(self) -> dict[str, Callable[[str, JSON], JSON]]:
        return {
            PULUMI_VIRTUAL_MACHINE_SCALE_SET: self._scale_set,
            PULUMI_MANAGED_CLUSTER: self._managed_cluster,
        }

    def fleet_calls(self) -> dict[str, Callable[[JSON], JSON]]:
        return {PULUMI_LIST_CLUSTER_USER_CREDENTIALS: self._list_cluster_user_credentials}

    # -- scale sets -------------------------------------------------------------------

    def _scale_set(self, arm_id: str, inputs: JSON) -> JSON:
        existing = self.get(arm_id)
        identity = self._identity_block(arm_id, inputs, "a scale set")
        profile = inputs.get("virtualMachineProfile") or {}
        os_profile = profile.get("osProfile") or {}
        linux = os_profile.get("linuxConfiguration") or {}
        storage = profile.get("storageProfile") or {}
        network = profile.get("networkProfile") or {}
        return fleet_shapes.virtual_machine_scale_set(
            arm_id=arm_id,
            location=self._location(inputs),
            unique_id=(existing or {}).get("properties", {}).get("uniqueId") or self._new_guid(),
            identity=identity,
            sku=inputs.get("sku") or {},
            admin_username=os_profile.get("adminUsername", ""),
            computer_name_prefix=os_profile.get("computerNamePrefix") or arm_id.rsplit("/", 1)[-1],
            ssh_public_keys=(linux.get("ssh") or {}).get("publicKeys") or [],
            disable_password_authentication=bool(linux.get("disablePasswordAuthentication", False)),
            network_interface_configurations=network.get("networkInterfaceConfigurations") or [],
            image_reference=storage.get("imageReference"),
            orchestration_mode=str(inputs.get("orchestrationMode") or "Uniform"),
            upgrade_mode=str((inputs.get("upgradePolicy") or {}).get("mode") or "Manual"),
            tags=inputs.get("tags"),
        )

    def scale_set_instances(self, scale_set_id: str) -> list[JSON]:
        """The set's instances (``virtualMachines`` children), numbered from 0, each with
        the set's identity block: one per unit of ``sku.capacity``."""
        doc = self.get(scale_set_id)
        if doc is None:
            return []
        return [
            fleet_shapes.scale_set_vm(
                scale_set=doc,
                instance_id=str(i),
                vm_id=_stable_guid(doc["properties"]["uniqueId"], i),
            )
            for i in range(int(doc["sku"]["capacity"]))
        ]

    # -- managed clusters ---------------------------------------------------------------

    def _managed_cluster(self, arm_id: str, inputs: JSON) -> JSON:
        existing = self.get(arm_id)
        old = (existing or {}).get("properties") or {}
        location = self._location(inputs)
        name = arm_id.rsplit("/", 1)[-1]
        resource_group = armid.parse(arm_id, "id").resource_group or ""
        identity = self._cluster_identity(arm_id, inputs)
        oidc_on = bool((inputs.get("oidcIssuerProfile") or {}).get("enabled"))
        security = inputs.get("securityProfile") or {}
        workload_identity = bool((security.get("workloadIdentity") or {}).get("enabled"))
        if workload_identity and not oidc_on:
            raise ArmError(
                400,
                "BadRequest",
                "Enabling workload identity requires enabling OIDC issuer profile.",
            )
        old_issuer = (old.get("oidcIssuerProfile") or {}).get("issuerURL")
        if old_issuer and not oidc_on:
            raise ArmError(
                400,
                "BadRequest",
                "OIDC issuer profile cannot be disabled once it has been enabled.",
            )
        issuer = (
            (old_issuer or self.cluster_issuer(location, self.tenant_id, self._new_guid()))
            if oidc_on
            else None
        )
        node_rg = str(
            inputs.get("nodeResourceGroup")
            or old.get("nodeResourceGroup")
            or f"MC_{resource_group}_{name}_{location}"
        )
        kubelet = self._kubelet_identity(node_rg, name, location)
        aad = inputs.get("aadProfile")
        api_access = inputs.get("apiServerAccessProfile")
        fqdn_suffix = (
            str(old.get("fqdn", "")).split(".hcp.")[0].rsplit("-", 1)[-1]
            or (self._new_guid().replace("-", "")[:8])
        )
        return fleet_shapes.managed_cluster(
            arm_id=arm_id,
            location=location,
            tenant_id=self.tenant_id,
            identity=identity,
            dns_prefix=str(inputs.get("dnsPrefix") or name),
            fqdn_suffix=fqdn_suffix,
            kubernetes_version=str(inputs.get("kubernetesVersion") or DEFAULT_KUBERNETES_VERSION),
            agent_pool_profiles=inputs.get("agentPoolProfiles") or [],
            node_resource_group=node_rg,
            issuer_url=issuer,
            workload_identity=workload_identity,
            kubelet_identity=kubelet,
            enable_rbac=inputs.get("enableRBAC") is not False,
            disable_local_accounts=bool(inputs.get("disableLocalAccounts", False)),
            aad_profile={
                "managed": bool(aad.get("managed", True)),
                "enableAzureRBAC": bool(aad.get("enableAzureRBAC", False)),
                "adminGroupObjectIDs": list(aad.get("adminGroupObjectIDs") or []),
            }
            if isinstance(aad, dict)
            else None,
            network_profile=inputs.get("networkProfile"),
            api_server_access_profile=api_access if isinstance(api_access, dict) else None,
            tags=inputs.get("tags"),
        )

    def _cluster_identity(self, arm_id: str, inputs: JSON) -> JSON:
        identity_in = inputs.get("identity") or {}
        kind = str(identity_in.get("type") or "SystemAssigned")
        ids = identity_in.get("userAssignedIdentities") or []
        if kind not in ("SystemAssigned", "UserAssigned") or (kind == "UserAssigned") != bool(ids):
            raise ArmError(
                400,
                "InvalidParameter",
                "The managed cluster identity must be SystemAssigned, or UserAssigned with "
                "exactly one user-assigned identity.",
            )
        if len(ids) > 1:
            raise ArmError(
                400,
                "BadRequest",
                "The user identity dictionary can only contain one user identity.",
            )
        block = self._identity_block(
            arm_id, {**inputs, "identity": {**identity_in, "type": kind}}, "a managed cluster"
        )
        assert block is not None  # a type other than None was checked above
        return block

    def _kubelet_identity(self, node_rg: str, cluster: str, location: str) -> dict[str, str]:
        """The ``<cluster>-agentpool`` identity in the node resource group, created once."""
        uai_id = fleet_shapes.kubelet_identity_id(self.subscription_id, node_rg, cluster)
        doc = self.get(uai_id)
        if doc is None:
            doc = arm_shapes.user_assigned_identity(
                arm_id=uai_id,
                location=location,
                tenant_id=self.tenant_id,
                principal_id=self._new_guid(),
                client_id=self._new_guid(),
            )
            self.resources[uai_id.lower()] = doc
        props = doc["properties"]
        return {
            "resourceId": uai_id,
            "clientId": props["clientId"],
            "objectId": props["principalId"],
        }

    def _list_cluster_user_credentials(self, args: JSON) -> JSON:
        rg = str(args.get("resourceGroupName") or "")
        name = str(args.get("resourceName") or "")
        cluster_id = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}"
            f"/providers/Microsoft.ContainerService/managedClusters/{name}"
        )
        cluster = self.get(cluster_id)
        if cluster is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.ContainerService/managedClusters/{name}' under "
                f"resource group '{rg}' was not found.",
            )
        kubeconfig = fleet_shapes.cluster_user_kubeconfig(
            cluster=cluster, resource_group=rg, tenant_id=self.tenant_id, ca_data=_CA_PLACEHOLDER
        )
        return {
            "kubeconfigs": [
                {"name": "clusterUser", "value": base64.b64encode(kubeconfig.encode()).decode()}
            ]
        }


def _stable_guid(seed: str, index: int) -> str:
    """A GUID for instance ``index`` of a set, the same on every read."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{index}"))
