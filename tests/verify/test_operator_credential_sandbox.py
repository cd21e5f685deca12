"""The verifier's GitHub Actions credential against the sandbox's Entra v2.0 token endpoint
and its GitHub-shaped OIDC issuer, with the real azure-identity.

First the failure the issue describes: a client assertion obtained once (what the az CLI
keeps after ``azure/login``) is refused with AADSTS700024 once GitHub's 5-minute token has
expired, so a later token (ARM after its first token lapsed, or a new audience such as
Microsoft Graph) cannot be had. Then the fix: ``operator_credential`` in a job with
``ACTIONS_ID_TOKEN_REQUEST_URL``/``_TOKEN`` asks the (loopback) GitHub endpoint for a new
assertion for every token, so both audiences work long after the first login.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential
from azure.mgmt.authorization import AuthorizationManagementClient

from verify.credentials import operator_credential
from verify.sandbox import Sandbox, SandboxConfig
from verify.sandbox.oidc.service import github_subject

REPO = "your-org/managed-identity-kit"
SUBJECT = github_subject(REPO, environment="lifecycle")
ARM_SCOPE = "https://management.azure.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
REQUEST_TOKEN = "job-request-token"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as sandbox:
        yield sandbox


@pytest.fixture
def deployer(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sb.ca_cert_path)
    sb.state.create_resource_group("rg-lifecycle")
    uai = sb.state.create_identity("rg-lifecycle", f"id-deployer-{uuid.uuid4().hex[:6]}")
    sb.state.create_federated_credential(uai.id, "github-env-lifecycle", sb.oidc_url, SUBJECT)
    sb.state.create_role_assignment(
        f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-lifecycle",
        "Reader",
        uai.principal_id,
    )
    return uai


class _GitHub(BaseHTTPRequestHandler):
    """GitHub's ACTIONS_ID_TOKEN_REQUEST_URL: a new job token from the sandbox issuer."""

    sandbox: ClassVar[Sandbox]
    issued: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        audience = parse_qs(urlsplit(self.path).query)["audience"][0]
        if self.headers.get("Authorization") != f"bearer {REQUEST_TOKEN}":
            self.send_response(401)
            self.end_headers()
            return
        token = type(self).sandbox.oidc.token(REPO, environment="lifecycle", audience=audience)
        type(self).issued.append(token)
        body = json.dumps({"count": 1, "value": token}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def github(sb: Sandbox) -> Iterator[str]:
    _GitHub.sandbox = sb
    _GitHub.issued = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/_apis/token?api-version=2.0"
    finally:
        server.shutdown()
        server.server_close()


def test_an_assertion_kept_from_the_login_is_refused_once_it_expired(
    sb: Sandbox, deployer: Any
) -> None:
    """What the az CLI does: it logged in with one GitHub token and keeps reusing it."""
    stale = sb.oidc.token(REPO, environment="lifecycle", issued_at=time.time() - 600)
    credential = ClientAssertionCredential(
        sb.tenant_id, deployer.client_id, lambda: stale, authority=sb.authority_url
    )
    with pytest.raises(ClientAuthenticationError, match="700024"):
        credential.get_token(GRAPH_SCOPE)


def test_the_operator_credential_fetches_a_fresh_assertion_for_every_token(
    sb: Sandbox, deployer: Any, github: str
) -> None:
    env = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": github,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        "ARM_CLIENT_ID": deployer.client_id,
        "ARM_TENANT_ID": sb.tenant_id,
    }
    credential = operator_credential(
        env, default=lambda: pytest.fail("not the default chain"), authority=sb.authority_url
    )
    arm = credential.get_token(ARM_SCOPE).token
    graph = credential.get_token(GRAPH_SCOPE).token
    for token in (arm, graph):
        assert (
            jwt.decode(token, options={"verify_signature": False})["oid"] == deployer.principal_id
        )
    # One new GitHub assertion per token Entra issued, each for the exchange audience.
    assert len(_GitHub.issued) == 2
    assert len(set(_GitHub.issued)) == 2
    assert {jwt.decode(t, options={"verify_signature": False})["aud"] for t in _GitHub.issued} == {
        "api://AzureADTokenExchange"
    }
    # The ARM token authorises what the verifier does at resource-group scope.
    client = AuthorizationManagementClient(
        credential, sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )
    scope = f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-lifecycle"
    assert deployer.principal_id in {
        a.principal_id for a in client.role_assignments.list_for_scope(scope)
    }
