"""What a client needs to talk to a started sandbox: credentials, tokens, CA trust and the
keyword arguments the Azure SDK clients take (a mixin of :class:`verify.sandbox.Sandbox`)."""

from __future__ import annotations

import ssl
import threading
from pathlib import Path
from typing import Any

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport

from components.errors import ConfigError
from verify.sandbox.entra.credentials import AsyncSandboxCredential, SandboxCredential
from verify.sandbox.entra.tokens import TokenIssuer
from verify.sandbox.state.store import AppHost, SandboxState, ServicePrincipal, VirtualMachine

ARM_SCOPE = "https://management.azure.com/.default"


class ClientHelpers:
    """Client-side helpers over the sandbox's endpoints (which the sandbox provides)."""

    state: SandboxState
    issuer_service: TokenIssuer
    operator: ServicePrincipal
    _lock: threading.RLock
    _ssl_context: ssl.SSLContext | None

    @property
    def ca_cert_path(self) -> str:
        raise NotImplementedError

    @property
    def arm_url(self) -> str:
        raise NotImplementedError

    @property
    def authority_url(self) -> str:
        raise NotImplementedError

    @property
    def tenant_id(self) -> str:
        raise NotImplementedError

    def imds_url(self, vm: VirtualMachine | str) -> str:
        raise NotImplementedError

    def app_identity_endpoint(self, app: AppHost | str) -> str:
        raise NotImplementedError

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

    def blob_client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments a Blob*Client needs to trust the sandbox CA."""
        return {"connection_verify": self.ca_cert_path}

    def async_blob_client_kwargs(self) -> dict[str, Any]:
        """Like :meth:`blob_client_kwargs` for ``azure.storage.blob.aio`` clients, with a
        pooled transport (see :meth:`async_transport`); call from a coroutine."""
        return {"transport": self.async_transport()}

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

    def _find_vm(self, vm: VirtualMachine | str) -> VirtualMachine:
        key = vm.id if isinstance(vm, VirtualMachine) else vm
        if key.startswith("/"):
            found = self.state.vm(key) or self.state.instance(key)
        else:  # by name: every VM and scale-set instance is read (only for a name)
            hosts = [*self.state.vms(), *self.state.instances()]
            found = next((v for v in hosts if v.name.lower() == key.lower()), None)
        if found is None:
            raise ConfigError(
                "vm", key, "is not a VM of this sandbox", "create it with sb.state.create_vm"
            )
        return found
