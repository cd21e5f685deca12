"""What pulumi-azure-native sends and returns, as the mock runtime answers for it.

The ARM ID azure-native builds for each type token from its inputs, the api-version it
reports (``azureApiVersion``), how it flattens an ARM document into outputs, and the
envelopes Pulumi wraps secret inputs in. Facts about the provider, kept apart from the
mocks (:mod:`components.mockruntime.mocks`) that use them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from importlib import import_module
from typing import Any

from pulumi.runtime import rpc

from components.arm import tokens

# The REST API versions azure-native 3.x uses for the types we create (its
# ``azureApiVersion`` output); other types simply omit the output.
API_VERSIONS = {
    tokens.PULUMI_RESOURCE_GROUP: "2024-03-01",
    tokens.PULUMI_USER_ASSIGNED_IDENTITY: "2023-01-31",
    tokens.PULUMI_FEDERATED_CREDENTIAL: "2023-01-31",
    tokens.PULUMI_MANAGEMENT_LOCK: "2020-05-01",
    tokens.PULUMI_VIRTUAL_NETWORK: "2024-05-01",
    tokens.PULUMI_SUBNET: "2024-05-01",
    tokens.PULUMI_NETWORK_SECURITY_GROUP: "2024-05-01",
    tokens.PULUMI_NETWORK_INTERFACE: "2024-05-01",
    tokens.PULUMI_VIRTUAL_MACHINE: "2024-11-01",
    tokens.PULUMI_ROLE_ASSIGNMENT: "2022-04-01",
    tokens.PULUMI_KEY_VAULT: "2024-11-01",
    tokens.PULUMI_KEY_VAULT_SECRET: "2024-11-01",
    tokens.PULUMI_STORAGE_ACCOUNT: "2024-01-01",
    tokens.PULUMI_BLOB_CONTAINER: "2024-01-01",
}
# Not azure-native, but backed by ARM-side state all the same (components.storage).
BACKEND_TYPES = frozenset({tokens.PULUMI_SEEDED_BLOB})

_RG = "/subscriptions/{sub}/resourceGroups/{rg}"
_PATHS: dict[str, tuple[str, tuple[str, ...]]] = {
    # token: (format below the resource group, input keys holding the names)
    tokens.PULUMI_USER_ASSIGNED_IDENTITY: (
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{0}",
        ("resourceName",),
    ),
    tokens.PULUMI_FEDERATED_CREDENTIAL: (
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{0}"
        "/federatedIdentityCredentials/{1}",
        ("resourceName", "federatedIdentityCredentialResourceName"),
    ),
    tokens.PULUMI_VIRTUAL_NETWORK: (
        "/providers/Microsoft.Network/virtualNetworks/{0}",
        ("virtualNetworkName",),
    ),
    tokens.PULUMI_SUBNET: (
        "/providers/Microsoft.Network/virtualNetworks/{0}/subnets/{1}",
        ("virtualNetworkName", "subnetName"),
    ),
    tokens.PULUMI_NETWORK_SECURITY_GROUP: (
        "/providers/Microsoft.Network/networkSecurityGroups/{0}",
        ("networkSecurityGroupName",),
    ),
    tokens.PULUMI_NETWORK_INTERFACE: (
        "/providers/Microsoft.Network/networkInterfaces/{0}",
        ("networkInterfaceName",),
    ),
    tokens.PULUMI_PUBLIC_IP_ADDRESS: (
        "/providers/Microsoft.Network/publicIPAddresses/{0}",
        ("publicIpAddressName",),
    ),
    tokens.PULUMI_NAT_GATEWAY: (
        "/providers/Microsoft.Network/natGateways/{0}",
        ("natGatewayName",),
    ),
    tokens.PULUMI_VIRTUAL_MACHINE: (
        "/providers/Microsoft.Compute/virtualMachines/{0}",
        ("vmName",),
    ),
    tokens.PULUMI_VIRTUAL_MACHINE_SCALE_SET: (
        "/providers/Microsoft.Compute/virtualMachineScaleSets/{0}",
        ("vmScaleSetName",),
    ),
    tokens.PULUMI_MANAGED_CLUSTER: (
        "/providers/Microsoft.ContainerService/managedClusters/{0}",
        ("resourceName",),
    ),
    tokens.PULUMI_KEY_VAULT: ("/providers/Microsoft.KeyVault/vaults/{0}", ("vaultName",)),
    tokens.PULUMI_KEY_VAULT_SECRET: (
        "/providers/Microsoft.KeyVault/vaults/{0}/secrets/{1}",
        ("vaultName", "secretName"),
    ),
    tokens.PULUMI_STORAGE_ACCOUNT: (
        "/providers/Microsoft.Storage/storageAccounts/{0}",
        ("accountName",),
    ),
    tokens.PULUMI_BLOB_CONTAINER: (
        "/providers/Microsoft.Storage/storageAccounts/{0}/blobServices/default/containers/{1}",
        ("accountName", "containerName"),
    ),
    tokens.PULUMI_BLOB: (
        "/providers/Microsoft.Storage/storageAccounts/{0}/blobServices/default/containers/{1}"
        "/blobs/{2}",
        ("accountName", "containerName", "blobName"),
    ),
    tokens.PULUMI_APP_SERVICE_PLAN: ("/providers/Microsoft.Web/serverfarms/{0}", ("name",)),
    tokens.PULUMI_WEB_APP: ("/providers/Microsoft.Web/sites/{0}", ("name",)),
    tokens.PULUMI_WEB_APP_FTP_ALLOWED: (
        "/providers/Microsoft.Web/sites/{0}/basicPublishingCredentialsPolicies/ftp",
        ("name",),
    ),
    tokens.PULUMI_WEB_APP_SCM_ALLOWED: (
        "/providers/Microsoft.Web/sites/{0}/basicPublishingCredentialsPolicies/scm",
        ("name",),
    ),
    tokens.PULUMI_MANAGED_ENVIRONMENT: (
        "/providers/Microsoft.App/managedEnvironments/{0}",
        ("environmentName",),
    ),
    tokens.PULUMI_CONTAINER_APP: (
        "/providers/Microsoft.App/containerApps/{0}",
        ("containerAppName",),
    ),
    tokens.PULUMI_SEEDED_BLOB: (
        "/providers/Microsoft.Storage/storageAccounts/{0}/blobServices/default/containers/{1}"
        "/blobs/{2}",
        ("accountName", "containerName", "blobName"),
    ),
}
# Extension resources live below an arbitrary scope given as the ``scope`` input.
_EXTENSIONS = {
    tokens.PULUMI_ROLE_ASSIGNMENT: (
        "/providers/Microsoft.Authorization/roleAssignments/{0}",
        "roleAssignmentName",
    ),
    tokens.PULUMI_MANAGEMENT_LOCK: ("/providers/Microsoft.Authorization/locks/{0}", "lockName"),
}


def is_secret_envelope(value: Any) -> bool:
    """True for the ``{sig: secret, value: ...}`` form secret inputs arrive in."""
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def unwrap_secrets(value: Any) -> Any:
    """Replace Pulumi's secret envelopes (as the mock monitor hands them over) by values."""
    if isinstance(value, dict):
        if is_secret_envelope(value):
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


@cache
def _keeps_properties(token: str) -> bool:
    """Whether azure-native outputs keep ``properties`` nested (Vault, Secret, ...).

    Decided from the generated SDK class itself, so it cannot drift from azure-native:
    types whose ARM spec does not flatten ``properties`` expose a ``properties`` getter.
    """
    package, module, name = token.split(":")
    if package != "azure-native":
        return False
    try:
        cls = getattr(import_module(f"pulumi_azure_native.{module.replace('/', '.')}"), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(getattr(cls, "properties", None), property)


def _lift_nested(value: Any) -> Any:
    """Sub-resources (ipConfigurations, securityRules, NIC references...) come back
    flattened too: azure-native lifts their ``properties`` the same way."""
    if isinstance(value, list):
        return [_lift_nested(v) for v in value]
    if isinstance(value, dict):
        out = {k: _lift_nested(v) for k, v in value.items() if k != "properties"}
        props = value.get("properties")
        if isinstance(props, dict):
            out.update(_lift_nested(props))
        elif "properties" in value:
            out["properties"] = props
        return out
    return value


def flatten(token: str, arm: Mapping[str, Any]) -> dict[str, Any]:
    """ARM JSON -> azure-native outputs: ``properties.*`` lifted unless the SDK nests them.

    ``id`` is dropped (Pulumi carries it separately); ``azureApiVersion`` is added.
    """
    out = {k: _lift_nested(v) for k, v in arm.items() if k not in ("id", "properties")}
    props = arm.get("properties")
    if props is not None:
        if _keeps_properties(token):
            out["properties"] = _lift_nested(props)
        else:
            out.update(_lift_nested(props))
    if token in API_VERSIONS:
        out["azureApiVersion"] = API_VERSIONS[token]
    return out


def arm_id(
    token: str, logical_name: str, inputs: Mapping[str, Any], *, subscription_id: str
) -> str:
    """The ARM ID azure-native would create for ``token`` with these inputs."""
    sub = subscription_id
    if token == tokens.PULUMI_RESOURCE_GROUP:
        return _RG.format(sub=sub, rg=inputs.get("resourceGroupName") or logical_name)
    if token in _EXTENSIONS:
        fmt, key = _EXTENSIONS[token]
        scope = str(inputs["scope"]).rstrip("/")
        return scope + fmt.format(inputs.get(key) or logical_name)
    rg = inputs.get("resourceGroupName") or "unknown-rg"
    if token in _PATHS:
        fmt, keys = _PATHS[token]
        names = [inputs.get(k) or logical_name for k in keys]
        return _RG.format(sub=sub, rg=rg) + fmt.format(*names)
    _, module, type_name = token.split(":")
    provider = "Microsoft." + module.split("/")[0].capitalize()
    type_segment = type_name[0].lower() + type_name[1:] + "s"
    return _RG.format(sub=sub, rg=rg) + f"/providers/{provider}/{type_segment}/{logical_name}"
