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
- nothing deletes role assignments except an explicit delete: assignments of a deleted
  principal stay behind, orphaned, as on Azure.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from components import armid
from components.errors import ConfigError
from components.roles import RoleCatalog, RoleDefinition

PrincipalKind = Literal["system", "user", "application"]
PrincipalType = Literal["ServicePrincipal", "User", "Group", "ForeignGroup", "Device"]
EventKind = Literal[
    "vm_created", "vm_updated", "vm_deleted", "identity_created", "identity_deleted",
    "vault_created", "vault_deleted", "principal_deleted",
]  # fmt: skip
Listener = Callable[[EventKind, object], None]


class SandboxError(Exception):
    """A request the state refuses, carrying the ARM/Key Vault error code and HTTP status.

    The service modules turn it into the service's own error body, so the same rule
    (say, a duplicate role assignment) answers identically however it is reached.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _new_guid() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class ServicePrincipal:
    """An Entra service principal: what a token's ``oid`` and ``appid`` name."""

    object_id: str
    client_id: str
    display_name: str
    kind: PrincipalKind
    resource_id: str | None  # the ARM ID a managed identity belongs to (``xms_mirid``)


@dataclass(frozen=True)
class ResourceGroup:
    id: str
    name: str
    location: str


@dataclass(frozen=True)
class UserAssignedIdentity:
    id: str
    name: str
    resource_group: str
    location: str
    principal_id: str
    client_id: str
    tenant_id: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VirtualMachine:
    """A VM reduced to what identities need: its system principal and identity IDs."""

    id: str
    name: str
    resource_group: str
    location: str
    vm_id: str  # the VM's unique ID (``properties.vmId``)
    system_principal_id: str | None
    user_assigned: tuple[str, ...]  # ARM IDs, kept even after the identity is deleted
    tags: dict[str, str] = field(default_factory=dict)
    vm_size: str = "Standard_B2s"
    admin_username: str = "azureuser"
    created_on: float = 0.0

    @property
    def identity_type(self) -> str:
        """ARM's computed ``identity.type``."""
        kinds = []
        if self.system_principal_id:
            kinds.append("SystemAssigned")
        if self.user_assigned:
            kinds.append("UserAssigned")
        return ", ".join(kinds) or "None"


@dataclass(frozen=True)
class SecretVersion:
    name: str
    version: str
    value: str = field(repr=False)
    created: int
    updated: int
    enabled: bool = True
    content_type: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeletedSecret:
    latest: SecretVersion
    deleted_date: int
    scheduled_purge_date: int


@dataclass
class Vault:
    """A Key Vault in RBAC mode; secrets keep every version, newest last."""

    id: str
    name: str
    resource_group: str
    location: str
    soft_delete_retention_days: int = 90
    purge_protection: bool = False
    secrets: dict[str, list[SecretVersion]] = field(default_factory=dict)
    deleted: dict[str, tuple[list[SecretVersion], DeletedSecret]] = field(default_factory=dict)

    @property
    def recovery_level(self) -> str:
        if self.purge_protection:
            return "Recoverable"
        return "Recoverable+Purgeable"

    def secret_scope(self, name: str) -> str:
        """The ARM scope of one secret, which a role assignment can target."""
        return f"{self.id}/secrets/{name}"


@dataclass(frozen=True)
class RoleAssignment:
    id: str
    name: str
    scope: str
    role_definition_id: str
    principal_id: str
    principal_type: str
    created_on: float
    description: str | None = None
    condition: str | None = None
    condition_version: str | None = None


def _key(value: str) -> str:
    return value.rstrip("/").lower()


class SandboxState:
    """Thread-safe in-memory Azure: one tenant, one subscription."""

    def __init__(
        self,
        tenant_id: str,
        subscription_id: str,
        location: str = "westeurope",
        catalog: RoleCatalog | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tenant_id = tenant_id
        self.subscription_id = subscription_id
        self.location = location
        self.catalog = catalog or RoleCatalog.builtin()
        self.clock = clock
        self._lock = threading.RLock()
        self._principals: dict[str, ServicePrincipal] = {}
        self._groups: dict[str, ResourceGroup] = {}
        self._identities: dict[str, UserAssignedIdentity] = {}
        self._vms: dict[str, VirtualMachine] = {}
        self._vaults: dict[str, Vault] = {}
        self._assignments: dict[str, RoleAssignment] = {}
        self._tombstones: dict[str, UserAssignedIdentity] = {}
        self._listeners: list[Listener] = []

    # ----------------------------------------------------------------- events
    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(kind, obj)`` after each lifecycle change (outside the lock)."""
        self._listeners.append(listener)

    def _emit(self, events: Iterable[tuple[EventKind, object]]) -> None:
        for kind, obj in events:
            for listener in list(self._listeners):
                listener(kind, obj)

    # ------------------------------------------------------------- principals
    def create_principal(
        self, display_name: str, kind: PrincipalKind = "application", resource_id: str | None = None
    ) -> ServicePrincipal:
        """A new service principal; used directly for operators and test applications."""
        sp = ServicePrincipal(_new_guid(), _new_guid(), display_name, kind, resource_id)
        with self._lock:
            self._principals[sp.object_id] = sp
        return sp

    def principal(self, object_id: str) -> ServicePrincipal | None:
        with self._lock:
            return self._principals.get(object_id.lower())

    def principal_by_client_id(self, client_id: str) -> ServicePrincipal | None:
        with self._lock:
            return next(
                (p for p in self._principals.values() if p.client_id == client_id.lower()), None
            )

    def principals(self) -> list[ServicePrincipal]:
        with self._lock:
            return list(self._principals.values())

    def _delete_principal(self, object_id: str) -> ServicePrincipal | None:
        return self._principals.pop(object_id, None)

    # --------------------------------------------------------- resource groups
    def create_resource_group(self, name: str, location: str | None = None) -> ResourceGroup:
        rg_id = str(armid.resource_group(self.subscription_id, name))
        with self._lock:
            existing = self._groups.get(_key(rg_id))
            if existing:
                return existing
            rg = ResourceGroup(rg_id, name, location or self.location)
            self._groups[_key(rg_id)] = rg
            return rg

    def resource_group(self, name: str) -> ResourceGroup | None:
        with self._lock:
            rg_id = str(armid.resource_group(self.subscription_id, name))
            return self._groups.get(_key(rg_id))

    def _require_group(self, name: str) -> ResourceGroup:
        rg = self.resource_group(name)
        if rg is None:
            raise SandboxError(
                404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found."
            )
        return rg

    def _resource_id(self, group: str, provider: str, type_: str, name: str) -> str:
        return str(armid.resource(self.subscription_id, group, provider, type_, name))

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
            existing = self._identities.get(_key(uai_id))
            if existing:
                updated = replace(existing, tags=dict(tags or existing.tags))
                self._identities[_key(uai_id)] = updated
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
            self._identities[_key(uai_id)] = uai
        self._emit([("identity_created", uai)])
        return uai

    def identity(self, identity_id: str) -> UserAssignedIdentity | None:
        with self._lock:
            return self._identities.get(_key(identity_id))

    def identity_or_tombstone(self, identity_id: str) -> UserAssignedIdentity | None:
        """The identity, or its last state if deleted: VMs still report a deleted identity's
        principal and client ID in their identity block."""
        with self._lock:
            return self._identities.get(_key(identity_id)) or self._tombstones.get(
                _key(identity_id)
            )

    def identities(self) -> list[UserAssignedIdentity]:
        with self._lock:
            return list(self._identities.values())

    def delete_identity(self, identity_id: str) -> UserAssignedIdentity | None:
        """Delete the identity and its principal; VMs and role assignments keep pointing at it."""
        with self._lock:
            uai = self._identities.pop(_key(identity_id), None)
            if uai is None:
                return None
            self._tombstones[_key(identity_id)] = uai
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
            if _key(vm_id) in self._vms:
                raise SandboxError(409, "Conflict", f"Virtual machine '{name}' already exists.")
            vm = VirtualMachine(
                vm_id,
                name,
                rg.name,
                location or rg.location,
                _new_guid(),
                None,
                (),
                dict(tags or {}),
                vm_size,
                admin_username,
                self.clock(),
            )
            self._vms[_key(vm_id)] = vm
        self._emit([("vm_created", vm)])
        return self.update_vm_identity(vm_id, system_assigned, user_assigned)

    def vm(self, vm_id: str) -> VirtualMachine | None:
        with self._lock:
            return self._vms.get(_key(vm_id))

    def vms(self) -> list[VirtualMachine]:
        with self._lock:
            return list(self._vms.values())

    def update_vm_identity(
        self, vm_id: str, system_assigned: bool, user_assigned: Sequence[str]
    ) -> VirtualMachine:
        """Set the VM's identity block, as a PATCH of ``identity`` does.

        Turning the system identity off deletes its principal; turning it back on makes a
        new one. Attaching a user-assigned identity that does not exist is refused, as ARM
        refuses it; a reference that was valid when attached survives the identity's
        deletion.
        """
        events: list[tuple[EventKind, object]] = []
        with self._lock:
            vm = self._vms.get(_key(vm_id))
            if vm is None:
                raise SandboxError(
                    404, "ResourceNotFound", f"The Resource '{vm_id}' was not found."
                )
            kept = {_key(u) for u in vm.user_assigned}
            ids: list[str] = []
            for uai_id in user_assigned:
                uai = self._identities.get(_key(uai_id))
                if uai is None and _key(uai_id) not in kept:
                    raise SandboxError(
                        400,
                        "FailedIdentityOperation",
                        f"Identity '{uai_id}' does not exist or cannot be assigned.",
                    )
                if _key(uai_id) not in {_key(i) for i in ids}:
                    ids.append(uai.id if uai else uai_id)
            principal_id = vm.system_principal_id
            if system_assigned and principal_id is None:
                principal_id = self.create_principal(vm.name, "system", vm.id).object_id
            elif not system_assigned and principal_id is not None:
                events.append(("principal_deleted", self._delete_principal(principal_id)))
                principal_id = None
            vm = replace(vm, system_principal_id=principal_id, user_assigned=tuple(ids))
            self._vms[_key(vm_id)] = vm
        self._emit([("vm_updated", vm), *events])
        return vm

    def update_vm_tags(self, vm_id: str, tags: dict[str, str]) -> VirtualMachine:
        with self._lock:
            vm = self._vms.get(_key(vm_id))
            if vm is None:
                raise SandboxError(
                    404, "ResourceNotFound", f"The Resource '{vm_id}' was not found."
                )
            vm = replace(vm, tags=dict(tags))
            self._vms[_key(vm_id)] = vm
        return vm

    def delete_vm(self, vm_id: str) -> VirtualMachine | None:
        """Delete the VM and its system principal; its role assignments stay, orphaned."""
        events: list[tuple[EventKind, object]] = []
        with self._lock:
            vm = self._vms.pop(_key(vm_id), None)
            if vm is None:
                return None
            if vm.system_principal_id:
                events.append(("principal_deleted", self._delete_principal(vm.system_principal_id)))
        self._emit([("vm_deleted", vm), *events])
        return vm

    # ----------------------------------------------------------------- vaults
    def create_vault(
        self,
        resource_group: str,
        name: str,
        location: str | None = None,
        purge_protection: bool = False,
    ) -> Vault:
        rg = self._require_group(resource_group)
        vault_id = self._resource_id(rg.name, "Microsoft.KeyVault", "vaults", name)
        with self._lock:
            existing = self._vaults.get(name.lower())
            if existing:
                if _key(existing.id) != _key(vault_id):
                    raise SandboxError(
                        409, "VaultAlreadyExists", f"The vault name '{name}' is already in use."
                    )
                return existing
            vault = Vault(
                vault_id, name, rg.name, location or rg.location, purge_protection=purge_protection
            )
            self._vaults[name.lower()] = vault
        self._emit([("vault_created", vault)])
        return vault

    def vault(self, name_or_id: str) -> Vault | None:
        """A vault by name (vault names are global) or by ARM ID."""
        name = name_or_id.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            vault = self._vaults.get(name.lower())
            if vault and "/" in name_or_id and _key(vault.id) != _key(name_or_id):
                return None
            return vault

    def vaults(self) -> list[Vault]:
        with self._lock:
            return list(self._vaults.values())

    def delete_vault(self, name_or_id: str) -> Vault | None:
        with self._lock:
            vault = self.vault(name_or_id)
            if vault is None:
                return None
            del self._vaults[vault.name.lower()]
        self._emit([("vault_deleted", vault)])
        return vault

    def _require_vault(self, name_or_id: str) -> Vault:
        vault = self.vault(name_or_id)
        if vault is None:
            raise SandboxError(404, "VaultNotFound", f"Vault '{name_or_id}' was not found.")
        return vault

    # ---------------------------------------------------------------- secrets
    def set_secret(
        self,
        vault: str,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        enabled: bool = True,
    ) -> SecretVersion:
        """Add a new version (the newest becomes the current value)."""
        with self._lock:
            v = self._require_vault(vault)
            key = name.lower()
            if key in v.deleted:
                raise SandboxError(
                    409,
                    "Conflict",
                    f"Secret {name} is currently in a deleted but recoverable state, and its "
                    "name cannot be reused; in this state, the secret can only be recovered "
                    "or purged.",
                )
            versions = v.secrets.setdefault(key, [])
            stored_name = versions[0].name if versions else name
            now = int(self.clock())
            version = SecretVersion(
                stored_name,
                uuid.uuid4().hex,
                value,
                now,
                now,
                enabled,
                content_type,
                dict(tags or {}),
            )
            versions.append(version)
            return version

    def get_secret(self, vault: str, name: str, version: str | None = None) -> SecretVersion | None:
        with self._lock:
            versions = self._require_vault(vault).secrets.get(name.lower(), [])
            if not version:
                return versions[-1] if versions else None
            return next((s for s in versions if s.version == version.lower()), None)

    def secret_names(self, vault: str) -> list[str]:
        with self._lock:
            return [vs[0].name for vs in self._require_vault(vault).secrets.values() if vs]

    def secret_versions(self, vault: str, name: str) -> list[SecretVersion]:
        with self._lock:
            return list(self._require_vault(vault).secrets.get(name.lower(), []))

    def delete_secret(self, vault: str, name: str) -> DeletedSecret | None:
        """Soft-delete every version of a secret (the vault keeps it for its retention)."""
        with self._lock:
            v = self._require_vault(vault)
            versions = v.secrets.pop(name.lower(), None)
            if not versions:
                return None
            now = int(self.clock())
            deleted = DeletedSecret(versions[-1], now, now + v.soft_delete_retention_days * 86400)
            v.deleted[name.lower()] = (versions, deleted)
            return deleted

    def deleted_secret(self, vault: str, name: str) -> DeletedSecret | None:
        with self._lock:
            entry = self._require_vault(vault).deleted.get(name.lower())
            return entry[1] if entry else None

    def purge_secret(self, vault: str, name: str) -> bool:
        with self._lock:
            v = self._require_vault(vault)
            if v.purge_protection:
                raise SandboxError(
                    403, "Forbidden", "Operation 'purge' is not allowed: purge protection is on."
                )
            return v.deleted.pop(name.lower(), None) is not None

    def recover_secret(self, vault: str, name: str) -> SecretVersion | None:
        with self._lock:
            v = self._require_vault(vault)
            entry = v.deleted.pop(name.lower(), None)
            if entry is None:
                return None
            v.secrets[name.lower()] = entry[0]
            return entry[0][-1]

    # -------------------------------------------------------- role assignments
    def role_definition(self, reference: str) -> RoleDefinition:
        """A built-in role by name, GUID or role-definition ID (ConfigError if unknown)."""
        return self.catalog.get(reference, field="role_definition_id")

    def create_role_assignment(
        self,
        scope: str,
        role: str,
        principal_id: str,
        *,
        principal_type: str | None = "ServicePrincipal",
        name: str | None = None,
        description: str | None = None,
        condition: str | None = None,
        condition_version: str | None = None,
    ) -> RoleAssignment:
        """Assign ``role`` (name, GUID or definition ID) to a principal at ``scope``.

        ARM's rules: the same name at the same scope with identical content is an
        idempotent PUT; a different principal, role or scope under an existing name is
        ``RoleAssignmentUpdateNotPermitted``; the same principal, role and scope under
        another name is ``RoleAssignmentExists``; without ``principalType`` an unknown
        principal is ``PrincipalNotFound`` (with it, ARM skips the directory lookup, which is
        why it avoids replication-delay failures); a type that contradicts a known principal
        is ``UnmatchedPrincipalType`` (every sandbox principal is a ServicePrincipal).
        """
        armid.parse(scope, "scope")
        try:
            role_def = self.role_definition(role)
        except ConfigError as exc:
            raise SandboxError(
                404,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{role}' does not exist.",
            ) from exc
        definition_id = role_def.definition_id(self.subscription_id)
        name = (name or _new_guid()).lower()
        assignment_id = (
            f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"
        )
        principal_id = principal_id.lower()
        with self._lock:
            if principal_type is None:
                if principal_id not in self._principals:
                    raise SandboxError(
                        400,
                        "PrincipalNotFound",
                        f"Principal {principal_id.replace('-', '')} does not exist in the "
                        f"directory {self.tenant_id}. Check that you have the correct principal "
                        "ID. If you are creating this principal and then immediately assigning a "
                        "role, this error might be related to a replication delay.",
                    )
                principal_type = "ServicePrincipal"
            elif principal_id in self._principals and principal_type != "ServicePrincipal":
                raise SandboxError(
                    400,
                    "UnmatchedPrincipalType",
                    f"The PrincipalId '{principal_id.replace('-', '')}' has type "
                    f"'ServicePrincipal', which is different from specified PrincipalType "
                    f"'{principal_type}'.",
                )
            same_name = self._assignments.get(_key(assignment_id))
            if same_name is not None:
                if same_name.principal_id == principal_id and _key(
                    same_name.role_definition_id
                ) == _key(definition_id):
                    return same_name
                raise SandboxError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )
            for other in self._assignments.values():
                if (
                    _key(other.scope) == _key(scope)
                    and other.principal_id == principal_id
                    and _key(other.role_definition_id) == _key(definition_id)
                ):
                    raise SandboxError(
                        409, "RoleAssignmentExists", "The role assignment already exists."
                    )
            assignment = RoleAssignment(
                assignment_id,
                name,
                scope.rstrip("/"),
                definition_id,
                principal_id,
                principal_type,
                self.clock(),
                description,
                condition,
                condition_version if condition else None,
            )
            self._assignments[_key(assignment_id)] = assignment
            return assignment

    def role_assignment(self, assignment_id: str) -> RoleAssignment | None:
        with self._lock:
            return self._assignments.get(_key(assignment_id))

    def delete_role_assignment(self, assignment_id: str) -> RoleAssignment | None:
        with self._lock:
            return self._assignments.pop(_key(assignment_id), None)

    def role_assignments(
        self,
        scope: str | None = None,
        principal_id: str | None = None,
        at_scope: bool = False,
    ) -> list[RoleAssignment]:
        """Assignments that apply at ``scope`` (at or above it) and, unless ``at_scope``,
        those below it too, as ARM's list-for-scope returns them."""
        with self._lock:
            found = list(self._assignments.values())
        if principal_id:
            found = [a for a in found if a.principal_id == principal_id.lower()]
        if scope:
            found = [
                a
                for a in found
                if armid.is_within(a.scope, scope)
                or (not at_scope and armid.is_within(scope, a.scope))
            ]
        return sorted(found, key=lambda a: a.created_on)

    def is_orphaned(self, assignment: RoleAssignment) -> bool:
        """True when the assignment's principal no longer exists ("Identity not found")."""
        return self.principal(assignment.principal_id) is None
