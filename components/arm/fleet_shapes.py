"""ARM JSON of the fleet hosts as ARM returns it: Microsoft.Compute virtualMachineScaleSets
and their instances, Microsoft.ContainerService managedClusters and the cluster user
kubeconfig (REST specs: specification/compute, specification/containerservice). The
``identity`` block is a VM's (:func:`shapes.vm_identity`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.arm.shapes import JSON, arm_timestamp, tracked

VIRTUAL_MACHINE_SCALE_SET = "Microsoft.Compute/virtualMachineScaleSets"
SCALE_SET_VM = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
MANAGED_CLUSTER = "Microsoft.ContainerService/managedClusters"

#: The AKS-managed Entra ID applications every AKS ``exec`` kubeconfig names: the server
#: (token audience of the API server) and the public client kubelogin signs in with.
AKS_AAD_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
AKS_AAD_CLIENT_APP_ID = "80faf920-1908-4b52-b5ef-a8e7bedfc67a"


def virtual_machine_scale_set(
    *,
    arm_id: str,
    location: str,
    unique_id: str,
    identity: JSON | None,
    sku: Mapping[str, Any],
    admin_username: str,
    computer_name_prefix: str,
    ssh_public_keys: Sequence[Mapping[str, str]] = (),
    disable_password_authentication: bool = True,
    network_interface_configurations: Sequence[Mapping[str, Any]] = (),
    image_reference: Mapping[str, str] | None = None,
    orchestration_mode: str = "Uniform",
    upgrade_mode: str = "Manual",
    tags: Mapping[str, str] | None = None,
    time_created: str | None = None,
) -> JSON:
    """A Linux scale set (azure-mgmt-compute ``VirtualMachineScaleSet``).

    ``identity`` is the VM's block (:func:`shapes.vm_identity`): one system ``principalId`` for
    the whole set. customData is never returned.
    """
    doc = tracked(arm_id, VIRTUAL_MACHINE_SCALE_SET, location, tags)
    doc["sku"] = {
        "name": sku.get("name", ""),
        "tier": sku.get("tier", "Standard"),
        "capacity": int(sku.get("capacity") or 0),
    }
    if identity is not None:
        doc["identity"] = identity
    doc["properties"] = {
        "singlePlacementGroup": True,
        "orchestrationMode": orchestration_mode,
        "upgradePolicy": {"mode": upgrade_mode},
        "virtualMachineProfile": {
            "osProfile": {
                "computerNamePrefix": computer_name_prefix,
                "adminUsername": admin_username,
                "linuxConfiguration": {
                    "disablePasswordAuthentication": disable_password_authentication,
                    "ssh": {"publicKeys": [dict(k) for k in ssh_public_keys]},
                    "provisionVMAgent": True,
                },
                "secrets": [],
                "allowExtensionOperations": True,
            },
            "storageProfile": {
                "imageReference": dict(image_reference or {}),
                "osDisk": {
                    "osType": "Linux",
                    "createOption": "FromImage",
                    "caching": "ReadWrite",
                    "managedDisk": {"storageAccountType": "StandardSSD_LRS"},
                },
            },
            "networkProfile": {
                "networkInterfaceConfigurations": [
                    dict(c) for c in network_interface_configurations
                ]
            },
        },
        "provisioningState": "Succeeded",
        "overprovision": False,
        "doNotRunExtensionsOnOverprovisionedVMs": False,
        "uniqueId": unique_id,
        "timeCreated": time_created or arm_timestamp(),
    }
    return doc


def scale_set_vm(*, scale_set: Mapping[str, Any], instance_id: str, vm_id: str) -> JSON:
    """One instance of a Uniform scale set (``.../virtualMachineScaleSets/<set>/
    virtualMachines/<instanceId>``); its identity is the set's."""
    prefix = scale_set["properties"]["virtualMachineProfile"]["osProfile"]["computerNamePrefix"]
    doc: JSON = {
        "id": f"{scale_set['id']}/virtualMachines/{instance_id}",
        "name": f"{scale_set['name']}_{instance_id}",
        "type": SCALE_SET_VM,
        "location": scale_set["location"],
        "instanceId": instance_id,
        "sku": dict(scale_set["sku"]),
    }
    if scale_set.get("identity") is not None:
        doc["identity"] = scale_set["identity"]
    doc["properties"] = {
        "latestModelApplied": True,
        "vmId": vm_id,
        "osProfile": {"computerName": f"{prefix}{_base36(int(instance_id)):0>6}"},
        "provisioningState": "Succeeded",
    }
    return doc


def _base36(n: int) -> str:
    """Uniform scale sets name instance computers prefix + 6 base-36 digits."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def default_cluster_issuer(location: str, tenant_id: str, issuer_guid: str) -> str:
    """AKS's OIDC issuer URL in the public cloud; note the trailing slash."""
    return f"https://{location}.oic.prod-aks.azure.com/{tenant_id}/{issuer_guid}/"


def kubelet_identity_id(subscription_id: str, node_resource_group: str, cluster: str) -> str:
    """The kubelet identity AKS creates in the node resource group."""
    return (
        f"/subscriptions/{subscription_id}/resourcegroups/{node_resource_group}"
        f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{cluster}-agentpool"
    )


def managed_cluster(
    *,
    arm_id: str,
    location: str,
    tenant_id: str,
    identity: JSON,
    dns_prefix: str,
    fqdn_suffix: str,
    kubernetes_version: str,
    agent_pool_profiles: Sequence[Mapping[str, Any]],
    node_resource_group: str,
    issuer_url: str | None,
    workload_identity: bool,
    kubelet_identity: Mapping[str, str],
    enable_rbac: bool = True,
    disable_local_accounts: bool = False,
    aad_profile: Mapping[str, Any] | None = None,
    network_profile: Mapping[str, Any] | None = None,
    api_server_access_profile: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> JSON:
    """An AKS cluster (``Microsoft.ContainerService/managedClusters``, 2025-10-01 shapes).

    ``oidcIssuerProfile.issuerURL`` appears only with the issuer enabled (read-only, with
    its trailing slash); ``identityProfile.kubeletidentity`` names the node identity
    that IMDS answers for on every node.
    """
    doc = tracked(arm_id, MANAGED_CLUSTER, location, tags)
    doc["sku"] = {"name": "Base", "tier": "Free"}
    doc["identity"] = dict(identity)
    pools = [
        {
            "count": 1,
            "mode": "System",
            "osType": "Linux",
            "maxPods": 250,
            "type": "VirtualMachineScaleSets",
            "enableNodePublicIP": False,
            "orchestratorVersion": kubernetes_version,
            "currentOrchestratorVersion": kubernetes_version,
            **dict(p),
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
        }
        for p in agent_pool_profiles
    ]
    oidc: JSON = {"enabled": issuer_url is not None}
    if issuer_url is not None:
        oidc["issuerURL"] = issuer_url
    props: JSON = {
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
        "kubernetesVersion": kubernetes_version,
        "currentKubernetesVersion": kubernetes_version,
        "dnsPrefix": dns_prefix,
        "fqdn": f"{dns_prefix}-{fqdn_suffix}.hcp.{location}.azmk8s.io",
        "azurePortalFQDN": f"{dns_prefix}-{fqdn_suffix}.portal.hcp.{location}.azmk8s.io",
        "agentPoolProfiles": pools,
        "nodeResourceGroup": node_resource_group,
        "enableRBAC": enable_rbac,
        "disableLocalAccounts": disable_local_accounts,
        "maxAgentPools": 100,
        "oidcIssuerProfile": oidc,
        "securityProfile": {"workloadIdentity": {"enabled": workload_identity}}
        if workload_identity
        else {},
        "identityProfile": {"kubeletidentity": dict(kubelet_identity)},
        "networkProfile": dict(network_profile or {"networkPlugin": "azure"}),
    }
    if aad_profile is not None:
        props["aadProfile"] = {**dict(aad_profile), "tenantID": tenant_id}
    if api_server_access_profile:
        props["apiServerAccessProfile"] = dict(api_server_access_profile)
    doc["properties"] = props
    return doc


def cluster_user_kubeconfig(
    *, cluster: Mapping[str, Any], resource_group: str, tenant_id: str, ca_data: str
) -> str:
    """The kubeconfig ``listClusterUserCredential?format=exec`` returns for an Entra ID
    cluster: kubelogin with the AKS server and client applications, device-code login."""
    name = cluster["name"]
    user = f"clusterUser_{resource_group}_{name}"
    fqdn = cluster["properties"]["fqdn"]
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {ca_data}\n"
        f"    server: https://{fqdn}:443\n"
        f"  name: {name}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {name}\n"
        f"    user: {user}\n"
        f"  name: {name}\n"
        f"current-context: {name}\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {user}\n"
        "  user:\n"
        "    exec:\n"
        "      apiVersion: client.authentication.k8s.io/v1beta1\n"
        "      args:\n"
        "      - get-token\n"
        "      - --environment\n"
        "      - AzurePublicCloud\n"
        "      - --server-id\n"
        f"      - {AKS_AAD_SERVER_APP_ID}\n"
        "      - --client-id\n"
        f"      - {AKS_AAD_CLIENT_APP_ID}\n"
        "      - --tenant-id\n"
        f"      - {tenant_id}\n"
        "      - --login\n"
        "      - devicecode\n"
        "      command: kubelogin\n"
        "      env: null\n"
        "      interactiveMode: IfAvailable\n"
        "      provideClusterInfo: false\n"
    )
