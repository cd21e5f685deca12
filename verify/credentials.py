"""The operator credential the Azure target signs in with.

In GitHub Actions the usual route, ``azure/login`` then the az CLI, breaks in long jobs:
the CLI logs in with the job's OIDC token as a client assertion, keeps that assertion, and
cannot get a new one; GitHub's assertion expires within minutes, so the first token the CLI
needs later (a new audience such as Microsoft Graph, or ARM after its token lapsed) fails
with AADSTS700024 and the lifecycle loses its deletions or its cleanup.

So inside a workflow that may request OIDC tokens (``ACTIONS_ID_TOKEN_REQUEST_URL`` and
``..._TOKEN`` are set, i.e. the job has ``id-token: write``) and knows the deployer
(``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``, or the ``ARM_*`` names the provider reads), the
verifier uses azure-identity's ``ClientAssertionCredential`` with a callable that asks
GitHub for a *fresh* assertion each time Entra ID needs one. Everywhere else it is
``DefaultAzureCredential`` (a developer's ``az login``, a managed identity, ...).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential, DefaultAzureCredential

# The audience the bootstrap's federated credentials expect.
from components.identity import TOKEN_EXCHANGE_AUDIENCE

REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"  # noqa: S105 -- an env var's name


class GitHubOidcAssertion:
    """Callable returning a new GitHub Actions OIDC token for ``audience`` on every call.

    ``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>`` with ``Authorization: bearer
    $ACTIONS_ID_TOKEN_REQUEST_TOKEN`` answers ``{"value": "<jwt>"}`` (what
    ``@actions/core`` ``getIDToken`` does). Neither the request token nor the JWT ever
    appears in an error message.
    """

    def __init__(
        self,
        request_url: str,
        request_token: str,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        timeout: float = 10.0,
    ) -> None:
        parts = urllib.parse.urlsplit(request_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError(f"{REQUEST_URL} is not an http(s) URL")
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        query = [(k, v) for k, v in query if k != "audience"] + [("audience", audience)]
        self._url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
        self._token = request_token
        self._timeout = timeout
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        request = urllib.request.Request(  # noqa: S310 -- scheme checked in __init__
            self._url,
            headers={"Authorization": f"bearer {self._token}", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body: Any = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise ClientAuthenticationError(
                f"GitHub refused an OIDC token ({exc.code}): does the job have "
                "`permissions: id-token: write`?"
            ) from None
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise ClientAuthenticationError(
                f"GitHub's OIDC token endpoint gave no token ({type(exc).__name__})"
            ) from None
        value = body.get("value") if isinstance(body, dict) else None
        if not isinstance(value, str) or value.count(".") != 2:
            raise ClientAuthenticationError("GitHub's OIDC token endpoint answered without a JWT")
        return value


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        if env.get(name):
            return env[name]
    return None


def operator_credential(
    env: Mapping[str, str] | None = None,
    *,
    default: Callable[[], TokenCredential] = DefaultAzureCredential,
    **kwargs: Any,
) -> TokenCredential:
    """A fresh-assertion credential inside GitHub Actions, ``DefaultAzureCredential`` elsewhere.

    ``kwargs`` go to ``ClientAssertionCredential`` (e.g. ``authority`` for a sandbox).
    """
    env = os.environ if env is None else env
    url, token = env.get(REQUEST_URL), env.get(REQUEST_TOKEN)
    client_id = _first(env, "AZURE_CLIENT_ID", "ARM_CLIENT_ID")
    tenant_id = _first(env, "AZURE_TENANT_ID", "ARM_TENANT_ID")
    if url and token and client_id and tenant_id:
        return ClientAssertionCredential(
            tenant_id, client_id, GitHubOidcAssertion(url, token), **kwargs
        )
    return default()
