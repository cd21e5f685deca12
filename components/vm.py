"""LinuxVirtualMachine: a VM whose only credentials are its managed identities.

SSH key only (password authentication off), no public IP (outbound goes through the
network's NAT gateway), a NIC in a subnet whose NSG denies inbound, and cloud-init that
prepares the probe's venv. Identities come from the same :class:`ManagedIdentities`
block every identity-bearing component takes; the ARM ``type`` is computed from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from components import validation
from components.cloud_init import as_custom_data, probe_cloud_config
from components.grants import Grantable, system_identity_principal
from components.identity import ManagedIdentities
from components.vm_sizes import DEFAULT_VM_SIZE

UBUNTU_2404: Mapping[str, str] = {
    "publisher": "Canonical",
    "offer": "ubuntu-24_04-lts",
    "sku": "server",
    "version": "latest",
}


def ssh_key_only(admin_username: str, ssh_key: str) -> azure_native.compute.LinuxConfigurationArgs:
    """Password authentication off, one SSH public key for ``admin_username``."""
    return azure_native.compute.LinuxConfigurationArgs(
        disable_password_authentication=True,
        provision_vm_agent=True,
        ssh=azure_native.compute.SshConfigurationArgs(
            public_keys=[
                azure_native.compute.SshPublicKeyArgs(
                    path=f"/home/{admin_username}/.ssh/authorized_keys",
                    key_data=ssh_key,
                )
            ]
        ),
    )


def warn_previous_generation(size: str, resource: pulumi.Resource) -> None:
    """Warn on ``resource`` when ``size`` is a previous-generation VM size."""
    if validation.is_previous_generation_vm_size(size):
        pulumi.log.warn(
            f"size {size!r} is a previous-generation VM size (B-series v1 retires on "
            f"2028-11-15); consider {DEFAULT_VM_SIZE!r}",
            resource,
        )


@dataclass(frozen=True)
class LinuxVirtualMachineArgs:
    name: str
    resource_group_name: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    admin_username: str
    ssh_public_key: str
    identities: ManagedIdentities = field(default_factory=ManagedIdentities)
    location: pulumi.Input[str] | None = None
    size: str = DEFAULT_VM_SIZE
    """From ``components/data/vm_sizes.json``; the default is a current burstable x64 size
    (2 vCPU, 4 GiB) that fits the probe's pip install."""
    image: Mapping[str, str] = field(default_factory=lambda: dict(UBUNTU_2404))
    custom_data: str | None = None
    """A cloud-config to use instead of the probe venv one (plain text, not base64)."""
    tags: Mapping[str, str] = field(default_factory=dict)


class LinuxVirtualMachine(pulumi.ComponentResource, Grantable):
    """A Linux VM with a system identity on/off and any number of user-assigned ones.

    Outputs: ``id``, ``name``, ``principal_id`` (the system identity; None when off),
    ``identity`` (azure-native's identity output with the user-assigned map),
    ``private_ip``. ``grant(role, scope)`` grants the *system* identity.
    """

    def __init__(
        self,
        resource_name: str,
        args: LinuxVirtualMachineArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        validation.vm_name(args.name, "name")
        validation.admin_username(args.admin_username, "admin_username")
        ssh_key = validation.ssh_public_key(args.ssh_public_key, "ssh_public_key")
        size = validation.vm_size(args.size, "size")
        super().__init__("mikit:compute:LinuxVirtualMachine", resource_name, None, opts)
        warn_previous_generation(size, self)
        self._grant_name = resource_name
        self.identities = args.identities
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags) or None
        nic = azure_native.network.NetworkInterface(
            f"{resource_name}-nic",
            network_interface_name=f"{args.name}-nic",
            resource_group_name=args.resource_group_name,
            location=args.location,
            ip_configurations=[
                azure_native.network.NetworkInterfaceIPConfigurationArgs(
                    name="ipconfig1",
                    subnet=azure_native.network.SubnetArgs(id=args.subnet_id),
                    private_ip_allocation_method="Dynamic",
                    primary=True,
                )
            ],
            tags=tags,
            opts=child,
        )
        cloud_config = args.custom_data or probe_cloud_config()
        vm = azure_native.compute.VirtualMachine(
            resource_name,
            vm_name=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            identity=args.identities.vm_identity_args(),
            hardware_profile=azure_native.compute.HardwareProfileArgs(vm_size=size),
            os_profile=azure_native.compute.OSProfileArgs(
                computer_name=args.name,
                admin_username=args.admin_username,
                custom_data=as_custom_data(cloud_config),
                linux_configuration=ssh_key_only(args.admin_username, ssh_key),
            ),
            storage_profile=azure_native.compute.StorageProfileArgs(
                image_reference=azure_native.compute.ImageReferenceArgs(**args.image),
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
            opts=child,
        )
        self.id: pulumi.Output[str] = vm.id
        self.name: pulumi.Output[str] = vm.name
        self.identity: pulumi.Output[Any] = vm.identity
        self.principal_id: pulumi.Output[str | None] = vm.identity.apply(
            lambda i: (i.principal_id if i else None) if args.identities.system_assigned else None
        )
        self.private_ip: pulumi.Output[str | None] = nic.ip_configurations.apply(
            lambda cfgs: cfgs[0].private_ip_address if cfgs else None
        )
        self.register_outputs(
            {
                "id": self.id,
                "name": self.name,
                "principal_id": self.principal_id,
                "private_ip": self.private_ip,
            }
        )

    def _grant_principal(self) -> pulumi.Output[str]:
        return system_identity_principal(self.identities, self.principal_id, self._grant_name, "VM")
