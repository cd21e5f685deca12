"""The benchmark's baseline: the same topology declared directly with pulumi-azure-native.

Same custom resources, same logical names, same inputs (so the mocks and the backend do
identical work), and plain exports of the same IDs. What it leaves out is exactly what the
components add: typed validation of the whole config before anything is registered, the
ComponentResource layer (``parent=self``, ``register_outputs``), role resolution with the
privileged-role guard and deterministic names computed from resolved outputs, and the
derived access matrix. Run it with ``run_program(program, config, mocks=...)``.
"""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from components.cloud_init import probe_cloud_config
from components.vm_sizes import DEFAULT_VM_SIZE

# The same constants the components use, copied, because a hand-written program would
# carry them itself (a raw program has no role catalog: it hard-codes GUIDs).
ROLE_GUIDS = {
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Key Vault Reader": "21090545-7ca7-4776-b22c-e363652d74d2",
}
ASSIGNMENT_NAMESPACE = uuid.UUID("6f1d3c2a-7b8e-5d4f-9a0b-1c2d3e4f5a6b")
# The very cloud-config text the VM component sends (identical inputs for both programs);
# a hand-written program would paste it in.
CLOUD_CONFIG = probe_cloud_config()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _assignment_name(scope: str, principal: str, role_guid: str) -> str:
    key = "|".join(p.strip().rstrip("/").lower() for p in (scope, principal, role_guid))
    return str(uuid.uuid5(ASSIGNMENT_NAMESPACE, key))


class _Group(pulumi.ComponentResource):
    """A bare component: only the Pulumi component pattern, none of our components' work."""

    def __init__(self, name: str) -> None:
        super().__init__("bench:raw:Group", name, None, None)


def program_parented() -> None:
    """:func:`program` with each resource group parented like the components parent theirs.

    The difference to :func:`program` is the cost of Pulumi's component pattern itself
    (a component registration, ``parent=`` on each child, ``register_outputs``); the
    difference to the real components is what our components add on top.
    """
    program(parented=True)


def program(parented: bool = False) -> None:
    """Read the ``mikit`` config like ``__main__.py`` does, declare everything flat."""
    groups: list[_Group] = []

    def under(name: str, **options: Any) -> pulumi.ResourceOptions:
        if parented:
            if not groups or groups[-1]._name != name:
                groups.append(_Group(name))
            options["parent"] = groups[-1]
        return pulumi.ResourceOptions(**options)

    config = pulumi.Config("mikit")
    location = config.require("location")
    rg_name_in = config.require("resourceGroup")
    ssh_key = config.require("sshPublicKey")
    admin = config.get("adminUsername") or "azureuser"
    size = config.get("vmSize") or DEFAULT_VM_SIZE
    net: dict[str, Any] = config.get_object("network") or {}
    vault_cfg: dict[str, Any] = config.require_object("vault")
    secret_names: list[str] = config.get_object("secrets") or []
    identities_cfg: dict[str, Any] = config.get_object("identities") or {}
    vms_cfg: dict[str, Any] = config.get_object("vms") or {}
    grants_cfg: list[dict[str, str]] = config.get_object("grants") or []
    tags = {"managed-by": "managed-identity-kit", **(config.get_object("tags") or {})}

    client = azure_native.authorization.get_client_config_output()
    rg = azure_native.resources.ResourceGroup(
        "rg", resource_group_name=rg_name_in, location=location, tags=tags
    )
    nsg = azure_native.network.NetworkSecurityGroup(
        "network-nsg",
        network_security_group_name=f"{rg_name_in}-nsg",
        resource_group_name=rg.name,
        location=location,
        security_rules=[
            azure_native.network.SecurityRuleArgs(
                name="deny-all-inbound",
                priority=4096,
                direction="Inbound",
                access="Deny",
                protocol="*",
                source_address_prefix="*",
                source_port_range="*",
                destination_address_prefix="*",
                destination_port_range="*",
            )
        ],
        tags=tags,
        opts=under("network"),
    )
    vnet = azure_native.network.VirtualNetwork(
        "network-vnet",
        virtual_network_name=f"{rg_name_in}-vnet",
        resource_group_name=rg.name,
        location=location,
        address_space=azure_native.network.AddressSpaceArgs(
            address_prefixes=[net.get("addressSpace", "10.42.0.0/16")]
        ),
        tags=tags,
        opts=under("network", ignore_changes=["subnets"]),
    )
    egress_ip = azure_native.network.PublicIPAddress(
        "network-egress-ip",
        public_ip_address_name=f"{rg_name_in}-egress-ip",
        resource_group_name=rg.name,
        location=location,
        sku=azure_native.network.PublicIPAddressSkuArgs(name="Standard"),
        public_ip_allocation_method="Static",
        tags=tags,
        opts=under("network"),
    )
    nat = azure_native.network.NatGateway(
        "network-nat",
        nat_gateway_name=f"{rg_name_in}-nat",
        resource_group_name=rg.name,
        location=location,
        sku=azure_native.network.NatGatewaySkuArgs(name="Standard"),
        public_ip_addresses=[azure_native.network.SubResourceArgs(id=egress_ip.id)],
        tags=tags,
        opts=under("network"),
    )
    subnet = azure_native.network.Subnet(
        "network-subnet",
        subnet_name="workloads",
        virtual_network_name=vnet.name,
        resource_group_name=rg.name,
        address_prefix=net.get("subnetPrefix", "10.42.1.0/24"),
        network_security_group=azure_native.network.NetworkSecurityGroupArgs(id=nsg.id),
        nat_gateway=azure_native.network.SubResourceArgs(id=nat.id),
        default_outbound_access=False,
        opts=under("network"),
    )
    vault = azure_native.keyvault.Vault(
        "vault",
        vault_name=vault_cfg["name"],
        resource_group_name=rg.name,
        location=location,
        properties=azure_native.keyvault.VaultPropertiesArgs(
            tenant_id=client.tenant_id,
            sku=azure_native.keyvault.SkuArgs(family="A", name="standard"),
            enable_rbac_authorization=True,
            access_policies=[],
            enable_soft_delete=True,
            soft_delete_retention_in_days=vault_cfg.get("softDeleteRetentionDays", 90),
            public_network_access="Enabled",
            network_acls=azure_native.keyvault.NetworkRuleSetArgs(
                bypass="AzureServices", default_action="Allow"
            ),
        ),
        tags=tags,
        opts=under("vault"),
    )
    secrets = {
        name: azure_native.keyvault.Secret(
            f"vault-{name}",
            secret_name=name,
            vault_name=vault.name,
            resource_group_name=rg.name,
            properties=azure_native.keyvault.SecretPropertiesArgs(
                value=config.require_secret(f"secret-{name}")
            ),
            opts=under("vault", additional_secret_outputs=["properties"]),
        )
        for name in secret_names
    }
    identities = {
        key: azure_native.managedidentity.UserAssignedIdentity(
            f"identity-{key}",
            resource_name_=ident["name"],
            resource_group_name=rg.name,
            location=location,
            tags=tags,
            opts=under(f"identity-{key}"),
        )
        for key, ident in identities_cfg.items()
    }
    custom_data = base64.b64encode(CLOUD_CONFIG.encode()).decode()
    vms: dict[str, azure_native.compute.VirtualMachine] = {}
    for key, vm in vms_cfg.items():
        nic = azure_native.network.NetworkInterface(
            f"vm-{key}-nic",
            network_interface_name=f"{vm['name']}-nic",
            resource_group_name=rg.name,
            location=location,
            ip_configurations=[
                azure_native.network.NetworkInterfaceIPConfigurationArgs(
                    name="ipconfig1",
                    subnet=azure_native.network.SubnetArgs(id=subnet.id),
                    private_ip_allocation_method="Dynamic",
                    primary=True,
                )
            ],
            tags=tags,
            opts=under(f"vm-{key}"),
        )
        uais = [identities[k].id for k in vm.get("userAssigned") or []]
        system = bool(vm.get("systemIdentity"))
        identity_type = ", ".join(
            ([] if not system else ["SystemAssigned"]) + (["UserAssigned"] if uais else [])
        )
        vms[key] = azure_native.compute.VirtualMachine(
            f"vm-{key}",
            vm_name=vm["name"],
            resource_group_name=rg.name,
            location=location,
            identity=azure_native.compute.VirtualMachineIdentityArgs(
                type=identity_type or "None", user_assigned_identities=uais or None
            ),
            hardware_profile=azure_native.compute.HardwareProfileArgs(vm_size=size),
            os_profile=azure_native.compute.OSProfileArgs(
                computer_name=vm["name"],
                admin_username=admin,
                custom_data=custom_data,
                linux_configuration=azure_native.compute.LinuxConfigurationArgs(
                    disable_password_authentication=True,
                    provision_vm_agent=True,
                    ssh=azure_native.compute.SshConfigurationArgs(
                        public_keys=[
                            azure_native.compute.SshPublicKeyArgs(
                                path=f"/home/{admin}/.ssh/authorized_keys", key_data=ssh_key
                            )
                        ]
                    ),
                ),
            ),
            storage_profile=azure_native.compute.StorageProfileArgs(
                image_reference=azure_native.compute.ImageReferenceArgs(
                    publisher="Canonical",
                    offer="ubuntu-24_04-lts",
                    sku="server",
                    version="latest",
                ),
                os_disk=azure_native.compute.OSDiskArgs(
                    create_option="FromImage",
                    delete_option="Delete",
                    managed_disk=azure_native.compute.ManagedDiskParametersArgs(
                        storage_account_type="StandardSSD_LRS"
                    ),
                ),
            ),
            network_profile=azure_native.compute.NetworkProfileArgs(
                network_interfaces=[
                    azure_native.compute.NetworkInterfaceReferenceArgs(
                        id=nic.id, primary=True, delete_option="Delete"
                    )
                ]
            ),
            tags=tags,
            opts=under(f"vm-{key}"),
        )
    assignments = []
    for grant in grants_cfg:
        kind, key = grant["principal"].split(":", 1)
        principal = (
            vms[key].identity.apply(lambda i: i.principal_id if i else "")
            if kind == "vm"
            else identities[key].principal_id
        )
        target = grant["target"]
        # A secret-scoped grant takes its scope from the secret resource, so it waits for
        # the secret to exist: ARM refuses a role assignment on a scope that does not (yet).
        scope = vault.id if target == "vault" else secrets[target.removeprefix("secret:")].id
        guid = ROLE_GUIDS[grant["role"]]
        holder = f"vm-{key}" if kind == "vm" else f"identity-{key}"
        assignments.append(
            (
                grant["principal"],
                azure_native.authorization.RoleAssignment(
                    f"{holder}-{_slug(grant['role'])}-{_slug(target)}",
                    role_assignment_name=pulumi.Output.all(scope, principal).apply(
                        lambda sp, g=guid: _assignment_name(sp[0], sp[1], g)
                    ),
                    scope=scope,
                    principal_id=principal,
                    principal_type="ServicePrincipal",
                    role_definition_id=client.subscription_id.apply(
                        lambda s, g=guid: (
                            f"/subscriptions/{s}/providers/Microsoft.Authorization/"
                            f"roleDefinitions/{g}"
                        )
                    ),
                    description=f"{grant['principal']} -> {target} (managed-identity-kit)",
                    opts=under(
                        f"grant-{holder}-{_slug(grant['role'])}-{_slug(target)}",
                        delete_before_replace=True,
                        replace_on_changes=["scope", "principalId", "roleDefinitionId"],
                    ),
                ),
            )
        )
    for group in groups:
        group.register_outputs({})
    pulumi.export("vault", {"name": vault.name, "id": vault.id})
    pulumi.export("secrets", {name: s.id for name, s in secrets.items()})
    pulumi.export(
        "identities",
        {
            key: {"id": i.id, "client_id": i.client_id, "principal_id": i.principal_id}
            for key, i in identities.items()
        },
    )
    pulumi.export(
        "vms",
        {
            key: {
                "id": v.id,
                "principal_id": v.identity.apply(lambda i: i.principal_id if i else None),
            }
            for key, v in vms.items()
        },
    )
    pulumi.export(
        "grants",
        [{"principal": p, "id": a.id, "scope": a.scope} for p, a in assignments],
    )
