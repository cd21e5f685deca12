"""On-VM probe: which Key Vault secrets and blobs can each managed identity here read?

Runs ON the VM (or, in the sandbox, as a process whose IMDS is a loopback port). It is
deliberately self-contained: standard library plus azure-identity, azure-keyvault-secrets
and azure-storage-blob only, no import from this repository, so the very same file can be
shipped inline through VM Run Command (``python3 - --spec-b64 <...> <<'EOF' ... EOF``).

For every identity selector (``system`` or a user-assigned identity's client ID) it builds
a FRESH ``DefaultAzureCredential`` (a credential caches tokens, so reusing one would hide
a deletion), gets a token for ``https://vault.azure.net``, then calls
``SecretClient.get_secret`` for each secret. It reports JSON:

* the token's identity claims (``oid``, ``tid``, ``aud``, ``xms_mirid``, ``exp``...),
  decoded from the JWT payload without verification -- never the token itself -- and
  which credential source answered (``credential_source``: ``imds``, ``app_service``,
  ``workload_identity``..., see :func:`credential_source`);
* per secret: ``read`` / ``forbidden`` / ``not_found`` / ``no_identity`` / ``unreachable``
  / ``inconclusive`` with the HTTP status and service error code (``forbidden`` only for
  Key Vault's 403 ``ForbiddenByRbac``: see :func:`denial_proven`), and a SHA-256
  fingerprint of a value read (``sha256:<hex>``) so a caller can compare it with the
  expected value without seeing it;
* per blob (spec ``blobs``: key -> URL), with the same credential's token for
  ``https://storage.azure.com`` (its claims as ``blob_claims``): ``BlobClient`` downloads
  it and the probe reports the SHA-256 of the content, never the content; ``forbidden``
  only for Blob Storage's 403 ``AuthorizationPermissionMismatch``, ``not_found`` only for
  ``BlobNotFound`` / ``ContainerNotFound``, everything else ``inconclusive``
  (:func:`classify_blob_error`);
* timings, number of attempts and time spent waiting.

Bounded time: the client libraries' own retries are off (``retry_total=0``; otherwise
azure-identity's IMDS back-off alone is ~24 s, 75 s for a 410), every request has a
connect/read timeout, all waiting happens in this module's :class:`RetryPlan` and stops at
the budget, and a watchdog prints whatever was gathered and exits if anything still hangs.
The only retries: Key Vault's RBAC 403 within ``propagation_wait`` seconds (RBAC takes
time to apply right after a grant), and an IMDS or Key Vault 429 whose ``Retry-After``
fits ``max_retry_after_seconds`` and the budget.

A token can be stashed on the VM (file mode 0600, never printed) and replayed by a later
run, which is how the lifecycle checks whether a token obtained before a deletion is
still accepted, and for how long.

Exit code: 0 when every expectation given in the spec held (or, with none, when every
secret and blob was read), 1 when one did not, 2 for a bad spec, 3 when the watchdog fired.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

try:  # The VM's venv provides these; say so plainly when it does not.
    from azure.core.credentials import AccessToken, AccessTokenInfo
    from azure.core.exceptions import (
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient
    from azure.storage.blob import BlobClient
    from requests import Session

    MISSING_DEPENDENCY: str | None = None
except ImportError as _missing:  # pragma: no cover - exercised on a bare VM only
    MISSING_DEPENDENCY = str(_missing)

PROBE_VERSION = 1
VAULT_SCOPE = "https://vault.azure.net/.default"
RESULT_BEGIN = "MIKIT-PROBE-RESULT-BEGIN"
RESULT_END = "MIKIT-PROBE-RESULT-END"
OUTCOMES = ("read", "forbidden", "not_found", "no_identity", "unreachable", "inconclusive")
#: The only signal that proves Key Vault denied a read: 403 with this inner error code
#: (RBAC evaluated the caller and found no role with the data action). A 401, another
#: 403 (firewall, disabled secret, policy), a 5xx, a reset or a timeout proves nothing.
KEYVAULT_DENIAL = (403, "ForbiddenByRbac")
#: Key Vault's proof that a secret does not exist.
KEYVAULT_MISSING = (404, ("SecretNotFound",))
STORAGE_SCOPE = "https://storage.azure.com/.default"
#: Blob Storage's only proof of "denied": 403 ``AuthorizationPermissionMismatch`` (RBAC,
#: conditions included, found no grant for the data action). ``AuthorizationFailure``
#: (firewall, private endpoint), other 403s, 401, 5xx, resets and timeouts prove nothing.
BLOB_DENIAL = (403, "AuthorizationPermissionMismatch")
#: Blob Storage's proof that a blob (or its container) does not exist.
BLOB_MISSING = (404, ("BlobNotFound", "ContainerNotFound"))
#: The stash name of an identity's storage token (its vault token is stashed by selector).
STORAGE_STASH_SUFFIX = "|storage"
CLAIMS_REPORTED = ("oid", "tid", "aud", "xms_mirid", "appid", "iss", "iat", "nbf", "exp")

EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_WATCHDOG = 0, 1, 2, 3
# While RBAC propagates: poll after this fraction of the time waited so far, never sooner.
POLL_FRACTION = 0.1
MIN_POLL_SECONDS = 0.25


class SpecError(ValueError):
    """The probe was called with a spec it cannot run."""


# --------------------------------------------------------------------------- spec


def load_spec(raw: dict[str, Any]) -> dict[str, Any]:
    """Validate and fill defaults; fail before any network call, naming the field."""
    spec = dict(raw)
    vault_url = spec.get("vault_url")
    if not isinstance(vault_url, str) or not vault_url.startswith("https://"):
        raise SpecError(f"vault_url: {vault_url!r} must be the vault's https:// URL")
    spec["blobs"] = _load_blobs(spec.get("blobs"))
    secrets = spec.get("secrets")
    if (
        not isinstance(secrets, list)
        or not (secrets or spec["blobs"])
        or not all(isinstance(s, str) for s in secrets)
    ):
        raise SpecError(
            f"secrets: {secrets!r} must be a list of secret names (non-empty without blobs)"
        )
    identities = spec.get("identities", ["system"])
    if not isinstance(identities, list) or not identities:
        raise SpecError(f"identities: {identities!r} must list 'system' and/or client IDs")
    for sel in identities:
        if not isinstance(sel, str) or not sel:
            raise SpecError(f"identities: {sel!r} must be 'system' or a client ID")
    spec["identities"] = identities
    spec.setdefault("ca_bundle", None)
    spec.setdefault("verify_challenge_resource", True)
    spec.setdefault("mode", "fresh")
    if spec["mode"] not in ("fresh", "replay"):
        raise SpecError(f"mode: {spec['mode']!r} must be 'fresh' or 'replay'")
    if spec["mode"] == "replay" and not spec.get("token_dir"):
        raise SpecError("token_dir: replay mode needs the directory a fresh run stashed into")
    spec.setdefault("token_dir", None)
    spec.setdefault("stash_token", False)
    for key, default in (
        ("budget_seconds", 30.0),
        ("propagation_wait_seconds", 0.0),
        ("max_backoff_seconds", 2.0),
        ("max_retry_after_seconds", 10.0),
        ("connect_timeout", 3.0),
        ("read_timeout", 10.0),
        ("watchdog_grace_seconds", 5.0),
    ):
        value = spec.setdefault(key, default)
        if not isinstance(value, (int, float)) or value < 0:
            raise SpecError(f"{key}: {value!r} must be a non-negative number of seconds")
    expect = spec.setdefault("expect", None)
    if expect is not None and not isinstance(expect, dict):
        raise SpecError("expect: must map selector -> {secret: 'allowed'|'denied'}")
    return spec


def _load_blobs(raw: object) -> dict[str, str]:
    """``blobs``: blob key (``<account>/<container>/<path>``) -> the blob's https URL."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(f"blobs: {raw!r} must map blob key -> https:// blob URL")
    for key, url in raw.items():
        if not isinstance(key, str) or key.count("/") < 2:
            raise SpecError(f"blobs: key {key!r} must be '<account>/<container>/<path>'")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise SpecError(f"blobs[{key!r}]: {url!r} must be the blob's https:// URL")
    return dict(raw)


# --------------------------------------------------------------------------- helpers


def fingerprint(value: str | bytes) -> str:
    """``sha256:<hex>`` of a secret value (UTF-8) or a blob's content: comparable, not
    reversible, safe to print. The stack computes its fingerprints the same way."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return "sha256:" + hashlib.sha256(data).hexdigest()


def decode_claims(token: str) -> dict[str, Any]:
    """The identity claims of a JWT's payload, decoded without verifying the signature.

    The probe only reports who the token says it is; Key Vault does the verifying.
    """
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (IndexError, ValueError):
        return {}
    return {k: claims[k] for k in CLAIMS_REPORTED if k in claims}


def _short(text: object, limit: int = 300) -> str:
    message = " ".join(str(text).split())
    return message if len(message) <= limit else message[: limit - 3] + "..."


class Deadline:
    """The probe's overall time budget, shared by every request and every wait."""

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.end = self.start + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.start) * 1000)


class RetryPlan:
    """The only retry policy the probe has, in one place.

    * 403 while RBAC propagates: poll again after 10% of the time already waited since
      the first 403 (at least 0.25 s, at most ``max_backoff``), for at most
      ``propagation_wait`` seconds. Sleeping in proportion to the wait bounds how late
      the probe notices the grant to ~10% (tests/benchmarks measured exponential
      doubling overshooting a 3 s propagation by a third) at the cost of a few more
      cheap GETs early on.
    * IMDS or Key Vault 429: wait what ``Retry-After`` says when that fits
      ``max_retry_after`` and the budget; otherwise give up and report it.
    Nothing else is retried: a 404, a missing identity or an unreachable service is an
    answer, not a transient.
    """

    def __init__(self, spec: dict[str, Any], deadline: Deadline) -> None:
        self.propagation_wait = float(spec["propagation_wait_seconds"])
        self.max_backoff = float(spec["max_backoff_seconds"])
        self.max_retry_after = float(spec["max_retry_after_seconds"])
        self.deadline = deadline

    def delay(
        self, status: int | None, retry_after: float | None, attempt: int, first_403: float
    ) -> float | None:
        """Seconds to wait before another attempt, or None to stop."""
        if status == 403 and self.propagation_wait > 0:
            waited = time.monotonic() - first_403
            backoff = min(self.max_backoff, max(MIN_POLL_SECONDS, POLL_FRACTION * waited))
            if waited + backoff > self.propagation_wait:
                return None
        elif status == 429 and retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            backoff = retry_after
        else:
            return None
        return backoff if backoff < self.deadline.remaining() else None


# --------------------------------------------------------------------------- credentials


#: How the App Service / Functions / Container Apps identity endpoint refuses an identity
#: the app's code does not hold (500; also one hidden by a Container Apps lifecycle).
APP_SERVICE_NO_IDENTITY = "No User Assigned or Delegated Managed Identity found"


class ImdsTrace:
    """Records the status of each IMDS response (azure-core ``raw_response_hook``).

    msal hides the HTTP status of a failed managed-identity request inside an error
    message; the status tells "this VM has no such identity" (400) from "IMDS is in
    trouble" (5xx/429/410), which are different outcomes.
    """

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.error_body: dict[str, Any] | None = None
        self.retry_after: float | None = None

    def hook(self, response: Any) -> None:
        http = response.http_response
        self.statuses.append(http.status_code)
        if http.status_code == 429:
            self.retry_after = _seconds(http.headers.get("Retry-After"))
        if http.status_code >= 400:
            try:
                body = json.loads(http.text())
            except ValueError:
                body = None
            if isinstance(body, dict) and "statusCode" in body and "error" not in body:
                # The App Service identity endpoint's own shape: {statusCode, message, ...}.
                self.error_body = {
                    "error": f"identity_endpoint_http_{http.status_code}",
                    "error_description": _short(str(body.get("message") or ""), 200),
                }
            elif isinstance(body, dict):
                self.error_body = {
                    "error": body.get("error"),
                    "error_description": _short(body.get("error_description", ""), 200),
                }


def _seconds(header: str | None) -> float | None:
    """A ``Retry-After`` given in seconds (IMDS and Key Vault send seconds), else None."""
    try:
        value = float(header) if header is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def fresh_credential(
    selector: str, spec: dict[str, Any], trace: ImdsTrace, deadline: Deadline
) -> Any:
    """A new DefaultAzureCredential narrowed to managed identity, with retries off.

    Every other credential of the chain is excluded: on a VM where someone ran
    ``az login`` the chain would otherwise prove the operator's access, not the VM's.
    Which source answered is still reported (:func:`credential_source`), so a verifier
    can refuse a token that came from the wrong one.
    """
    kwargs: dict[str, Any] = {
        "exclude_environment_credential": True,
        # Workload identity only where a token file is projected (an AKS pod): there it
        # is the host's own source; everywhere else it has nothing to answer with.
        "exclude_workload_identity_credential": not os.environ.get("AZURE_FEDERATED_TOKEN_FILE"),
        "exclude_shared_token_cache_credential": True,
        "exclude_visual_studio_code_credential": True,
        "exclude_cli_credential": True,
        "exclude_powershell_credential": True,
        "exclude_developer_cli_credential": True,
        "exclude_interactive_browser_credential": True,
        "exclude_broker_credential": True,
        "retry_total": 0,
        "connection_timeout": min(spec["connect_timeout"], max(deadline.remaining(), 0.1)),
        "read_timeout": min(spec["read_timeout"], max(deadline.remaining(), 0.1)),
        "raw_response_hook": trace.hook,
    }
    if selector != "system":
        kwargs["managed_identity_client_id"] = selector
    return DefaultAzureCredential(**kwargs)


#: azure-identity's credential class -> the source a report names. Managed identity
#: picks one class per hosting environment from its variables (IMDS, the App Service
#: endpoint, workload identity's token file, Arc, ...); the rest are DefaultAzureCredential's
#: other chain members, named so that a token from the wrong one says where it came from.
CREDENTIAL_SOURCES = {
    "ImdsCredential": "imds",
    "AppServiceCredential": "app_service",
    "WorkloadIdentityCredential": "workload_identity",
    "AzureArcCredential": "azure_arc",
    "ServiceFabricCredential": "service_fabric",
    "AzureMLCredential": "azure_ml",
    "CloudShellCredential": "cloud_shell",
    "EnvironmentCredential": "environment",
    "AzureCliCredential": "azure_cli",
    "AzurePowerShellCredential": "azure_powershell",
    "AzureDeveloperCliCredential": "azure_developer_cli",
    "SharedTokenCacheCredential": "shared_token_cache",
    "VisualStudioCodeCredential": "visual_studio_code",
    "InteractiveBrowserCredential": "interactive_browser",
    "BrokerCredential": "broker",
    "StashedTokenCredential": "stash",
}


def credential_source(credential: Any) -> str:
    """The source that answered the last token request of ``credential``.

    ``DefaultAzureCredential`` (a ``ChainedTokenCredential``) records the chain member that
    returned the token (``_successful_credential``); ``ManagedIdentityCredential`` delegates
    to the class it chose for the hosting environment (``_credential``). Both are read
    after a token was returned, so the answer is what was used, not what was configured.
    An unknown class is reported as ``unknown:<class>``, never guessed.
    """
    answered = getattr(credential, "_successful_credential", None) or credential
    if type(answered).__name__ == "ManagedIdentityCredential":
        answered = getattr(answered, "_credential", None) or answered
    name = type(answered).__name__
    return CREDENTIAL_SOURCES.get(name, f"unknown:{name}")


class StashedTokenCredential:
    """Presents a previously obtained token as-is: it never asks IMDS for a new one."""

    def __init__(self, token: str, expires_on: int) -> None:
        self._token = token
        self._expires_on = expires_on

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return AccessToken(self._token, self._expires_on)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        return AccessTokenInfo(self._token, self._expires_on)


def _token_path(token_dir: str, selector: str) -> str:
    name = hashlib.sha256(selector.lower().encode("utf-8")).hexdigest()[:16]
    return os.path.join(token_dir, f"mikit-token-{name}.json")


def stash_token(token_dir: str, selector: str, token: str, expires_on: int) -> None:
    """Keep the token on this machine only (0600), for a later replay; never printed."""
    os.makedirs(token_dir, mode=0o700, exist_ok=True)
    path = _token_path(token_dir, selector)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"token": token, "expires_on": expires_on}, handle)


def load_stashed_token(token_dir: str, selector: str) -> dict[str, Any] | None:
    try:
        with open(_token_path(token_dir, selector)) as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and "token" in data else None


# --------------------------------------------------------------------------- classification


def classify_token_error(exc: BaseException, trace: ImdsTrace, since: int = 0) -> dict[str, Any]:
    """Why no token: the VM has no such identity, or IMDS could not be reached/answered.

    Only the responses from ``since`` on belong to the failed request: a credential that
    already got another scope's token keeps that exchange in its trace, and its 200 is no
    answer to this request (one that got no response at all is ``imds_no_response``).
    """
    statuses = trace.statuses[since:]
    last = statuses[-1] if statuses else None
    body = (trace.error_body or {}) if statuses else {}
    code = body.get("error")
    description = body.get("error_description") or ""
    identity_missing = (
        last == 400
        or "Identity not found" in str(exc)
        or APP_SERVICE_NO_IDENTITY in description
        or APP_SERVICE_NO_IDENTITY in str(exc)
    )
    outcome = "no_identity" if identity_missing else "unreachable"
    if code is None:
        code = f"imds_http_{last}" if last else "imds_no_response"
    return {
        "outcome": outcome,
        "http_status": last,
        "error_code": code,
        "message": _short(description or exc),
    }


def denial_proven(status: int | None, code: str | None, denial: tuple[int, str]) -> bool:
    """A service's proof of "denied": exactly its status with exactly its code.

    The one rule for every data plane (``denial`` is :data:`KEYVAULT_DENIAL`, whose code
    is the inner error code, or :data:`BLOB_DENIAL`); each service proves a denial with
    its own code, and nothing else may count as one. The verifier judges with this too.
    """
    return (status, code) == denial


def absence_proven(
    status: int | None, code: str | None, missing: tuple[int, tuple[str, ...]]
) -> bool:
    """A service's proof that the target does not exist: its 404 with one of its codes."""
    return status == missing[0] and code in missing[1]


def classify_secret_error(exc: BaseException) -> dict[str, Any]:
    """Map a SecretClient exception to an outcome, keeping status and service codes."""
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        status = int(exc.status_code)
        error = getattr(exc, "error", None)
        code = getattr(error, "code", None) or exc.reason or str(status)
        inner = getattr(error, "innererror", None)
        if isinstance(inner, dict) and inner.get("code"):
            code = f"{code}/{inner['code']}"
        inner_code = inner.get("code") if isinstance(inner, dict) else None
        if denial_proven(status, inner_code, KEYVAULT_DENIAL):
            outcome = "forbidden"
        elif status in (401, 403):
            outcome = "inconclusive"
        elif status == 404:
            outcome = "not_found"
        else:
            outcome = "unreachable"
        message = getattr(error, "message", None) or exc.message
        response = getattr(exc, "response", None)
        header = response.headers.get("Retry-After") if response is not None else None
        retry_after = _seconds(header)
        return {
            "outcome": outcome,
            "http_status": status,
            "error_code": code,
            "message": _short(message),
            "retry_after": retry_after,
        }
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return {
            "outcome": "unreachable",
            "http_status": None,
            "error_code": type(exc).__name__,
            "message": _short(exc),
            "retry_after": None,
        }
    # A token failure surfacing from the challenge policy (e.g. the IMDS went away).
    return {
        "outcome": "unreachable",
        "http_status": None,
        "error_code": type(exc).__name__,
        "message": _short(exc),
        "retry_after": None,
    }


# --------------------------------------------------------------------------- probing


def read_with_retries(
    fetch: Callable[[], dict[str, Any]],
    classify: Callable[[BaseException], dict[str, Any]],
    plan: RetryPlan,
    deadline: Deadline,
    *,
    retry_forbidden: bool,
    throttled: tuple[int, ...],
    out_of_budget: dict[str, Any],
) -> dict[str, Any]:
    """Read one target (a secret or a blob) with the retry plan; the one retry loop.

    ``fetch`` reads it and returns the ``read`` result (with its fingerprint); ``classify``
    maps the exception of a failed read to an outcome by that service's evidence rule.
    Retried: the service's proven RBAC denial while it may still be propagating (only when
    ``retry_forbidden``: waiting out a 403 that is the right answer would only burn the
    budget), and a status in ``throttled`` whose ``Retry-After`` fits the plan. Any other
    403 or a 401 will not change by waiting, so it is not retried. ``out_of_budget`` is
    the result when the budget ran out before an attempt. Reports attempts and waits.
    """
    started = time.monotonic()
    attempts = 0
    waited = 0.0
    first_403: float | None = None
    while True:
        attempts += 1
        if deadline.remaining() <= 0:
            result = dict(out_of_budget)
            break
        try:
            result = fetch()
        except Exception as exc:
            result = classify(exc)
            status = result.get("http_status")
            denied = result["outcome"] == "forbidden"
            if denied and first_403 is None:
                first_403 = time.monotonic()
            retry_after = result.pop("retry_after", None)
            if denied and not retry_forbidden:
                break
            if status == 403 and not denied:
                break
            if status in throttled and retry_after is not None:
                status = 429  # the plan waits out a Retry-After as it does a 429's
            delay = plan.delay(status, retry_after, attempts, first_403 or 0)
            if delay is None:
                break
            time.sleep(delay)
            waited += delay
            continue
        break
    result["attempts"] = attempts
    result["waited_ms"] = int(waited * 1000)
    result["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return result


def _budget_spent(outcome: str, what: str) -> dict[str, Any]:
    return {
        "outcome": outcome,
        "http_status": None,
        "error_code": "BudgetExhausted",
        "message": f"the probe's time budget ran out before this {what} was tried",
    }


def read_secret(
    client: Any, name: str, plan: RetryPlan, deadline: Deadline, retry_forbidden: bool = True
) -> dict[str, Any]:
    """One secret (:func:`read_with_retries`; Key Vault's 429 is waited out)."""

    def fetch() -> dict[str, Any]:
        secret = client.get_secret(name)
        return {
            "outcome": "read",
            "http_status": 200,
            "error_code": None,
            "fingerprint": fingerprint(secret.value or ""),
            "version": secret.properties.version,
        }

    return read_with_retries(
        fetch,
        classify_secret_error,
        plan,
        deadline,
        retry_forbidden=retry_forbidden,
        throttled=(429,),
        out_of_budget=_budget_spent("unreachable", "secret"),
    )


def _secret_client(spec: dict[str, Any], credential: Any, deadline: Deadline) -> Any:
    kwargs: dict[str, Any] = {
        "verify_challenge_resource": bool(spec["verify_challenge_resource"]),
        "retry_total": 0,
        "connection_timeout": min(spec["connect_timeout"], max(deadline.remaining(), 0.1)),
        "read_timeout": min(spec["read_timeout"], max(deadline.remaining(), 0.1)),
    }
    if spec.get("ca_bundle"):
        kwargs["connection_verify"] = spec["ca_bundle"]
    return SecretClient(spec["vault_url"], credential, **kwargs)


class TokenAttempts:
    """The outcome of asking for a token, possibly more than once (429 only)."""

    def __init__(self) -> None:
        self.info: Any = None
        self.credential: Any = None
        self.error: BaseException | None = None
        self.trace = ImdsTrace()
        #: Where the last attempt's responses start in ``trace`` (shared through ``via``).
        self.since = 0
        self.requests = 0
        self.waited_ms = 0


def fresh_token(
    selector: str,
    spec: dict[str, Any],
    deadline: Deadline,
    plan: RetryPlan,
    *,
    scope: str = VAULT_SCOPE,
    via: TokenAttempts | None = None,
) -> TokenAttempts:
    """A token for ``scope``; a 429 is waited out when its ``Retry-After`` fits the plan.

    Each attempt is a NEW credential: msal remembers a 429 for its ``Retry-After`` and
    would answer the retry from that memory instead of asking again. With ``via`` (the
    attempts that got this identity's first token) that credential is asked once, so
    every token of one identity comes from one credential and one source.
    """
    got = TokenAttempts()
    attempt = 0
    while True:
        attempt += 1
        if via is None:
            got.trace = ImdsTrace()
            got.credential = fresh_credential(selector, spec, got.trace, deadline)
        else:
            got.trace, got.credential = via.trace, via.credential
        before = got.since = len(got.trace.statuses)
        try:
            got.info = got.credential.get_token_info(scope)
            got.error = None
        except Exception as exc:
            got.error = exc
        got.requests += len(got.trace.statuses) - before
        if got.info is not None or via is not None:
            return got
        last = got.trace.statuses[-1] if got.trace.statuses else None
        delay = plan.delay(last, got.trace.retry_after, attempt, 0.0) if last == 429 else None
        if delay is None:
            return got
        time.sleep(delay)
        got.waited_ms += int(delay * 1000)


class Obtained:
    """One token of one identity, or why there is none: ``report`` is what the result
    says about it (never the token), ``credential`` what presents it to a client."""

    def __init__(
        self,
        report: dict[str, Any],
        token: str | None = None,
        expires_on: int = 0,
        credential: Any = None,
        attempts: TokenAttempts | None = None,
    ) -> None:
        self.report = report
        self.token = token
        self.expires_on = expires_on
        self.credential = credential
        self.attempts = attempts

    def failure_rows(self, names: Any) -> dict[str, dict[str, Any]]:
        """What each target reports when there was no token to read it with."""
        row = {k: self.report.get(k) for k in ("outcome", "http_status", "error_code", "message")}
        return {name: dict(row) for name in names}


def obtain_token(
    selector: str,
    spec: dict[str, Any],
    deadline: Deadline,
    plan: RetryPlan,
    *,
    scope: str,
    stash_name: str,
    what: str,
    via: Obtained | None = None,
) -> Obtained:
    """The token for ``scope``, the same way for every data plane: in replay mode the one
    an earlier run stashed under ``stash_name``; otherwise a fresh one (:func:`fresh_token`,
    through ``via``'s credential when given), stashed when the spec asks."""
    started = time.monotonic()
    if spec["mode"] == "replay":
        stashed = load_stashed_token(spec["token_dir"], stash_name)
        if stashed is None:
            return Obtained(
                {
                    "outcome": "no_identity",
                    "http_status": None,
                    "error_code": "NoStashedToken",
                    "message": f"no {what} was stashed for this identity by an earlier run",
                }
            )
        token, expires_on = str(stashed["token"]), int(stashed["expires_on"])
        report = {"outcome": "ok", "credential_source": "stash", "imds_requests": 0}
        return Obtained(report, token, expires_on, StashedTokenCredential(token, expires_on))
    through = via.attempts if via is not None else None
    got = fresh_token(selector, spec, deadline, plan, scope=scope, via=through)
    elapsed_ms = int((time.monotonic() - started) * 1000)
    if got.info is None:
        error = got.error or RuntimeError("no token")
        failure = dict(classify_token_error(error, got.trace, got.since))
        failure.update(imds_requests=got.requests, waited_ms=got.waited_ms, elapsed_ms=elapsed_ms)
        return Obtained(failure, attempts=got)
    token, expires_on = got.info.token, int(got.info.expires_on)
    report = {
        "outcome": "ok",
        "credential_source": credential_source(got.credential),
        "imds_requests": got.requests,
        "waited_ms": got.waited_ms,
        "elapsed_ms": elapsed_ms,
    }
    if spec["stash_token"] and spec["token_dir"]:
        stash_token(spec["token_dir"], stash_name, token, expires_on)
        report["stashed"] = True
    return Obtained(report, token, expires_on, got.credential, got)


def _present(obtained: Obtained) -> dict[str, Any]:
    """The claims of an obtained token, its lifetime noted in its report; the token itself
    goes no further than the client that presents it."""
    obtained.report["expires_in_seconds"] = int(obtained.expires_on - time.time())
    return decode_claims(str(obtained.token))


def probe_identity(
    selector: str, spec: dict[str, Any], deadline: Deadline, plan: RetryPlan
) -> dict[str, Any]:
    """The vault token for one identity, then every secret with it, then its blobs."""
    started = time.monotonic()
    report: dict[str, Any] = {"selector": selector, "mode": spec["mode"], "secrets": {}}
    vault = obtain_token(
        selector, spec, deadline, plan, scope=VAULT_SCOPE, stash_name=selector, what="token"
    )
    report["token"] = vault.report
    if vault.token is None:
        report["claims"] = None
        report["secrets"] = vault.failure_rows(spec["secrets"])
        report["blobs"] = vault.failure_rows(spec["blobs"])
        return report
    report["claims"] = _present(vault)
    wanted = (spec.get("expect") or {}).get(selector)
    if spec["secrets"]:
        client = _secret_client(spec, vault.credential, deadline)
        with client:
            for name in spec["secrets"]:
                retry = wanted is None or wanted.get(name) == "allowed"
                report["secrets"][name] = read_secret(client, name, plan, deadline, retry)
    if spec["blobs"]:
        report.update(probe_blobs(selector, spec, vault, deadline, plan))
    report["elapsed_ms"] = int((time.monotonic() - started) * 1000)
    return report


# --------------------------------------------------------------------------- blobs


def classify_blob_error(exc: BaseException) -> dict[str, Any]:
    """Map a BlobClient exception to an outcome by Blob Storage's evidence rule.

    ``forbidden`` only for 403 ``AuthorizationPermissionMismatch``; ``not_found`` only for
    404 ``BlobNotFound`` / ``ContainerNotFound``; a request that never reached the service
    (connection refused, DNS) is ``unreachable``; everything else (401, other 403s such
    as ``AuthorizationFailure``, 429, 5xx, a reset or timeout mid-request) is
    ``inconclusive``: it says nothing about what RBAC would decide.
    """
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        status = int(exc.status_code)
        response = getattr(exc, "response", None)
        headers = response.headers if response is not None else {}
        code = getattr(exc, "error_code", None) or headers.get("x-ms-error-code") or str(status)
        code = str(getattr(code, "value", code))  # azure-storage-blob's StorageErrorCode enum
        if denial_proven(status, code, BLOB_DENIAL):
            outcome = "forbidden"
        elif absence_proven(status, code, BLOB_MISSING):
            outcome = "not_found"
        else:
            outcome = "inconclusive"
        message = str(getattr(exc, "message", None) or exc).split("\n", 1)[0]
        return {
            "outcome": outcome,
            "http_status": status,
            "error_code": str(code),
            "message": _short(message),
            "retry_after": _seconds(headers.get("Retry-After")),
        }
    outcome = "unreachable" if isinstance(exc, ServiceRequestError) else "inconclusive"
    return {
        "outcome": outcome,
        "http_status": None,
        "error_code": type(exc).__name__,
        "message": _short(exc),
        "retry_after": None,
    }


def read_blob(
    url: str,
    credential: Any,
    spec: dict[str, Any],
    plan: RetryPlan,
    deadline: Deadline,
    *,
    retry_forbidden: bool = True,
    session: Any = None,
) -> dict[str, Any]:
    """One blob (:func:`read_with_retries`; a 429 or 503 with a ``Retry-After`` that fits
    is waited out). Reports the SHA-256 of the content, never the content. ``session``:
    a ``requests.Session`` the client borrows (and leaves open), so one identity's blob
    reads share their connections as its Key Vault reads do."""

    def fetch() -> dict[str, Any]:
        with _blob_client(url, credential, spec, deadline, session) as client:
            content = client.download_blob().readall()
        return {
            "outcome": "read",
            "http_status": 200,
            "error_code": None,
            "fingerprint": fingerprint(content),
        }

    return read_with_retries(
        fetch,
        classify_blob_error,
        plan,
        deadline,
        retry_forbidden=retry_forbidden,
        throttled=(429, 503),
        out_of_budget=_budget_spent("inconclusive", "blob"),
    )


def _blob_client(
    url: str, credential: Any, spec: dict[str, Any], deadline: Deadline, session: Any = None
) -> Any:
    kwargs: dict[str, Any] = {
        "retry_total": 0,
        "connection_timeout": min(spec["connect_timeout"], max(deadline.remaining(), 0.1)),
        "read_timeout": min(spec["read_timeout"], max(deadline.remaining(), 0.1)),
    }
    if session is not None:  # borrowed: closing the client leaves it open
        kwargs["session"], kwargs["session_owner"] = session, False
    if spec.get("ca_bundle"):
        kwargs["connection_verify"] = spec["ca_bundle"]
    return BlobClient.from_blob_url(url, credential=credential, **kwargs)


def probe_blobs(
    selector: str,
    spec: dict[str, Any],
    vault: Obtained,
    deadline: Deadline,
    plan: RetryPlan,
) -> dict[str, Any]:
    """``blob_token``, ``blob_claims`` and ``blobs`` for one identity.

    The ``https://storage.azure.com`` token is asked of the credential the identity's
    vault token came from (``vault``), or in replay mode taken from an earlier run's stash.
    """
    storage = obtain_token(
        selector,
        spec,
        deadline,
        plan,
        scope=STORAGE_SCOPE,
        stash_name=selector + STORAGE_STASH_SUFFIX,
        what="storage token",
        via=vault,
    )
    if storage.token is None:
        return {
            "blob_token": storage.report,
            "blob_claims": None,
            "blobs": storage.failure_rows(spec["blobs"]),
        }
    claims = _present(storage)
    presented = StashedTokenCredential(storage.token, storage.expires_on)
    wanted = (spec.get("expect") or {}).get(selector)
    # One connection pool for the identity's blob reads: a client per blob used to open
    # (and TLS-handshake) a connection per blob, a third of a probe's CPU time.
    with Session() as session:
        results = {
            key: read_blob(
                url,
                presented,
                spec,
                plan,
                deadline,
                retry_forbidden=wanted is None or wanted.get(key) == "allowed",
                session=session,
            )
            for key, url in spec["blobs"].items()
        }
    return {"blob_token": storage.report, "blob_claims": claims, "blobs": results}


def evaluate(result: dict[str, Any], expect: dict[str, dict[str, str]] | None) -> bool:
    """Pass when each expectation held; with none, when every secret and blob was read.

    ``expect`` names secrets and blob keys alike (a blob key always has a ``/``, which a
    secret name cannot), so one map per selector covers both.
    """
    for ident in result["identities"]:
        wanted = (expect or {}).get(ident["selector"], {})
        targets = {**ident["secrets"], **ident.get("blobs", {})}
        for name, outcome in targets.items():
            expected = wanted.get(name, "allowed" if expect is None else None)
            if expected == "allowed" and outcome["outcome"] != "read":
                return False
            if expected == "denied" and outcome["outcome"] != "forbidden":
                return False
    return True


def run(spec: dict[str, Any], partial: dict[str, Any] | None = None) -> dict[str, Any]:
    """Probe every identity within the budget; ``partial`` is filled as we go."""
    deadline = Deadline(float(spec["budget_seconds"]))
    plan = RetryPlan(spec, deadline)
    result = partial if partial is not None else {}
    result.update(
        {
            "probe_version": PROBE_VERSION,
            "vault_url": spec["vault_url"],
            "mode": spec["mode"],
            "budget_seconds": spec["budget_seconds"],
            "identities": [],
        }
    )
    for selector in spec["identities"]:
        result["identities"].append(probe_identity(selector, spec, deadline, plan))
    result["elapsed_ms"] = deadline.elapsed_ms()
    result["passed"] = evaluate(result, spec.get("expect"))
    return result


# --------------------------------------------------------------------------- entry point


def emit(result: dict[str, Any], encoding: str) -> None:
    """Print the result; ``gzip-b64`` fits Run Command's 4 KiB output window."""
    text = json.dumps(result, separators=(",", ":"), sort_keys=True)
    if encoding == "gzip-b64":
        text = base64.b64encode(gzip.compress(text.encode("utf-8"))).decode("ascii")
    sys.stdout.write(f"{RESULT_BEGIN}\n{text}\n{RESULT_END}\n")
    sys.stdout.flush()


def parse_output(stdout: str) -> dict[str, Any]:
    """The caller's side of :func:`emit`: find the result between the markers."""
    begin = stdout.rfind(RESULT_BEGIN)
    end = stdout.rfind(RESULT_END)
    if begin < 0 or end < begin:
        raise ValueError("no probe result in the output")
    body = stdout[begin + len(RESULT_BEGIN) : end].strip()
    if not body.startswith("{"):
        body = gzip.decompress(base64.b64decode(body)).decode("utf-8")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError("the probe result is not a JSON object")
    return data


def _read_spec(args: argparse.Namespace) -> dict[str, Any]:
    if args.spec_b64:
        return dict(json.loads(base64.b64decode(args.spec_b64)))
    if args.spec_json:
        return dict(json.loads(args.spec_json))
    if args.spec:
        if args.spec == "-":
            return dict(json.load(sys.stdin))
        with open(args.spec) as handle:
            return dict(json.load(handle))
    return {
        "vault_url": args.vault_url,
        "secrets": args.secret or [],
        "identities": args.identity or ["system"],
        "ca_bundle": args.ca_bundle,
        "verify_challenge_resource": not args.no_verify_challenge_resource,
        "budget_seconds": args.budget,
        "propagation_wait_seconds": args.propagation_wait,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="probe", description="Which Key Vault secrets can this VM's identities read?"
    )
    parser.add_argument("--spec", help="JSON spec file, or - for stdin")
    parser.add_argument("--spec-json", help="JSON spec inline")
    parser.add_argument("--spec-b64", help="base64 JSON spec (Run Command friendly)")
    parser.add_argument("--vault-url")
    parser.add_argument("--secret", action="append")
    parser.add_argument("--identity", action="append", help="'system' or a client ID")
    parser.add_argument("--ca-bundle")
    parser.add_argument("--no-verify-challenge-resource", action="store_true")
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--propagation-wait", type=float, default=0.0)
    parser.add_argument("--output", choices=("json", "gzip-b64"), default="json")
    args = parser.parse_args(argv)

    # azure-core logs failures at WARNING through logging's last-resort stderr handler;
    # the JSON result already carries them, so keep stderr for real crashes.
    logging.getLogger("azure").setLevel(logging.ERROR)
    logging.getLogger("msal").setLevel(logging.ERROR)
    if MISSING_DEPENDENCY is not None:
        sys.stderr.write(
            f"probe: {MISSING_DEPENDENCY}; install azure-identity, azure-keyvault-secrets and "
            "azure-storage-blob (the VM's cloud-init puts them in a venv)\n"
        )
        return EXIT_USAGE
    try:
        spec = load_spec(_read_spec(args))
    except (SpecError, ValueError, OSError) as exc:
        sys.stderr.write(f"probe: bad spec: {exc}\n")
        return EXIT_USAGE

    partial: dict[str, Any] = {}
    lock = threading.Lock()

    def watchdog() -> None:
        # Last line of defence: a request stuck past every timeout still ends the probe.
        with lock:
            note = "the probe exceeded its budget and was stopped"
            try:
                emit({**partial, "watchdog": note, "passed": False}, args.output)
            except (RuntimeError, TypeError, ValueError):  # changed under us mid-dump
                minimal = {"probe_version": PROBE_VERSION, "vault_url": spec["vault_url"]}
                emit({**minimal, "watchdog": note, "passed": False}, args.output)
        os._exit(EXIT_WATCHDOG)

    grace = float(spec["watchdog_grace_seconds"])
    timer = threading.Timer(float(spec["budget_seconds"]) + grace, watchdog)
    timer.daemon = True
    timer.start()
    result = run(spec, partial)
    with lock:
        timer.cancel()
        emit(result, args.output)
    return EXIT_PASS if result["passed"] else EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
