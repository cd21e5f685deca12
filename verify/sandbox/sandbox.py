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

import functools
import shutil
import ssl
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from components.errors import ConfigError
from verify.sandbox.aks import errors as aks_errors
from verify.sandbox.aks.issuer import ClusterIssuers
from verify.sandbox.appservice.service import TOKEN_PATH as APP_TOKEN_PATH
from verify.sandbox.appservice.service import AppServiceIdentity
from verify.sandbox.arm import cli as arm_cli
from verify.sandbox.arm import errors as arm_errors
from verify.sandbox.arm.model import SandboxArm
from verify.sandbox.arm.service import ArmService
from verify.sandbox.auth import Authenticator
from verify.sandbox.blob.service import BlobService
from verify.sandbox.clients import ARM_SCOPE, ClientHelpers
from verify.sandbox.config import SandboxConfig
from verify.sandbox.entra import errors as entra_errors
from verify.sandbox.entra.service import TokenEndpoint
from verify.sandbox.entra.tokens import TokenIssuer
from verify.sandbox.faults import FaultPlan
from verify.sandbox.graph import errors as graph_errors
from verify.sandbox.graph.service import GraphService
from verify.sandbox.imds.service import ImdsService
from verify.sandbox.keyvault.service import KeyVaultService
from verify.sandbox.listeners import APP, BLOB, IMDS, VAULT, ResourceListeners, resource_kinds
from verify.sandbox.middleware import ServiceMiddleware
from verify.sandbox.oidc import errors as oidc_errors
from verify.sandbox.oidc.service import OidcIssuer
from verify.sandbox.rbac import RbacEvaluator
from verify.sandbox.requestlog import RequestLog
from verify.sandbox.server import EventLoopThread, Listener, Tls, require_loopback
from verify.sandbox.snapshot import SandboxSnapshot
from verify.sandbox.state.snapshot import data_copy, restore_data
from verify.sandbox.state.storage import StorageAccount
from verify.sandbox.state.store import (
    AppHost,
    SandboxState,
    ServicePrincipal,
    Vault,
    VirtualMachine,
)

__all__ = ["ARM_SCOPE", "Sandbox", "SandboxConfig"]


@functools.cache
def _signing_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """Entra's and the CI issuer's signing keys, made once per process: Entra signs every
    tenant's tokens with one published key set, as GitHub does every job's, and an RSA key
    took ~0.05 s of each sandbox's start. Tenants stay apart by ``iss`` and ``tid``."""
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


class Sandbox(ClientHelpers):
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
        entra_key, oidc_key = _signing_keys()
        self.issuer_service = TokenIssuer(
            self.state.tenant_id, self.config.token_lifetime_seconds, key=entra_key
        )
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
        self.oidc = OidcIssuer(key=oidc_key)
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
        self._listeners = ResourceListeners(
            self._lock,
            self._listen,
            resource_kinds(self.state, self._imds, self._appservice, self._keyvault, self._blob),
        )
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
            self._listeners.sync()
        return self

    def stop(self) -> None:
        """Stop every listener (in-flight requests get 2 s), the loop, and remove temp files."""
        with self._lock:
            if self._loop is None:
                return
            listeners = [
                *self._listeners.take_all(),
                self._arm_listener,
                self._issuer_listener,
                self._graph_listener,
                self._oidc_listener,
                self._clusters_listener,
            ]
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

    # ------------------------------------------------------------ snapshots
    def snapshot(self) -> SandboxSnapshot:
        """The sandbox as it is now, for :meth:`restore` (see :mod:`verify.sandbox.snapshot`)."""
        with self._lock:
            return SandboxSnapshot(
                state=self.state.snapshot(),
                arm=data_copy(self.arm, refs=(self, self.state)),
                faults=data_copy(self.faults),
                clusters=data_copy(self.clusters, skip=ClusterIssuers.NOT_SNAPSHOTTED),
                graph_directory_read=self.graph_directory_read,
                ports=self._listeners.ports(),
            )

    def restore(self, snapshot: SandboxSnapshot) -> None:
        """Back to ``snapshot``: state, faults and knobs, every per-resource listener at its
        port; no cached token, no logged request."""
        # Not under the sandbox's lock: a listener stopping here may be finishing a request
        # that needs it.
        self.state.restore(snapshot.state)
        restore_data(self.arm, snapshot.arm, refs=(self, self.state))
        restore_data(self.faults, snapshot.faults)
        restore_data(self.clusters, snapshot.clusters, skip=ClusterIssuers.NOT_SNAPSHOTTED)
        self.graph_directory_read = snapshot.graph_directory_read
        self._imds.clear_tokens()
        self._appservice.clear_tokens()
        if self._loop is not None:
            self._listeners.sync(snapshot.ports)
        self.request_log.clear()

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
        reuse_port: bool = False,
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
        return Listener(
            self._loop,
            wrapped,
            self._host,
            port,
            self._tls if tls else None,
            reuse_port=reuse_port,
        )

    def _on_event(self, kind: str, obj: object) -> None:
        with self._lock:
            if self._loop is None:
                return
        self._listeners.on_event(kind, obj)

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
        listener = self._listeners.get(IMDS, found.id)
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
        listener = self._listeners.get(APP, found.id)
        if listener is None:
            raise ConfigError("app", str(app), "has no identity endpoint", "deploy the app first")
        return listener.url + APP_TOKEN_PATH

    def vault_url(self, vault: Vault | str) -> str:
        """``https://127.0.0.1:<port>/`` of a vault's data plane (by Vault, ARM ID or name)."""
        self._require_started()
        name = vault.name if isinstance(vault, Vault) else vault
        found = self.state.vault(name)
        listener = self._listeners.get(VAULT, found.name) if found else None
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
        listener = self._listeners.get(BLOB, found.name) if found else None
        if listener is None or found is None:
            raise ConfigError(
                "storage account",
                name,
                "is not a storage account of this sandbox",
                "create it with sb.state.create_storage_account",
            )
        return f"{listener.url}/{found.name}"

    def _vault_uri_or_default(self, name: str) -> str:
        listener = self._listeners.get(VAULT, name)
        return listener.url + "/" if listener else f"https://{name}.vault.azure.net/"

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
