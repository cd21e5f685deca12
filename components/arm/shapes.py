"""ARM REST JSON of every resource this toolkit touches, exactly as ARM returns it.

One source of truth for two consumers: the Pulumi mocks (which flatten these documents
into azure-native outputs) and the sandbox's ARM slice (which serves them over HTTP to
the real azure-mgmt-* clients). If the shapes lived in two places, a test could pass
against a mock that answers differently from the sandbox the verifier talks to.

Field names follow the REST models of azure-mgmt-msi (2024-11-30), azure-mgmt-compute
(2024-11-01), azure-mgmt-authorization (2022-04-01) and Key Vault management
(2024-11-01). Server-populated fields that our code or the SDK clients read are filled
in; optional fields ARM omits when unset are omitted here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from components.identity_type import identity_type
from components.roles import RoleDefinition

JSON = dict[str, Any]

__all__ = ["identity_type"]  # re-exported: the ARM side of the same rule

# Resource types as ARM spells them in the "type" field.
RESOURCE_GROUP = "Microsoft.Resources/resourceGroups"
USER_ASSIGNED_IDENTITY = "Microsoft.ManagedIdentity/userAssignedIdentities"
FEDERATED_CREDENTIAL = (
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
)
VIRTUAL_MACHINE = "Microsoft.Compute/virtualMachines"
VIRTUAL_NETWORK = "Microsoft.Network/virtualNetworks"
SUBNET = "Microsoft.Network/virtualNetworks/subnets"
NETWORK_SECURITY_GROUP = "Microsoft.Network/networkSecurityGroups"
NETWORK_INTERFACE = "Microsoft.Network/networkInterfaces"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITION = "Microsoft.Authorization/roleDefinitions"
MANAGEMENT_LOCK = "Microsoft.Authorization/locks"
KEY_VAULT = "Microsoft.KeyVault/vaults"
KEY_VAULT_SECRET = "Microsoft.KeyVault/vaults/secrets"  # noqa: S105 (a type name)
DELETED_KEY_VAULT = "Microsoft.KeyVault/deletedVaults"
STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"
BLOB_CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"


def arm_timestamp(when: datetime | None = None) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, the way ARM writes createdOn/updatedOn."""
    when = when or datetime.now(UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _name(arm_id: str) -> str:
    return arm_id.rstrip("/").rsplit("/", 1)[-1]


def tracked(arm_id: str, type_: str, location: str, tags: Mapping[str, str] | None) -> JSON:
    """The envelope every tracked ARM resource shares."""
    return {
        "id": arm_id,
        "name": _name(arm_id),
        "type": type_,
        "location": location,
        "tags": dict(tags or {}),
    }


def resource_group(*, arm_id: str, location: str, tags: Mapping[str, str] | None = None) -> JSON:
    doc = tracked(arm_id, RESOURCE_GROUP, location, tags)
    doc["properties"] = {"provisioningState": "Succeeded"}
    return doc


def user_assigned_identity(
    *,
    arm_id: str,
    location: str,
    tenant_id: str,
    principal_id: str,
    client_id: str,
    tags: Mapping[str, str] | None = None,
) -> JSON:
    """A user-assigned identity (azure-mgmt-msi ``Identity``)."""
    doc = tracked(arm_id, USER_ASSIGNED_IDENTITY, location, tags)
    doc["properties"] = {
        "tenantId": tenant_id,
        "principalId": principal_id,
        "clientId": client_id,
        "isolationScope": "None",
        # 2026-05-31: which resource providers may be assigned the identity (none listed: any)
        "assignmentRestrictions": {"providers": []},
    }
    return doc


def federated_identity_credential(
    *, arm_id: str, issuer: str, subject: str, audiences: Sequence[str]
) -> JSON:
    """A federated credential below a user-assigned identity (CI OIDC trust)."""
    return {
        "id": arm_id,
        "name": _name(arm_id),
        "type": FEDERATED_CREDENTIAL,
        "properties": {"issuer": issuer, "subject": subject, "audiences": list(audiences)},
    }


@dataclass(frozen=True)
class AttachedIdentity:
    """What ARM reports per user-assigned identity attached to a VM."""

    principal_id: str
    client_id: str


def vm_identity(
    *,
    system_principal_id: str | None,
    tenant_id: str,
    user_assigned: Mapping[str, AttachedIdentity],
) -> JSON | None:
    """The ``identity`` block of a VM; None when it has no identity at all.

    ``principalId``/``tenantId`` appear only with a system identity, and the
    ``userAssignedIdentities`` map (ARM ID -> principalId, clientId) only when at
    least one identity is attached, as ARM returns them.
    """
    system = system_principal_id is not None
    if not system and not user_assigned:
        return None
    block: JSON = {"type": identity_type(system, bool(user_assigned))}
    if system:
        block["principalId"] = system_principal_id
        block["tenantId"] = tenant_id
    if user_assigned:
        block["userAssignedIdentities"] = {
            uai_id: {"principalId": ref.principal_id, "clientId": ref.client_id}
            for uai_id, ref in user_assigned.items()
        }
    return block


def virtual_machine(
    *,
    arm_id: str,
    location: str,
    vm_id: str,
    identity: JSON | None,
    vm_size: str,
    admin_username: str,
    ssh_public_keys: Sequence[Mapping[str, str]] = (),
    disable_password_authentication: bool = True,
    network_interface_ids: Sequence[str] = (),
    image_reference: Mapping[str, str] | None = None,
    os_disk: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    zones: Sequence[str] | None = None,
    time_created: str | None = None,
) -> JSON:
    """A Linux VM (azure-mgmt-compute ``VirtualMachine``). customData is never returned."""
    doc = tracked(arm_id, VIRTUAL_MACHINE, location, tags)
    if identity is not None:
        doc["identity"] = identity
    if zones:
        doc["zones"] = list(zones)
    doc["properties"] = {
        "vmId": vm_id,
        "hardwareProfile": {"vmSize": vm_size},
        "storageProfile": {
            "imageReference": dict(image_reference or {}),
            "osDisk": {
                "osType": "Linux",
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "deleteOption": "Delete",
                **dict(os_disk or {}),
            },
            "dataDisks": [],
        },
        "osProfile": {
            "computerName": _name(arm_id),
            "adminUsername": admin_username,
            "linuxConfiguration": {
                "disablePasswordAuthentication": disable_password_authentication,
                "ssh": {"publicKeys": [dict(k) for k in ssh_public_keys]},
                "provisionVMAgent": True,
            },
            "secrets": [],
            "allowExtensionOperations": True,
        },
        "networkProfile": {
            "networkInterfaces": [
                {"id": nic, "properties": {"primary": i == 0, "deleteOption": "Delete"}}
                for i, nic in enumerate(network_interface_ids)
            ]
        },
        "provisioningState": "Succeeded",
        "timeCreated": time_created or arm_timestamp(),
    }
    return doc


def role_assignment(
    *,
    scope: str,
    name: str,
    role_definition_id: str,
    principal_id: str,
    principal_type: str = "ServicePrincipal",
    condition: str | None = None,
    condition_version: str | None = None,
    description: str | None = None,
    created_by: str | None = None,
    created_on: str | None = None,
) -> JSON:
    """A role assignment (azure-mgmt-authorization 2022-04-01 ``RoleAssignment``).

    Its ID is ``{scope}/providers/Microsoft.Authorization/roleAssignments/{name}``; ARM
    returns ``condition``/``conditionVersion``/``description`` as null when unset.
    """
    stamp = created_on or arm_timestamp()
    return {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "type": ROLE_ASSIGNMENT,
        "properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal_id,
            "principalType": principal_type,
            "scope": scope,
            "condition": condition,
            "conditionVersion": condition_version,
            "description": description,
            "createdOn": stamp,
            "updatedOn": stamp,
            "createdBy": created_by,
            "updatedBy": created_by,
            "delegatedManagedIdentityResourceId": None,
        },
    }


def role_definition(role: RoleDefinition, *, subscription_id: str) -> JSON:
    """A built-in role definition as ``role_definitions.list``/``get`` return it."""
    return {
        "id": role.definition_id(subscription_id),
        "name": role.guid,
        "type": ROLE_DEFINITION,
        "properties": {
            "roleName": role.name,
            "type": "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [
                {
                    "actions": list(role.actions),
                    "notActions": list(role.not_actions),
                    "dataActions": list(role.data_actions),
                    "notDataActions": list(role.not_data_actions),
                }
            ],
            "createdOn": None,
            "updatedOn": None,
            "createdBy": None,
            "updatedBy": None,
        },
    }


def management_lock(
    *, scope: str, name: str, level: str = "CanNotDelete", notes: str | None = None
) -> JSON:
    """A management lock at any scope (``{scope}/providers/Microsoft.Authorization/locks``)."""
    props: JSON = {"level": level, "owners": []}
    if notes:
        props["notes"] = notes
    return {
        "id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/locks/{name}",
        "name": name,
        "type": MANAGEMENT_LOCK,
        "properties": props,
    }


def key_vault(
    *,
    arm_id: str,
    location: str,
    tenant_id: str,
    vault_uri: str,
    enable_rbac_authorization: bool = True,
    enable_soft_delete: bool = True,
    soft_delete_retention_in_days: int = 90,
    enable_purge_protection: bool = False,
    public_network_access: str = "Enabled",
    sku_name: str = "standard",
    tags: Mapping[str, str] | None = None,
) -> JSON:
    """A Key Vault (Microsoft.KeyVault/vaults 2024-11-01).

    ARM omits ``enablePurgeProtection`` unless it is on (it can never be turned off).
    """
    doc = tracked(arm_id, KEY_VAULT, location, tags)
    props: JSON = {
        "sku": {"family": "A", "name": sku_name},
        "tenantId": tenant_id,
        "accessPolicies": [],
        "enabledForDeployment": False,
        "enabledForDiskEncryption": False,
        "enabledForTemplateDeployment": False,
        "enableSoftDelete": enable_soft_delete,
        "softDeleteRetentionInDays": soft_delete_retention_in_days,
        "enableRbacAuthorization": enable_rbac_authorization,
        "vaultUri": vault_uri,
        "provisioningState": "Succeeded",
        "publicNetworkAccess": public_network_access,
    }
    if enable_purge_protection:
        props["enablePurgeProtection"] = True
    doc["properties"] = props
    return doc


def key_vault_secret(
    *,
    arm_id: str,
    location: str,
    vault_uri: str,
    version: str,
    content_type: str | None = None,
    enabled: bool = True,
    created: int | None = None,
    tags: Mapping[str, str] | None = None,
) -> JSON:
    """A secret as the *management* plane returns it: metadata and URIs, never the value."""
    name = _name(arm_id)
    stamp = created if created is not None else int(datetime.now(UTC).timestamp())
    base = vault_uri if vault_uri.endswith("/") else vault_uri + "/"
    doc = tracked(arm_id, KEY_VAULT_SECRET, location, tags)
    props: JSON = {
        "attributes": {"enabled": enabled, "created": stamp, "updated": stamp},
        "secretUri": f"{base}secrets/{name}",
        "secretUriWithVersion": f"{base}secrets/{name}/{version}",
    }
    if content_type:
        props["contentType"] = content_type
    doc["properties"] = props
    return doc


def storage_account(
    *,
    arm_id: str,
    location: str,
    blob_endpoint: str,
    sku_name: str = "Standard_LRS",
    kind: str = "StorageV2",
    allow_shared_key_access: bool = True,
    allow_blob_public_access: bool = False,
    minimum_tls_version: str = "TLS1_2",
    supports_https_traffic_only: bool = True,
    public_network_access: str = "Enabled",
    created: datetime | None = None,
    tags: Mapping[str, str] | None = None,
) -> JSON:
    """A storage account (Microsoft.Storage/storageAccounts 2024-01-01).

    ``primaryEndpoints`` carries only the blob endpoint this toolkit serves (the real
    response lists queue, table, file, dfs and web too; nothing here reads them).
    """
    doc = tracked(arm_id, STORAGE_ACCOUNT, location, tags)
    tier = "Premium" if sku_name.startswith("Premium") else "Standard"
    doc["sku"] = {"name": sku_name, "tier": tier}
    doc["kind"] = kind
    doc["properties"] = {
        "provisioningState": "Succeeded",
        "creationTime": arm_timestamp(created),
        "primaryLocation": location,
        "statusOfPrimary": "available",
        "primaryEndpoints": {"blob": blob_endpoint},
        "accessTier": "Hot",
        "allowBlobPublicAccess": allow_blob_public_access,
        "allowSharedKeyAccess": allow_shared_key_access,
        "minimumTlsVersion": minimum_tls_version,
        "supportsHttpsTrafficOnly": supports_https_traffic_only,
        "publicNetworkAccess": public_network_access,
        "encryption": {
            "keySource": "Microsoft.Storage",
            "services": {"blob": {"enabled": True, "keyType": "Account"}},
        },
    }
    return doc


def blob_container(*, arm_id: str, public_access: str = "None") -> JSON:
    """A blob container (…/blobServices/containers 2024-01-01): a proxy resource, so no
    location or tags; ``defaultEncryptionScope`` is the account's own key."""
    return {
        "id": arm_id,
        "name": _name(arm_id),
        "type": BLOB_CONTAINER,
        "etag": '"0x8DC0000000000000"',
        "properties": {
            "publicAccess": public_access,
            "leaseStatus": "Unlocked",
            "leaseState": "Available",
            "hasImmutabilityPolicy": False,
            "hasLegalHold": False,
            "defaultEncryptionScope": "$account-encryption-key",
            "denyEncryptionScopeOverride": False,
            "deleted": False,
            "remainingRetentionDays": 0,
        },
    }


def blob(
    *,
    arm_id: str,
    url: str,
    content_type: str = "application/octet-stream",
    tags: Mapping[str, str] | None = None,
) -> JSON:
    """A seeded blob as the toolkit's SeededBlob reports it: blobs are data-plane objects
    with no ARM document of their own, so this is azure-native ``storage.Blob``'s output
    set (name, url, contentType) plus the blob's index ``tags``; never the content."""
    return {
        "id": arm_id,
        "name": arm_id.split("/blobs/", 1)[-1],
        "type": BLOB,
        "properties": {
            "url": url,
            "contentType": content_type,
            "accessTier": "Hot",
            "tags": dict(tags or {}),
        },
    }


def deleted_vault_id(subscription_id: str, location: str, name: str) -> str:
    """Where ARM lists a soft-deleted vault: below the subscription and region, not a group."""
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.KeyVault/locations/"
        f"{location}/deletedVaults/{name}"
    )


def deleted_key_vault(
    *,
    subscription_id: str,
    name: str,
    location: str,
    vault_id: str,
    deletion_date: datetime | None,
    scheduled_purge_date: datetime | None,
    purge_protection_enabled: bool = False,
    tags: Mapping[str, str] | None = None,
) -> JSON:
    """A soft-deleted vault (``DeletedVault`` of the Key Vault management API)."""
    return {
        "id": deleted_vault_id(subscription_id, location, name),
        "name": name,
        "type": DELETED_KEY_VAULT,
        "properties": {
            "vaultId": vault_id,
            "location": location,
            "deletionDate": arm_timestamp(deletion_date),
            "scheduledPurgeDate": arm_timestamp(scheduled_purge_date),
            "tags": dict(tags or {}),
            "purgeProtectionEnabled": purge_protection_enabled,
        },
    }
