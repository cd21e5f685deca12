"""Network: the private network the VMs need, closed to inbound traffic by default.

A VM reached only through Run Command (and the Azure fabric) needs no open port, so the
subnet's NSG denies all inbound traffic explicitly, including from inside the VNet,
which the default ``AllowVnetInBound`` rule would otherwise permit.

Outbound is explicit too: Azure retires "default outbound access" for new subnets, yet
cloud-init must reach PyPI and the probe must reach Key Vault. A NAT gateway gives the
subnet outbound-only connectivity (its public IP accepts no inbound connections), so no
VM ever carries a public IP.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from components.errors import ConfigError

DENY_ALL_INBOUND: Mapping[str, Any] = {
    "name": "deny-all-inbound",
    "priority": 4096,
    "direction": "Inbound",
    "access": "Deny",
    "protocol": "*",
    "source_address_prefix": "*",
    "source_port_range": "*",
    "destination_address_prefix": "*",
    "destination_port_range": "*",
    "description": "Nothing may connect in; operate the VMs through Run Command.",
}


@dataclass(frozen=True)
class InboundRule:
    """An explicit exception to deny-all (e.g. SSH from one admin range)."""

    name: str
    priority: int
    source_address_prefix: str
    destination_port_range: str
    protocol: str = "Tcp"


@dataclass(frozen=True)
class NetworkArgs:
    name: str
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str] | None = None
    address_space: str = "10.42.0.0/16"
    subnet_prefix: str = "10.42.1.0/24"
    allow_inbound: Sequence[InboundRule] = ()
    nat_gateway: bool = True
    """Outbound through a NAT gateway; False leaves the subnet without internet egress."""
    tags: Mapping[str, str] = field(default_factory=dict)


def _network(value: str, field_name: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ConfigError(
            field_name, value, f"is not a CIDR block ({exc})", "use e.g. 10.42.0.0/16"
        ) from exc


def check_address_plan(
    address_space: str,
    subnet_prefix: str,
    space_field: str = "address_space",
    subnet_field: str = "subnet_prefix",
) -> None:
    """CIDR blocks that parse, a subnet inside the space, and big enough for Azure."""
    space = _network(address_space, space_field)
    subnet = _network(subnet_prefix, subnet_field)
    if not subnet.subnet_of(space):  # type: ignore[arg-type]
        raise ConfigError(
            subnet_field,
            subnet_prefix,
            f"is not inside {space_field} {address_space}",
            "pick a subnet inside the address space, e.g. 10.42.1.0/24 in 10.42.0.0/16",
        )
    if subnet.prefixlen > 29:
        raise ConfigError(
            subnet_field,
            subnet_prefix,
            "is too small (Azure reserves 5 addresses per subnet)",
            "use /29 or larger",
        )


def _check(args: NetworkArgs) -> None:
    check_address_plan(args.address_space, args.subnet_prefix)
    for rule in args.allow_inbound:
        if not 100 <= rule.priority < 4096:
            raise ConfigError(
                f"allow_inbound[{rule.name}].priority",
                rule.priority,
                "must be in 100-4095 to come before deny-all-inbound (4096)",
                "pick a lower number",
            )


class Network(pulumi.ComponentResource):
    """VNet + one subnet + an NSG on that subnet that denies all inbound traffic.

    Outputs: ``vnet_id``, ``subnet_id``, ``nsg_id``.
    """

    def __init__(
        self, resource_name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        _check(args)
        super().__init__("mikit:network:Network", resource_name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags) or None
        rules = [
            azure_native.network.SecurityRuleArgs(
                name=r.name,
                priority=r.priority,
                direction="Inbound",
                access="Allow",
                protocol=r.protocol,
                source_address_prefix=r.source_address_prefix,
                source_port_range="*",
                destination_address_prefix="*",
                destination_port_range=r.destination_port_range,
            )
            for r in args.allow_inbound
        ]
        rules.append(azure_native.network.SecurityRuleArgs(**DENY_ALL_INBOUND))
        nsg = azure_native.network.NetworkSecurityGroup(
            f"{resource_name}-nsg",
            network_security_group_name=f"{args.name}-nsg",
            resource_group_name=args.resource_group_name,
            location=args.location,
            security_rules=rules,
            tags=tags,
            opts=child,
        )
        vnet = azure_native.network.VirtualNetwork(
            f"{resource_name}-vnet",
            virtual_network_name=f"{args.name}-vnet",
            resource_group_name=args.resource_group_name,
            location=args.location,
            address_space=azure_native.network.AddressSpaceArgs(
                address_prefixes=[args.address_space]
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["subnets"]),
        )
        nat = self._nat_gateway(resource_name, args, tags) if args.nat_gateway else None
        subnet = azure_native.network.Subnet(
            f"{resource_name}-subnet",
            subnet_name="workloads",
            virtual_network_name=vnet.name,
            resource_group_name=args.resource_group_name,
            address_prefix=args.subnet_prefix,
            network_security_group=azure_native.network.NetworkSecurityGroupArgs(id=nsg.id),
            nat_gateway=azure_native.network.SubResourceArgs(id=nat.id) if nat else None,
            default_outbound_access=False,
            opts=child,
        )
        self.vnet_id: pulumi.Output[str] = vnet.id
        self.subnet_id: pulumi.Output[str] = subnet.id
        self.nsg_id: pulumi.Output[str] = nsg.id
        self.nat_gateway_id: pulumi.Output[str] | None = nat.id if nat else None
        self.register_outputs(
            {"vnet_id": self.vnet_id, "subnet_id": self.subnet_id, "nsg_id": self.nsg_id}
        )

    def _nat_gateway(
        self, resource_name: str, args: NetworkArgs, tags: dict[str, str] | None
    ) -> azure_native.network.NatGateway:
        child = pulumi.ResourceOptions(parent=self)
        egress_ip = azure_native.network.PublicIPAddress(
            f"{resource_name}-egress-ip",
            public_ip_address_name=f"{args.name}-egress-ip",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=azure_native.network.PublicIPAddressSkuArgs(name="Standard"),
            public_ip_allocation_method="Static",
            tags=tags,
            opts=child,
        )
        return azure_native.network.NatGateway(
            f"{resource_name}-nat",
            nat_gateway_name=f"{args.name}-nat",
            resource_group_name=args.resource_group_name,
            location=args.location,
            sku=azure_native.network.NatGatewaySkuArgs(name="Standard"),
            public_ip_addresses=[azure_native.network.SubResourceArgs(id=egress_ip.id)],
            tags=tags,
            opts=child,
        )
