"""The CI path end to end: the stack program registers a deployer identity with a federated
credential for the main branch, and a GitHub-Actions-shaped job token gets its access token
through the real WorkloadIdentityCredential; a fork's pull request does not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient

from verify.sandbox import Sandbox, SandboxConfig
from verify.sandbox.oidc.service import github_subject
from verify.targets.sandbox import SandboxTarget

REPO = "contoso/platform"
VAULT_SCOPE = "https://vault.azure.net/.default"


@pytest.fixture(scope="module")
def deployed() -> Iterator[SandboxTarget]:
    sb = Sandbox(SandboxConfig()).start()
    overrides = {
        "mikit:identities": {
            "shared": {"name": "id-mikit-sandbox-shared"},
            "deployer": {
                "name": "id-mikit-sandbox-deployer",
                "federatedCredentials": [
                    {"name": "github-main", "issuer": sb.oidc_url, "subject": github_subject(REPO)}
                ],
            },
        },
        "mikit:grants": [
            {
                "principal": "identity:shared",
                "role": "Key Vault Secrets User",
                "target": "secret:api-key",
            },
            {"principal": "identity:deployer", "role": "Key Vault Secrets User", "target": "vault"},
        ],
    }
    try:
        with SandboxTarget(sandbox=sb, config_overrides=overrides) as target:
            yield target
    finally:
        sb.stop()


def _credential(
    target: SandboxTarget, tmp_path: Path, token: str, monkeypatch: pytest.MonkeyPatch
) -> WorkloadIdentityCredential:
    sb = target.sandbox
    deployer = target.outputs().identities["deployer"]
    token_file = tmp_path / "oidc-token"
    token_file.write_text(token)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", sb.ca_cert_path)
    for name, value in sb.workload_identity_env(deployer.client_id, token_file).items():
        monkeypatch.setenv(name, value)
    return WorkloadIdentityCredential()


def test_stack_program_registers_the_federated_credential(deployed: SandboxTarget) -> None:
    sb = deployed.sandbox
    deployer = deployed.outputs().identities["deployer"]
    (fic,) = sb.state.federated_credentials(deployer.id)
    assert (fic.name, fic.issuer, fic.subject, fic.audiences) == (
        "github-main",
        sb.oidc_url,
        "repo:contoso/platform:ref:refs/heads/main",
        ("api://AzureADTokenExchange",),
    )


def test_main_branch_gets_the_deployer_and_reads_the_vault(
    deployed: SandboxTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = deployed.sandbox
    outputs = deployed.outputs()
    credential = _credential(deployed, tmp_path, sb.oidc.token(REPO), monkeypatch)
    claims = jwt.decode(
        credential.get_token(VAULT_SCOPE).token, options={"verify_signature": False}
    )
    assert claims["oid"] == outputs.identities["deployer"].principal_id
    assert claims["xms_mirid"] == outputs.identities["deployer"].id
    client = SecretClient(outputs.vault.uri, credential, **sb.keyvault_client_kwargs())
    assert client.get_secret("api-key").value == "demo-api-key-93fa"


def test_fork_pull_request_does_not_get_the_deployer(
    deployed: SandboxTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb = deployed.sandbox
    fork = sb.oidc.token("other/fork", event="pull_request")
    credential = _credential(deployed, tmp_path, fork, monkeypatch)
    with pytest.raises(ClientAuthenticationError, match="No matching federated identity record"):
        credential.get_token(VAULT_SCOPE)
