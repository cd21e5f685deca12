"""The verifier's credential in GitHub Actions fetches a fresh OIDC assertion per token:
the az login's assertion expires within minutes and the CLI cannot renew
it, so a 45-minute lifecycle step would lose its Graph or ARM tokens halfway.

A loopback stand-in for GitHub's token-request endpoint checks what the real one checks
(the bearer request token, the audience parameter) and hands out a new JWT per request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential

from verify.credentials import GitHubOidcAssertion, operator_credential

REQUEST_TOKEN = "request-token-for-this-job"


class _GitHubOidc(BaseHTTPRequestHandler):
    issued: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 200

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if self.headers.get("Authorization") != f"bearer {REQUEST_TOKEN}":
            self._reply(401, {"message": "Bad credentials"})
            return
        if type(self).status != 200:
            self._reply(type(self).status, {"message": "nope"})
            return
        claims = {
            "iss": "https://token.actions.githubusercontent.com",
            "sub": "repo:your-org/managed-identity-kit:environment:lifecycle",
            "aud": query["audience"][0],
            "jti": str(len(type(self).issued)),
            "api-version": query["api-version"][0],
        }
        type(self).issued.append(claims)
        self._reply(200, {"count": 1, "value": jwt.encode(claims, "k" * 32, algorithm="HS256")})

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def github() -> Iterator[str]:
    _GitHubOidc.issued = []
    _GitHubOidc.status = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHubOidc)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # GitHub's URL already carries a query string; the audience is appended to it.
        yield f"http://127.0.0.1:{server.server_address[1]}/_apis/token?api-version=2.0"
    finally:
        server.shutdown()
        server.server_close()


def test_every_call_fetches_a_new_assertion_for_the_token_exchange_audience(github: str) -> None:
    assertion = GitHubOidcAssertion(github, REQUEST_TOKEN)
    first, second = assertion(), assertion()
    assert first != second
    assert assertion.calls == 2
    assert [c["aud"] for c in _GitHubOidc.issued] == ["api://AzureADTokenExchange"] * 2
    assert [c["api-version"] for c in _GitHubOidc.issued] == ["2.0", "2.0"]
    claims = jwt.decode(second, options={"verify_signature": False})
    assert claims["jti"] == "1"


def test_a_refusal_says_what_to_fix_and_never_shows_the_request_token(github: str) -> None:
    _GitHubOidc.status = 403
    with pytest.raises(ClientAuthenticationError) as info:
        GitHubOidcAssertion(github, REQUEST_TOKEN)()
    assert "id-token: write" in str(info.value)
    assert REQUEST_TOKEN not in str(info.value)
    with pytest.raises(ClientAuthenticationError) as bad:
        GitHubOidcAssertion(github, "wrong-token")()
    assert "401" in str(bad.value)
    assert "wrong-token" not in str(bad.value)


def test_an_unreachable_endpoint_is_an_authentication_error_not_a_traceback() -> None:
    with pytest.raises(ClientAuthenticationError):
        GitHubOidcAssertion(
            "http://127.0.0.1:9/_apis/token?api-version=2.0", REQUEST_TOKEN, timeout=2
        )()
    with pytest.raises(ValueError, match="ACTIONS_ID_TOKEN_REQUEST_URL"):
        GitHubOidcAssertion("file:///etc/passwd", REQUEST_TOKEN)


def test_in_github_actions_the_operator_signs_in_with_fresh_assertions(github: str) -> None:
    env = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": github,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        # The job env the workflows already set for the provider.
        "ARM_CLIENT_ID": "00000000-0000-0000-0000-0000000000c1",
        "ARM_TENANT_ID": "00000000-0000-0000-0000-0000000000a1",
    }
    credential = operator_credential(env, default=lambda: pytest.fail("used the default"))
    assert isinstance(credential, ClientAssertionCredential)
    func = credential._func  # the callable msal calls for each new token
    assert isinstance(func, GitHubOidcAssertion)
    func()
    assert _GitHubOidc.issued[-1]["aud"] == "api://AzureADTokenExchange"


@pytest.mark.parametrize(
    "missing",
    [
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ARM_CLIENT_ID",
        "ARM_TENANT_ID",
    ],
)
def test_outside_an_oidc_job_it_is_the_default_chain(missing: str) -> None:
    env = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://pipelines.example/_apis/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        "ARM_CLIENT_ID": "c",
        "ARM_TENANT_ID": "t",
    }
    del env[missing]
    sentinel = object()
    assert operator_credential(env, default=lambda: sentinel) is sentinel  # type: ignore[arg-type,return-value]
