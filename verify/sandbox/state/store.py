"""The sandbox's one shared state: tenant, principals, resources, secrets, role assignments.

Every service module (IMDS, token issuer, Key Vault, ARM) reads and writes this object and
nothing else, so a VM deleted through ARM is gone for IMDS at the same instant, as on
Azure. All methods take one re-entrant lock: the ASGI listeners run on their own loop
thread while tests and the verifier mutate the state from theirs.

Lifecycle rules modelled on Azure:

- creating a VM with a system identity, or a user-assigned identity, creates a service
  principal (object ID + application/client ID) in the tenant;
- deleting the VM (or turning its system identity off) deletes the system principal;
  deleting a user-assigned identity deletes its principal; VMs keep their reference to a
  deleted user-assigned identity (IMDS then answers "Identity not found");
- a VM holds each user-assigned identity as attached (its principal): one deleted and
  created again under the same name is a new principal, which the VM gets tokens for and
  shows in its identity block only after the identity is attached to it again;
- nothing deletes role assignments except an explicit delete: assignments of a deleted
  principal stay behind, orphaned, as on Azure.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from components import armid
from components.arm import shapes as arm_shapes
from components.errors import ConfigError
from verify.sandbox.state.apps import AppHost, AppsMixin
from verify.sandbox.state.base import Listener, StateBase
from verify.sandbox.state.federation import ClientCredentialsMixin
from verify.sandbox.state.fleet import FleetMixin
from verify.sandbox.state.keyvault import VaultsMixin
from verify.sandbox.state.locks import LocksMixin, ManagementLock
from verify.sandbox.state.rbac import RoleAssignmentsMixin
from verify.sandbox.state.records import (
    DeletedSecret,
    EventKind,
    PrincipalKind,
    PrincipalType,
    ResourceGroup,
    RoleAssignment,
    SandboxError,
    SecretVersion,
    ServicePrincipal,
    UserAssignedIdentity,
    Vault,
    VirtualMachine,
    key,
    new_guid,
)
from verify.sandbox.state.storage import StorageMixin

__all__ = [
    "AppHost",
    "DeletedSecret",
    "EventKind",
    "Listener",
    "ManagementLock",
    "PrincipalKind",
    "PrincipalType",
    "ResourceGroup",
    "RoleAssignment",
    "SandboxError",
    "SandboxState",
    "SecretVersion",
    "ServicePrincipal",
    "StateBase",
    "UserAssignedIdentity",
    "Vault",
    "VirtualMachine",
]


class SandboxState(
    VaultsMixin,
    RoleAssignmentsMixin,
    ClientCredentialsMixin,
    StorageMixin,
    FleetMixin,
    AppsMixin,
    LocksMixin,
):
    """Thread-safe in-memory Azure: one tenant, one subscription.

    The core (lock, events, principals, groups) is :class:`StateBase`; each further
    concept is a mixin in its own module. Identities and VMs live here because the VM's
    identity block ties them together.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tombstones: dict[str, UserAssignedIdentity] = {}
        #: When each VM was made (``timeCreated``, to the microsecond), by key.
        self._vm_times: dict[str, float] = {}
        # (VM, identity ID) -> the identity as it was when attached: the VM holds that
        # principal, not whatever later carries the same name.
        self._bindings: dict[tuple[str, str], UserAssignedIdentity] = {}
        self._init_apps()

    # ---------------------------------------------------- user-assigned identities
    def create_identity(
        self,
        resource_group: str,
        name: str,
        location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> UserAssignedIdentity:
        """Create (or return the existing) user-assigned identity, with its principal.

        Like ARM's PUT, re-creating an existing identity keeps its principal; creating one
        after a delete makes a new principal, so old grants no longer apply.
        """
        rg = self._require_group(resource_group)
        uai_id = self._resource_id(
            rg.name, "Microsoft.ManagedIdentity", "userAssignedIdentities", name
        )
        with self._lock:
            existing = self.identity(uai_id)
            if existing:
                updated = replace(existing, tags=dict(tags or existing.tags))
                self._write_identity(updated)
                return updated
            sp = self.create_principal(name, "user", uai_id)
            uai = UserAssignedIdentity(
                uai_id,
                name,
                rg.name,
                location or rg.location,
                sp.object_id,
                sp.client_id,
                self.tenant_id,
                dict(tags or {}),
            )
            self._write_identity(uai)
        self._emit([("identity_created", uai)])
        return uai

    def _write_identity(self, uai: UserAssignedIdentity) -> None:
        """The identity's one record: the ARM model's document (lock held)."""
        self.arm_store.resources[key(uai.id)] = uai.document()

    def identity(self, identity_id: str) -> UserAssignedIdentity | None:
        """The identity, read from its ARM document (the one a deploy or the ARM front
        wrote)."""
        with self._lock:
            doc = self.arm_store.resources.get(key(identity_id))
        return _identity_record(doc) if doc is not None and _is_identity(doc) else None

    def identity_or_tombstone(self, identity_id: str) -> UserAssignedIdentity | None:
        """The identity, or its last state if deleted: VMs still report a deleted identity's
        principal and client ID in their identity block."""
        with self._lock:
            return self.identity(identity_id) or self._tombstones.get(key(identity_id))

    def identities(self) -> list[UserAssignedIdentity]:
        with self._lock:
            docs = list(self.arm_store.resources.values())
        return [_identity_record(d) for d in docs if _is_identity(d)]

    def delete_identity(self, identity_id: str) -> UserAssignedIdentity | None:
        """Delete the identity and its principal; VMs and role assignments keep pointing at it."""
        with self._lock:
            uai = self.identity(identity_id)
            if uai is None:
                return None
            del self.arm_store.resources[key(identity_id)]
            self._tombstones[key(identity_id)] = uai
            sp = self._delete_principal(uai.principal_id)
        self._emit([("identity_deleted", uai), ("principal_deleted", sp)])
        return uai

    # -------------------------------------------------------------------- VMs
    def create_vm(
        self,
        resource_group: str,
        name: str,
        *,
        system_assigned: bool = False,
        user_assigned: Sequence[str] = (),
        location: str | None = None,
        tags: dict[str, str] | None = None,
        vm_size: str = "Standard_B2s",
        admin_username: str = "azureuser",
    ) -> VirtualMachine:
        rg = self._require_group(resource_group)
        vm_id = self._resource_id(rg.name, "Microsoft.Compute", "virtualMachines", name)
        with self._lock:
            if self.vm(vm_id) is not None:
                raise SandboxError(409, "Conflict", f"Virtual machine '{name}' already exists.")
            vm = VirtualMachine(
                vm_id,
                name,
                rg.name,
                location or rg.location,
                new_guid(),
                None,
                (),
                dict(tags or {}),
                vm_size,
                admin_username,
                self.clock(),
            )
            self._write_vm(vm)
        self._emit([("vm_created", vm)])
        return self.update_vm_identity(vm_id, system_assigned, user_assigned)

    def vm(self, vm_id: str) -> VirtualMachine | None:
        """The VM, read from its ARM document (its one record)."""
        with self._lock:
            doc = self.arm_store.resources.get(key(vm_id))
            return None if doc is None or not _is_vm(doc) else self._vm_record(key(vm_id), doc)

    def vms(self) -> list[VirtualMachine]:
        with self._lock:
            docs = list(self.arm_store.resources.items())
            return [self._vm_record(k, d) for k, d in docs if _is_vm(d)]

    def _vm_record(self, doc_key: str, doc: dict[str, Any]) -> VirtualMachine:
        props = doc["properties"]
        identity = doc.get("identity") or {}
        made = self._vm_times.get(doc_key)
        if made is None:
            made = datetime.fromisoformat(props["timeCreated"].replace("Z", "+00:00")).timestamp()
        return VirtualMachine(
            doc["id"],
            doc["name"],
            doc["id"].split("/")[4],  # /subscriptions/{sub}/resourceGroups/{rg}/...
            doc["location"],
            props["vmId"],
            identity.get("principalId"),
            tuple(identity.get("userAssignedIdentities") or {}),
            dict(doc.get("tags") or {}),
            props["hardwareProfile"]["vmSize"],
            props["osProfile"]["adminUsername"],
            made,
        )

    def vm_identity_block(self, vm: VirtualMachine) -> dict[str, Any] | None:
        """A VM's ``identity`` as ARM shows it (None when it has none): each user-assigned
        identity with the principal and client ID it had when attached; a deleted one stays
        listed with them, and so does one re-created under the same name until it is
        attached again (the VM does not hold the new principal)."""
        attached = {}
        for uai_id in vm.user_assigned:
            uai = self.attached_identity(vm.id, uai_id)  # as attached, not as re-created
            if uai is not None:
                attached[uai.id] = arm_shapes.AttachedIdentity(uai.principal_id, uai.client_id)
        return arm_shapes.vm_identity(
            system_principal_id=vm.system_principal_id,
            tenant_id=self.tenant_id,
            user_assigned=attached,
        )

    def _write_vm(self, vm: VirtualMachine) -> None:
        """The VM's one record: its ARM document, the deploy's (NICs, disks, SSH keys) with
        the state's identity block, tags and IDs, or a bare one (lock held)."""
        doc_key = key(vm.id)
        old = self.arm_store.resources.get(doc_key)
        self._vm_times.setdefault(doc_key, vm.created_on)
        stamp = arm_shapes.arm_timestamp(datetime.fromtimestamp(vm.created_on, UTC))
        doc = (
            copy.deepcopy(old)
            if old is not None and _is_vm(old)
            else arm_shapes.virtual_machine(
                arm_id=vm.id,
                location=vm.location,
                vm_id=vm.vm_id,
                identity=None,
                vm_size=vm.vm_size,
                admin_username=vm.admin_username,
                time_created=stamp,
            )
        )
        doc["tags"] = dict(vm.tags)
        doc["properties"]["vmId"] = vm.vm_id
        identity = self.vm_identity_block(vm)
        if identity is None:
            doc.pop("identity", None)
        else:
            doc["identity"] = identity
        self.arm_store.resources[doc_key] = doc

    def update_vm_identity(
        self,
        vm_id: str,
        system_assigned: bool,
        user_assigned: Sequence[str],
        *,
        rebind: Collection[str] | None = None,
    ) -> VirtualMachine:
        """Set the VM's identity block, as a PATCH of ``identity`` does.

        Turning the system identity off deletes its principal; turning it back on makes a
        new one. Attaching a user-assigned identity that does not exist is refused, as ARM
        refuses it; a reference that was valid when attached survives the identity's
        deletion.

        The VM is bound to the identity *as attached* (its principal): an identity deleted
        and created again under the same name is a new principal the VM does not hold
        until the identity is attached again. ``rebind`` names the identities this request
        (re)attaches; None (a full PUT, or the state API) re-attaches every listed one.
        """
        events: list[tuple[EventKind, object]] = []
        with self._lock:
            vm = self.vm(vm_id)
            if vm is None:
                raise SandboxError(
                    404, "ResourceNotFound", f"The Resource '{vm_id}' was not found."
                )
            kept = {key(u) for u in vm.user_assigned}
            principal_id, ids = self._identity_block(
                (vm.name, vm.id),
                vm.system_principal_id,
                system_assigned,
                user_assigned,
                kept=kept,
                events=events,
            )
            vm = replace(vm, system_principal_id=principal_id, user_assigned=ids)
            self._bind(vm, kept, rebind)
            self._write_vm(vm)
        self._emit([("vm_updated", vm), *events])
        return vm

    def _bind(self, vm: VirtualMachine, kept: set[str], rebind: Collection[str] | None) -> None:
        """Record which principal each attached identity of ``vm`` is (lock held)."""
        named = None if rebind is None else {key(u) for u in rebind}
        listed = {key(u) for u in vm.user_assigned}
        for stale in [b for b in self._bindings if b[0] == key(vm.id) and b[1] not in listed]:
            del self._bindings[stale]
        for uai_key in listed:
            live = self.identity(uai_key)
            fresh = uai_key not in kept or named is None or uai_key in named
            if live is not None and (fresh or (key(vm.id), uai_key) not in self._bindings):
                self._bindings[(key(vm.id), uai_key)] = live

    def attached_identity(self, vm_id: str, identity_id: str) -> UserAssignedIdentity | None:
        """The identity as ``vm`` holds it: its principal and client ID when attached
        (what the VM's ARM identity block shows, even after a delete or a re-create)."""
        with self._lock:
            return self._bindings.get((key(vm_id), key(identity_id)))

    def bound_identity(self, vm_id: str, identity_id: str) -> UserAssignedIdentity | None:
        """The live identity ``vm`` can get tokens for: None when it was deleted, or
        re-created under the same name (a new principal) and not attached again."""
        with self._lock:
            held = self._bindings.get((key(vm_id), key(identity_id)))
            live = self.identity(identity_id)
            if held is None or live is None or live.principal_id != held.principal_id:
                return None
            return live

    def update_vm_tags(self, vm_id: str, tags: dict[str, str]) -> VirtualMachine:
        with self._lock:
            vm = self.vm(vm_id)
            if vm is None:
                raise SandboxError(
                    404, "ResourceNotFound", f"The Resource '{vm_id}' was not found."
                )
            vm = replace(vm, tags=dict(tags))
            self._write_vm(vm)
        return vm

    def _unbind(self, vm_id: str) -> None:
        """Forget which principals ``vm_id`` held (lock held)."""
        for binding in [b for b in self._bindings if b[0] == key(vm_id)]:
            del self._bindings[binding]

    def delete_vm(self, vm_id: str) -> VirtualMachine | None:
        """Delete the VM and its system principal; its role assignments stay, orphaned."""
        events: list[tuple[EventKind, object]] = []
        with self._lock:
            vm = self.vm(vm_id)
            if vm is None:
                return None
            del self.arm_store.resources[key(vm_id)]
            self._vm_times.pop(key(vm_id), None)
            for binding in [b for b in self._bindings if b[0] == key(vm_id)]:
                del self._bindings[binding]
            if vm.system_principal_id:
                events.append(("principal_deleted", self._delete_principal(vm.system_principal_id)))
        self._emit([("vm_deleted", vm), *events])
        return vm

    # ---------------------------------------------------------------- scopes
    def exists(self, arm_id: str) -> bool:
        """Whether ``arm_id`` is a scope ARM would find: the subscription, a resource group,
        or a resource the sandbox holds (what ``rules.check_scope_exists`` asks)."""
        try:
            parsed = armid.parse(arm_id, "scope")
        except ConfigError:
            return False
        if parsed.subscription_id.lower() != self.subscription_id.lower():
            return False
        if parsed.resource_group is None:
            return True
        if self.resource_group(parsed.resource_group) is None:
            return False
        if parsed.provider is None or self._noted(arm_id):
            return True
        return self._resource_exists(arm_id, parsed)

    def _resource_exists(self, arm_id: str, parsed: armid.ArmId) -> bool:
        provider = str(parsed.provider).lower()
        types = tuple(t.lower() for t in parsed.types)
        if self.identity(arm_id) is not None or self.vm(arm_id) is not None:
            return True
        if provider == "microsoft.managedidentity" and types[1:] == (
            "federatedidentitycredentials",
        ):
            return self.federated_credential(arm_id) is not None
        if provider == "microsoft.keyvault" and types[:1] == ("vaults",):
            return self._vault_scope_exists(arm_id, types, parsed.names)
        if provider == "microsoft.storage" and types[:1] == ("storageaccounts",):
            return self._storage_scope_exists(arm_id, types, parsed.names)
        return False

    def _vault_scope_exists(
        self, arm_id: str, types: tuple[str, ...], names: tuple[str, ...]
    ) -> bool:
        vault = self.vault(names[0])
        if vault is None or key(vault.id) != key(arm_id.split("/secrets/", maxsplit=1)[0]):
            return False
        if len(types) == 1:
            return True
        return types == ("vaults", "secrets") and names[1] in self.secret_names(vault.name)

    def _storage_scope_exists(
        self, arm_id: str, types: tuple[str, ...], names: tuple[str, ...]
    ) -> bool:
        account = self.storage_account(arm_id if len(types) == 1 else names[0])
        if account is None:
            return False
        if len(types) == 1:
            return True
        containers = ("storageaccounts", "blobservices", "containers")
        return types == containers and self.container(account.name, names[2]) is not None


def _is_identity(doc: dict[str, Any]) -> bool:
    return str(doc.get("type", "")).lower() == arm_shapes.USER_ASSIGNED_IDENTITY.lower()


def _identity_record(doc: dict[str, Any]) -> UserAssignedIdentity:
    """What IMDS, Entra and the hosts read of an identity, from its ARM document."""
    props = doc["properties"]
    return UserAssignedIdentity(
        doc["id"],
        doc["name"],
        str(armid.parse(doc["id"], "identity").resource_group),
        doc["location"],
        props["principalId"],
        props["clientId"],
        props["tenantId"],
        dict(doc.get("tags") or {}),
    )


def _is_vm(doc: dict[str, Any]) -> bool:
    return doc.get("type") == arm_shapes.VIRTUAL_MACHINE
