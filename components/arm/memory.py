"""The in-memory ARM model: the default :class:`~components.arm.backend.ArmBackend`.

The Pulumi mocks know how Pulumi talks (type tokens, camelCase inputs, flattened
outputs); this model knows how ARM behaves (IDs, generated principals, conflicts, the
rules of :mod:`components.arm.rules`), answering with the ARM documents of
:mod:`components.arm.shapes`. The local sandbox deploys through it too
(``verify.sandbox.arm.model.SandboxArm``, the sandbox's one ARM model, whose data is
the sandbox state's :class:`~components.arm.store.ArmStore`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from components import armid
from components.arm import rules
from components.arm import shapes as arm_shapes
from components.arm.errors import ArmError
from components.arm.memory_apps import AppsArm
from components.arm.memory_fleet import FleetArm
from components.arm.memory_keyvault import KeyVaultArm, default_vault_uri
from components.arm.memory_network import NetworkArm
from components.arm.memory_storage import StorageArm, default_blob_endpoint
from components.arm.rules import WriteOrdering
from components.arm.store import ArmStore
from components.arm.tokens import (
    PULUMI_FEDERATED_CREDENTIAL,
    PULUMI_GET_CLIENT_CONFIG,
    PULUMI_MANAGEMENT_LOCK,
    PULUMI_RESOURCE_GROUP,
    PULUMI_ROLE_ASSIGNMENT,
    PULUMI_USER_ASSIGNED_IDENTITY,
    PULUMI_VIRTUAL_MACHINE,
)
from components.conditions import (
    CONDITION_VERSION,
    INVALID_CONDITION_CODE,
    INVALID_CONDITION_MESSAGE,
    arm_condition_refusal,
)
from components.identity_type import NONE, parse_identity_type
from components.roles import RoleCatalog, guid_from_role_reference

__all__ = ["InMemoryArm", "default_vault_uri", "role_definitions"]

JSON = dict[str, Any]


def _new_guid() -> str:
    return str(uuid.uuid4())


class InMemoryArm(NetworkArm, KeyVaultArm, StorageArm, AppsArm, FleetArm):
    """An ARM that lives in a dict: the default backend of :class:`AzureMocks`.

    It behaves like ARM where our components depend on it: GUID principal and client
    IDs generated once per identity and kept across updates, a system identity whose
    principal survives updates and vanishes when turned off, VM identity maps built from
    the identities actually attached (an unknown one is a 400), and role assignments
    that refuse ``RoleAssignmentExists`` and ``RoleAssignmentUpdateNotPermitted``
    conflicts. Secret values sent to the management plane are kept in
    :attr:`secret_values` (never in the ARM documents) for a data-plane emulator.
    """

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        subscription_id: str | None = None,
        location: str = "westeurope",
        vault_uri: Callable[[str], str] = default_vault_uri,
        new_guid: Callable[[], str] = _new_guid,
        deployer_object_id: str | None = None,
        existing: Iterable[str] = (),
        blob_endpoint: Callable[[str], str] = default_blob_endpoint,
    ) -> None:
        self._new_guid = new_guid
        self._tenant_id = tenant_id or new_guid()
        self._subscription_id = subscription_id or new_guid()
        self.location = location
        self.vault_uri = vault_uri
        self.blob_endpoint = blob_endpoint
        self.deployer_object_id = deployer_object_id or new_guid()
        self.deployer_client_id = new_guid()
        self._own_store = ArmStore(existing={str(i).rstrip("/").lower() for i in existing})
        self._ordering: WriteOrdering | None = None
        # Pulumi's mock monitor calls new_resource from several executor threads at once;
        # without this, a conflict scan can iterate ``resources`` while another thread
        # inserts ("dictionary changed size during iteration", seen at 400 VMs).
        self._mutex = threading.RLock()
        self._handlers: dict[str, Callable[[str, JSON], JSON]] = {
            PULUMI_RESOURCE_GROUP: self._resource_group,
            PULUMI_USER_ASSIGNED_IDENTITY: self._user_assigned_identity,
            PULUMI_FEDERATED_CREDENTIAL: self._federated_credential,
            PULUMI_MANAGEMENT_LOCK: self._lock,
            PULUMI_VIRTUAL_MACHINE: self._virtual_machine,
            PULUMI_ROLE_ASSIGNMENT: self._role_assignment,
            **self.keyvault_handlers(),
            **self.network_handlers(),
            **self.storage_handlers(),
            **self.apps_handlers(),
            **self.fleet_handlers(),
        }
        self._calls = self.fleet_calls()

    @property
    def tenant_id(self) -> str:
        return self._tenant_id

    # -- the data (one ArmStore; see components.arm.store) -------------------------

    @property
    def store(self) -> ArmStore:
        """Where the documents and values live (the sandbox's model uses its state's)."""
        return self._own_store

    @property
    def resources(self) -> dict[str, JSON]:
        """ARM documents by lower-cased ARM ID."""
        return self.store.resources

    @property
    def secret_values(self) -> dict[str, str]:
        """Secret values by lower-cased secret ARM ID (management-plane writes)."""
        return self.store.secret_values

    @property
    def deleted_vaults(self) -> dict[str, JSON]:
        """Soft-deleted vaults by lower-cased vault name."""
        return self.store.deleted_vaults

    @property
    def existing(self) -> set[str]:
        """ARM IDs that exist before the program runs: valid scopes."""
        return self.store.existing

    @property
    def blob_values(self) -> dict[str, bytes]:
        """Seeded blob contents by lower-cased blob ID (see memory_storage)."""
        return self.store.blob_values

    @property
    def app_settings(self) -> dict[str, dict[str, str]]:
        """App settings by lower-cased site ID (see memory_apps)."""
        return self.store.app_settings

    @property
    def subscription_id(self) -> str:
        return self._subscription_id

    # -- the protocol -------------------------------------------------------------

    def create_or_update(
        self,
        resource_type: str,
        arm_id: str,
        inputs: dict[str, Any],
        *,
        ordering: WriteOrdering | None = None,
    ) -> dict[str, Any]:
        handler = self._handlers.get(resource_type, self._generic)
        with self._mutex:
            if not _is_lock(arm_id):  # a ReadOnly lock refuses every write below it
                rules.check_not_locked(arm_id, self.locks(), "write")
            # Handlers run one at a time under the mutex, so the write being handled can
            # read its ordering from here (see ``_federated_credential``).
            self._ordering = ordering
            try:
                doc = handler(arm_id, inputs)
            finally:
                self._ordering = None
            self.resources[doc["id"].lower()] = doc
        return doc

    def call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == PULUMI_GET_CLIENT_CONFIG:
            return {
                "clientId": self.deployer_client_id,
                "objectId": self.deployer_object_id,
                "subscriptionId": self.subscription_id,
                "tenantId": self.tenant_id,
            }
        if token in self._calls:
            with self._mutex:
                return self._calls[token](args)
        raise ArmError(400, "InvokeNotSupported", f"the in-memory ARM cannot answer {token}")

    # -- lookups for tests and other emulators -------------------------------------

    def get(self, arm_id: str) -> JSON | None:
        return self.resources.get(arm_id.lower())

    def of_type(self, arm_type: str) -> list[JSON]:
        """All documents whose ARM ``type`` is ``arm_type`` (case-insensitive)."""
        with self._mutex:
            docs = list(self.resources.values())
        return [d for d in docs if d["type"].lower() == arm_type.lower()]

    def delete(self, arm_id: str) -> JSON | None:
        """Delete one resource as ARM does: refused (409 ``ScopeLocked``) while a lock at
        or above it exists; children stay, as ARM leaves role assignments behind.

        Deleting a lock itself is not blocked by ``CanNotDelete`` (that is how a lock is
        lifted).
        """
        with self._mutex:
            doc = self.get(arm_id)
            if doc is not None and not _is_lock(arm_id):
                rules.check_not_locked(arm_id, self.locks(), "delete")
            if doc is not None and doc["type"].lower() == arm_shapes.KEY_VAULT.lower():
                self._soft_delete_vault(doc)
            return self.resources.pop(arm_id.lower(), None)

    def forget(self, arm_id: str) -> JSON | None:
        """Drop the document of a resource deleted elsewhere (the sandbox's ARM front, which
        has applied ARM's rules already); None when it held none."""
        with self._mutex:
            return self.resources.pop(arm_id.rstrip("/").lower(), None)

    def exists(self, arm_id: str) -> bool:
        """Whether ``arm_id`` names a resource (or resource group) that exists now."""
        key = arm_id.rstrip("/").lower()
        return key in self.resources or key in self.existing

    def _exists_for_this_write(self, arm_id: str) -> bool:
        """Whether the write being handled is sure to find ``arm_id``: it exists and, if
        this deployment writes it too, the write waits for it. A scope written alongside
        (no dependency) may or may not be there when ARM looks; refusing it always keeps
        the answer independent of thread timing, as a real run's outcome is not."""
        if not self.exists(arm_id):
            return False
        return self._ordering is None or not self._ordering.concurrent_with(arm_id)

    def locks(self) -> list[tuple[str, str]]:
        """``(scope, level)`` of every management lock."""
        return [
            (_lock_scope(d["id"]), d["properties"]["level"])
            for d in self.of_type(arm_shapes.MANAGEMENT_LOCK)
        ]

    # -- per-type behaviour ----------------------------------------------------------

    def _arm_error(self, status: int, code: str, message: str) -> Exception:
        return ArmError(status, code, message)

    def _location(self, inputs: JSON) -> str:
        return str(inputs.get("location") or self.location)

    def _resource_group(self, arm_id: str, inputs: JSON) -> JSON:
        return arm_shapes.resource_group(
            arm_id=arm_id, location=self._location(inputs), tags=inputs.get("tags")
        )

    def _user_assigned_identity(self, arm_id: str, inputs: JSON) -> JSON:
        existing = self.get(arm_id)
        props = existing["properties"] if existing else {}
        return arm_shapes.user_assigned_identity(
            arm_id=arm_id,
            location=self._location(inputs),
            tenant_id=self.tenant_id,
            principal_id=props.get("principalId") or self._new_guid(),
            client_id=props.get("clientId") or self._new_guid(),
            tags=inputs.get("tags"),
        )

    def _federated_credential(self, arm_id: str, inputs: JSON) -> JSON:
        parent = rules.federated_credential_parent(arm_id)
        if not self.exists(parent):
            raise ArmError(404, "ResourceNotFound", f"identity {parent} was not found")
        prefix = (parent + rules.FEDERATED_CREDENTIALS_SEGMENT).lower()
        siblings = [d["id"] for k, d in self.resources.items() if k.startswith(prefix)]
        rules.check_federated_credential_write(arm_id, siblings, self._ordering)
        return arm_shapes.federated_identity_credential(
            arm_id=arm_id,
            issuer=inputs["issuer"],
            subject=inputs["subject"],
            audiences=inputs.get("audiences") or ["api://AzureADTokenExchange"],
        )

    def _lock(self, arm_id: str, inputs: JSON) -> JSON:
        rules.check_scope_exists(inputs["scope"], self.subscription_id, self._exists_for_this_write)
        return arm_shapes.management_lock(
            scope=inputs["scope"],
            name=arm_id.rsplit("/", 1)[-1],
            level=inputs.get("level", "CanNotDelete"),
            notes=inputs.get("notes"),
        )

    def _host_identities(
        self, arm_id: str, inputs: JSON, host: str
    ) -> tuple[str | None, dict[str, arm_shapes.AttachedIdentity]]:
        """A host's system principal (kept across updates, None when off) and the
        user-assigned identities it attaches (each must exist: 400 otherwise). Shared by
        every identity-bearing type (VMs, sites, container apps)."""
        existing = self.get(arm_id)
        identity_in = inputs.get("identity") or {}
        try:
            kinds = parse_identity_type(identity_in.get("type") or NONE)
        except ValueError as bad:
            raise ArmError(400, "InvalidParameter", str(bad)) from bad
        system_on = kinds.system
        old_identity = (existing or {}).get("identity") or {}
        system_principal = (
            (old_identity.get("principalId") or self._new_guid()) if system_on else None
        )
        attached: dict[str, arm_shapes.AttachedIdentity] = {}
        for uai_id in identity_in.get("userAssignedIdentities") or []:
            uai = self.get(uai_id)
            if uai is None:
                raise ArmError(
                    400,
                    "FailedIdentityOperation",
                    f"Identity '{uai_id}' was not found; it must exist before {host} can use it",
                )
            props = uai["properties"]
            attached[uai["id"]] = arm_shapes.AttachedIdentity(
                props["principalId"], props["clientId"]
            )
        if kinds.user and not attached:
            raise ArmError(
                400,
                "InvalidParameter",
                "userAssignedIdentities must be given when the identity type is UserAssigned",
            )
        return system_principal, attached

    def _virtual_machine(self, arm_id: str, inputs: JSON) -> JSON:
        existing = self.get(arm_id)
        system_principal, attached = self._host_identities(arm_id, inputs, "a VM")
        os_profile = inputs.get("osProfile") or {}
        linux = os_profile.get("linuxConfiguration") or {}
        storage = inputs.get("storageProfile") or {}
        network = inputs.get("networkProfile") or {}
        return arm_shapes.virtual_machine(
            arm_id=arm_id,
            location=self._location(inputs),
            vm_id=(existing or {}).get("properties", {}).get("vmId") or self._new_guid(),
            identity=arm_shapes.vm_identity(
                system_principal_id=system_principal,
                tenant_id=self.tenant_id,
                user_assigned=attached,
            ),
            vm_size=(inputs.get("hardwareProfile") or {}).get("vmSize", ""),
            admin_username=os_profile.get("adminUsername", ""),
            ssh_public_keys=(linux.get("ssh") or {}).get("publicKeys") or [],
            disable_password_authentication=bool(linux.get("disablePasswordAuthentication", False)),
            network_interface_ids=[n["id"] for n in network.get("networkInterfaces") or []],
            image_reference=storage.get("imageReference"),
            tags=inputs.get("tags"),
            zones=inputs.get("zones"),
        )

    def _role_assignment(self, arm_id: str, inputs: JSON) -> JSON:
        scope = inputs["scope"]
        name = arm_id.rsplit("/", 1)[-1]
        rules.check_role_assignment_ids(name, inputs.get("principalId"))  # type: ignore[arg-type]
        rules.check_scope_exists(scope, self.subscription_id, self._exists_for_this_write)
        role_id = inputs["roleDefinitionId"]
        guid = guid_from_role_reference(role_id)
        if guid is None:
            raise ArmError(400, "InvalidRoleDefinitionId", f"{role_id!r} is not a role ID")
        principal = inputs["principalId"]
        condition = inputs.get("condition")
        role = RoleCatalog.builtin().find(guid)
        if role is not None and arm_condition_refusal(
            role, condition, inputs.get("conditionVersion")
        ):
            raise ArmError(400, INVALID_CONDITION_CODE, INVALID_CONDITION_MESSAGE)
        key = (scope.lower(), principal.lower(), guid)
        for doc in self.of_type(arm_shapes.ROLE_ASSIGNMENT):
            p = doc["properties"]
            same = (
                p["scope"].lower(),
                p["principalId"].lower(),
                guid_from_role_reference(p["roleDefinitionId"]),
            )
            if doc["name"].lower() == name.lower() and same != key:
                raise ArmError(
                    409,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed "
                    "to be updated.",
                )
            if doc["name"].lower() != name.lower() and same == key:
                raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
        existing = self.get(arm_id)
        if existing is None:
            rules.check_role_assignment_limit(len(self.of_type(arm_shapes.ROLE_ASSIGNMENT)))
        created = existing["properties"]["createdOn"] if existing else None
        return arm_shapes.role_assignment(
            scope=scope,
            name=name,
            role_definition_id=role_id,
            principal_id=principal,
            principal_type=inputs.get("principalType") or "ServicePrincipal",
            condition=condition,
            # ARM stores 2.0 when a condition comes without a version (REST page default).
            condition_version=(inputs.get("conditionVersion") or CONDITION_VERSION)
            if condition
            else None,
            description=inputs.get("description"),
            created_by=self.deployer_object_id,
            created_on=created,
        )

    def _generic(self, arm_id: str, inputs: JSON) -> JSON:
        """Any other type: echo the inputs under ``properties`` (no behaviour emulated)."""
        envelope = {"location", "tags", "identity", "sku", "kind", "zones"}
        doc: JSON = {
            "id": arm_id,
            "name": arm_id.rstrip("/").rsplit("/", 1)[-1],
            "type": armid.parse(arm_id, "id").resource_type or "",
        }
        doc.update({k: v for k, v in inputs.items() if k in envelope})
        doc["properties"] = {k: v for k, v in inputs.items() if k not in envelope}
        return doc


def _is_lock(arm_id: str) -> bool:
    return "/providers/microsoft.authorization/locks/" in arm_id.lower()


def _lock_scope(lock_id: str) -> str:
    return lock_id[: lock_id.lower().rfind("/providers/microsoft.authorization/locks/")]


def role_definitions(subscription_id: str) -> list[JSON]:
    """Every built-in role as ARM lists them, for an ARM emulator's roleDefinitions API."""
    return [
        arm_shapes.role_definition(role, subscription_id=subscription_id)
        for role in RoleCatalog.builtin()
    ]
