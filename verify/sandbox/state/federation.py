"""How a principal proves itself to Entra's token endpoint: federated, secret, certificate.

Three kinds of client credential, one concept (what :mod:`verify.sandbox.entra.service` checks a
token request against):

- **federated identity credentials** of a user-assigned identity (ARM child resource
  ``.../userAssignedIdentities/<id>/federatedIdentityCredentials/<name>``): an external
  OIDC issuer, one subject and its audiences that Entra trusts to act as the identity, so
  a CI job exchanges its OIDC token for the identity's access token with no secret;
- **client secrets** of an application service principal: kept as SHA-256 digests only,
  so the state never holds a usable secret after handing it out once;
- **client certificates** of an application service principal: the public certificate,
  found by its SHA-1 (``x5t``) or SHA-256 (``x5t#S256``) thumbprint.

A user-assigned identity's federated credentials go with it when it is deleted (ARM deletes
child resources; :meth:`LocksMixin._drop_documents`), so an identity re-created under the
same name starts with none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from components.arm import shapes as arm_shapes
from components.arm.store import ArmStore
from verify.sandbox.state.base import StateBase
from verify.sandbox.state.records import SandboxError, ServicePrincipal, UserAssignedIdentity, key

FIC_SEGMENT = "/federatedIdentityCredentials/"


@dataclass(frozen=True)
class FederatedCredential:
    """One federated identity credential of a user-assigned identity."""

    id: str  # ARM ID: <identity id>/federatedIdentityCredentials/<name>
    name: str
    identity_id: str
    issuer: str
    subject: str
    audiences: tuple[str, ...]


@dataclass(frozen=True)
class ClientCertificate:
    """An application's public certificate, as Entra stores a ``keyCredential``."""

    client_id: str
    certificate: x509.Certificate

    @property
    def x5t(self) -> str:
        """Base64url SHA-1 thumbprint: the ``x5t`` header of an assertion it signed."""
        digest = self.certificate.fingerprint(hashes.SHA1())  # noqa: S303 - x5t is SHA-1 by spec
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    @property
    def x5t_s256(self) -> str:
        """Base64url SHA-256 thumbprint: the ``x5t#S256`` header (msal's default)."""
        digest = self.certificate.fingerprint(hashes.SHA256())
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class ClientCredentialsMixin(StateBase):
    """Federated credentials, client secrets and client certificates.

    A federated credential is the ARM model's document
    (``.../federatedIdentityCredentials/<name>`` in :attr:`arm_store`, kept by
    :class:`~verify.sandbox.state.locks.LocksMixin`); the records here are read from it, so a
    credential written by a deploy, through the ARM front or here is the one Entra checks.
    """

    arm_store: ArmStore

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._secret_digests: dict[str, list[bytes]] = {}
        self._certificates: dict[str, list[ClientCertificate]] = {}

    # ---------------------------------------------- federated identity credentials
    def create_federated_credential(
        self,
        identity_id: str,
        name: str,
        issuer: str,
        subject: str,
        audiences: tuple[str, ...] | list[str] = ("api://AzureADTokenExchange",),
    ) -> FederatedCredential:
        """Create or replace (PUT) a federated credential below a user-assigned identity.

        The shape rules are the ones every writer shares: the parent must exist, the issuer
        must be an ``https`` URL, the subject non-empty, exactly one audience (Entra accepts
        one). Write-order rules (20 per identity, concurrent writes, locks) belong to the ARM
        model, which calls this once it has accepted the write.
        """
        identity = self._identity_for(identity_id)
        parsed = urlparse(issuer)
        if parsed.scheme != "https" or not parsed.netloc:
            raise SandboxError(400, "BadRequest", f"The issuer '{issuer}' must be an https URL.")
        if not subject.strip():
            raise SandboxError(400, "BadRequest", "The subject must not be empty.")
        audiences = tuple(audiences)
        if len(audiences) != 1 or not audiences[0].strip():
            raise SandboxError(
                400, "BadRequest", "Exactly one audience is allowed (api://AzureADTokenExchange)."
            )
        doc = arm_shapes.federated_identity_credential(
            arm_id=f"{identity.id}{FIC_SEGMENT}{name}",
            issuer=issuer,
            subject=subject,
            audiences=audiences,
        )
        with self._lock:
            self.arm_store.resources[key(doc["id"])] = doc
        return _credential(doc)

    def federated_credential(self, fic_id: str) -> FederatedCredential | None:
        with self._lock:
            doc = self.arm_store.resources.get(key(fic_id))
        return _credential(doc) if doc is not None and _is_credential(doc) else None

    def federated_credentials(self, identity_id: str | None = None) -> list[FederatedCredential]:
        with self._lock:
            docs = list(self.arm_store.resources.values())
        found = [_credential(d) for d in docs if _is_credential(d)]
        if identity_id is None:
            return found
        return [f for f in found if key(f.identity_id) == key(identity_id)]

    def delete_federated_credential(self, fic_id: str) -> FederatedCredential | None:
        with self._lock:
            found = self.federated_credential(fic_id)
            if found is not None:
                del self.arm_store.resources[key(fic_id)]
            return found

    def federated_credentials_of_client(self, client_id: str) -> list[FederatedCredential]:
        """The federated credentials Entra considers for a token request by ``client_id``."""
        identity = next(
            (u for u in self._user_assigned() if u.client_id == client_id.lower()), None
        )
        return [] if identity is None else self.federated_credentials(identity.id)

    # ----------------------------------------------------------- client secrets
    def add_client_secret(self, principal: ServicePrincipal) -> str:
        """A new client secret for an application principal; returned once, stored hashed."""
        self._require_application(principal)
        value = secrets.token_urlsafe(30)
        with self._lock:
            self._secret_digests.setdefault(principal.client_id, []).append(_digest(value))
        return value

    def check_client_secret(self, client_id: str, value: str) -> bool:
        """Whether ``value`` is one of the client's secrets (constant-time comparison)."""
        with self._lock:
            digests = list(self._secret_digests.get(client_id.lower(), []))
        candidate = _digest(value)
        return any(hmac.compare_digest(candidate, d) for d in digests)

    # ------------------------------------------------------ client certificates
    def add_client_certificate(
        self, principal: ServicePrincipal, certificate_pem: bytes | str
    ) -> ClientCertificate:
        """Register an application's public certificate (PEM) for certificate assertions."""
        self._require_application(principal)
        data = certificate_pem.encode() if isinstance(certificate_pem, str) else certificate_pem
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError as exc:
            raise SandboxError(
                400, "BadRequest", "The key credential is not a PEM certificate."
            ) from exc
        entry = ClientCertificate(principal.client_id, cert)
        with self._lock:
            self._certificates.setdefault(principal.client_id, []).append(entry)
        return entry

    def client_certificates(self, client_id: str) -> list[ClientCertificate]:
        with self._lock:
            return list(self._certificates.get(client_id.lower(), []))

    # ------------------------------------------------------------------ helpers
    def _identity_for(self, identity_id: str) -> UserAssignedIdentity:
        found = next((u for u in self._user_assigned() if key(u.id) == key(identity_id)), None)
        if found is None:
            raise SandboxError(
                404,
                "ResourceNotFound",
                f"The user-assigned identity '{identity_id}' was not found.",
            )
        return found

    def _user_assigned(self) -> list[UserAssignedIdentity]:
        return self.identities()

    def identities(self) -> list[UserAssignedIdentity]:
        """Provided by the state that holds identities (:class:`SandboxState`)."""
        raise NotImplementedError

    @staticmethod
    def _require_application(principal: ServicePrincipal) -> None:
        if principal.kind != "application":
            raise SandboxError(
                400,
                "BadRequest",
                "Managed identities have no client secrets or certificates; "
                "use a federated identity credential instead.",
            )


def _is_credential(doc: dict[str, Any]) -> bool:
    return str(doc.get("type", "")).lower() == arm_shapes.FEDERATED_CREDENTIAL.lower()


def _credential(doc: dict[str, Any]) -> FederatedCredential:
    """The record Entra's token endpoint reads, from the ARM document."""
    props = doc["properties"]
    cut = doc["id"].lower().rfind(FIC_SEGMENT.lower())
    identity_id, name = doc["id"][:cut], doc["id"][cut + len(FIC_SEGMENT) :]
    return FederatedCredential(
        doc["id"],
        name,
        identity_id,
        props["issuer"],
        props["subject"],
        tuple(props["audiences"]),
    )


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()
