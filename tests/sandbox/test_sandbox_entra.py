"""Entra's token endpoint with the real azure-identity credentials, and workload identity
federation with a local GitHub-Actions-shaped OIDC issuer.

azure-identity talks to the sandbox as it talks to a private cloud: ``authority`` (or
``AZURE_AUTHORITY_HOST``) is the sandbox's issuer listener, ``disable_instance_discovery``
for the msal-based credentials (msal would otherwise ask login.microsoftonline.com whether
the authority is known), and the sandbox CA trusted through ``REQUESTS_CA_BUNDLE``.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    WorkloadIdentityCredential,
)
from azure.keyvault.secrets import SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sandbox_world import ARM_SCOPE, VAULT_SCOPE, World

from verify.sandbox import Sandbox, SandboxError, UserAssignedIdentity
from verify.sandbox.oidc.service import OidcIssuer, github_subject

REPO = "contoso/platform"
MAIN = github_subject(REPO)  # repo:contoso/platform:ref:refs/heads/main


@pytest.fixture(autouse=True)
def _trust_sandbox_ca(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sb.ca_cert_path)


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def deployer(sb: Sandbox, world: World) -> UserAssignedIdentity:
    """A CI deployer identity trusting the main branch of contoso/platform."""
    uai = sb.state.create_identity(world.rg, f"id-deployer-{uuid.uuid4().hex[:6]}")
    sb.state.create_federated_credential(uai.id, "github-main", sb.oidc_url, MAIN)
    sb.state.create_role_assignment(world.vault.id, "Key Vault Secrets User", uai.principal_id)
    return uai


def token_request(sb: Sandbox, **form: str) -> requests.Response:
    return requests.post(sb.token_endpoint, data=form, verify=sb.ca_cert_path, timeout=10)


def federated_form(
    sb: Sandbox, client_id: str, assertion: str, scope: str = VAULT_SCOPE
) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


def assert_aadsts(response: requests.Response, status: int, error: str, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert set(body) >= {"error_description", "timestamp", "trace_id", "correlation_id"}
    description: str = body["error_description"]
    assert description.startswith(f"AADSTS{code}: ")
    assert f"Trace ID: {body['trace_id']}" in description
    return description


# ----------------------------------------------------------------- federation


def test_workload_identity_credential_gets_the_deployers_token_and_reads_its_secret(
    sb: Sandbox, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uai = deployer(sb, world)
    token_file = tmp_path / "github-oidc-token"
    token_file.write_text(sb.oidc.token(REPO))
    for name, value in sb.workload_identity_env(uai.client_id, token_file).items():
        monkeypatch.setenv(name, value)
    credential = WorkloadIdentityCredential()
    token = credential.get_token(VAULT_SCOPE).token
    claims = claims_of(token)
    assert claims["oid"] == uai.principal_id
    assert claims["appid"] == uai.client_id
    assert claims["xms_mirid"] == uai.id
    client = SecretClient(sb.vault_url(world.vault), credential, **sb.keyvault_client_kwargs())
    assert client.get_secret("api").value == world.values["api"]


def test_client_assertion_credential_gets_an_arm_token_that_arm_authorises(
    sb: Sandbox, world: World
) -> None:
    uai = deployer(sb, world)
    sb.state.create_role_assignment(
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}", "Reader", uai.principal_id
    )
    credential = ClientAssertionCredential(
        sb.tenant_id, uai.client_id, lambda: sb.oidc.token(REPO), authority=sb.authority_url
    )
    client = AuthorizationManagementClient(
        credential, sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )
    scope = f"/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}"
    listed = list(client.role_assignments.list_for_scope(scope))
    assert uai.principal_id in {a.principal_id for a in listed}
    assert claims_of(credential.get_token(ARM_SCOPE).token)["oid"] == uai.principal_id


def test_ci_path_main_branch_gets_the_deployer_a_fork_pull_request_does_not(
    sb: Sandbox, world: World
) -> None:
    uai = deployer(sb, world)
    main = token_request(sb, **federated_form(sb, uai.client_id, sb.oidc.token(REPO)))
    assert main.status_code == 200, main.text
    assert claims_of(main.json()["access_token"])["oid"] == uai.principal_id
    fork = sb.oidc.token("other/fork", event="pull_request")
    assert claims_of(fork)["sub"] == "repo:other/fork:pull_request"
    response = token_request(sb, **federated_form(sb, uai.client_id, fork))
    description = assert_aadsts(response, 401, "invalid_client", 700213)
    assert description.startswith(
        "AADSTS700213: No matching federated identity record found for presented assertion "
        "subject 'repo:other/fork:pull_request'."
    )


def test_a_pull_request_of_the_same_repository_is_not_the_main_branch(
    sb: Sandbox, world: World
) -> None:
    uai = deployer(sb, world)
    pr = sb.oidc.token(REPO, event="pull_request")
    response = token_request(sb, **federated_form(sb, uai.client_id, pr))
    assert_aadsts(response, 401, "invalid_client", 700213)


def test_subject_matching_is_case_sensitive(sb: Sandbox, world: World) -> None:
    uai = deployer(sb, world)
    upper = sb.oidc.token("Contoso/Platform")
    response = token_request(sb, **federated_form(sb, uai.client_id, upper))
    assert_aadsts(response, 401, "invalid_client", 700213)


def test_wrong_audience_is_700212(sb: Sandbox, world: World) -> None:
    uai = deployer(sb, world)
    assertion = sb.oidc.token(REPO, audience="api://AzureADMyOrg")
    response = token_request(sb, **federated_form(sb, uai.client_id, assertion))
    description = assert_aadsts(response, 401, "invalid_client", 700212)
    assert "presented assertion audience 'api://AzureADMyOrg'" in description


def test_an_issuer_no_credential_trusts_is_700211(sb: Sandbox, world: World) -> None:
    uai = deployer(sb, world)
    assertion = sb.oidc.token(REPO, iss="https://token.actions.githubusercontent.com")
    response = token_request(sb, **federated_form(sb, uai.client_id, assertion))
    description = assert_aadsts(response, 401, "invalid_client", 700211)
    assert "issuer 'https://token.actions.githubusercontent.com'" in description


def test_identity_without_federated_credentials_is_70021(sb: Sandbox, world: World) -> None:
    response = token_request(sb, **federated_form(sb, world.id_lone.client_id, sb.oidc.token(REPO)))
    description = assert_aadsts(response, 400, "invalid_request", 70021)
    assert (
        f"Assertion Issuer: '{sb.oidc_url}'. Assertion Subject: '{MAIN}'. "
        "Assertion Audience: 'api://AzureADTokenExchange'."
    ) in description


def test_expired_assertion_is_700024(sb: Sandbox, world: World) -> None:
    uai = deployer(sb, world)
    stale = sb.oidc.token(REPO, issued_at=time.time() - 3600)  # 5-minute token, 1 h old
    response = token_request(sb, **federated_form(sb, uai.client_id, stale))
    description = assert_aadsts(response, 401, "invalid_client", 700024)
    assert "Client assertion is not within its valid time range." in description


def test_assertion_signed_by_another_key_is_refused(sb: Sandbox, world: World) -> None:
    """Same iss, sub and aud, but a key the issuer never published: 700027."""
    uai = deployer(sb, world)
    impostor = OidcIssuer()
    impostor.url = sb.oidc_url
    forged = impostor.token(REPO)
    response = token_request(sb, **federated_form(sb, uai.client_id, forged))
    assert_aadsts(response, 401, "invalid_client", 700027)
    header, payload, _ = sb.oidc.token(REPO).split(".")
    _, _, other_signature = forged.split(".")
    spliced = f"{header}.{payload}.{other_signature}"
    response = token_request(sb, **federated_form(sb, uai.client_id, spliced))
    assert_aadsts(response, 401, "invalid_client", 700027)


def test_a_deleted_identity_loses_its_trust(sb: Sandbox, world: World) -> None:
    uai = deployer(sb, world)
    sb.state.delete_identity(uai.id)
    assert sb.state.federated_credentials(uai.id) == []
    response = token_request(sb, **federated_form(sb, uai.client_id, sb.oidc.token(REPO)))
    assert_aadsts(response, 400, "unauthorized_client", 700016)
    again = sb.state.create_identity(world.rg, uai.name)
    assert sb.state.federated_credentials(again.id) == []  # re-created: no trust carried over


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"issuer": "http://insecure"}, 400),
        ({"subject": " "}, 400),
        ({"audiences": ()}, 400),
        ({"audiences": ("a", "b")}, 400),
    ],
)
def test_federated_credential_shape_is_checked(
    sb: Sandbox, world: World, kwargs: dict[str, Any], status: int
) -> None:
    args: dict[str, Any] = {"issuer": sb.oidc_url, "subject": MAIN, "audiences": ("x",)}
    args.update(kwargs)
    with pytest.raises(SandboxError) as caught:
        sb.state.create_federated_credential(world.id_a.id, "fic", **args)
    assert caught.value.status == status


def test_oidc_issuer_publishes_discovery_and_keys(sb: Sandbox) -> None:
    config = requests.get(
        f"{sb.oidc_url}/.well-known/openid-configuration", verify=sb.ca_cert_path, timeout=10
    ).json()
    assert config["issuer"] == sb.oidc_url
    keys = requests.get(config["jwks_uri"], verify=sb.ca_cert_path, timeout=10).json()["keys"]
    token = sb.oidc.token(REPO)
    key = jwt.PyJWK(keys[0])
    claims = jwt.decode(token, key, algorithms=["RS256"], audience="api://AzureADTokenExchange")
    assert claims["iss"] == sb.oidc_url
    assert claims["sub"] == "repo:contoso/platform:ref:refs/heads/main"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["repository"] == REPO


# ------------------------------------------------------- secrets and certificates


def test_client_secret_credential_for_a_service_principal(sb: Sandbox, world: World) -> None:
    app = sb.state.create_principal(f"app-{uuid.uuid4().hex[:6]}")
    secret = sb.state.add_client_secret(app)
    sb.state.create_role_assignment(world.vault.id, "Key Vault Secrets User", app.object_id)
    credential = ClientSecretCredential(
        sb.tenant_id,
        app.client_id,
        secret,
        authority=sb.authority_url,
        disable_instance_discovery=True,
    )
    client = SecretClient(sb.vault_url(world.vault), credential, **sb.keyvault_client_kwargs())
    assert client.get_secret("db").value == world.values["db"]
    claims = claims_of(credential.get_token(VAULT_SCOPE).token)
    assert (claims["oid"], claims["appid"], claims["appidacr"]) == (
        app.object_id,
        app.client_id,
        "1",
    )
    assert "xms_mirid" not in claims


def test_wrong_client_secret_is_7000215(sb: Sandbox) -> None:
    app = sb.state.create_principal("app-wrong-secret")
    sb.state.add_client_secret(app)
    credential = ClientSecretCredential(
        sb.tenant_id,
        app.client_id,
        "not-the-secret",
        authority=sb.authority_url,
        disable_instance_discovery=True,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        credential.get_token(ARM_SCOPE)


def make_certificate(name: str) -> tuple[bytes, bytes]:
    """(private key PEM + certificate PEM, certificate PEM) of a self-signed certificate."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem + cert_pem, cert_pem


def test_certificate_credential_for_a_service_principal(sb: Sandbox, world: World) -> None:
    app = sb.state.create_principal(f"app-cert-{uuid.uuid4().hex[:6]}")
    both, cert_pem = make_certificate("app-cert")
    sb.state.add_client_certificate(app, cert_pem)
    credential = CertificateCredential(
        sb.tenant_id,
        app.client_id,
        certificate_data=both,
        authority=sb.authority_url,
        disable_instance_discovery=True,
    )
    claims = claims_of(credential.get_token(ARM_SCOPE).token)
    assert (claims["oid"], claims["appidacr"]) == (app.object_id, "2")


def test_certificate_the_app_does_not_hold_is_700027(sb: Sandbox) -> None:
    app = sb.state.create_principal("app-other-cert")
    _, registered = make_certificate("registered")
    sb.state.add_client_certificate(app, registered)
    other, _ = make_certificate("other")
    credential = CertificateCredential(
        sb.tenant_id,
        app.client_id,
        certificate_data=other,
        authority=sb.authority_url,
        disable_instance_discovery=True,
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        credential.get_token(ARM_SCOPE)


def test_managed_identities_cannot_hold_secrets(sb: Sandbox, world: World) -> None:
    principal = sb.state.principal(world.id_a.principal_id)
    assert principal is not None
    with pytest.raises(SandboxError):
        sb.state.add_client_secret(principal)


# ------------------------------------------------------------ the request itself


def test_unknown_client_is_700016(sb: Sandbox) -> None:
    form = federated_form(sb, str(uuid.uuid4()), sb.oidc.token(REPO))
    assert_aadsts(token_request(sb, **form), 400, "unauthorized_client", 700016)


@pytest.mark.parametrize("field", ["grant_type", "client_id", "scope"])
def test_missing_parameter_is_900144(sb: Sandbox, world: World, field: str) -> None:
    form = federated_form(sb, world.id_a.client_id, sb.oidc.token(REPO))
    del form[field]
    description = assert_aadsts(token_request(sb, **form), 400, "invalid_request", 900144)
    assert f"parameter: '{field}'" in description


def test_scope_without_default_is_invalid_scope(sb: Sandbox, world: World) -> None:
    uai = deployer(sb, world)
    form = federated_form(
        sb, uai.client_id, sb.oidc.token(REPO), scope="https://vault.azure.net/read"
    )
    assert_aadsts(token_request(sb, **form), 400, "invalid_scope", 1002012)


def test_unknown_resource_is_500011(sb: Sandbox, world: World) -> None:
    uai = deployer(sb, world)
    form = federated_form(
        sb, uai.client_id, sb.oidc.token(REPO), scope="https://nowhere.example/.default"
    )
    assert_aadsts(token_request(sb, **form), 400, "invalid_resource", 500011)


def test_other_grant_types_are_unsupported(sb: Sandbox, world: World) -> None:
    form = federated_form(sb, world.id_a.client_id, sb.oidc.token(REPO))
    form["grant_type"] = "password"
    assert_aadsts(token_request(sb, **form), 400, "unsupported_grant_type", 70003)


def test_no_credential_at_all_is_7000218(sb: Sandbox, world: World) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": world.id_a.client_id,
        "scope": ARM_SCOPE,
    }
    assert_aadsts(token_request(sb, **form), 401, "invalid_client", 7000218)


def test_another_tenant_is_90002(sb: Sandbox, world: World) -> None:
    url = f"{sb.authority_url}/{uuid.uuid4()}/oauth2/v2.0/token"
    form = federated_form(sb, world.id_a.client_id, sb.oidc.token(REPO))
    response = requests.post(url, data=form, verify=sb.ca_cert_path, timeout=10)
    assert_aadsts(response, 400, "invalid_request", 90002)


def test_what_discovery_advertises_answers(sb: Sandbox, world: World) -> None:
    """v2.0 discovery names the v2.0 token endpoint, v1.0 the v1.0 one; both issue tokens."""
    uai = deployer(sb, world)
    base = f"{sb.authority_url}/{sb.tenant_id}"
    v2 = requests.get(
        f"{base}/v2.0/.well-known/openid-configuration", verify=sb.ca_cert_path, timeout=10
    ).json()
    v1 = requests.get(
        f"{base}/.well-known/openid-configuration", verify=sb.ca_cert_path, timeout=10
    ).json()
    assert v2["token_endpoint"] == sb.token_endpoint
    assert v1["token_endpoint"] == f"{base}/oauth2/token"
    form = federated_form(sb, uai.client_id, sb.oidc.token(REPO))
    ok = requests.post(v2["token_endpoint"], data=form, verify=sb.ca_cert_path, timeout=10)
    assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer"
    assert ok.json()["expires_in"] == 3599
    del form["scope"]
    form["resource"] = "https://vault.azure.net"
    v1_ok = requests.post(v1["token_endpoint"], data=form, verify=sb.ca_cert_path, timeout=10)
    assert v1_ok.status_code == 200, v1_ok.text
    assert v1_ok.json()["resource"] == "https://vault.azure.net"
    assert claims_of(v1_ok.json()["access_token"])["aud"] == "https://vault.azure.net"
    for keys_url in (v1["jwks_uri"], v2["jwks_uri"]):
        assert requests.get(keys_url, verify=sb.ca_cert_path, timeout=10).json()["keys"]


def test_json_body_is_not_a_form(sb: Sandbox, world: World) -> None:
    form = federated_form(sb, world.id_a.client_id, sb.oidc.token(REPO))
    response = requests.post(sb.token_endpoint, json=form, verify=sb.ca_cert_path, timeout=10)
    assert_aadsts(response, 400, "invalid_request", 900144)
