"""ARM's JSON for networks: virtual networks, subnets, security groups and NICs.

The network half of :mod:`components.arm.shapes` (its own module so each stays one concept):
the documents the in-memory ARM answers for ``azure-native:network:*``
(:mod:`components.arm.memory_network`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.arm.shapes import (
    NETWORK_INTERFACE,
    NETWORK_SECURITY_GROUP,
    SUBNET,
    VIRTUAL_NETWORK,
    tracked,
)

JSON = dict[str, Any]


def _name(arm_id: str) -> str:
    return arm_id.rstrip("/").rsplit("/", 1)[-1]


def virtual_network(
    *,
    arm_id: str,
    location: str,
    address_prefixes: Sequence[str],
    resource_guid: str,
    tags: Mapping[str, str] | None = None,
) -> JSON:
    doc = tracked(arm_id, VIRTUAL_NETWORK, location, tags)
    doc["properties"] = {
        "provisioningState": "Succeeded",
        "resourceGuid": resource_guid,
        "addressSpace": {"addressPrefixes": list(address_prefixes)},
        "subnets": [],
        "virtualNetworkPeerings": [],
        "enableDdosProtection": False,
    }
    return doc


def subnet(
    *, arm_id: str, address_prefix: str, network_security_group_id: str | None = None
) -> JSON:
    props: JSON = {
        "provisioningState": "Succeeded",
        "addressPrefix": address_prefix,
        "privateEndpointNetworkPolicies": "Disabled",
        "privateLinkServiceNetworkPolicies": "Enabled",
    }
    if network_security_group_id:
        props["networkSecurityGroup"] = {"id": network_security_group_id}
    return {"id": arm_id, "name": _name(arm_id), "type": SUBNET, "properties": props}


def security_rule(arm_id: str, rule: Mapping[str, Any]) -> JSON:
    """One NSG rule; ``rule`` holds the ARM properties (priority, direction, access...)."""
    return {
        "id": arm_id,
        "name": _name(arm_id),
        "type": f"{NETWORK_SECURITY_GROUP}/securityRules",
        "properties": {"provisioningState": "Succeeded", **dict(rule)},
    }


def network_security_group(
    *,
    arm_id: str,
    location: str,
    resource_guid: str,
    security_rules: Sequence[Mapping[str, Any]] = (),
    tags: Mapping[str, str] | None = None,
) -> JSON:
    """An NSG; each rule mapping carries ``name`` plus its ARM properties."""
    doc = tracked(arm_id, NETWORK_SECURITY_GROUP, location, tags)
    doc["properties"] = {
        "provisioningState": "Succeeded",
        "resourceGuid": resource_guid,
        "securityRules": [
            security_rule(
                f"{arm_id}/securityRules/{r['name']}",
                {k: v for k, v in r.items() if k != "name"},
            )
            for r in security_rules
        ],
    }
    return doc


def network_interface(
    *,
    arm_id: str,
    location: str,
    subnet_id: str,
    resource_guid: str,
    private_ip_address: str,
    public_ip_address_id: str | None = None,
    network_security_group_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> JSON:
    ip_props: JSON = {
        "provisioningState": "Succeeded",
        "privateIPAddress": private_ip_address,
        "privateIPAllocationMethod": "Dynamic",
        "subnet": {"id": subnet_id},
        "primary": True,
        "privateIPAddressVersion": "IPv4",
    }
    if public_ip_address_id:
        ip_props["publicIPAddress"] = {"id": public_ip_address_id}
    doc = tracked(arm_id, NETWORK_INTERFACE, location, tags)
    doc["properties"] = {
        "provisioningState": "Succeeded",
        "resourceGuid": resource_guid,
        "ipConfigurations": [
            {
                "id": f"{arm_id}/ipConfigurations/ipconfig1",
                "name": "ipconfig1",
                "type": f"{NETWORK_INTERFACE}/ipConfigurations",
                "properties": ip_props,
            }
        ],
        "enableAcceleratedNetworking": False,
        "enableIPForwarding": False,
        "nicType": "Standard",
    }
    if network_security_group_id:
        doc["properties"]["networkSecurityGroup"] = {"id": network_security_group_id}
    return doc
