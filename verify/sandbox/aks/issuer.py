"""Each AKS cluster's OIDC issuer: discovery, JWKS and projected service-account tokens.

AKS serves one issuer per cluster at ``https://<region>.oic.prod-aks.azure.com/<tenant>/
<guid>/`` (the trailing slash is part of it, and of every token's ``iss``):
``<issuer>.well-known/openid-configuration`` names the issuer and ``jwks_uri``
(``<issuer>openid/v1/jwks``). Here all clusters share one HTTPS listener and each gets the
path ``/<tenant>/<guid>/`` and a signing key of its own, so Entra's token endpoint fetches
the keys exactly as it does from AKS. A cluster's key is made the first time it is needed
(a token signed, its JWKS served; an RSA key takes ~0.1 s of CPU and most clusters a test
makes never sign anything) and is the cluster's for the sandbox's life, a restore included.

:meth:`ClusterIssuers.service_account_token` signs what the kubelet projects into a pod for
the workload identity webhook: ``iss`` (the issuer URL), ``sub``
(``system:serviceaccount:<namespace>:<name>``), ``aud`` (``["api://AzureADTokenExchange"]``),
``exp`` (3600 s by default; the webhook allows 3600-86400), ``iat``, ``nbf`` and the
``kubernetes.io`` claims (namespace, service account, pod).
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from verify.sandbox.aks.errors import error_body

#: The audience the webhook requests for the projected token (pkg/webhook/consts.go).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 (an audience)
DEFAULT_TOKEN_LIFETIME_SECONDS = 3600
TOKEN_LIFETIME_RANGE = (3600, 86400)


@dataclass
class _Signer:
    key: rsa.RSAPrivateKey
    kid: str


def _new_signer() -> _Signer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _Signer(key, base64.urlsafe_b64encode(hashlib.sha256(der).digest()).decode().rstrip("="))


class ClusterIssuers:
    """The OIDC issuers of every cluster in the sandbox, on one listener."""

    #: Left out of a sandbox snapshot (:meth:`verify.sandbox.Sandbox.snapshot`): the keys,
    #: made on first use, stay each issuer's across a restore, as if made with the issuer.
    NOT_SNAPSHOTTED = ("_keys",)

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._issuers: set[str] = set()  # "<tenant>/<guid>" of every cluster's issuer
        self._keys: dict[str, _Signer] = {}  # "<tenant>/<guid>" -> key, made on first use
        self.url = ""  # set once the listener is bound

    def issuer_url(self, location: str, tenant_id: str, issuer_guid: str) -> str:
        """The issuer of a new cluster (AKS's path, this listener's origin), with a key."""
        del location  # AKS puts the region in the host name; one loopback host serves all
        if not self.url:
            raise RuntimeError("the cluster issuers are not listening yet (start the sandbox)")
        path = f"{tenant_id}/{issuer_guid}"
        with self._lock:
            self._issuers.add(path)
        return f"{self.url}/{path}/"

    def _signer(self, issuer: str) -> _Signer:
        path = issuer.removeprefix(self.url).strip("/")
        with self._lock:
            if path not in self._issuers or not issuer.startswith(self.url):
                raise ValueError(f"{issuer!r} is not a cluster issuer of this sandbox")
            signer = self._keys.get(path)
            if signer is None:
                signer = self._keys[path] = _new_signer()
            return signer

    def service_account_token(
        self,
        issuer: str,
        namespace: str,
        service_account: str,
        *,
        audience: str | list[str] = TOKEN_EXCHANGE_AUDIENCE,
        lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
        issued_at: float | None = None,
        **overrides: Any,
    ) -> str:
        """A projected service-account token of the cluster whose issuer is ``issuer``;
        ``overrides`` replace claims (``None`` removes one), e.g. a mistyped ``iss``."""
        signer = self._signer(issuer)
        now = int(self._clock() if issued_at is None else issued_at)
        pod = f"{service_account}-{uuid.uuid4().hex[:5]}"
        claims: dict[str, Any] = {
            "aud": [audience] if isinstance(audience, str) else audience,
            "exp": now + lifetime_seconds,
            "iat": now,
            "iss": issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {"name": pod, "uid": str(uuid.uuid4())},
                "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
            },
            "nbf": now,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return jwt.encode(claims, signer.key, algorithm="RS256", headers={"kid": signer.kid})

    def app(self) -> Starlette:
        async def configuration(request: Request) -> JSONResponse:
            issuer = self._issuer_of(request)
            if issuer is None:
                return JSONResponse(error_body("not found"), status_code=404)
            return JSONResponse(
                {
                    "issuer": issuer,
                    "jwks_uri": f"{issuer}openid/v1/jwks",
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )

        async def keys(request: Request) -> JSONResponse:
            issuer = self._issuer_of(request)
            if issuer is None:
                return JSONResponse(error_body("not found"), status_code=404)
            signer = self._signer(issuer)
            jwk = RSAAlgorithm.to_jwk(signer.key.public_key(), as_dict=True)
            jwk.update({"kid": signer.kid, "use": "sig", "alg": "RS256"})
            return JSONResponse({"keys": [jwk]})

        return Starlette(
            routes=[
                Route("/{tenant}/{guid}/.well-known/openid-configuration", configuration),
                Route("/{tenant}/{guid}/openid/v1/jwks", keys),
            ]
        )

    def _issuer_of(self, request: Request) -> str | None:
        path = f"{request.path_params['tenant']}/{request.path_params['guid']}"
        with self._lock:
            known = path in self._issuers
        return f"{self.url}/{path}/" if known else None
