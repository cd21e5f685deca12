"""The sandbox target: deploy the real stack program into the local sandbox and verify it.

* Deploy: ``__main__.py`` runs in Pulumi's mock runtime (``components.mockruntime.run_program``)
  with ``AzureMocks(SandboxBackend(sb))``; the backend creates every identity, VM, vault,
  secret and role assignment in the sandbox's state, so the outputs carry the sandbox's
  principal and client IDs and the vault's loopback URL. It is the very program
  ``pulumi up`` runs, with the sandbox stack's config.
* Probe: each VM's probe is a separate process whose environment points azure-identity at
  that VM's IMDS listener (``AZURE_POD_IDENTITY_AUTHORITY_HOST``) and trusts the sandbox
  CA, as if it ran on the VM. By default the process is forked from a fork server that has
  already imported azure-identity and azure-keyvault-secrets (see
  :func:`verify.targets.probing.run_probe_forked`); ``probe_launcher="subprocess"`` starts
  ``sys.executable verify/probe.py`` instead, the file exactly as Run Command runs it.
* Change: through the sandbox's ARM slice with the real azure-mgmt-* clients, i.e. the same
  :class:`~verify.targets.arm.ArmOperations` code the Azure target uses.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient

from components.arm.errors import ArmError
from components.arm.memory import InMemoryArm
from components.arm.memory_storage import default_blob_endpoint
from components.arm.rules import WriteOrdering
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
from components.mockruntime import AzureMocks, load_stack_config, run_program
from verify.model import ProbeResult, StackOutputs, load_outputs
from verify.probe import parse_output
from verify.sandbox import Sandbox, SandboxConfig, SandboxError
from verify.sandbox.aks.workloads import pod_environment
from verify.sandbox.arm.apps import app_identity_block
from verify.sandbox.arm.service import identity_json, vm_identity_json
from verify.stacks import PACKAGED_SANDBOX_STACK, PROGRAM
from verify.targets.arm import ArmOperations
from verify.targets.base import ProbeOutcome, ProbeRequest
from verify.targets.directory import DirectoryClient
from verify.targets.probing import (
    ProbeTimeoutError,
    build_spec,
    fan_out,
    run_probe_forked,
    run_probe_subprocess,
    start_forkserver,
)

#: The stack program and the sandbox stack: the repository's, or the copies in the wheel.
STACK_CONFIG = PACKAGED_SANDBOX_STACK
#: Environment variables that would steer azure-identity away from "this VM's IMDS".
_IDENTITY_ENV_PREFIXES = ("AZURE_", "IDENTITY_", "MSI_", "IMDS_")
#: How a probe process starts: forked from a pre-warmed fork server (default), or a new
#: interpreter running probe.py as a file, exactly as Run Command does on a VM.
ProbeLauncher = Literal["forkserver", "subprocess"]
# The fork-server launch reuses multiprocessing internals checked on CPython 3.11-3.13;
# on a newer interpreter fall back to a plain subprocess until it is checked there too.
DEFAULT_PROBE_LAUNCHER: ProbeLauncher = "forkserver" if sys.version_info < (3, 14) else "subprocess"


def _rg_name(arm_id: str) -> str:
    parts = arm_id.split("/")
    return parts[parts.index("resourceGroups") + 1] if "resourceGroups" in parts else ""


class SandboxBackend(InMemoryArm):
    """components.arm.memory.ArmBackend, creating resources in the sandbox's state.

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
        #: Types whose existence the sandbox's state answers itself; any other resource a
        #: deploy creates is noted there as a scope, so a role assignment made through the
        #: ARM front can target it too.
        self._modelled = frozenset(
            {
                PULUMI_RESOURCE_GROUP,
                PULUMI_USER_ASSIGNED_IDENTITY,
                PULUMI_VIRTUAL_MACHINE,
                PULUMI_KEY_VAULT,
                PULUMI_KEY_VAULT_SECRET,
                PULUMI_FEDERATED_CREDENTIAL,
                PULUMI_STORAGE_ACCOUNT,
                PULUMI_BLOB_CONTAINER,
            }
        )

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
        if resource_type not in self._modelled:
            self.state.note_resource(doc["id"])
        return doc

    def locks(self) -> list[tuple[str, str]]:
        """The sandbox's locks (made by this deploy, an earlier one, or through the ARM
        front): one set of locks for the deploy path and the ARM front alike."""
        return self.state.lock_levels()

    def _sb_lock(self, arm_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        doc = self._lock(arm_id, inputs)  # the shared model's scope check and document
        props = doc.get("properties") or {}
        self.state.create_lock(
            str(inputs["scope"]),
            arm_id.rstrip("/").rsplit("/", 1)[-1],
            str(props.get("level") or inputs.get("level")),
            props.get("notes"),
        )
        return doc

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
        return identity_json(uai)

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
        self.state.create_role_assignment(
            inputs["scope"],
            inputs["roleDefinitionId"],
            inputs["principalId"],
            principal_type=inputs.get("principalType") or "ServicePrincipal",
            name=arm_id.rsplit("/", 1)[-1],
            description=inputs.get("description"),
            condition=inputs.get("condition"),
            condition_version=inputs.get("conditionVersion"),
        )
        return doc

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
        if ss.system_principal_id and doc.get("identity"):
            doc["identity"]["principalId"] = ss.system_principal_id
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


def deploy(
    sandbox: Sandbox,
    *,
    program: Path = PROGRAM,
    stack_config: Path = STACK_CONFIG,
    stack: str = "sandbox",
    config_overrides: Mapping[str, Any] | None = None,
    backend: SandboxBackend | None = None,
) -> dict[str, Any]:
    """Run the stack program in the mock runtime against the sandbox; return its exports.

    ``backend``: the deploy backend to use (to ask it afterwards, e.g. for Key Vault
    reference statuses); a new one by default."""
    config = dict(load_stack_config(stack_config))
    config.update(config_overrides or {})
    mocks = AzureMocks(backend or SandboxBackend(sandbox))
    outputs = run_program(program, config, mocks=mocks, stack=stack)
    register_workloads(sandbox, outputs)
    return outputs


def register_workloads(sandbox: Sandbox, outputs: Mapping[str, Any]) -> None:
    """The clusters' workloads, as Kubernetes holds them once the program applied its
    service accounts: each with the client ID its service account is annotated with.
    (The mock runtime hands Kubernetes objects to no backend; the stack's ``clusters``
    output carries the same declarations.)"""
    for cluster in (outputs.get("clusters") or {}).values():
        for key, workload in (cluster.get("workloads") or {}).items():
            sandbox.state.add_workload(
                str(cluster["id"]),
                str(key),
                str(workload["namespace"]),
                str(workload["service_account"]),
                workload.get("client_id"),
            )


def probe_environment(imds_url: str) -> dict[str, str]:
    """The child's environment: ours minus anything that picks another identity source."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_IDENTITY_ENV_PREFIXES)}
    env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = imds_url
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


#: ``verify check``'s RBAC propagation wait on the sandbox: its propagation delay is a
#: knob (0 by default, a few seconds in tests and fault files), so a small bound keeps a
#: broken grant from costing minutes while covering every delay the tests set.
SANDBOX_PROPAGATION_WAIT = 15.0
#: The Microsoft.Web api-version the app reads use (sites, configreferences).
APP_API_VERSION = "2024-11-01"


class SandboxTarget(ArmOperations):
    """The local sandbox, deployed with the stack program: probe by process, change by ARM."""

    name = "sandbox"
    default_propagation_wait = SANDBOX_PROPAGATION_WAIT

    def __init__(
        self,
        *,
        config: SandboxConfig | None = None,
        sandbox: Sandbox | None = None,
        program: Path = PROGRAM,
        stack_config: Path = STACK_CONFIG,
        stack: str = "sandbox",
        config_overrides: Mapping[str, Any] | None = None,
        max_parallel: int | None = None,
        probe_launcher: ProbeLauncher = DEFAULT_PROBE_LAUNCHER,
    ) -> None:
        if probe_launcher not in ("forkserver", "subprocess"):
            raise ValueError(f"probe_launcher {probe_launcher!r}: use 'forkserver' or 'subprocess'")
        self.probe_launcher = probe_launcher
        self.timings: dict[str, float] = {}
        if probe_launcher == "forkserver":
            start_forkserver()  # its imports overlap the sandbox's start and the deploy
        started = time.monotonic()
        self._owns_sandbox = sandbox is None
        self.sandbox = sandbox or Sandbox(config or SandboxConfig()).start()
        self.timings["sandbox start"] = time.monotonic() - started
        try:
            started = time.monotonic()
            raw = deploy(
                self.sandbox,
                program=program,
                stack_config=stack_config,
                stack=stack,
                config_overrides=config_overrides,
            )
            self._outputs: StackOutputs = load_outputs(raw, f"stack program {program}")
            self.timings["deploy"] = time.monotonic() - started
            sb = self.sandbox
            kwargs = sb.arm_client_kwargs()
            credential = sb.credential()
            super().__init__(
                ComputeManagementClient(credential, sb.subscription_id, **kwargs),
                ManagedServiceIdentityClient(credential, sb.subscription_id, **kwargs),
                AuthorizationManagementClient(credential, sb.subscription_id, **kwargs),
                polling_interval=0.0,
                directory=DirectoryClient(
                    credential, sb.graph_url, connection_verify=sb.ca_cert_path
                ),
            )
        except BaseException:
            self._stop_owned()
            raise
        self.max_parallel = max_parallel or max(2, min(8, (os.cpu_count() or 2) * 2))
        self._token_root = tempfile.mkdtemp(prefix="mikit-probe-tokens-")

    def outputs(self) -> StackOutputs:
        return self._outputs

    # -- apps --------------------------------------------------------------------------
    # Reads go through the sandbox's ARM front (a site and its Key Vault reference
    # statuses, as on Azure); its ARM serves no writes of apps yet, so a delete or an
    # identity change is made on the sandbox's state, which the front then reads.

    def _app_id(self, app: str) -> str:
        return self._outputs.apps[app.removeprefix("app:")].id

    def _arm_get(self, path: str, api_version: str) -> tuple[int, Any]:
        import requests  # noqa: PLC0415 -- only the app reads need it

        sb = self.sandbox
        token = sb.credential().get_token("https://management.azure.com/.default").token
        response = requests.get(
            f"{sb.arm_url}{path}",
            params={"api-version": api_version},
            headers={"Authorization": f"Bearer {token}"},
            verify=sb.ca_cert_path,
            timeout=30,
        )
        return response.status_code, response.json() if response.content else None

    def app_exists(self, app: str) -> bool:
        status, _ = self._arm_get(self._app_id(app), APP_API_VERSION)
        return status == 200

    def delete_app(self, app: str) -> None:
        """Delete the app (its system identity goes with it, its assignments stay)."""
        self.sandbox.state.delete_app(self._app_id(app))

    def set_app_system_identity(self, app: str, enabled: bool) -> None:
        """Turn the app's system identity on or off, keeping its user-assigned ones."""
        self.sandbox.state.set_app_system_identity(self._app_id(app), enabled)

    def key_vault_reference_statuses(self, app: str) -> dict[str, str]:
        """``GET .../sites/{app}/config/configreferences/appsettings``: setting -> status."""
        path = f"{self._app_id(app)}/config/configreferences/appsettings"
        status, body = self._arm_get(path, APP_API_VERSION)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body}")
        return {ref["name"]: ref["properties"]["status"] for ref in body.get("value") or []}

    # -- probing ---------------------------------------------------------------------

    def _token_dir(self, vm: str) -> str:
        """Per-VM token stash, standing in for /var/lib/mikit-probe on that VM."""
        return os.path.join(self._token_root, vm)

    def _host_environments(self, request: ProbeRequest) -> list[tuple[str, dict[str, str]]]:
        """Where the probe runs, as (where, environment): a VM's IMDS; each instance of a
        scale set (in instance-ID order: every instance holds the set's identities, so each
        must prove the same cells, as on Azure); or a pod of a cluster workload (what the
        webhook injects, its token file, its node's IMDS); or an app's identity endpoint."""
        sb = self.sandbox
        if request.host_kind == "vm":
            vm = self._outputs.vms[request.host]
            return [(request.host, probe_environment(sb.imds_url(vm.id)))]
        if request.host_kind == "scaleset":
            scale_set = self._outputs.scale_set_hosts[request.host]
            instances = sorted(
                sb.state.instances(scale_set.id), key=lambda i: int(i.id.rsplit("/", 1)[-1])
            )
            if request.instances:  # only the named ones (ARM instance IDs), each must exist
                by_id = {i.id.rsplit("/", 1)[-1]: i for i in instances}
                missing = [n for n in request.instances if n not in by_id]
                if missing:
                    raise RuntimeError(f"probe on {request.host}: no instance {missing[0]}")
                instances = [by_id[n] for n in request.instances]
            if not instances:
                raise RuntimeError(f"probe on {request.host}: the scale set has no instance")
            return [
                (
                    f"{request.host} instance {i.id.rsplit('/', 1)[-1]}",
                    probe_environment(sb.imds_url(i)),
                )
                for i in instances
            ]
        if request.host_kind == "app":
            return [(request.host, self._app_environment(request.host))]
        workload = sb.state.workload(request.host.removeprefix("workload:"))
        if workload is None:
            raise RuntimeError(f"probe on {request.host}: no such workload in the sandbox")
        pod = pod_environment(sb, workload, Path(self._token_dir(request.host)) / "pod")
        env = probe_environment(pod.imds)
        env.update(pod.env())  # the webhook's variables and the sandbox CA for its authority
        return [(request.host, env)]

    def _app_environment(self, host: str) -> dict[str, str]:
        """What App Service, Functions or Container Apps give the app's process: its
        identity endpoint and header (Container Apps: ``MSI_ENDPOINT`` too), the client ID
        of the identity its code uses where the stack sets one (``AZURE_CLIENT_ID``), and
        the sandbox CA; no IMDS, as on the platform."""
        app = self._outputs.apps.get(host.removeprefix("app:"))
        if app is None or self.sandbox.state.app(app.id) is None:
            raise RuntimeError(f"probe on {host}: no such app in the sandbox")
        env = {k: v for k, v in os.environ.items() if not k.startswith(_IDENTITY_ENV_PREFIXES)}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(self.sandbox.app_env(app.id))
        default = self._outputs.identities.get(app.default_identity or "")
        if default is not None:
            env["AZURE_CLIENT_ID"] = default.client_id
        return env

    def _probe_one(self, request: ProbeRequest) -> ProbeResult:
        """The host's result; for a scale set the first instance whose probe did not pass
        (else the first instance's)."""
        spec = build_spec(
            self._outputs,
            request,
            ca_bundle=self.sandbox.ca_cert_path,
            verify_challenge_resource=False,
            token_dir=self._token_dir(request.host),
        )
        launch = run_probe_forked if self.probe_launcher == "forkserver" else run_probe_subprocess
        results: list[ProbeResult] = []
        for where, env in self._host_environments(request):
            try:
                done = launch(spec, env, request.budget + 15)
            except ProbeTimeoutError as exc:
                raise RuntimeError(f"probe on {where}: {exc}") from exc
            try:
                results.append(ProbeResult.model_validate(parse_output(done.stdout)))
            except ValueError as exc:
                raise RuntimeError(
                    f"probe on {where} exited {done.returncode} without a result: "
                    f"{done.stderr.strip()[-400:]}"
                ) from exc
        return next((r for r in results if not r.passed), results[0])

    def probe(self, requests: Sequence[ProbeRequest]) -> Mapping[str, ProbeOutcome]:
        return fan_out(self._probe_one, requests, self.max_parallel)

    # -- teardown ---------------------------------------------------------------------

    def _stop_owned(self) -> None:
        if self._owns_sandbox:
            self.sandbox.stop()

    def close(self) -> None:
        for client in (self.compute, self.msi, self.authorization, self.directory):
            if client is not None:
                client.close()
        shutil.rmtree(self._token_root, ignore_errors=True)
        self._stop_owned()

    def __enter__(self) -> SandboxTarget:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()
