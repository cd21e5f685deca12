"""Control-plane actions through the real azure-mgmt-* clients, shared by both targets.

The sandbox serves an ARM slice on loopback precisely so this code runs unchanged there:
the same ``begin_delete``, ``begin_update``, ``create_or_update`` and
``list_for_scope(<resource group>, filter="principalId eq '...'")`` calls that real Azure
gets. Only how the clients are constructed (endpoint, credential, TLS trust) differs per
target. Whether a principal is gone is asked of the directory (Microsoft Graph, through
:class:`verify.targets.directory.DirectoryClient`), never inferred from ARM.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from azure.mgmt.compute.models import (
    Sku,
    UserAssignedIdentitiesValue,
    VirtualMachineIdentity,
    VirtualMachineScaleSetUpdate,
    VirtualMachineUpdate,
)
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity

from components.identity_type import identity_type, parse_identity_type
from verify.model import StackOutputs
from verify.targets.base import Assignment, FederationInfo, IdentityInfo, LockInfo
from verify.targets.directory import DirectoryClient

if TYPE_CHECKING:
    from collections.abc import Sequence

    from verify.targets.locks import ArmLocks

#: Long-running operations poll this often; ARM's own Retry-After wins when it sends one.
POLL_INTERVAL = 1.0
#: How long a read right after a grant may keep getting Key Vault's RBAC 403 on Azure:
#: Microsoft documents up to 10 minutes for a role assignment to take effect ("Troubleshoot
#: Azure RBAC": role assignment changes are not being detected; Key Vault "Azure RBAC
#: guide": up to 10 minutes (600 seconds) after role assignments change). Bounded, and
#: only cells expected allowed wait; ``--propagation-wait`` changes it.
AZURE_PROPAGATION_WAIT = 600.0


def _has_system_identity(vm: Any) -> bool:
    """Whether an azure-mgmt-compute ``VirtualMachine`` has its system identity on. The SDK
    hands ``identity.type`` over as a ``ResourceIdentityType`` member, whose ``str()`` is
    ``ResourceIdentityType.SYSTEM_ASSIGNED``: a substring test on it never matched, and a
    detach or attach dropped the VM's system identity."""
    return vm.identity is not None and parse_identity_type(vm.identity.type).system


def to_assignment(model: Any) -> Assignment:
    """azure-mgmt-authorization ``RoleAssignment`` -> our plain record."""
    return Assignment(
        id=model.id,
        name=model.name,
        principal_id=model.principal_id,
        principal_type=str(model.principal_type) if model.principal_type is not None else None,
        role_definition_id=model.role_definition_id,
        scope=model.scope,
    )


class ArmOperations:
    """Deletes, identity changes and role assignments for one deployed stack.

    Targets subclass it and add ``outputs()`` and ``probe()``; the names and resource
    group come from the outputs, which the lifecycle never renames.

    ``compute``, ``msi`` and ``authorization`` are ``ComputeManagementClient``,
    ``ManagedServiceIdentityClient`` and ``AuthorizationManagementClient`` (or fakes
    with the same method names in unit tests).
    """

    #: ``verify check``'s bound on waiting out RBAC propagation (runner.propagation_wait_for).
    default_propagation_wait: float = AZURE_PROPAGATION_WAIT

    def __init__(
        self,
        compute: Any,
        msi: Any,
        authorization: Any,
        *,
        polling_interval: float = POLL_INTERVAL,
        directory: DirectoryClient | None = None,
    ) -> None:
        self.compute = compute
        self.msi = msi
        self.authorization = authorization
        self.polling_interval = polling_interval
        #: Graph, to prove a principal gone before orphan cleanup; None: cleanup deletes
        #: nothing (verify.orphans rule 2).
        self.directory = directory

    def outputs(self) -> StackOutputs:
        """The deployed stack's outputs; each target says where they come from."""
        raise NotImplementedError

    def lock_api(self) -> ArmLocks:
        """The management-lock calls (ARM REST, :mod:`verify.targets.locks`) at this
        target's ARM endpoint; each target says which endpoint and credential."""
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------

    @property
    def _rg(self) -> str:
        return self.outputs().resource_group

    def _vm_name(self, vm: str) -> str:
        return self.outputs().vms[vm].name

    def _identity_name(self, identity: str) -> str:
        return self.outputs().identities[identity].name

    def _scale_set_name(self, scale_set: str) -> str:
        return self.outputs().scale_sets[scale_set].name

    # -- existence ---------------------------------------------------------------

    def vm_exists(self, vm: str) -> bool:
        try:
            self.compute.virtual_machines.get(self._rg, self._vm_name(vm))
        except ResourceNotFoundError:
            return False
        return True

    def identity_exists(self, identity: str) -> bool:
        try:
            self.msi.user_assigned_identities.get(self._rg, self._identity_name(identity))
        except ResourceNotFoundError:
            return False
        return True

    def live_principals(self) -> dict[str, str]:
        """Principal ID -> what holds it, for every identity that exists right now.

        Read from ARM, not from the outputs: this is the guard that keeps orphan cleanup
        away from live assignments, so it must reflect the present, not the deployment.
        User-assigned principals come from the identity itself (a VM may still reference
        an identity that was deleted).
        """
        outputs = self.outputs()
        live: dict[str, str] = {}
        for key, vm in outputs.vms.items():
            try:
                current = self.compute.virtual_machines.get(self._rg, vm.name)
            except ResourceNotFoundError:
                continue
            ident = current.identity
            if ident is not None and ident.principal_id:
                live[ident.principal_id.lower()] = f"vm:{key} (system)"
        for key, identity in outputs.identities.items():
            try:
                current = self.msi.user_assigned_identities.get(self._rg, identity.name)
            except ResourceNotFoundError:
                continue
            if current.principal_id:
                live[current.principal_id.lower()] = f"identity:{key}"
        for key, scale_set in outputs.scale_sets.items():
            try:
                found = self.compute.virtual_machine_scale_sets.get(self._rg, scale_set.name)
            except ResourceNotFoundError:
                continue
            ident = found.identity
            if ident is not None and ident.principal_id:
                live[ident.principal_id.lower()] = f"scaleset:{key} (system)"
        return live

    # -- scale sets ------------------------------------------------------------------

    def scale_set_exists(self, scale_set: str) -> bool:
        try:
            self.compute.virtual_machine_scale_sets.get(self._rg, self._scale_set_name(scale_set))
        except ResourceNotFoundError:
            return False
        return True

    def scale_set_instances(self, scale_set: str) -> list[str]:
        """Instance IDs (``virtual_machine_scale_set_vms.list``), numeric ones in order."""
        found = [
            str(vm.instance_id)
            for vm in self.compute.virtual_machine_scale_set_vms.list(
                self._rg, self._scale_set_name(scale_set)
            )
        ]
        return sorted(found, key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i))

    def scale_scale_set(self, scale_set: str, capacity: int) -> None:
        """PATCH ``sku.capacity`` only: the set keeps its SKU name and its identities (a
        PATCH that named ``identity`` would replace the set's whole identity map)."""
        self.compute.virtual_machine_scale_sets.begin_update(
            self._rg,
            self._scale_set_name(scale_set),
            VirtualMachineScaleSetUpdate(sku=Sku(capacity=capacity)),
            polling_interval=self.polling_interval,
        ).result()

    def delete_scale_set(self, scale_set: str) -> None:
        self.compute.virtual_machine_scale_sets.begin_delete(
            self._rg, self._scale_set_name(scale_set), polling_interval=self.polling_interval
        ).result()

    # -- VMs -----------------------------------------------------------------------

    def delete_vm(self, vm: str) -> None:
        poller = self.compute.virtual_machines.begin_delete(
            self._rg, self._vm_name(vm), polling_interval=self.polling_interval
        )
        poller.result()

    def disable_system_identity(self, vm: str) -> None:
        """PATCH the identity type, keeping the user-assigned identities the VM has now."""
        current = self.compute.virtual_machines.get(self._rg, self._vm_name(vm))
        uais = dict((current.identity.user_assigned_identities or {}) if current.identity else {})
        identity = VirtualMachineIdentity(
            type="UserAssigned" if uais else "None",
            user_assigned_identities={k: UserAssignedIdentitiesValue() for k in uais} or None,
        )
        self.compute.virtual_machines.begin_update(
            self._rg,
            self._vm_name(vm),
            VirtualMachineUpdate(identity=identity),
            polling_interval=self.polling_interval,
        ).result()

    def attach_identity(self, vm: str, identity: str) -> None:
        """Re-list a user-assigned identity on the VM (ARM re-binds it to IMDS)."""
        identity_id = self.outputs().identities[identity].id
        current = self.compute.virtual_machines.get(self._rg, self._vm_name(vm))
        uais = set((current.identity.user_assigned_identities or {}) if current.identity else {})
        has_system = _has_system_identity(current)
        uais = {u for u in uais if u.lower() != identity_id.lower()} | {identity_id}
        kind = identity_type(has_system, True)
        self.compute.virtual_machines.begin_update(
            self._rg,
            self._vm_name(vm),
            VirtualMachineUpdate(
                identity=VirtualMachineIdentity(
                    type=kind,
                    user_assigned_identities={
                        u: UserAssignedIdentitiesValue() for u in sorted(uais)
                    },
                )
            ),
            polling_interval=self.polling_interval,
        ).result()

    def vm_identity_ids(self, vm: str) -> list[str]:
        """The user-assigned identity IDs the VM lists now, read from ARM."""
        current = self.compute.virtual_machines.get(self._rg, self._vm_name(vm))
        return list((current.identity.user_assigned_identities or {}) if current.identity else {})

    def detach_identity(self, vm: str, identity: str) -> None:
        """Remove a user-assigned identity from the VM's list (also a deleted one, which
        the VM keeps listing): PATCH with ``null`` for it, or the type without
        ``UserAssigned`` when it was the last one."""
        identity_id = self.outputs().identities[identity].id
        current = self.compute.virtual_machines.get(self._rg, self._vm_name(vm))
        uais = list((current.identity.user_assigned_identities or {}) if current.identity else {})
        listed = [u for u in uais if u.lower() == identity_id.lower()]
        if not listed:
            return
        has_system = _has_system_identity(current)
        remaining = [u for u in uais if u.lower() != identity_id.lower()]
        if remaining:
            update = VirtualMachineIdentity(
                type=identity_type(has_system, True),
                user_assigned_identities={listed[0]: None},  # type: ignore[dict-item]
            )
        else:
            update = VirtualMachineIdentity(type=identity_type(has_system, False))
        self.compute.virtual_machines.begin_update(
            self._rg,
            self._vm_name(vm),
            VirtualMachineUpdate(identity=update),
            polling_interval=self.polling_interval,
        ).result()

    # -- user-assigned identities -----------------------------------------------

    def delete_identity(self, identity: str) -> None:
        self.msi.user_assigned_identities.delete(self._rg, self._identity_name(identity))

    def create_identity(self, identity: str) -> IdentityInfo:
        outputs = self.outputs()
        created = self.msi.user_assigned_identities.create_or_update(
            self._rg,
            self._identity_name(identity),
            Identity(location=outputs.location or "westeurope"),
        )
        return IdentityInfo(
            name=created.name,
            id=created.id,
            client_id=created.client_id,
            principal_id=created.principal_id,
            tenant_id=created.tenant_id,
        )

    # -- federated identity credentials ------------------------------------------------

    def federated_credentials(self, identity: str) -> list[FederationInfo]:
        found = self.msi.federated_identity_credentials.list(
            self._rg, self._identity_name(identity)
        )
        return [
            FederationInfo(f.name, f.issuer, f.subject, tuple(f.audiences or ())) for f in found
        ]

    def delete_federated_credential(self, identity: str, name: str) -> None:
        self.msi.federated_identity_credentials.delete(
            self._rg, self._identity_name(identity), name
        )

    def create_federated_credential(self, identity: str, credential: FederationInfo) -> None:
        self.msi.federated_identity_credentials.create_or_update(
            self._rg,
            self._identity_name(identity),
            credential.name,
            FederatedIdentityCredential(
                issuer=credential.issuer,
                subject=credential.subject,
                audiences=list(credential.audiences),
            ),
        )

    # -- management locks -------------------------------------------------------------

    def management_locks(self, scope: str) -> list[LockInfo]:
        """Every lock at ``scope`` or above it (group, subscription)."""
        return self.lock_api().over(scope)

    def management_locks_over(self, scopes: Sequence[str]) -> dict[str, list[LockInfo]]:
        """:meth:`management_locks` for each of ``scopes``, each place listed once."""
        return self.lock_api().over_each(scopes)

    def delete_lock(self, lock: LockInfo) -> None:
        self.lock_api().delete(lock)

    def create_lock(self, lock: LockInfo) -> LockInfo:
        return self.lock_api().put(lock)

    # -- role assignments -----------------------------------------------------------

    def create_assignment(
        self,
        principal_id: str,
        role_definition_id: str,
        scope: str,
        condition: str | None = None,
    ) -> Assignment:
        name = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{principal_id}|{role_definition_id}".lower())
        )
        created = self.authorization.role_assignments.create(
            scope,
            name,
            RoleAssignmentCreateParameters(
                role_definition_id=role_definition_id,
                principal_id=principal_id,
                principal_type="ServicePrincipal",
                condition=condition,
                condition_version="2.0" if condition else None,
            ),
        )
        return to_assignment(created)

    @property
    def stack_scope(self) -> str:
        """The stack's resource group ID: the widest scope the verifier lists or cleans."""
        return self.outputs().resource_group_id

    def list_assignments(self, principal_id: str) -> list[Assignment]:
        """The principal's assignments that apply at or below the stack's resource group.

        ``list_for_scope`` on the group, not ``list_for_subscription``: a deployer whose
        role is on its resource group may not read at subscription scope (ARM answers 403
        AuthorizationFailed). ARM also returns what applies to the group from above
        (subscription, management group); orphan cleanup never deletes those.
        """
        pages = self.authorization.role_assignments.list_for_scope(
            self.stack_scope, filter=f"principalId eq '{principal_id}'"
        )
        return [to_assignment(a) for a in pages]

    def get_assignment(self, assignment_id: str) -> Assignment | None:
        """The assignment as ARM holds it now (None when it no longer exists)."""
        try:
            return to_assignment(self.authorization.role_assignments.get_by_id(assignment_id))
        except ResourceNotFoundError:
            return None

    def delete_assignment(self, assignment_id: str) -> None:
        self.authorization.role_assignments.delete_by_id(assignment_id)
