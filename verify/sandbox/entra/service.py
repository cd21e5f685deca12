"""Entra ID's token endpoint: client credentials with a secret, a certificate, or a federated
assertion (workload identity federation).

Served on the issuer's listener, where its discovery documents say it is:
``POST /{tenant}/oauth2/v2.0/token`` (``scope=<resource>/.default``; what msal and
azure-identity's ClientSecret/Certificate/ClientAssertion/WorkloadIdentity credentials
call) and the v1.0 ``POST /{tenant}/oauth2/token`` (``resource=``). Only
``grant_type=client_credentials``; the client proves itself with

- ``client_secret``: one of the application's secrets (else AADSTS7000215);
- ``client_assertion`` signed by one of the application's certificates (``x5t`` or
  ``x5t#S256`` header, ``iss`` = ``sub`` = the client ID, ``aud`` = this token endpoint);
- ``client_assertion`` from an external OIDC issuer (GitHub Actions, or its stand-in
  :mod:`verify.sandbox.oidc.service`): accepted only when its ``iss``, ``sub`` and ``aud`` equal one
  federated credential of the user-assigned identity exactly (case-sensitive, as Entra
  matches since 2024), its signature verifies against the keys the issuer publishes
  (fetched from ``<iss>/.well-known/openid-configuration``, loopback issuers only) and it
  is within ``nbf``/``exp``.

Refusals carry Entra's body, ``{"error", "error_description": "AADSTS<n>: ...\\r\\nTrace ID:
...\\r\\nCorrelation ID: ...\\r\\nTimestamp: ...", "error_codes": [n], "timestamp", "trace_id",
"correlation_id", "error_uri"}``. The access token is the one IMDS would issue for the same
principal (v1.0 claims, ``oid``/``appid``/``xms_mirid``), so ARM and Key Vault authorise it
by the principal's role assignments and nothing else.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import jwt
from jwt.algorithms import RSAAlgorithm
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from components.armid import is_guid
from components.errors import ConfigError
from verify.sandbox.entra.errors import EntraError
from verify.sandbox.entra.tokens import TokenIssuer
from verify.sandbox.server import require_loopback
from verify.sandbox.state.federation import ClientCertificate, FederatedCredential
from verify.sandbox.state.records import ServicePrincipal
from verify.sandbox.state.store import SandboxState

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
WIF_DOCS = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
CERT_DOCS = "https://docs.microsoft.com/azure/active-directory/develop/active-directory-certificate-credentials"
#: Entra's client-credential access tokens live about an hour (``expires_in`` 3599).
APP_TOKEN_LIFETIME_SECONDS = 3599
MAX_FORM_BYTES = 1 << 20
_FETCH_TIMEOUT = aiohttp.ClientTimeout(total=5)


def _missing(name: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _time_range(claims: dict[str, Any], now: float) -> EntraError:
    def iso(value: Any) -> str:
        try:
            return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")
        except (TypeError, ValueError, OverflowError):
            return str(value)

    return EntraError(
        401,
        "invalid_client",
        700024,
        f"Client assertion is not within its valid time range. Current time: {iso(now)}, "
        f"assertion valid from {iso(claims.get('nbf', claims.get('iat')))}, expiry time of "
        f"assertion {iso(claims.get('exp'))}. Review the documentation at {CERT_DOCS} .",
    )


def _bad_signature(reason: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        700027,
        f"Client assertion contains an invalid signature. [Reason - {reason}]",
    )


@dataclass(frozen=True)
class Grant:
    """A client that proved itself: who, for which resource, and how (``appidacr``)."""

    principal: ServicePrincipal
    resource: str
    appidacr: str  # "1": secret, "2": certificate or assertion


class TokenEndpoint:
    """``/{tenant}/oauth2/v2.0/token`` and ``/{tenant}/oauth2/token`` for client credentials."""

    def __init__(
        self,
        state: SandboxState,
        issuer: TokenIssuer,
        *,
        ssl_context: Callable[[], ssl.SSLContext],
        leeway_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._issuer = issuer
        self._ssl_context = ssl_context
        self._leeway = leeway_seconds
        self._clock = clock

    # ------------------------------------------------------------ the request
    def _client(self, form: dict[str, str]) -> ServicePrincipal:
        client_id = form.get("client_id", "").strip()
        if not client_id:
            raise _missing("client_id")
        principal = self._state.principal_by_client_id(client_id) if is_guid(client_id) else None
        if principal is None:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self._state.tenant_id}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You may have sent your authentication request to the wrong tenant.",
            )
        return principal

    def _resource(self, form: dict[str, str], version: str) -> str:
        if version == "v1":
            resource = form.get("resource", "").strip()
            if not resource:
                raise _missing("resource")
        else:
            scope = form.get("scope", "").strip()
            if not scope:
                raise _missing("scope")
            scopes = scope.split()
            if any(not s.endswith("/.default") for s in scopes):
                bad = next(s for s in scopes if not s.endswith("/.default"))
                raise EntraError(
                    400,
                    "invalid_scope",
                    1002012,
                    f"The provided value for scope {bad} is not valid. Client credential flows "
                    "must have a scope value with /.default suffixed to the resource identifier "
                    "(application ID URI).",
                )
            resources = {s[: -len("/.default")] for s in scopes}
            if len(resources) != 1:
                raise EntraError(
                    400,
                    "invalid_scope",
                    70011,
                    f"The provided value for the input parameter 'scope' is not valid. The scope "
                    f"{scope} is not valid.",
                )
            resource = resources.pop()
        if not self._issuer.knows_resource(resource):
            raise EntraError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self._state.tenant_id}. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You might have sent your authentication request to the wrong tenant.",
            )
        return resource

    async def grant(self, form: dict[str, str], endpoint_urls: list[str], version: str) -> Grant:
        """Check one token request; the principal it authenticates, or :class:`EntraError`."""
        grant_type = form.get("grant_type", "").strip()
        if not grant_type:
            raise _missing("grant_type")
        if grant_type != "client_credentials":
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
            )
        principal = self._client(form)
        resource = self._resource(form, version)
        if "client_secret" in form:
            if not self._state.check_client_secret(principal.client_id, form["client_secret"]):
                raise EntraError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request "
                    "is the client secret value, not the client secret ID, for a secret added to "
                    f"app '{principal.client_id}'.",
                )
            return Grant(principal, resource, "1")
        assertion = form.get("client_assertion", "")
        if not assertion or form.get("client_assertion_type") != JWT_BEARER:
            raise EntraError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise EntraError(
                400, "invalid_request", 50027, "JWT token is invalid or malformed."
            ) from exc
        if claims.get("iss") == principal.client_id and ("x5t" in header or "x5t#S256" in header):
            self._certificate_assertion(principal, assertion, header, endpoint_urls)
        else:
            await self._federated_assertion(principal, assertion, header, claims)
        return Grant(principal, resource, "2")

    # ------------------------------------------------------ certificate assertions
    def _certificate_assertion(
        self,
        principal: ServicePrincipal,
        assertion: str,
        header: dict[str, Any],
        endpoint_urls: list[str],
    ) -> None:
        cert = self._find_certificate(principal.client_id, header)
        if cert is None:
            raise _bad_signature("The key was not found.")
        alg = header.get("alg")
        if alg not in ("RS256", "PS256"):
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Invalid JWT token. Unsupported asymmetric signing algorithm.",
            )
        claims = self._decode_assertion(assertion, cert.certificate.public_key(), [str(alg)])
        if claims.get("sub") != principal.client_id:
            raise EntraError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
            )
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if not any(a in endpoint_urls for a in audiences):
            raise EntraError(
                401,
                "invalid_client",
                50012,
                "Client assertion audience claim does not match Realm issuer.",
            )

    def _find_certificate(self, client_id: str, header: dict[str, Any]) -> ClientCertificate | None:
        # Base64url with or without its "=" padding: msal keeps it, RFC 7515 drops it.
        s256 = str(header.get("x5t#S256") or "").rstrip("=")
        sha1 = str(header.get("x5t") or "").rstrip("=")
        for cert in self._state.client_certificates(client_id):
            if (s256 and s256 == cert.x5t_s256) or (sha1 and sha1 == cert.x5t):
                return cert
        return None

    # ----------------------------------------------- workload identity federation
    async def _federated_assertion(
        self,
        principal: ServicePrincipal,
        assertion: str,
        header: dict[str, Any],
        claims: dict[str, Any],
    ) -> None:
        iss, sub, aud = claims.get("iss"), claims.get("sub"), claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        shown_aud = ", ".join(str(a) for a in audiences)
        records = self._state.federated_credentials_of_client(principal.client_id)
        if not records:
            raise EntraError(
                400,
                "invalid_request",
                70021,
                "No matching federated identity record found for presented assertion. "
                f"Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. "
                f"Assertion Audience: '{shown_aud}'. {WIF_DOCS}",
            )
        by_issuer = [r for r in records if r.issuer == iss]
        if not by_issuer:
            raise _no_match(700211, "issuer", str(iss))
        await self._verify_external(assertion, header, str(iss))
        by_subject = [r for r in by_issuer if r.subject == sub]
        if not by_subject:
            raise _no_match(700213, "subject", str(sub))
        if not _audience_matches(by_subject, audiences):
            raise _no_match(700212, "audience", shown_aud)

    async def _verify_external(self, assertion: str, header: dict[str, Any], issuer: str) -> None:
        """The external issuer's signature and the assertion's time range."""
        keys = await self._issuer_keys(issuer)
        jwk = next((k for k in keys if k.get("kid") == header.get("kid")), None)
        if jwk is None:
            raise _bad_signature("The key was not found.")
        if header.get("alg") != "RS256":
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Invalid JWT token. Unsupported asymmetric signing algorithm.",
            )
        self._decode_assertion(assertion, RSAAlgorithm.from_jwk(jwk), ["RS256"])

    def _decode_assertion(self, assertion: str, key: Any, algorithms: list[str]) -> dict[str, Any]:
        """Verify a client assertion's signature and times, in Entra's words when it fails.

        One place for both kinds of assertion (an app's certificate, a federated issuer's
        key), so an expired, forged or malformed one is refused identically either way.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                key,
                algorithms=algorithms,
                options={"require": ["exp", "aud", "iss", "sub"], "verify_aud": False},
                leeway=self._leeway,
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError) as exc:
            raise _time_range(
                jwt.decode(assertion, options={"verify_signature": False}), self._clock()
            ) from exc
        except jwt.InvalidSignatureError as exc:
            raise _bad_signature(
                "The provided signature value did not match the expected signature value."
            ) from exc
        except jwt.PyJWTError as exc:
            raise EntraError(
                400, "invalid_request", 50027, "JWT token is invalid or malformed."
            ) from exc
        return claims

    async def _issuer_keys(self, issuer: str) -> list[dict[str, Any]]:
        """The JWKS an OIDC issuer publishes, fetched as Entra fetches it (discovery first).

        Only loopback issuers are fetched: the sandbox never reaches beyond the machine.
        """
        failed = EntraError(
            400,
            "invalid_request",
            50166,
            f"Request to External OIDC endpoint failed. Issuer: '{issuer}'.",
        )
        parsed = urlparse(issuer)
        try:
            require_loopback(parsed.hostname or "")
        except ConfigError as exc:  # a non-loopback issuer is unreachable from here
            raise failed from exc
        try:
            async with aiohttp.ClientSession(timeout=_FETCH_TIMEOUT) as session:
                context = self._ssl_context()
                url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
                async with session.get(url, ssl=context) as resp:
                    if resp.status != 200:
                        raise failed
                    config = await resp.json(content_type=None)
                if not isinstance(config, dict) or config.get("issuer") != issuer:
                    raise failed
                async with session.get(str(config.get("jwks_uri")), ssl=context) as resp:
                    if resp.status != 200:
                        raise failed
                    jwks = await resp.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            raise failed from exc
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            raise failed
        return [k for k in keys if isinstance(k, dict)]

    # --------------------------------------------------------------- serving
    def routes(self) -> list[Route]:
        async def v2(request: Request) -> Response:
            return await self._serve(request, "v2")

        async def v1(request: Request) -> Response:
            return await self._serve(request, "v1")

        return [
            Route("/{tenant}/oauth2/v2.0/token", v2, methods=["POST"]),
            Route("/{tenant}/oauth2/token", v1, methods=["POST"]),
        ]

    async def _serve(self, request: Request, version: str) -> Response:
        base = str(request.base_url).rstrip("/")
        tenant = request.path_params["tenant"]
        try:
            if tenant.lower() != self._state.tenant_id:
                raise EntraError(
                    400,
                    "invalid_request",
                    90002,
                    f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant "
                    "ID and are signing into the correct cloud. Check with your subscription "
                    "administrator, this may happen if there are no active subscriptions for the "
                    "tenant.",
                )
            form = await _read_form(request)
            urls = [
                f"{base}/{tenant}/oauth2/v2.0/token",
                f"{base}/{tenant}/oauth2/token",
                f"{base}/{tenant}/v2.0",
            ]
            grant = await self.grant(form, urls, version)
        except EntraError as exc:
            return exc.response(base)
        request.state.principal_id = grant.principal.object_id
        lifetime = min(APP_TOKEN_LIFETIME_SECONDS, self._issuer.lifetime_seconds)
        issued = self._issuer.issue(
            grant.principal, grant.resource, lifetime, appidacr=grant.appidacr
        )
        claims = issued.claims or {}
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": issued.token,
        }
        if version == "v1":
            body = {
                "token_type": "Bearer",
                "expires_in": str(lifetime),
                "ext_expires_in": str(lifetime),
                "expires_on": str(claims["exp"]),
                "not_before": str(claims["nbf"]),
                "resource": grant.resource,
                "access_token": issued.token,
            }
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def _no_match(code: int, what: str, value: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        code,
        f"No matching federated identity record found for presented assertion {what} '{value}'. "
        "Check your federated identity credential Subject, Audience and Issuer against the "
        f"presented assertion. {WIF_DOCS}",
    )


def _audience_matches(records: list[FederatedCredential], audiences: list[Any]) -> bool:
    return any(a in r.audiences for r in records for a in audiences if isinstance(a, str))


async def _read_form(request: Request) -> dict[str, str]:
    """The form body (``application/x-www-form-urlencoded``), first value of each field."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise EntraError(
            400,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'grant_type'.",
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise EntraError(413, "invalid_request", 90013, "Invalid input received from the user.")
        chunks.append(chunk)
    try:
        parsed = parse_qs(
            b"".join(chunks).decode("utf-8"), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError as exc:
        raise EntraError(
            400, "invalid_request", 90013, "Invalid input received from the user."
        ) from exc
    return {name: values[0] for name, values in parsed.items()}
