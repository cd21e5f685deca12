"""The Sandbox: one object that starts, wires and stops every sandbox service in-process.

    with Sandbox(SandboxConfig()) as sb:
        sb.state.create_resource_group("rg")
        vm = sb.state.create_vm("rg", "vm-a", system_assigned=True)
        os.environ.update(sb.imds_env(vm))          # "be" on that VM
        client = SecretClient(sb.vault_url("kv1"), ManagedIdentityCredential(),
                              **sb.keyvault_client_kwargs())

Each VM gets its own IMDS listener and each vault its own Key Vault listener the moment
it is created (and loses it when deleted); ARM and the issuer's discovery endpoints have
one listener each. Everything binds loopback only.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport

from components.armid import is_guid
from components.errors import ConfigError
from verify.sandbox.aks import errors as aks_errors
from verify.sandbox.aks.issuer import ClusterIssuers
from verify.sandbox.appservice import errors as appservice_errors
from verify.sandbox.appservice.service import TOKEN_PATH as APP_TOKEN_PATH
from verify.sandbox.appservice.service import AppServiceIdentity
from verify.sandbox.arm import cli as arm_cli
from verify.sandbox.arm import errors as arm_errors
from verify.sandbox.arm.model import SandboxArm
from verify.sandbox.arm.service import ArmService
from verify.sandbox.auth import Authenticator
from verify.sandbox.blob import errors as blob_errors
from verify.sandbox.blob.service import BlobService
from verify.sandbox.entra import errors as entra_errors
from verify.sandbox.entra.credentials import AsyncSandboxCredential, SandboxCredential
from verify.sandbox.entra.service import TokenEndpoint
from verify.sandbox.entra.tokens import TokenIssuer
from verify.sandbox.faults import FaultPlan
from verify.sandbox.graph import errors as graph_errors
from verify.sandbox.graph.service import GraphService
from verify.sandbox.imds import errors as imds_errors
from verify.sandbox.imds.service import ImdsService
from verify.sandbox.keyvault import errors as keyvault_errors
from verify.sandbox.keyvault.service import KeyVaultService
from verify.sandbox.oidc import errors as oidc_errors
from verify.sandbox.oidc.service import OidcIssuer
from verify.sandbox.rbac import RbacEvaluator
from verify.sandbox.requestlog import RequestLog
from verify.sandbox.server import (
    EventLoopThread,
    Listener,
    ServiceMiddleware,
    Tls,
    require_loopback,
)
from verify.sandbox.state.storage import StorageAccount
from verify.sandbox.state.store import (
    AppHost,
    SandboxState,
    ServicePrincipal,
    Vault,
    VirtualMachine,
)

ARM_SCOPE = "https://management.azure.com/.default"


@dataclass
class SandboxConfig:
    """How the sandbox runs. Every field has the default a newcomer wants."""

    host: str = "127.0.0.1"
    tenant_id: str | None = None  # random GUID by default
    subscription_id: str | None = None  # random GUID by default
    location: str = "westeurope"
    token_lifetime_seconds: int = 86400  # managed-identity tokens live ~24 h on Azure
    clock_skew_seconds: int = 300  # what resource servers tolerate on nbf/exp
    propagation_delay_seconds: float = 0.0  # RBAC: new assignments apply after this
    deleted_principal_tokens: Literal["accept", "refuse"] = "accept"
    faults_file: str | Path | None = None
    arm_port: int = 0  # 0: any free port
    issuer_port: int = 0
    graph_port: int = 0
    oidc_port: int = 0  # the local GitHub-Actions-shaped OIDC issuer
    # Whether callers may read the directory through Graph (Directory.Read.All granted);
    # False: every Graph call is 403 Authorization_RequestDenied.
    graph_directory_read: bool = True
    workdir: str | Path | None = None  # where the CA PEM is written; a temp dir if None
    operator_role: str = "Owner"  # the operator principal's role on the subscription

    def validate(self) -> None:
        """ConfigError naming the field, before anything is bound or created."""
        require_loopback(self.host)
        for name in ("tenant_id", "subscription_id"):
            value = getattr(self, name)
            if value is not None and not is_guid(value):
                raise ConfigError(
                    name, value, "is not a GUID", "omit it for a random one, or give a GUID"
                )
        if self.token_lifetime_seconds < 60:
            raise ConfigError(
                "token_lifetime_seconds",
                self.token_lifetime_seconds,
                "is below 60",
                "use 60 or more",
            )
        if self.propagation_delay_seconds < 0:
            raise ConfigError(
                "propagation_delay_seconds",
                self.propagation_delay_seconds,
                "is negative",
                "use >= 0",
            )
        if self.deleted_principal_tokens not in ("accept", "refuse"):
            raise ConfigError(
                "deleted_principal_tokens",
                self.deleted_principal_tokens,
                "is not a mode",
                "use 'accept' or 'refuse'",
            )
        if not isinstance(self.graph_directory_read, bool):
            raise ConfigError(
                "graph_directory_read",
                self.graph_directory_read,
                "is not a boolean",
                "use True (callers may read the directory) or False (403 from Graph)",
            )
        for name in ("arm_port", "issuer_port", "graph_port", "oidc_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(
                    name, port, "is not a TCP port", "use 0 (any free port) or 1-65535"
                )


class Sandbox:
    """The local Azure: state plus its HTTP(S) services, started and stopped together."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.config.validate()
        self._host = require_loopback(self.config.host)
        self.faults = FaultPlan()
        self.faults.propagation_delay_seconds = self.config.propagation_delay_seconds
        self.faults.deleted_principal_tokens = self.config.deleted_principal_tokens
        if self.config.faults_file:
            self.faults.load(self.config.faults_file)
        self.request_log = RequestLog()
        self.state = SandboxState(
            (self.config.tenant_id or str(uuid.uuid4())).lower(),
            (self.config.subscription_id or str(uuid.uuid4())).lower(),
            self.config.location,
        )
        self.issuer_service = TokenIssuer(self.state.tenant_id, self.config.token_lifetime_seconds)
        self.rbac = RbacEvaluator(self.state, lambda: self.faults.propagation_delay_seconds)
        skew = self.config.clock_skew_seconds
        #: The one bearer-token check every resource server calls (claims, refuse mode).
        self.authenticator = Authenticator(
            self.issuer_service, self.state, lambda: self.faults.deleted_principal_tokens, skew
        )
        self._imds = ImdsService(self.state, self.issuer_service)
        self._appservice = AppServiceIdentity(self.state, self.issuer_service)
        self._keyvault = KeyVaultService(self.state, self.authenticator, self.rbac)
        self._blob = BlobService(self.state, self.authenticator, self.rbac)
        self._arm = ArmService(
            self.state,
            self.authenticator,
            self.rbac,
            self._vault_uri_or_default,
            cloud=self.cloud_metadata,
            model=lambda: self.arm,
            federated_write_seconds=lambda: self.faults.federated_credential_write_seconds,
        )
        self.graph_directory_read = self.config.graph_directory_read
        self._graph = GraphService(
            self.state,
            self.authenticator,
            directory_read=lambda: self.graph_directory_read,
            own_audiences=self._graph_own_audiences,
        )
        self._token_endpoint = TokenEndpoint(
            self.state, self.issuer_service, ssl_context=self.ssl_context, leeway_seconds=skew
        )
        self.oidc = OidcIssuer()
        #: Every AKS cluster's OIDC issuer (discovery, JWKS, projected service-account tokens).
        self.clusters = ClusterIssuers()
        self.operator: ServicePrincipal = self.state.create_principal("sandbox-operator")
        # The operator's role stands for access held long before this run (as the deployer's
        # is on Azure), so it is dated at the epoch: the propagation delay applies to grants
        # made while the sandbox runs, never to the operator's own access. Dated "now", a
        # delay set right after a fast deploy refused the operator's first ARM call with
        # AuthorizationFailed "access was recently granted".
        self.state.create_role_assignment(
            f"/subscriptions/{self.state.subscription_id}",
            self.config.operator_role,
            self.operator.object_id,
            created_on=0.0,
        )
        #: The sandbox's one ARM model: deploys write into it, the ARM front serves it.
        self.arm = SandboxArm(self)
        self._lock = threading.RLock()
        self._loop: EventLoopThread | None = None
        self._tls: Tls | None = None
        self._tempdir: str | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._arm_listener: Listener | None = None
        self._issuer_listener: Listener | None = None
        self._graph_listener: Listener | None = None
        self._oidc_listener: Listener | None = None
        self._clusters_listener: Listener | None = None
        self._imds_listeners: dict[str, Listener] = {}
        self._app_listeners: dict[str, Listener] = {}
        self._vault_listeners: dict[str, Listener] = {}
        self._blob_listeners: dict[str, Listener] = {}
        self.state.subscribe(self._on_event)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Sandbox:
        with self._lock:
            if self._loop is not None:
                return self
            if self.config.workdir is None:
                self._tempdir = tempfile.mkdtemp(prefix="mikit-sandbox-")
            workdir = Path(self.config.workdir or self._tempdir or ".")
            self._tls = Tls(workdir)
            self._loop = EventLoopThread()
            self._arm_listener = self._listen(
                self._arm.app(),
                "arm",
                "arm",
                arm_errors.fault_error_body,
                port=self.config.arm_port,
                tls=True,
            )
            self._issuer_listener = self._listen(
                self.issuer_service.app(self._token_endpoint.routes()),
                "issuer",
                "issuer",
                entra_errors.fault_error_body,
                port=self.config.issuer_port,
                tls=True,
            )
            self._graph_listener = self._listen(
                self._graph.app(),
                "graph",
                "graph",
                graph_errors.fault_error_body,
                port=self.config.graph_port,
                tls=True,
            )
            self._oidc_listener = self._listen(
                self.oidc.app(),
                "oidc",
                "oidc",
                oidc_errors.fault_error_body,
                port=self.config.oidc_port,
                tls=True,
            )
            self.oidc.url = self._oidc_listener.url
            self._clusters_listener = self._listen(
                self.clusters.app(),
                "aks-oidc",
                "aks-oidc",
                aks_errors.fault_error_body,
                tls=True,
            )
            self.clusters.url = self._clusters_listener.url
            for resource in self._graph_own_audiences():
                self.issuer_service.add_resource(resource)
            for vm in [*self.state.vms(), *self.state.instances()]:
                self._start_imds(vm)
            for app in self.state.apps():
                self._start_app(app)
            for vault in self.state.vaults():
                self._start_vault(vault)
            for account in self.state.storage_accounts():
                self._start_blob(account)
        return self

    def stop(self) -> None:
        """Stop every listener (in-flight requests get 2 s), the loop, and remove temp files."""
        with self._lock:
            if self._loop is None:
                return
            listeners = [
                *self._imds_listeners.values(),
                *self._app_listeners.values(),
                *self._vault_listeners.values(),
                *self._blob_listeners.values(),
                self._arm_listener,
                self._issuer_listener,
                self._graph_listener,
                self._oidc_listener,
                self._clusters_listener,
            ]
            self._imds_listeners.clear()
            self._app_listeners.clear()
            self._vault_listeners.clear()
            self._blob_listeners.clear()
            live = [listener for listener in listeners if listener is not None]
            for listener in live:  # all at once, then wait: shutdowns overlap
                listener.stop(wait=False)
            for listener in live:
                listener.wait()
            self._loop.stop()
            self._loop = None
            self._ssl_context = None
            if self._tempdir:
                shutil.rmtree(self._tempdir, ignore_errors=True)
                self._tempdir = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *args: object) -> None:
        self.stop()

    # ------------------------------------------------------------ listeners
    def _listen(
        self,
        app: Any,
        service: str,
        target: str,
        error_body: Any,
        *,
        port: int = 0,
        tls: bool = False,
        aliases: tuple[str, ...] = (),
    ) -> Listener:
        assert self._loop is not None
        wrapped = ServiceMiddleware(
            app,
            service,
            target,
            faults=self.faults,
            log=self.request_log,
            error_body=error_body,
            aliases=aliases,
        )
        return Listener(self._loop, wrapped, self._host, port, self._tls if tls else None)

    def _start_imds(self, vm: VirtualMachine) -> None:
        with self._lock:
            if self._loop is None or vm.id.lower() in self._imds_listeners:
                return
            self._imds_listeners[vm.id.lower()] = self._listen(
                self._imds.app(vm.id),
                "imds",
                vm.name,
                imds_errors.fault_error_body,
                aliases=(vm.id,),
            )

    def _start_app(self, app: AppHost) -> None:
        """One identity endpoint per app (plain HTTP on loopback, as the platform's is
        reached over the app's own loopback)."""
        with self._lock:
            if self._loop is None or app.id.lower() in self._app_listeners:
                return
            self._app_listeners[app.id.lower()] = self._listen(
                self._appservice.app(app.id),
                "appservice",
                app.name,
                appservice_errors.fault_error_body,
                aliases=(app.id,),
            )

    def _start_vault(self, vault: Vault) -> None:
        with self._lock:
            if self._loop is None or vault.name.lower() in self._vault_listeners:
                return
            self._vault_listeners[vault.name.lower()] = self._listen(
                self._keyvault.app(vault.name),
                "keyvault",
                vault.name,
                keyvault_errors.fault_error_body,
                tls=True,
                aliases=(vault.id,),
            )

    def _start_blob(self, account: StorageAccount) -> None:
        with self._lock:
            if self._loop is None or account.name.lower() in self._blob_listeners:
                return
            self._blob_listeners[account.name.lower()] = self._listen(
                self._blob.app(account.name),
                "blob",
                account.name,
                blob_errors.fault_error_body,
                tls=True,
                aliases=(account.id,),
            )

    def _stop_listener(self, listener: Listener | None) -> None:
        if listener is not None:
            # From a request handler (ARM DELETE) we are on the loop thread: do not wait on it.
            on_loop = threading.current_thread().name == "sandbox-loop"
            listener.stop(wait=not on_loop)

    def _on_event(self, kind: str, obj: object) -> None:
        if kind == "vm_created" and isinstance(obj, VirtualMachine):
            self._start_imds(obj)
        elif kind == "vm_deleted" and isinstance(obj, VirtualMachine):
            with self._lock:
                listener = self._imds_listeners.pop(obj.id.lower(), None)
            self._stop_listener(listener)
        elif kind == "instance_created" and isinstance(obj, VirtualMachine):
            self._start_imds(obj)  # a scale-set instance: its own IMDS, the set's principals
        elif kind == "instance_deleted" and isinstance(obj, VirtualMachine):
            with self._lock:
                listener = self._imds_listeners.pop(obj.id.lower(), None)
        elif kind == "app_created" and isinstance(obj, AppHost):
            self._start_app(obj)
        elif kind == "app_deleted" and isinstance(obj, AppHost):
            with self._lock:
                listener = self._app_listeners.pop(obj.id.lower(), None)
            self._stop_listener(listener)
        elif kind == "vault_created" and isinstance(obj, Vault):
            self._start_vault(obj)
        elif kind == "vault_deleted" and isinstance(obj, Vault):
            with self._lock:
                listener = self._vault_listeners.pop(obj.name.lower(), None)
            self._stop_listener(listener)
        elif kind == "storage_account_created" and isinstance(obj, StorageAccount):
            self._start_blob(obj)
        elif kind == "storage_account_deleted" and isinstance(obj, StorageAccount):
            with self._lock:
                listener = self._blob_listeners.pop(obj.name.lower(), None)
            self._stop_listener(listener)

    def _require_started(self) -> None:
        if self._loop is None:
            raise RuntimeError(
                "the sandbox is not started: use `with Sandbox(...) as sb` or sb.start()"
            )

    # ------------------------------------------------------------ endpoints
    @property
    def tenant_id(self) -> str:
        return self.state.tenant_id

    @property
    def subscription_id(self) -> str:
        return self.state.subscription_id

    @property
    def issuer(self) -> str:
        """The ``iss`` claim of sandbox tokens (``https://sts.windows.net/<tid>/``)."""
        return self.issuer_service.issuer

    @property
    def authority_url(self) -> str:
        """Where the issuer's discovery is served.

        ``<authority_url>/<tid>/.well-known/openid-configuration`` and ``.../discovery/keys``.
        """
        self._require_started()
        assert self._issuer_listener is not None
        return self._issuer_listener.url

    @property
    def jwks_url(self) -> str:
        return f"{self.authority_url}/{self.tenant_id}/discovery/keys"

    @property
    def arm_url(self) -> str:
        self._require_started()
        assert self._arm_listener is not None
        return self._arm_listener.url

    @property
    def graph_url(self) -> str:
        """``https://127.0.0.1:<port>`` of the Microsoft Graph slice (``/v1.0/...``)."""
        self._require_started()
        assert self._graph_listener is not None
        return self._graph_listener.url

    @property
    def oidc_url(self) -> str:
        """``https://127.0.0.1:<port>``: the local CI OIDC issuer (its tokens' ``iss``)."""
        self._require_started()
        return self.oidc.issuer

    @property
    def token_endpoint(self) -> str:
        """Entra's v2.0 token endpoint of this tenant (client credentials, federation)."""
        return f"{self.authority_url}/{self.tenant_id}/oauth2/v2.0/token"

    def cloud_metadata(self) -> dict[str, Any]:
        """What ARM's ``/metadata/endpoints`` says about this sandbox (``az cloud register``)."""
        return arm_cli.cloud_metadata(
            name=arm_cli.SANDBOX_CLOUD_NAME,
            login=self.authority_url,
            arm=self.arm_url,
            graph=self.graph_url,
            keyvault_dns="vault.azure.net",
            storage="core.windows.net",
        )

    def workload_identity_env(self, client_id: str, token_file: str | Path) -> dict[str, str]:
        """What a federated CI job (or AKS pod) sets for azure-identity's
        ``WorkloadIdentityCredential``: this tenant, the identity, the assertion file, and
        the authority host pointing at the sandbox. Trust the CA (``REQUESTS_CA_BUNDLE``)."""
        return {
            "AZURE_AUTHORITY_HOST": self.authority_url,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": client_id,
            "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        }

    def _graph_own_audiences(self) -> tuple[str, ...]:
        """The Graph listener's URL as a resource: what ``az`` asks for when the sandbox is
        registered as a cloud whose ``microsoftGraphResourceId`` is this URL."""
        if self._graph_listener is None:
            return ()
        return (self._graph_listener.url, self._graph_listener.url + "/")

    @property
    def ca_cert_path(self) -> str:
        """The PEM of the sandbox CA: trust it (``connection_verify``) to talk HTTPS to it."""
        self._require_started()
        assert self._tls is not None
        return str(self._tls.ca_cert_path)

    def imds_url(self, vm: VirtualMachine | str) -> str:
        """``http://127.0.0.1:<port>`` of a VM's IMDS (by VM object, ARM ID or name)."""
        self._require_started()
        found = self._find_vm(vm)
        with self._lock:
            listener = self._imds_listeners.get(found.id.lower())
        if listener is None:
            raise ConfigError(
                "vm", str(vm), "has no IMDS listener", "create the VM in sb.state first"
            )
        return listener.url

    def app_identity_endpoint(self, app: AppHost | str) -> str:
        """``http://127.0.0.1:<port>/msi/token``: an app's ``IDENTITY_ENDPOINT`` (by app
        object, ARM ID or name)."""
        self._require_started()
        found = self._find_app(app)
        with self._lock:
            listener = self._app_listeners.get(found.id.lower())
        if listener is None:
            raise ConfigError("app", str(app), "has no identity endpoint", "deploy the app first")
        return listener.url + APP_TOKEN_PATH

    def app_env(self, app: AppHost | str) -> dict[str, str]:
        """The environment App Service / Functions / Container Apps give the app's process
        (``IDENTITY_ENDPOINT``, ``IDENTITY_HEADER``; Container Apps also ``MSI_ENDPOINT``)
        plus the sandbox CA bundle, so code run locally gets exactly that app's tokens."""
        found = self._find_app(app)
        endpoint = self.app_identity_endpoint(found)
        env = {
            "IDENTITY_ENDPOINT": endpoint,
            "IDENTITY_HEADER": found.identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_cert_path,
            "SSL_CERT_FILE": self.ca_cert_path,
        }
        if found.kind == "containerapp":
            env["MSI_ENDPOINT"] = endpoint
        return env

    def _find_app(self, app: AppHost | str) -> AppHost:
        wanted = app.id if isinstance(app, AppHost) else app
        found = (
            self.state.app(wanted)
            if wanted.startswith("/")
            else next((a for a in self.state.apps() if a.name.lower() == wanted.lower()), None)
        )
        if found is None:
            raise ConfigError("app", wanted, "is not an app of this sandbox", "deploy it first")
        return found

    def vault_url(self, vault: Vault | str) -> str:
        """``https://127.0.0.1:<port>/`` of a vault's data plane (by Vault, ARM ID or name)."""
        self._require_started()
        name = vault.name if isinstance(vault, Vault) else vault
        found = self.state.vault(name)
        with self._lock:
            listener = self._vault_listeners.get(found.name.lower()) if found else None
        if listener is None:
            raise ConfigError(
                "vault",
                name,
                "is not a vault of this sandbox",
                "create it with sb.state.create_vault",
            )
        return listener.url + "/"

    def blob_url(self, account: StorageAccount | str) -> str:
        """``https://127.0.0.1:<port>/<account>``: the account URL of its Blob endpoint.

        Path-style, as Microsoft's storage emulator serves it; azure-storage-blob takes
        the account name from the first path segment on a ``127.0.0.1`` host, so this is
        what ``BlobServiceClient(account_url)`` wants, and a blob is
        ``<blob_url>/<container>/<blob path>``.
        """
        self._require_started()
        name = account.name if isinstance(account, StorageAccount) else account
        found = self.state.storage_account(name)
        with self._lock:
            listener = self._blob_listeners.get(found.name.lower()) if found else None
        if listener is None or found is None:
            raise ConfigError(
                "storage account",
                name,
                "is not a storage account of this sandbox",
                "create it with sb.state.create_storage_account",
            )
        return f"{listener.url}/{found.name}"

    def blob_client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments a Blob*Client needs to trust the sandbox CA."""
        return {"connection_verify": self.ca_cert_path}

    def async_blob_client_kwargs(self) -> dict[str, Any]:
        """Like :meth:`blob_client_kwargs` for ``azure.storage.blob.aio`` clients, with a
        pooled transport (see :meth:`async_transport`); call from a coroutine."""
        return {"transport": self.async_transport()}

    def _vault_uri_or_default(self, name: str) -> str:
        with self._lock:
            listener = self._vault_listeners.get(name.lower())
        return listener.url + "/" if listener else f"https://{name}.vault.azure.net/"

    def _find_vm(self, vm: VirtualMachine | str) -> VirtualMachine:
        key = vm.id if isinstance(vm, VirtualMachine) else vm
        hosts = [*self.state.vms(), *self.state.instances()]  # VMs and scale-set instances
        found = (
            (self.state.vm(key) or self.state.instance(key))
            if key.startswith("/")
            else next((v for v in hosts if v.name.lower() == key.lower()), None)
        )
        if found is None:
            raise ConfigError(
                "vm", key, "is not a VM of this sandbox", "create it with sb.state.create_vm"
            )
        return found

    # ------------------------------------------------------------ client helpers
    def imds_env(self, vm: VirtualMachine | str) -> dict[str, str]:
        """Environment that puts a process "on" the VM for azure-identity / msal."""
        return {"AZURE_POD_IDENTITY_AUTHORITY_HOST": self.imds_url(vm)}

    def keyvault_client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments a SecretClient needs for a loopback vault with the sandbox CA."""
        return {"verify_challenge_resource": False, "connection_verify": self.ca_cert_path}

    def ssl_context(self) -> ssl.SSLContext:
        """One client SSL context trusting the sandbox CA (made once, shared)."""
        with self._lock:
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context(cafile=self.ca_cert_path)
            return self._ssl_context

    def async_transport(self) -> AioHttpTransport:
        """An aiohttp transport that trusts the sandbox CA and pools its connections.

        azure-core's aiohttp transport builds a new SSLContext per request when
        ``connection_verify`` is a path, and aiohttp pools connections per context, so
        every request would pay a TLS handshake. Call this from a coroutine (aiohttp
        sessions belong to a running loop); the client closes it when it closes.
        """
        connector = aiohttp.TCPConnector(ssl=self.ssl_context())
        return AioHttpTransport(
            session=aiohttp.ClientSession(connector=connector), session_owner=True
        )

    def async_keyvault_client_kwargs(self) -> dict[str, Any]:
        """Like :meth:`keyvault_client_kwargs` for ``azure.keyvault.secrets.aio`` clients,
        with a pooled transport (see :meth:`async_transport`); call from a coroutine."""
        return {"verify_challenge_resource": False, "transport": self.async_transport()}

    def arm_client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments an azure-mgmt-* client needs to talk to the sandbox's ARM."""
        return {
            "base_url": self.arm_url,
            "credential_scopes": [ARM_SCOPE],
            "connection_verify": self.ca_cert_path,
        }

    def credential(self, principal: ServicePrincipal | None = None) -> SandboxCredential:
        """A TokenCredential for a principal (the operator by default), issuing directly."""
        return SandboxCredential(self.issuer_service, principal or self.operator)

    def async_credential(self, principal: ServicePrincipal | None = None) -> AsyncSandboxCredential:
        return AsyncSandboxCredential(self.issuer_service, principal or self.operator)

    def issue_token(
        self,
        principal: ServicePrincipal | str,
        resource: str,
        lifetime_seconds: int | None = None,
        **claims: Any,
    ) -> str:
        """A signed token for a principal (or its object ID); ``claims`` override any claim."""
        if isinstance(principal, str):
            found = self.state.principal(principal)
            if found is None:
                raise ConfigError(
                    "principal",
                    principal,
                    "is not a principal of this sandbox",
                    "pass an existing one",
                )
            principal = found
        return self.issuer_service.issue(principal, resource, lifetime_seconds, **claims).token

    def endpoints(self) -> dict[str, Any]:
        """Everything a user needs to point clients here (printed by the command)."""
        return {
            "tenant_id": self.tenant_id,
            "subscription_id": self.subscription_id,
            "issuer": self.issuer,
            "authority_url": self.authority_url,
            "jwks_url": self.jwks_url,
            "arm_url": self.arm_url,
            "graph_url": self.graph_url,
            "token_endpoint": self.token_endpoint,
            "oidc_url": self.oidc_url,
            "ca_cert_path": self.ca_cert_path,
            "imds": {vm.name: self.imds_url(vm) for vm in self.state.vms()},
            "apps": {a.name: self.app_identity_endpoint(a) for a in self.state.apps()},
            "vaults": {v.name: self.vault_url(v) for v in self.state.vaults()},
            "storage_accounts": {a.name: self.blob_url(a) for a in self.state.storage_accounts()},
        }
