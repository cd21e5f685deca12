"""LinuxScaleSet: identical Linux instances that share one set of managed identities.

The textbook case for a user-assigned identity: every instance of the set needs the same
vault and storage account, and instances come and go. The ``identity`` block is the VM's
(:class:`ManagedIdentities`, type computed); a system identity is *one* principal for the
whole set, so one role assignment covers every instance, present and future. Secure
defaults as on :class:`~components.vm.LinuxVirtualMachine`: SSH key only, no public IP
(instances sit in a subnet whose NSG denies inbound), cloud-init that prepares the probe's
venv.

Orchestration is ``Uniform``: instances are the set's own ``virtualMachines`` children and
take their identities from the set's model, which is what "one principal for the set"
describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from components import validation
from components.cloud_init import as_custom_data, probe_cloud_config
from components.errors import ConfigError
from components.grants import Grantable, system_identity_principal
from components.identity import ManagedIdentities
from components.vm import UBUNTU_2404, ssh_key_only, warn_previous_generation
from components.vm_sizes import DEFAULT_VM_SIZE

#: A set in one placement group (the default, ``singlePlacementGroup: true``) holds at
#: most 100 instances (Azure scale set limits).
MAX_INSTANCES = 100
#: Linux computer names are the prefix plus a 6-character instance suffix (max 64).
MAX_COMPUTER_NAME_PREFIX = 58


def instance_count(value: object, field: str = "instances") -> int:
    """0-100 instances (0 is a set scaled in to nothing, which Azure allows)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INSTANCES:
        raise ConfigError(
            field,
            value,
            f"is not a whole number of instances from 0 to {MAX_INSTANCES}",
            f"use 0-{MAX_INSTANCES} (a set in one placement group holds at most {MAX_INSTANCES})",
        )
    return value


@dataclass(frozen=True)
class LinuxScaleSetArgs:
    name: str
    resource_group_name: pulumi.Input[str]
    subnet_id: pulumi.Input[str]
    admin_username: str
    ssh_public_key: str
    instances: int = 2
    identities: ManagedIdentities = field(default_factory=ManagedIdentities)
    location: pulumi.Input[str] | None = None
    size: str = DEFAULT_VM_SIZE
    image: Mapping[str, str] = field(default_factory=lambda: dict(UBUNTU_2404))
    custom_data: str | None = None
    """A cloud-config to use instead of the probe venv one (plain text, not base64)."""
    tags: Mapping[str, str] = field(default_factory=dict)


class LinuxScaleSet(pulumi.ComponentResource, Grantable):
    """A Linux VM scale set with a system identity on/off and any number of user-assigned.

    Outputs: ``id``, ``name``, ``principal_id`` (the set's system identity; None when
    off), ``identity`` (azure-native's identity output with the user-assigned map),
    ``instances``. ``grant(role, scope)`` grants the set's *system* identity, i.e. every
    instance.
    """

    def __init__(
        self,
        resource_name: str,
        args: LinuxScaleSetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        validation.vm_name(args.name, "name")
        validation.admin_username(args.admin_username, "admin_username")
        ssh_key = validation.ssh_public_key(args.ssh_public_key, "ssh_public_key")
        size = validation.vm_size(args.size, "size")
        instances = instance_count(args.instances)
        super().__init__("mikit:compute:LinuxScaleSet", resource_name, None, opts)
        warn_previous_generation(size, self)
        self._grant_name = resource_name
        self.identities = args.identities
        compute = azure_native.compute
        prefix = args.name[:MAX_COMPUTER_NAME_PREFIX].rstrip("-")
        vmss = compute.VirtualMachineScaleSet(
            resource_name,
            vm_scale_set_name=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            identity=args.identities.scale_set_identity_args(),
            orchestration_mode="Uniform",
            sku=compute.SkuArgs(name=size, tier="Standard", capacity=instances),
            upgrade_policy=compute.UpgradePolicyArgs(mode=compute.UpgradeMode.MANUAL),
            overprovision=False,
            virtual_machine_profile=compute.VirtualMachineScaleSetVMProfileArgs(
                os_profile=compute.VirtualMachineScaleSetOSProfileArgs(
                    computer_name_prefix=prefix,
                    admin_username=args.admin_username,
                    custom_data=as_custom_data(args.custom_data or probe_cloud_config()),
                    linux_configuration=ssh_key_only(args.admin_username, ssh_key),
                ),
                storage_profile=compute.VirtualMachineScaleSetStorageProfileArgs(
                    image_reference=compute.ImageReferenceArgs(**args.image),
                    os_disk=compute.VirtualMachineScaleSetOSDiskArgs(
                        create_option="FromImage",
                        managed_disk=compute.VirtualMachineScaleSetManagedDiskParametersArgs(
                            storage_account_type="StandardSSD_LRS"
                        ),
                    ),
                ),
                network_profile=compute.VirtualMachineScaleSetNetworkProfileArgs(
                    network_interface_configurations=[
                        compute.VirtualMachineScaleSetNetworkConfigurationArgs(
                            name=f"{args.name}-nic",
                            primary=True,
                            # No public_ip_address_configuration: instances get none.
                            ip_configurations=[
                                compute.VirtualMachineScaleSetIPConfigurationArgs(
                                    name="ipconfig1",
                                    primary=True,
                                    subnet=compute.ApiEntityReferenceArgs(id=args.subnet_id),
                                )
                            ],
                        )
                    ]
                ),
            ),
            tags=dict(args.tags) or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id: pulumi.Output[str] = vmss.id
        self.name: pulumi.Output[str] = vmss.name
        self.identity: pulumi.Output[Any] = vmss.identity
        self.principal_id: pulumi.Output[str | None] = vmss.identity.apply(
            lambda i: (i.principal_id if i else None) if args.identities.system_assigned else None
        )
        self.instances: pulumi.Output[int] = vmss.sku.apply(
            lambda sku: int(sku.capacity or 0) if sku else 0
        )
        self.register_outputs(
            {
                "id": self.id,
                "name": self.name,
                "principal_id": self.principal_id,
                "instances": self.instances,
            }
        )

    def _grant_principal(self) -> pulumi.Output[str]:
        return system_identity_principal(
            self.identities, self.principal_id, self._grant_name, "scale set"
        )
