"""Networks in the in-memory ARM: virtual networks, subnets, security groups and NICs.

A mixin of :class:`components.arm.memory.InMemoryArm` (one concept per file). These types
have no behaviour the toolkit depends on beyond their documents; a NIC takes the next
private address of its subnet, as ARM's dynamic allocation does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from components.arm import network_shapes
from components.arm.store import ArmStore
from components.arm.tokens import (
    PULUMI_NETWORK_INTERFACE,
    PULUMI_NETWORK_SECURITY_GROUP,
    PULUMI_SUBNET,
    PULUMI_VIRTUAL_NETWORK,
)

JSON = dict[str, Any]


class NetworkArm:
    """Handlers for the network tokens; the host provides ``get``, ``_location``,
    ``_new_guid`` and ``store``."""

    _new_guid: Callable[[], str]

    @property
    def store(self) -> ArmStore:  # provided by InMemoryArm
        raise NotImplementedError

    def get(self, arm_id: str) -> JSON | None:  # provided by InMemoryArm
        raise NotImplementedError

    def _location(self, inputs: JSON) -> str:  # provided by InMemoryArm
        raise NotImplementedError

    def network_handlers(self) -> dict[str, Callable[[str, JSON], JSON]]:
        return {
            PULUMI_VIRTUAL_NETWORK: self._virtual_network,
            PULUMI_SUBNET: self._subnet,
            PULUMI_NETWORK_SECURITY_GROUP: self._nsg,
            PULUMI_NETWORK_INTERFACE: self._nic,
        }

    def _virtual_network(self, arm_id: str, inputs: JSON) -> JSON:
        space = inputs.get("addressSpace") or {}
        return network_shapes.virtual_network(
            arm_id=arm_id,
            location=self._location(inputs),
            address_prefixes=space.get("addressPrefixes") or [],
            resource_guid=self._new_guid(),
            tags=inputs.get("tags"),
        )

    def _subnet(self, arm_id: str, inputs: JSON) -> JSON:
        nsg = inputs.get("networkSecurityGroup") or {}
        return network_shapes.subnet(
            arm_id=arm_id,
            address_prefix=inputs.get("addressPrefix", ""),
            network_security_group_id=nsg.get("id"),
        )

    def _nsg(self, arm_id: str, inputs: JSON) -> JSON:
        return network_shapes.network_security_group(
            arm_id=arm_id,
            location=self._location(inputs),
            resource_guid=self._new_guid(),
            security_rules=inputs.get("securityRules") or [],
            tags=inputs.get("tags"),
        )

    def _nic(self, arm_id: str, inputs: JSON) -> JSON:
        configs = inputs.get("ipConfigurations") or [{}]
        first = configs[0]
        subnet_id = (first.get("subnet") or {}).get("id", "")
        subnet_doc = self.get(subnet_id) if subnet_id else None
        prefix = subnet_doc["properties"]["addressPrefix"] if subnet_doc else "10.0.0.0/24"
        address = str(ipaddress.ip_network(prefix, strict=False)[self.store.next_ip])
        self.store.next_ip += 1
        nsg = inputs.get("networkSecurityGroup") or {}
        return network_shapes.network_interface(
            arm_id=arm_id,
            location=self._location(inputs),
            subnet_id=subnet_id,
            resource_guid=self._new_guid(),
            private_ip_address=address,
            public_ip_address_id=(first.get("publicIPAddress") or {}).get("id"),
            network_security_group_id=nsg.get("id"),
            tags=inputs.get("tags"),
        )
