"""The sandbox's Entra ID token issuer: RS256 access tokens, OpenID configuration, JWKS.

Tokens carry the claims Entra puts in a v1.0 managed-identity access token (``aud``,
``iss`` = ``https://sts.windows.net/<tid>/``, ``tid``, ``oid``, ``sub``, ``appid``,
``xms_mirid``, ``iat``, ``nbf``, ``exp``, ``ver``) so the probe reports the same claims
on the sandbox as on Azure. The signing key is made at start and never leaves the
process; resource servers (Key Vault, ARM) verify with its public half, as they verify
Entra's tokens with the keys from JWKS. Signing and verification are PyJWT's.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from components.armid import is_guid
from verify.evidence import blob as blob_evidence
from verify.evidence import keyvault as keyvault_evidence
from verify.sandbox.entra.errors import EntraError
from verify.sandbox.state.records import ServicePrincipal

ARM_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net/",
)
#: Microsoft Graph: its URL (with and without the slash) and its application ID, which
#: Entra accepts as a resource too.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_AUDIENCES = ("https://graph.microsoft.com", "https://graph.microsoft.com/", GRAPH_APP_ID)
#: The data planes' audiences come from their evidence modules (one home per plane).
KNOWN_RESOURCES = (
    *keyvault_evidence.AUDIENCES,
    *ARM_AUDIENCES,
    *GRAPH_AUDIENCES,
    blob_evidence.AUDIENCE,
)


class TokenError(Exception):
    """Why a token was refused, phrased for the resource server's 401 message.

    ``reason`` lets each service pick its own code (ARM has one per failure kind):
    ``malformed`` (not a JWT, or a claim of the wrong type), ``signature``, ``expired``,
    ``not_yet_valid``, ``audience``, ``issuer``, ``tenant``.
    """

    def __init__(self, message: str, reason: str = "malformed") -> None:
        super().__init__(message)
        self.reason = reason


#: Claims that carry a GUID in every Entra access token (``appid`` in v1.0 tokens,
#: ``azp`` in v2.0 ones: at least one of the two must be present).
GUID_CLAIMS = ("oid", "tid", "appid", "azp")
#: Claims that are non-empty strings when present.
STRING_CLAIMS = ("aud", "iss", "sub", "ver", "idtyp", "appidacr", "idp", "xms_mirid", "uti")
#: NumericDate claims (RFC 7519 section 2: seconds since the epoch; Entra sends integers).
TIME_CLAIMS = ("iat", "nbf", "exp")
REQUIRED_CLAIMS = ("aud", "iss", "tid", "oid", "sub", "iat", "nbf", "exp")
#: At most this many verified tokens are remembered (:meth:`TokenIssuer.verify`); past it,
#: the expired ones go, and if none has expired the oldest half.
VERIFIED_CACHE_SIZE = 4096


def check_claim_types(claims: Mapping[str, Any]) -> None:
    """TokenError naming the first claim that is missing or not of the type Entra issues.

    Why: a resource server that trusts a correctly signed token still has to refuse one
    whose ``oid`` is ``""``, a list or a number. Code downstream treats ``oid`` as "the
    principal" (``""`` matched every role assignment and read secrets nobody granted), so
    the shape is checked once, here, for every service.
    """
    for name in REQUIRED_CLAIMS:
        if name not in claims:
            raise TokenError(f"The token has no '{name}' claim.")
    if "appid" not in claims and "azp" not in claims:
        raise TokenError("The token has neither an 'appid' nor an 'azp' claim.")
    for name in GUID_CLAIMS:
        if name in claims:
            value = claims[name]
            if not isinstance(value, str) or not is_guid(value):
                raise TokenError(f"The '{name}' claim is not a GUID: {_shown(value)}.")
    for name in STRING_CLAIMS:
        if name in claims:
            value = claims[name]
            if not isinstance(value, str) or not value.strip():
                raise TokenError(f"The '{name}' claim is not a non-empty string: {_shown(value)}.")
    for name in TIME_CLAIMS:
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise TokenError(f"The '{name}' claim is not an integer NumericDate: {_shown(value)}.")
    mirid = claims.get("xms_mirid")
    if mirid is not None and not str(mirid).lower().startswith("/subscriptions/"):
        raise TokenError(f"The 'xms_mirid' claim is not an ARM resource ID: {_shown(mirid)}.")


def _shown(value: Any) -> str:
    """A claim value for an error message: its JSON type and a short repr."""
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


@dataclass(frozen=True)
class IssuedToken:
    token: str = ""
    claims: dict[str, Any] | None = None

    @property
    def expires_on(self) -> int:
        return int((self.claims or {})["exp"])

    def __repr__(self) -> str:  # never show the token itself
        return f"IssuedToken(claims={self.claims!r})"


class TokenIssuer:
    def __init__(
        self,
        tenant_id: str,
        lifetime_seconds: int = 86400,
        clock: Callable[[], float] = time.time,
        key: rsa.RSAPrivateKey | None = None,
    ) -> None:
        """``key``: the signing key (a new one by default)."""
        self.tenant_id = tenant_id
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock
        self._key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.kid = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")  # noqa: S324 - key ID, not security
        self._public_key = self._key.public_key()
        self._extra_resources: set[str] = set()
        #: Tokens this issuer verified and accepted: (token, audiences, leeway) -> claims.
        self._verified: dict[tuple[str, tuple[str, ...], int], dict[str, Any]] = {}
        self._verified_lock = threading.Lock()

    def add_resource(self, resource: str) -> None:
        """Issue tokens for one more resource: a sandbox service whose resource ID is its URL
        (the sandbox's Graph, registered in ``az`` as a custom cloud's Graph)."""
        self._extra_resources.add(resource)

    def knows_resource(self, resource: str) -> bool:
        """Whether the tenant has a resource principal for ``resource`` (else AADSTS500011)."""
        return resource in KNOWN_RESOURCES or resource in self._extra_resources

    @property
    def issuer(self) -> str:
        """The ``iss`` claim of every token, as Entra's v1.0 tokens carry it."""
        return f"https://sts.windows.net/{self.tenant_id}/"

    def issue(
        self,
        principal: ServicePrincipal,
        resource: str,
        lifetime_seconds: int | None = None,
        **overrides: Any,
    ) -> IssuedToken:
        """Sign an access token for ``principal`` to call ``resource``.

        ``overrides`` replace or add claims (``None`` removes one); tests use it to make
        expired, wrong-audience or wrong-tenant tokens that are still correctly signed.
        """
        now = int(self._clock())
        lifetime = self.lifetime_seconds if lifetime_seconds is None else lifetime_seconds
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "aio": uuid.uuid4().hex,
            "appid": principal.client_id,
            "appidacr": "2",
            "idp": self.issuer,
            "idtyp": "app",
            "oid": principal.object_id,
            "rh": "0.sandbox.",
            "sub": principal.object_id,
            "tid": self.tenant_id,
            "uti": uuid.uuid4().hex[:22],
            "ver": "1.0",
        }
        if principal.resource_id:
            claims["xms_mirid"] = principal.resource_id
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        token = jwt.encode(
            claims, self._key, algorithm="RS256", headers={"kid": self.kid, "x5t": self.kid}
        )
        return IssuedToken(token, claims)

    def verify(
        self, token: str, audiences: Iterable[str], leeway_seconds: int = 300
    ) -> dict[str, Any]:
        """Validate signature, every claim's type (:func:`check_claim_types`), then ``aud``,
        ``iss``, ``tid``, ``nbf`` and ``exp``; return the claims. TokenError.reason says which.

        ``leeway_seconds`` is the clock skew resource servers tolerate (Microsoft's
        validators default to 5 minutes).

        A token accepted once for the same audiences and leeway is accepted again without
        re-checking its signature and claims (they cannot change: the token is the signed
        bytes, the key is this issuer's for its life), until its ``exp``; its times are
        re-checked on every use, so the answer is the one a full verification gives. After
        ``exp`` the full verification runs again (and refuses it once the leeway is over).
        What is not the token's (the principal still existing) is the caller's to check on
        every request (:meth:`verify.sandbox.auth.Authenticator.check_principal`).
        """
        audiences = tuple(audiences)
        cache_key = (token, audiences, leeway_seconds)
        cached = self._verified.get(cache_key)
        if cached is not None:
            # PyJWT's clock and its comparisons, with exp without leeway (the cache's end).
            now = datetime.now(tz=UTC).timestamp()
            if (
                cached["exp"] > now
                and cached["nbf"] <= now + leeway_seconds
                and cached["iat"] <= now + leeway_seconds
            ):
                return dict(cached)
        claims = self._verify(token, audiences, leeway_seconds)
        self._remember(cache_key, claims)
        return dict(claims)

    def _remember(
        self, cache_key: tuple[str, tuple[str, ...], int], claims: dict[str, Any]
    ) -> None:
        with self._verified_lock:
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                now = datetime.now(tz=UTC).timestamp()
                kept = [(k, c) for k, c in self._verified.items() if c["exp"] > now]
                if len(kept) >= VERIFIED_CACHE_SIZE:
                    kept = kept[len(kept) // 2 :]  # insertion order: the oldest half goes
                self._verified = dict(kept)
            self._verified[cache_key] = dict(claims)

    def _verify(
        self, token: str, audiences: tuple[str, ...], leeway_seconds: int
    ) -> dict[str, Any]:
        """The full verification :meth:`verify` describes, every time."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"The token is malformed: {exc}") from exc
        if header.get("alg") != "RS256" or header.get("kid") != self.kid:
            raise TokenError(
                "The token is not signed with a key of this tenant's issuer.", "signature"
            )
        try:
            jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError as exc:
            raise TokenError("Signature validation failed.", "signature") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"The token is malformed: {exc}") from exc
        # Signed by us: now the claims' shapes, before PyJWT reads any of them as a date.
        unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        check_claim_types(unverified)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                audience=list(audiences),
                issuer=self.issuer,
                leeway=leeway_seconds,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("Token expired (exp is in the past).", "expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise TokenError(
                "Token not yet valid (nbf is in the future).", "not_yet_valid"
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise TokenError(
                f"Invalid audience. Expected {', '.join(audiences)}, found: {unverified['aud']}.",
                "audience",
            ) from exc
        except jwt.InvalidIssuerError as exc:
            raise TokenError(
                f"Invalid issuer. Expected one of {self.issuer}, found {unverified['iss']}.",
                "issuer",
            ) from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"The token is invalid: {exc}") from exc
        if claims["tid"].lower() != self.tenant_id:
            raise TokenError(
                f"Invalid tenant. Expected {self.tenant_id}, found: {claims['tid']}.", "tenant"
            )
        return claims

    # ------------------------------------------------------------ discovery
    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update(
            {"kid": self.kid, "x5t": self.kid, "use": "sig", "alg": "RS256", "issuer": self.issuer}
        )
        return {"keys": [jwk]}

    def openid_configuration(self, base_url: str, version: str = "v1") -> dict[str, Any]:
        """Entra's discovery document: v1.0 at ``/<tid>/.well-known/...``, v2.0 at
        ``/<tid>/v2.0/.well-known/...`` (msal reads the v2.0 one and posts to its
        ``token_endpoint``). Every endpoint it names that the sandbox serves answers."""
        base = f"{base_url.rstrip('/')}/{self.tenant_id}"
        v2 = version == "v2"
        oauth = f"{base}/oauth2/v2.0" if v2 else f"{base}/oauth2"
        return {
            "issuer": f"{base}/v2.0" if v2 else self.issuer,
            "authorization_endpoint": f"{oauth}/authorize",
            "token_endpoint": f"{oauth}/token",
            "jwks_uri": f"{base}/discovery/v2.0/keys" if v2 else f"{base}/discovery/keys",
            "response_types_supported": ["code", "id_token", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        }

    def app(self, extra_routes: Iterable[BaseRoute] = ()) -> Starlette:
        """The discovery endpoints (and ``extra_routes``: the token endpoint), over HTTPS."""

        async def openid(request: Request) -> JSONResponse:
            tenant = request.path_params["tenant"]
            if tenant not in (self.tenant_id, "common", "organizations"):
                message = (
                    f"Tenant '{tenant}' not found. Check to make sure you have the correct "
                    "tenant ID and are signing into the correct cloud."
                )
                return EntraError(400, "invalid_tenant", 90002, message).response(
                    str(request.base_url)
                )
            version = "v2" if "/v2.0/" in request.url.path else "v1"
            return JSONResponse(self.openid_configuration(str(request.base_url), version))

        async def keys(request: Request) -> JSONResponse:
            return JSONResponse(self.jwks())

        return Starlette(
            routes=[
                Route("/{tenant}/.well-known/openid-configuration", openid),
                Route("/{tenant}/v2.0/.well-known/openid-configuration", openid),
                Route("/{tenant}/discovery/keys", keys),
                Route("/{tenant}/discovery/v2.0/keys", keys),
                *extra_routes,
            ]
        )


class HostTokenCache:
    """A host platform's token cache, as IMDS and the App Service identity endpoint keep it.

    A token for the same host, identity and resource is served again until it has less
    than ``min_remaining_seconds`` to live; then a new one is issued.
    """

    def __init__(
        self,
        issuer: TokenIssuer,
        clock: Callable[[], float] = time.time,
        min_remaining_seconds: int = 300,
    ) -> None:
        self._issuer = issuer
        self._clock = clock
        self.min_remaining_seconds = min_remaining_seconds
        self._cache: dict[tuple[str, str, str], IssuedToken] = {}
        self._lock = threading.Lock()

    def token(self, host_id: str, principal: ServicePrincipal, resource: str) -> IssuedToken:
        """The cached token for this host, identity and resource, or a new one."""
        cache_key = (host_id.lower(), principal.object_id, resource)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached is not None and cached.expires_on - now > self.min_remaining_seconds:
                return cached
            token = self._issuer.issue(principal, resource)
            self._cache[cache_key] = token
            return token

    def clear(self) -> None:
        """Forget every cached token (a restored sandbox's hosts have asked for none)."""
        with self._lock:
            self._cache.clear()
