"""The sandbox's ARM model: the shared in-memory ARM with the sandbox's behaviour attached.

One instance per :class:`~verify.sandbox.Sandbox` (``Sandbox.arm``): every deploy into the
sandbox writes into it (``AzureMocks(sandbox.arm)``) and the sandbox's ARM front
(:mod:`verify.sandbox.arm.service`) reads and writes through it, so the rules of
:mod:`components.arm.rules` and the documents of :mod:`components.arm.shapes` are the same
for the mock runtime and the sandbox's HTTP ARM.

Types with sandbox behaviour (identities and their principals, VMs and IMDS, vaults and
secrets, role assignments and RBAC, storage and Blob, scale sets, clusters, apps, locks,
federated credentials) also create what the behaviour needs in the sandbox's state; the
document the model answers with carries the state's IDs (principal and client IDs, the
vault's loopback URL), so what a stack exports is what IMDS, Key Vault and ARM answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.arm import rules
from components.arm.errors import ArmError
from components.arm.memory import InMemoryArm
from components.arm.memory_storage import default_blob_endpoint
from components.arm.rules import WriteOrdering
from components.arm.shapes import USER_ASSIGNED_IDENTITY
from components.arm.store import ArmStore
from components.arm.tokens import (
    PULUMI_BLOB,
    PULUMI_BLOB_CONTAINER,
    PULUMI_CONTAINER_APP,
    PULUMI_FEDERATED_CREDENTIAL,
    PULUMI_KEY_VAULT,
    PULUMI_KEY_VAULT_SECRET,
    PULUMI_MANAGED_CLUSTER,
    PULUMI_MANAGEMENT_LOCK,
    PULUMI_RESOURCE_GROUP,
    PULUMI_ROLE_ASSIGNMENT,
    PULUMI_SEEDED_BLOB,
    PULUMI_STORAGE_ACCOUNT,
    PULUMI_USER_ASSIGNED_IDENTITY,
    PULUMI_VIRTUAL_MACHINE,
    PULUMI_VIRTUAL_MACHINE_SCALE_SET,
    PULUMI_WEB_APP,
)
from components.identity_type import NONE, parse_identity_type
from verify.sandbox.arm.apps import app_identity_block
from verify.sandbox.arm.service import vm_identity_json
from verify.sandbox.state.records import SandboxError

if TYPE_CHECKING:
    from verify.sandbox.sandbox import Sandbox

__all__ = ["SandboxArm", "asset_bytes"]


def _rg_name(arm_id: str) -> str:
    parts = arm_id.split("/")
    return parts[parts.index("resourceGroups") + 1] if "resourceGroups" in parts else ""


class SandboxArm(InMemoryArm):
    """The sandbox's one ARM model (an :class:`~components.arm.backend.ArmBackend`), creating
    what each type's behaviour needs in the sandbox's state.

    Network resources (VNet, NIC, NSG) have no behaviour the verifier needs and stay in
    the in-memory documents; identities, VMs, vaults, secrets and role assignments are
    created in the sandbox, and their ARM documents carry the sandbox's IDs, so what the
    stack exports is what IMDS, Key Vault and ARM will answer about.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(
            tenant_id=sandbox.tenant_id,
            subscription_id=sandbox.subscription_id,
            location=sandbox.config.location,
            vault_uri=sandbox.vault_url,
            blob_endpoint=self._blob_endpoint,
            deployer_object_id=sandbox.operator.object_id,
        )
        self.deployer_client_id = sandbox.operator.client_id
        self.sandbox = sandbox
        self.state = sandbox.state
        # What the shared ARM model answers for storage (its shapes, or the generic
        # document); the sandbox overrides add the data-plane side and reuse that answer.
        self._arm_answer = {
            token: self._handlers.get(token, self._generic)
            for token in (
                PULUMI_STORAGE_ACCOUNT,
                PULUMI_BLOB_CONTAINER,
                PULUMI_BLOB,
                PULUMI_SEEDED_BLOB,
            )
        }
        self._handlers.update(
            {
                PULUMI_RESOURCE_GROUP: self._sb_resource_group,
                PULUMI_USER_ASSIGNED_IDENTITY: self._sb_identity,
                PULUMI_VIRTUAL_MACHINE: self._sb_vm,
                PULUMI_KEY_VAULT: self._sb_vault,
                PULUMI_KEY_VAULT_SECRET: self._sb_secret,
                PULUMI_ROLE_ASSIGNMENT: self._sb_role_assignment,
                PULUMI_FEDERATED_CREDENTIAL: self._sb_federated_credential,
                PULUMI_STORAGE_ACCOUNT: self._sb_storage_account,
                PULUMI_BLOB_CONTAINER: self._sb_blob_container,
                PULUMI_BLOB: self._sb_blob,
                PULUMI_SEEDED_BLOB: self._sb_seeded_blob,
                PULUMI_VIRTUAL_MACHINE_SCALE_SET: self._sb_scale_set,
                PULUMI_MANAGED_CLUSTER: self._sb_cluster,
                PULUMI_WEB_APP: self._sb_site,
                PULUMI_CONTAINER_APP: self._sb_container_app,
                PULUMI_MANAGEMENT_LOCK: self._sb_lock,
            }
        )
        # A cluster's issuer is one of the sandbox's HTTPS cluster issuers.
        self.cluster_issuer = sandbox.clusters.issuer_url

    def create_or_update(
        self,
        resource_type: str,
        arm_id: str,
        inputs: dict[str, Any],
        *,
        ordering: WriteOrdering | None = None,
    ) -> dict[str, Any]:
        try:
            doc = super().create_or_update(resource_type, arm_id, inputs, ordering=ordering)
        except SandboxError as exc:
            raise ArmError(exc.status, exc.code, exc.message) from exc
        return doc

    def delete(self, arm_id: str) -> dict[str, Any] | None:
        """The model's delete (a lock refuses it), and the behaviour of the type goes with
        the document: an identity's principal is deleted from the directory."""
        with self._mutex:
            doc = self.get(arm_id)
            if doc is None or doc["type"].lower() != USER_ASSIGNED_IDENTITY.lower():
                return super().delete(arm_id)
            rules.check_not_locked(arm_id, self.locks(), "delete")
            self.state.delete_identity(doc["id"])  # the document, principal and credentials
            return doc

    @property
    def store(self) -> ArmStore:
        """The sandbox state's store: the documents here are the state's locks, federated
        credentials and scopes, and are snapshotted with it."""
        return self.state.arm_store

    def locks(self) -> list[tuple[str, str]]:
        """The sandbox's locks (made by this deploy, an earlier one, or through the ARM
        front): one set of locks for the deploy path and the ARM front alike."""
        return self.state.lock_levels()

    def _sb_lock(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        doc = self._lock(arm_id, inputs)  # the shared model's scope check and document
        props = doc.get("properties") or {}
        made = self.state.create_lock(  # the level checked, the one lock document written
            str(inputs["scope"]),
            arm_id.rstrip("/").rsplit("/", 1)[-1],
            str(props.get("level") or inputs.get("level")),
            props.get("notes"),
        )
        return self.resources[made.id.lower()]

    def exists(self, arm_id: str) -> bool:
        """Also what the sandbox holds from before the deploy (a group made by the test, an
        identity made through the ARM front): the scopes the ARM front checks too."""
        return super().exists(arm_id) or self.state.exists(arm_id)

    def _sb_resource_group(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        self.state.create_resource_group(
            arm_id.rstrip("/").rsplit("/", 1)[-1], self._location(inputs)
        )
        return self._resource_group(arm_id, inputs)

    def _sb_identity(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        uai = self.state.create_identity(
            _rg_name(arm_id),
            arm_id.rstrip("/").rsplit("/", 1)[-1],
            self._location(inputs),
            dict(inputs.get("tags") or {}),
        )
        return uai.document()

    def _sb_vm(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        doc = self._virtual_machine(arm_id, inputs)  # validates, builds the non-identity parts
        identity_in = inputs.get("identity") or {}
        system_on = parse_identity_type(identity_in.get("type") or NONE).system
        uais = [str(u) for u in identity_in.get("userAssignedIdentities") or []]
        existing = self.state.vm(arm_id)
        if existing is None:
            vm = self.state.create_vm(
                _rg_name(arm_id),
                arm_id.rstrip("/").rsplit("/", 1)[-1],
                system_assigned=system_on,
                user_assigned=uais,
                location=self._location(inputs),
                tags=dict(inputs.get("tags") or {}),
            )
        else:
            vm = self.state.update_vm_identity(arm_id, system_on, uais)
        identity = vm_identity_json(self.state, vm)
        if identity is None:
            doc.pop("identity", None)
        else:
            doc["identity"] = identity
        doc["properties"]["vmId"] = vm.vm_id
        return doc

    def _sb_vault(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        props = inputs.get("properties") or {}
        self.state.create_vault(
            _rg_name(arm_id),
            arm_id.rstrip("/").rsplit("/", 1)[-1],
            self._location(inputs),
            purge_protection=bool(props.get("enablePurgeProtection", False)),
            # the stack's retention decides recoverableDays, scheduledPurgeDate, recoveryLevel
            soft_delete_retention_days=int(props.get("softDeleteRetentionInDays", 90)),
            # a name held by a soft-deleted vault: 409 ConflictError unless it recovers it
            recover=str(props.get("createMode") or "").lower() == "recover",
        )
        return self._vault(arm_id, inputs)

    def _sb_secret(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        vault_id, name = arm_id.rsplit("/secrets/", 1)
        props = inputs.get("properties") or {}
        doc = self._secret(arm_id, inputs)
        if "value" in props:
            attributes = props.get("attributes") or {}
            version = self.state.set_secret(
                vault_id,
                name,
                str(props["value"]),
                content_type=props.get("contentType"),
                enabled=attributes.get("enabled", True) is not False,
                expires=attributes.get("exp"),
                not_before=attributes.get("nbf"),
            )
            doc["properties"]["secretUriWithVersion"] = (
                doc["properties"]["secretUri"].rstrip("/") + "/" + version.version
            )
        return doc

    def _sb_role_assignment(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        doc = self._role_assignment(arm_id, inputs)  # ARM's conflict rules, same as unit tests
        made = self.state.create_role_assignment(
            inputs["scope"],
            inputs["roleDefinitionId"],
            inputs["principalId"],
            principal_type=inputs.get("principalType") or "ServicePrincipal",
            name=arm_id.rsplit("/", 1)[-1],
            description=inputs.get("description"),
            condition=inputs.get("condition"),
            condition_version=inputs.get("conditionVersion"),
        )
        # The one document, as the state wrote it (the role as ARM echoes it, subscription
        # scoped), made by the deployer.
        written: dict[str, Any] = self.resources[made.id.lower()]
        for field in ("createdBy", "updatedBy"):
            written["properties"][field] = doc["properties"][field]
        return written

    def _sb_federated_credential(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """ARM's rules first (the shared model), then the trust Entra's token endpoint checks."""
        doc = self._federated_credential(arm_id, inputs)
        identity_id, name = arm_id.rsplit("/federatedIdentityCredentials/", 1)
        props = doc["properties"]
        self.state.create_federated_credential(
            identity_id, name, props["issuer"], props["subject"], tuple(props["audiences"])
        )
        return doc

    def _sb_scale_set(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """ARM's answer (the shared model), then the set and its instances in the sandbox,
        whose one system principal the answer carries."""
        doc = self._scale_set(arm_id, inputs)
        identity_in = inputs.get("identity") or {}
        ss = self.state.create_scale_set(
            _rg_name(arm_id),
            arm_id.rstrip("/").rsplit("/", 1)[-1],
            capacity=int(doc["sku"]["capacity"]),
            system_assigned=parse_identity_type(identity_in.get("type") or NONE).system,
            user_assigned=[str(u) for u in identity_in.get("userAssignedIdentities") or []],
            location=self._location(inputs),
            tags=dict(inputs.get("tags") or {}),
            vm_size=str(doc["sku"]["name"] or "Standard_B2ls_v2"),
        )
        # The set's one record is this document: what the sandbox wrote of the set (its
        # unique ID, creation time, principals) goes into the answer that replaces it.
        written = self.state.arm_store.resources[ss.id.lower()]
        if written.get("identity") is None:
            doc.pop("identity", None)
        else:
            doc["identity"] = written["identity"]
        props = doc.setdefault("properties", {})
        for field in ("uniqueId", "timeCreated"):
            props[field] = written["properties"][field]
        profile = props.setdefault("virtualMachineProfile", {})
        profile.setdefault("osProfile", {})["adminUsername"] = ss.admin_username
        doc["sku"] = {**doc.get("sku", {}), "name": ss.vm_size, "capacity": ss.capacity}
        return doc

    def _kubelet_identity(self, node_rg: str, cluster: str, location: str) -> dict[str, str]:
        """AKS's kubelet identity, created in the sandbox (its node resource group)."""
        self.state.create_resource_group(node_rg, location)
        uai = self.state.create_identity(node_rg, f"{cluster}-agentpool", location)
        return {"resourceId": uai.id, "clientId": uai.client_id, "objectId": uai.principal_id}

    def _sb_cluster(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """ARM's answer, then the cluster in the sandbox: its issuer (already served), its
        node pool holding the kubelet identity."""
        doc = self._managed_cluster(arm_id, inputs)
        props = doc["properties"]
        if self.state.cluster(arm_id) is None:
            pools = props.get("agentPoolProfiles") or [{}]
            self.state.create_cluster(
                _rg_name(arm_id),
                doc["name"],
                issuer_url=str((props.get("oidcIssuerProfile") or {}).get("issuerURL") or ""),
                kubelet_identity_id=props["identityProfile"]["kubeletidentity"]["resourceId"],
                node_resource_group=props["nodeResourceGroup"],
                node_count=int(pools[0].get("count") or 1),
                location=doc["location"],
            )
        return doc

    def _sb_site(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        doc = self._site(arm_id, inputs)  # the shared model's rules and shape
        kind = "functionapp" if str(inputs.get("kind", "")).startswith("functionapp") else "webapp"
        return self._sb_app(doc, inputs, kind, hidden=())

    def _sb_container_app(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        doc = self._container_app(arm_id, inputs)
        settings = (inputs.get("configuration") or {}).get("identitySettings") or []
        # Lifecycle None hides an identity from the app's code, Init from its main container.
        hidden = [str(s["identity"]) for s in settings if s.get("lifecycle") in ("None", "Init")]
        return self._sb_app(doc, inputs, "containerapp", hidden=hidden)

    def _sb_app(
        self, doc: dict[str, Any], inputs: dict[str, Any], kind: str, hidden: Sequence[str]
    ) -> dict[str, Any]:
        """The app in the sandbox's state (its principals, its identity endpoint); the
        document's identity block then shows the state's principals."""
        identity_in = inputs.get("identity") or {}
        system_on = parse_identity_type(identity_in.get("type")).system
        app = self.state.create_or_update_app(
            doc["id"],
            kind=kind,
            system_assigned=system_on,
            user_assigned=[str(u) for u in identity_in.get("userAssignedIdentities") or []],
            hidden=hidden,
            tags=dict(inputs.get("tags") or {}),
        )
        block = app_identity_block(self.state, app)
        if block is None:
            doc.pop("identity", None)
        else:
            doc["identity"] = block
        self.state.create_or_update_app(
            app.id,
            kind=kind,
            system_assigned=app.system_principal_id is not None,
            user_assigned=app.user_assigned,
            hidden=hidden,
            tags=app.tags,
            document=doc,
            settings=self.app_settings.get(doc["id"].lower(), {}),
        )
        return doc

    def key_vault_reference_statuses(
        self,
        site_id: str,
        reads_secret: Any = None,
        *,
        any_host: bool = True,
    ) -> list[dict[str, Any]]:
        """Statuses decided by the sandbox's RBAC evaluator, the one Key Vault enforces."""

        def reads(principal_id: str, secret_id: str) -> bool:
            if self.state.principal(principal_id) is None:
                return False  # a deleted identity gets no token
            return self.sandbox.rbac.check_data_action(
                principal_id, "Microsoft.KeyVault/vaults/secrets/getSecret/action", secret_id
            ).allowed

        return super().key_vault_reference_statuses(
            site_id, reads_secret or reads, any_host=any_host
        )

    def _blob_endpoint(self, account: str) -> str:
        """The account's loopback Blob endpoint once it exists in the sandbox (path-style,
        ``https://127.0.0.1:<port>/<account>/``), as the vault URI is its listener's."""
        if self.sandbox.state.storage_account(account) is None:
            return default_blob_endpoint(account)
        return self.sandbox.blob_url(account) + "/"

    def _sb_storage_account(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        doc = self._arm_answer[PULUMI_STORAGE_ACCOUNT](arm_id, inputs)  # ARM's validation first
        account = self.state.create_storage_account(
            _rg_name(arm_id) or str(inputs["resourceGroupName"]),
            str(inputs.get("accountName") or arm_id.rstrip("/").rsplit("/", 1)[-1]),
            self._location(inputs),
            # ARM's default when the property is not sent is "allowed" (null = true).
            allow_shared_key_access=inputs.get("allowSharedKeyAccess") is not False,
            tags=dict(inputs.get("tags") or {}),
        )
        # Built before the account had its listener: point it at the listener now.
        doc["properties"]["primaryEndpoints"]["blob"] = self._blob_endpoint(account.name)
        return doc

    def _sb_blob_container(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        doc = self._arm_answer[PULUMI_BLOB_CONTAINER](arm_id, inputs)
        self.state.create_container(
            str(inputs["accountName"]),
            str(inputs.get("containerName") or arm_id.rstrip("/").rsplit("/", 1)[-1]),
        )
        return doc

    def _sb_blob(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """azure-native's Blob: the shared model refuses it on a shared-key-off account
        (it writes with the account key), as Azure does."""
        return self._store_blob(self._arm_answer[PULUMI_BLOB](arm_id, inputs), inputs)

    def _sb_seeded_blob(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """The toolkit's SeededBlob: an Entra ID upload carrying the index tags."""
        return self._store_blob(self._arm_answer[PULUMI_SEEDED_BLOB](arm_id, inputs), inputs)

    def _store_blob(self, doc: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        arm_id = str(doc["id"])
        tags = inputs.get("tags")
        self.state.put_blob(
            str(inputs["accountName"]),
            str(inputs["containerName"]),
            str(inputs.get("blobName") or arm_id.split("/blobs/", 1)[-1]),
            asset_bytes(inputs.get("source")),
            content_type=inputs.get("contentType"),
            tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else None,
        )
        return doc


def asset_bytes(source: Any) -> bytes:
    """The content of a Blob's ``source`` as the mock runtime hands it over.

    A ``pulumi.StringAsset`` arrives as the asset object (``.text``), a ``FileAsset`` as
    one with ``.path``; a plain string or ``{"text": ...}`` are accepted too, and no
    source is an empty blob, as ARM makes it. Anything else is an ArmError naming the
    input, rather than an empty blob that would make a fingerprint check fail for an
    unrelated reason.
    """
    if source is None:
        return b""
    text = getattr(source, "text", None)
    if text is None and isinstance(source, dict):
        text = source.get("text")
    if text is None and isinstance(source, str):
        text = source
    if isinstance(text, str):
        return text.encode("utf-8")
    path = getattr(source, "path", None)
    if isinstance(path, str):
        return Path(path).read_bytes()
    raise ArmError(
        400,
        "InvalidBlobSource",
        f"Blob input 'source' is {type(source).__name__}; give a pulumi.StringAsset or FileAsset",
    )
