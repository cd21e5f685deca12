"""Pulumi type tokens: how a Pulumi program names the resources the ARM model creates.

A type token (``azure-native:compute:VirtualMachine``) is Pulumi's name for a resource
type in a program; ARM knows the same resource as ``Microsoft.Compute/virtualMachines``
(those names are in :mod:`components.arm.shapes`). The mock runtime receives the first
and the ARM model answers with documents of the second, so each token here is named
``PULUMI_<TYPE>`` and never confused with the ARM type of the same name.
"""

from __future__ import annotations

PULUMI_RESOURCE_GROUP = "azure-native:resources:ResourceGroup"
PULUMI_USER_ASSIGNED_IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
PULUMI_FEDERATED_CREDENTIAL = "azure-native:managedidentity:FederatedIdentityCredential"
PULUMI_MANAGEMENT_LOCK = "azure-native:authorization:ManagementLockByScope"
PULUMI_VIRTUAL_NETWORK = "azure-native:network:VirtualNetwork"
PULUMI_SUBNET = "azure-native:network:Subnet"
PULUMI_NETWORK_SECURITY_GROUP = "azure-native:network:NetworkSecurityGroup"
PULUMI_NETWORK_INTERFACE = "azure-native:network:NetworkInterface"
PULUMI_PUBLIC_IP_ADDRESS = "azure-native:network:PublicIPAddress"
PULUMI_NAT_GATEWAY = "azure-native:network:NatGateway"
PULUMI_VIRTUAL_MACHINE = "azure-native:compute:VirtualMachine"
PULUMI_ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
PULUMI_KEY_VAULT = "azure-native:keyvault:Vault"
PULUMI_KEY_VAULT_SECRET = "azure-native:keyvault:Secret"  # noqa: S105 (a type token)
PULUMI_STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
PULUMI_BLOB_CONTAINER = "azure-native:storage:BlobContainer"
PULUMI_BLOB = "azure-native:storage:Blob"
#: components.storage.SeededBlob, a Pulumi dynamic resource (Entra ID upload with tags).
PULUMI_SEEDED_BLOB = "pulumi-python:dynamic/mikit:SeededBlob"

# App Service, Functions and Container Apps.
PULUMI_WEB_APP = "azure-native:web:WebApp"
PULUMI_APP_SERVICE_PLAN = "azure-native:web:AppServicePlan"
PULUMI_WEB_APP_FTP_ALLOWED = "azure-native:web:WebAppFtpAllowed"
PULUMI_WEB_APP_SCM_ALLOWED = "azure-native:web:WebAppScmAllowed"
PULUMI_MANAGED_ENVIRONMENT = "azure-native:app:ManagedEnvironment"
PULUMI_CONTAINER_APP = "azure-native:app:ContainerApp"

# Scale sets and AKS.
PULUMI_VIRTUAL_MACHINE_SCALE_SET = "azure-native:compute:VirtualMachineScaleSet"
PULUMI_MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"

PULUMI_GET_CLIENT_CONFIG = "azure-native:authorization:getClientConfig"
PULUMI_LIST_CLUSTER_USER_CREDENTIALS = (
    "azure-native:containerservice:listManagedClusterUserCredentials"
)
