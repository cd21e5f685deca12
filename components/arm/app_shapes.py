"""ARM JSON of the app hosts as ARM returns it: Microsoft.Web sites and serverfarms,
Microsoft.App managedEnvironments and containerApps (REST specs: specification/web,
specification/app). The ``identity`` block is a VM's (:func:`shapes.vm_identity`), except
that Microsoft.App spells the combined type ``SystemAssigned,UserAssigned``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.arm.shapes import AttachedIdentity, vm_identity
from components.identity_type import BOTH, BOTH_COMPACT

JSON = dict[str, Any]
WEB_DOMAIN = "azurewebsites.net"


def _name(arm_id: str) -> str:
    return arm_id.rstrip("/").rsplit("/", 1)[-1]


def identity(
    *,
    system_principal_id: str | None,
    tenant_id: str,
    user_assigned: Mapping[str, AttachedIdentity],
    compact: bool = False,
) -> JSON | None:
    """A host's ``identity`` block (None without any); ``compact``: Microsoft.App's type."""
    block = vm_identity(
        system_principal_id=system_principal_id, tenant_id=tenant_id, user_assigned=user_assigned
    )
    if block is not None and compact and block["type"] == BOTH:
        block["type"] = BOTH_COMPACT
    return block


def server_farm(
    *,
    arm_id: str,
    location: str,
    kind: str,
    reserved: bool,
    sku: Mapping[str, Any] | None,
    tags: Mapping[str, str] | None,
) -> JSON:
    return {
        "id": arm_id,
        "name": _name(arm_id),
        "type": "Microsoft.Web/serverfarms",
        "kind": kind,
        "location": location,
        "tags": dict(tags or {}),
        "sku": dict(sku or {"name": "B1", "tier": "Basic", "size": "B1", "capacity": 1}),
        "properties": {"reserved": reserved, "status": "Ready", "numberOfSites": 0},
    }


def site(
    *,
    arm_id: str,
    location: str,
    kind: str,
    identity_block: JSON | None,
    server_farm_id: str,
    https_only: bool,
    key_vault_reference_identity: str,
    public_network_access: str | None,
    site_config: Mapping[str, Any],
    tags: Mapping[str, str] | None,
) -> JSON:
    """``GET .../sites/{name}``: app settings are not in it (they are read with
    ``POST .../config/appsettings/list``), so ``siteConfig.appSettings`` is null."""
    name = _name(arm_id)
    host = f"{name}.{WEB_DOMAIN}".lower()
    doc: JSON = {
        "id": arm_id,
        "name": name,
        "type": "Microsoft.Web/sites",
        "kind": kind,
        "location": location,
        "tags": dict(tags or {}),
        "properties": {
            "state": "Running",
            "hostNames": [host],
            "enabledHostNames": [host, f"{name}.scm.{WEB_DOMAIN}".lower()],
            "defaultHostName": host,
            "serverFarmId": server_farm_id,
            "reserved": True,
            "httpsOnly": https_only,
            "keyVaultReferenceIdentity": key_vault_reference_identity,
            "publicNetworkAccess": public_network_access,
            "siteConfig": {**{k: v for k, v in site_config.items()}, "appSettings": None},
        },
    }
    if identity_block is not None:
        doc["identity"] = identity_block
    return doc


def publishing_policy(*, arm_id: str, allow: bool) -> JSON:
    """``.../sites/{name}/basicPublishingCredentialsPolicies/{ftp|scm}``."""
    return {
        "id": arm_id,
        "name": _name(arm_id),
        "type": "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
        "properties": {"allow": allow},
    }


def config_reference(
    *,
    site_id: str,
    setting: str,
    reference: str,
    status: str,
    identity_type: str,
    user_assigned_id: str | None,
    vault_name: str | None,
    secret_name: str | None,
    secret_version: str | None,
    details: str,
) -> JSON:
    """One entry of ``.../config/configreferences/appsettings`` (``ApiKVReference``)."""
    return {
        "id": f"{site_id}/config/configreferences/appsettings/{setting}",
        "name": setting,
        "type": "Microsoft.Web/sites/config/configreferences",
        "properties": {
            "reference": reference,
            "status": status,
            "vaultName": vault_name,
            "secretName": secret_name,
            "secretVersion": secret_version,
            "identityType": {
                "type": identity_type,
                **({"userAssignedIdentities": {user_assigned_id: {}}} if user_assigned_id else {}),
            },
            "details": details,
            "source": "KeyVault",
            "activeVersion": secret_version,
        },
    }


def managed_environment(
    *, arm_id: str, location: str, default_domain: str, tags: Mapping[str, str] | None
) -> JSON:
    return {
        "id": arm_id,
        "name": _name(arm_id),
        "type": "Microsoft.App/managedEnvironments",
        "location": location,
        "tags": dict(tags or {}),
        "properties": {
            "provisioningState": "Succeeded",
            "defaultDomain": default_domain,
            "staticIp": "10.0.0.10",
        },
    }


def container_app(
    *,
    arm_id: str,
    location: str,
    identity_block: JSON | None,
    environment_id: str,
    default_domain: str,
    configuration: Mapping[str, Any],
    template: Mapping[str, Any],
    latest_revision: str,
    tags: Mapping[str, str] | None,
) -> JSON:
    """``GET .../containerApps/{name}``: ``latestRevisionFqdn`` (and ``ingress.fqdn``) only
    with ingress; an internal ingress gets ``<name>.internal.<default domain>``."""
    name = _name(arm_id)
    ingress = configuration.get("ingress")
    fqdn = revision_fqdn = ""
    config: JSON = dict(configuration)
    if ingress:
        internal = "" if ingress.get("external") else "internal."
        fqdn = f"{name}.{internal}{default_domain}"
        revision_fqdn = f"{name}--{latest_revision}.{internal}{default_domain}"
        config["ingress"] = {**ingress, "fqdn": fqdn}
    secrets: Sequence[Mapping[str, Any]] = configuration.get("secrets") or []
    # GET never returns secret values; Key Vault references keep their URL and identity.
    config["secrets"] = [{k: v for k, v in s.items() if k != "value"} for s in secrets] or None
    doc: JSON = {
        "id": arm_id,
        "name": name,
        "type": "Microsoft.App/containerApps",
        "location": location,
        "tags": dict(tags or {}),
        "properties": {
            "provisioningState": "Succeeded",
            "runningStatus": "Running",
            "managedEnvironmentId": environment_id,
            "environmentId": environment_id,
            "latestRevisionName": f"{name}--{latest_revision}",
            "latestReadyRevisionName": f"{name}--{latest_revision}",
            "latestRevisionFqdn": revision_fqdn,
            "configuration": config,
            "template": dict(template),
        },
    }
    if identity_block is not None:
        doc["identity"] = identity_block
    return doc
