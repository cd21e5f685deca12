"""Scale-set instances and AKS workloads in the sandbox, with the real azure-identity.

Each instance has its own IMDS and the set's principals; each cluster has an HTTPS OIDC
issuer; each workload's pod environment is what the workload identity webhook injects,
with a projected token the unchanged ``WorkloadIdentityCredential`` and
``DefaultAzureCredential`` exchange at the sandbox's Entra endpoint, matched against the
identity's federated credentials exactly (AADSTS700211/700212/700213 otherwise). A
workload without an identity falls through to IMDS and gets the node's kubelet identity.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CredentialUnavailableError,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.keyvault.secrets import SecretClient
from sandbox_world import VAULT_SCOPE

from verify.sandbox import Sandbox
from verify.sandbox.aks.workloads import POD_TOKEN_FILE, pod_environment
from verify.sandbox.state.fleet import Cluster, ScaleSet, Workload
from verify.sandbox.state.store import UserAssignedIdentity, Vault

AUDIENCE = "api://AzureADTokenExchange"


@dataclass
class Fleet:
    rg: str
    vault: Vault
    shared: UserAssignedIdentity
    scale_set: ScaleSet
    cluster: Cluster
    api: Workload
    batch: Workload


@pytest.fixture
def fleet(sb: Sandbox) -> Fleet:
    suffix = uuid.uuid4().hex[:8]
    st = sb.state
    rg = f"rg-fleet-{suffix}"
    st.create_resource_group(rg)
    vault = st.create_vault(rg, f"kv-{suffix}")
    st.set_secret(vault.name, "api-key", "value-of-api-key")
    st.set_secret(vault.name, "reports", "value-of-reports")
    shared = st.create_identity(rg, "id-shared")
    scale_set = st.create_scale_set(
        rg, f"vmss-{suffix}", capacity=2, system_assigned=True, user_assigned=[shared.id]
    )
    assert scale_set.system_principal_id is not None
    st.create_role_assignment(
        vault.secret_scope("reports"), "Key Vault Secrets User", scale_set.system_principal_id
    )
    st.create_role_assignment(
        vault.secret_scope("api-key"), "Key Vault Secrets User", shared.principal_id
    )
    node_rg = f"MC_{rg}_aks_westeurope"
    st.create_resource_group(node_rg)
    kubelet = st.create_identity(node_rg, "aks-agentpool")
    issuer = sb.clusters.issuer_url("westeurope", sb.tenant_id, str(uuid.uuid4()))
    cluster = st.create_cluster(
        rg, f"aks-{suffix}", issuer_url=issuer, kubelet_identity_id=kubelet.id,
        node_resource_group=node_rg,
    )  # fmt: skip
    st.create_federated_credential(
        shared.id, "aks-api", issuer, "system:serviceaccount:shop:api", (AUDIENCE,)
    )
    api = st.add_workload(cluster.id, f"api-{suffix}", "shop", "api", shared.client_id)
    batch = st.add_workload(cluster.id, f"batch-{suffix}", "shop", "batch")
    return Fleet(rg, vault, shared, scale_set, cluster, api, batch)


def claims_of(sb: Sandbox, token: str) -> dict[str, Any]:
    return sb.issuer_service.verify(token, ["https://vault.azure.net"])


def as_pod(
    sb: Sandbox, workload: Workload, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = pod_environment(sb, workload, tmp_path).env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


# ------------------------------------------------------------------------- scale sets
def test_every_instance_has_its_own_imds_and_the_sets_principals(
    sb: Sandbox, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    instances = sb.state.instances(fleet.scale_set.id)
    assert [i.id.rsplit("/", 1)[-1] for i in instances] == ["0", "1"]
    urls = {sb.imds_url(i) for i in instances}
    assert len(urls) == 2
    for instance in instances:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", sb.imds_url(instance))
        system = claims_of(sb, ManagedIdentityCredential().get_token(VAULT_SCOPE).token)
        assert system["oid"] == fleet.scale_set.system_principal_id
        assert system["xms_mirid"] == fleet.scale_set.id  # the set, not the instance
        shared = ManagedIdentityCredential(client_id=fleet.shared.client_id)
        assert (
            claims_of(sb, shared.get_token(VAULT_SCOPE).token)["oid"] == fleet.shared.principal_id
        )
        client = SecretClient(
            sb.vault_url(fleet.vault), ManagedIdentityCredential(), **sb.keyvault_client_kwargs()
        )
        assert client.get_secret("reports").value == "value-of-reports"


def test_scale_out_reads_at_once_and_the_identity_outlives_every_instance(
    sb: Sandbox, fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    sb.state.scale_scale_set(fleet.scale_set.id, 3)
    newest = sb.state.instance(fleet.scale_set.instance_id(2))
    assert newest is not None
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", sb.imds_url(newest))
    client = SecretClient(
        sb.vault_url(fleet.vault), ManagedIdentityCredential(), **sb.keyvault_client_kwargs()
    )
    assert client.get_secret("reports").value == "value-of-reports"
    sb.state.scale_scale_set(fleet.scale_set.id, 0)
    assert sb.state.instances(fleet.scale_set.id) == []
    assert sb.state.principal(fleet.scale_set.system_principal_id or "") is not None
    sb.state.delete_scale_set(fleet.scale_set.id)
    assert sb.state.principal(fleet.scale_set.system_principal_id or "") is None
    assert sb.state.identity(fleet.shared.id) is not None  # a user-assigned one stays


# ---------------------------------------------------------------------------- clusters
def test_cluster_issuer_serves_discovery_and_keys_with_its_trailing_slash(
    sb: Sandbox, fleet: Fleet
) -> None:
    issuer = fleet.cluster.issuer_url
    assert issuer.startswith("https://127.0.0.1:") and issuer.endswith("/")
    config = requests.get(
        f"{issuer}.well-known/openid-configuration", verify=sb.ca_cert_path, timeout=5
    ).json()
    assert config["issuer"] == issuer
    assert config["jwks_uri"] == f"{issuer}openid/v1/jwks"
    keys = requests.get(config["jwks_uri"], verify=sb.ca_cert_path, timeout=5).json()["keys"]
    token = sb.clusters.service_account_token(issuer, "shop", "api")
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE)
    assert (claims["iss"], claims["sub"], claims["aud"]) == (
        issuer,
        "system:serviceaccount:shop:api",
        [AUDIENCE],
    )
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "api"


def test_the_webhook_environment_is_injected_only_into_labelled_pods(
    sb: Sandbox, fleet: Fleet, tmp_path: Path
) -> None:
    api = pod_environment(sb, fleet.api, tmp_path)
    batch = pod_environment(sb, fleet.batch, tmp_path)
    assert set(api.webhook) == {
        "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST",
    }  # fmt: skip
    assert api.webhook["AZURE_CLIENT_ID"] == fleet.shared.client_id
    assert api.webhook["AZURE_AUTHORITY_HOST"].startswith("https://")
    assert api.token_file is not None and api.token_file.name == Path(POD_TOKEN_FILE).name
    claims = jwt.decode(api.token_file.read_text(), options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:shop:api"
    # No identity: its pods carry no label, so nothing is injected or projected.
    assert (batch.webhook, batch.token_file) == ({}, None)
    node = sb.state.node_instance(fleet.cluster.id)
    assert api.imds == batch.imds == sb.imds_url(node)


def test_a_labelled_pod_without_client_id_gets_three_variables_and_azure_identity_refuses(
    sb: Sandbox, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unannotated = sb.state.add_workload(
        fleet.cluster.id, f"labelled-{uuid.uuid4().hex[:6]}", "shop", "batch", labelled=True
    )
    env = as_pod(sb, unannotated, tmp_path, monkeypatch)
    assert "AZURE_CLIENT_ID" not in env and "AZURE_FEDERATED_TOKEN_FILE" in env
    with pytest.raises(ValueError, match="no client ID was provided"):
        DefaultAzureCredential()


def test_workload_identity_credential_exchanges_the_projected_token(
    sb: Sandbox, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_pod(sb, fleet.api, tmp_path, monkeypatch)
    for credential in (WorkloadIdentityCredential(), DefaultAzureCredential()):
        claims = claims_of(sb, credential.get_token(VAULT_SCOPE).token)
        assert claims["oid"] == fleet.shared.principal_id
        client = SecretClient(sb.vault_url(fleet.vault), credential, **sb.keyvault_client_kwargs())
        assert client.get_secret("api-key").value == "value-of-api-key"


def test_a_workload_without_identity_reaches_imds_as_the_kubelet_identity(
    sb: Sandbox, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = as_pod(sb, fleet.batch, tmp_path, monkeypatch)
    assert not {"AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"} & set(env)
    kubelet = sb.state.identity(fleet.cluster.kubelet_identity_id)
    assert kubelet is not None
    claims = claims_of(sb, DefaultAzureCredential().get_token(VAULT_SCOPE).token)
    assert claims["oid"] == kubelet.principal_id  # the trap: a token, but the node's
    client = SecretClient(
        sb.vault_url(fleet.vault), DefaultAzureCredential(), **sb.keyvault_client_kwargs()
    )
    with pytest.raises(Exception, match=r"Forbidden|not authorized"):
        client.get_secret("api-key")


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"iss": "without-slash"}, "AADSTS700211"),
        ({"sub": "system:serviceaccount:shop:API"}, "AADSTS700213"),
        ({"sub": "system:serviceaccount:shop:api-typo"}, "AADSTS700213"),
        ({"aud": ["api://AzureADTokenExchange/"]}, "AADSTS700212"),
    ],
)
def test_the_exchange_matches_issuer_subject_and_audience_exactly(
    sb: Sandbox,
    fleet: Fleet,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    claims: dict[str, Any],
    code: str,
) -> None:
    env = as_pod(sb, fleet.api, tmp_path, monkeypatch)
    if claims.get("iss") == "without-slash":
        claims = {"iss": fleet.cluster.issuer_url.rstrip("/")}
    token = sb.clusters.service_account_token(fleet.cluster.issuer_url, "shop", "api", **claims)
    Path(env["AZURE_FEDERATED_TOKEN_FILE"]).write_text(token)  # as if the kubelet wrote it
    with pytest.raises(ClientAuthenticationError, match=code):
        WorkloadIdentityCredential().get_token(VAULT_SCOPE)


def test_a_removed_federated_credential_stops_the_next_exchange(
    sb: Sandbox, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_pod(sb, fleet.api, tmp_path, monkeypatch)
    issued = WorkloadIdentityCredential().get_token(VAULT_SCOPE)
    (fic,) = sb.state.federated_credentials(fleet.shared.id)
    sb.state.delete_federated_credential(fic.id)
    with pytest.raises(ClientAuthenticationError, match="AADSTS70021"):
        WorkloadIdentityCredential().get_token(VAULT_SCOPE)
    # The access token issued before keeps working until it expires.
    client = SecretClient(
        sb.vault_url(fleet.vault), _Fixed(issued.token), **sb.keyvault_client_kwargs()
    )
    assert client.get_secret("api-key").value == "value-of-api-key"


def test_azure_identity_refuses_a_plain_http_authority(
    sb: Sandbox, fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    as_pod(sb, fleet.api, tmp_path, monkeypatch)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", sb.authority_url.replace("https://", "http://"))
    with pytest.raises(
        (ValueError, ClientAuthenticationError, CredentialUnavailableError), match=r"(?i)https"
    ):
        WorkloadIdentityCredential().get_token(VAULT_SCOPE)


class _Fixed:
    """A TokenCredential that hands out one token it was given."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        claims = jwt.decode(self._token, options={"verify_signature": False})
        return AccessToken(self._token, int(claims["exp"]))
