"""A local OIDC issuer standing in for GitHub Actions' (``token.actions.githubusercontent.com``).

Workload identity federation needs a second issuer that Entra does *not* control: the CI
system signs a short-lived JWT about the job (repository, branch, event) and Entra swaps
it for an access token when it matches a federated credential. This module is that
issuer, on its own HTTPS listener, so the real azure-identity
``WorkloadIdentityCredential`` and the sandbox's token endpoint walk the same path a
GitHub Actions job walks:

- ``GET /.well-known/openid-configuration``: ``issuer`` (this listener's URL, which is
  also the tokens' ``iss``), ``jwks_uri``, the claims GitHub documents;
- ``GET /.well-known/jwks``: the public key (RS256, ``kid``/``x5t``);
- :meth:`OidcIssuer.token` mints what GitHub's ``ACTIONS_ID_TOKEN_REQUEST_URL`` returns:
  ``iss``, ``sub`` (``repo:<owner>/<repo>:ref:refs/heads/main``,
  ``repo:<owner>/<repo>:pull_request``, ``repo:<owner>/<repo>:environment:<env>``),
  ``aud`` (``api://AzureADTokenExchange``, the audience ``azure/login`` asks for),
  ``exp`` (5 minutes, as GitHub's), ``iat``, ``nbf``, ``jti`` and the job claims
  (``repository``, ``repository_owner``, ``ref``, ``event_name``, ...).

The signing key is made at start and never leaves the process.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

#: The audience ``azure/login`` asks GitHub for (components.identity has the same constant;
#: not imported from there, which would load Pulumi into the sandbox).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 (an audience)

#: GitHub's OIDC tokens live 5 minutes; a long job that logs in once hits AADSTS700024.
GITHUB_TOKEN_LIFETIME_SECONDS = 300


def github_subject(
    repository: str,
    *,
    ref: str | None = "refs/heads/main",
    event: str | None = None,
    environment: str | None = None,
) -> str:
    """The ``sub`` GitHub Actions puts in a job's OIDC token.

    ``environment`` wins over everything (``repo:o/r:environment:prod``), then a
    ``pull_request`` event (``repo:o/r:pull_request``), then the ref
    (``repo:o/r:ref:refs/heads/main``), as GitHub documents the default subject.
    """
    if environment:
        return f"repo:{repository}:environment:{environment}"
    if event == "pull_request":
        return f"repo:{repository}:pull_request"
    return f"repo:{repository}:ref:{ref}"


class OidcIssuer:
    """Signs GitHub-Actions-shaped OIDC tokens and serves its discovery and JWKS."""

    def __init__(
        self, clock: Callable[[], float] = time.time, key: rsa.RSAPrivateKey | None = None
    ) -> None:
        """``key``: the signing key (a new one by default)."""
        self._clock = clock
        self._key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = hashlib.sha256(der).hexdigest()[:40].upper()
        self._x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")  # noqa: S324 - key ID
        self.url = ""  # set once the listener is bound: it is the issuer identifier

    @property
    def issuer(self) -> str:
        if not self.url:
            raise RuntimeError("the OIDC issuer is not listening yet (start the sandbox)")
        return self.url

    def token(
        self,
        repository: str = "contoso/platform",
        *,
        ref: str = "refs/heads/main",
        event: str = "push",
        environment: str | None = None,
        subject: str | None = None,
        audience: str | list[str] = TOKEN_EXCHANGE_AUDIENCE,
        lifetime_seconds: int = GITHUB_TOKEN_LIFETIME_SECONDS,
        issued_at: float | None = None,
        **overrides: Any,
    ) -> str:
        """A signed job token; ``overrides`` replace claims (``None`` removes one)."""
        now = int(self._clock() if issued_at is None else issued_at)
        owner = repository.split("/", 1)[0]
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": subject
            or github_subject(repository, ref=ref, event=event, environment=environment),
            "aud": audience,
            "ref": ref,
            "sha": uuid.uuid4().hex + uuid.uuid4().hex[:8],
            "repository": repository,
            "repository_owner": owner,
            "run_id": str(now),
            "run_number": "1",
            "run_attempt": "1",
            "actor": owner,
            "workflow": "deploy",
            "event_name": event,
            "ref_type": "branch",
            "job_workflow_ref": f"{repository}/.github/workflows/deploy.yml@{ref}",
            "runner_environment": "github-hosted",
            "iss": self.issuer,
            "nbf": now,
            "exp": now + lifetime_seconds,
            "iat": now,
        }
        if environment:
            claims["environment"] = environment
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.kid, "x5t": self._x5t}
        )

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "x5t": self._x5t, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/.well-known/jwks",
            "subject_types_supported": ["public", "pairwise"],
            "response_types_supported": ["id_token"],
            "claims_supported": [
                "sub",
                "aud",
                "exp",
                "iat",
                "iss",
                "jti",
                "nbf",
                "ref",
                "sha",
                "repository",
                "repository_owner",
                "run_id",
                "run_number",
                "run_attempt",
                "actor",
                "workflow",
                "event_name",
                "ref_type",
                "environment",
                "job_workflow_ref",
                "runner_environment",
            ],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        }

    def app(self) -> Starlette:
        async def configuration(request: Request) -> JSONResponse:
            return JSONResponse(self.openid_configuration())

        async def keys(request: Request) -> JSONResponse:
            return JSONResponse(self.jwks())

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", configuration),
                Route("/.well-known/jwks", keys),
            ]
        )
