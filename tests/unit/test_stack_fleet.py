# ruff: noqa: E501 -- one case per line, read as a table
"""mikit:scaleSets and mikit:clusters through the stack program in the mock runtime."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.errors import ConfigError
from components.testing import AzureMocks, InMemoryArm, run_program
from tests.unit.conftest import PROGRAM, Deployment, deploy, dev_config

FIC = "azure-native:managedidentity:FederatedIdentityCredential"
AKS_ISSUER = "https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000001/abc"

FLEET: dict[str, Any] = {
    "mikit:scaleSets": {
        "web": {
            "name": "vmss-web",
            "instances": 2,
            "systemIdentity": True,
            "userAssigned": ["shared"],
        }
    },
    "mikit:clusters": {
        "aks": {
            "name": "aks-dev",
            "workloads": {
                "api": {"namespace": "shop", "serviceAccount": "api", "identity": "shared"},
                "batch": {"namespace": "shop", "serviceAccount": "batch"},
            },
        }
    },
}


def fleet_config(**overrides: Any) -> dict[str, Any]:
    """The dev stack with FLEET's hosts (dev grants scaleset:web already) and a grant to
    workload:api."""
    config = dev_config(**copy.deepcopy(FLEET))
    grants = [
        *config["mikit:grants"],
        {
            "principal": "workload:api",
            "role": "Key Vault Secrets User",
            "target": "secret:app-db-password",
        },
    ]
    config["mikit:grants"] = grants
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def fleet() -> Deployment:
    return deploy(PROGRAM, fleet_config())


def fails(config: dict[str, Any]) -> ConfigError:
    mocks = AzureMocks(InMemoryArm())
    with pytest.raises(ConfigError) as caught:
        run_program(PROGRAM, config, mocks=mocks)
    assert mocks.custom_registrations() == [], "a resource was registered before the error"
    return caught.value


def test_fleet_exports_scale_sets_and_clusters_with_their_workloads(fleet: Deployment) -> None:
    out = fleet.outputs
    web = out["scale_sets"]["web"]
    assert set(web) == {"name", "id", "system_principal_id", "user_assigned", "instances"}
    assert (web["name"], web["user_assigned"], web["instances"]) == ("vmss-web", ["shared"], 2)
    doc = fleet.backend.get(web["id"])
    assert doc is not None and web["system_principal_id"] == doc["identity"]["principalId"]
    aks = out["clusters"]["aks"]
    assert aks["oidc_issuer_url"].endswith("/")
    assert aks["kubelet_identity"]["object_id"]
    api, batch = aks["workloads"]["api"], aks["workloads"]["batch"]
    assert api == {
        "namespace": "shop",
        "service_account": "api",
        "subject": "system:serviceaccount:shop:api",
        "identity": "shared",
        "client_id": out["identities"]["shared"]["client_id"],
    }
    assert batch["identity"] is None and batch["client_id"] is None
    (fic,) = fleet.mocks.of_type(FIC)
    assert (fic.inputs["issuer"], fic.inputs["subject"]) == (aks["oidc_issuer_url"], api["subject"])
    assert fic.inputs["federatedIdentityCredentialResourceName"] == "aks-aks-api"


def test_grants_reach_the_scale_set_principal_and_the_workload_identity(fleet: Deployment) -> None:
    out = fleet.outputs
    by_principal = {g["principal"]: g for g in out["grants"]}
    assert (
        by_principal["scaleset:web"]["principal_id"]
        == out["scale_sets"]["web"]["system_principal_id"]
    )
    assert (
        by_principal["workload:api"]["principal_id"] == out["identities"]["shared"]["principal_id"]
    )
    # Azure sees the identity, not the workload: every VM holding it reads the secret too.
    # Only an app whose identity settings hide it from the code (a Container Apps lifecycle
    # of None or Init) gets no token for it at all.
    rows = [
        r
        for r in out["access_matrix"]
        if r["identity"] == "shared" and r.get("secret") == "app-db-password"
    ]
    visible = [r for r in rows if r["expected"] != "no_identity"]
    assert visible and all(r["expected"] == "allowed" for r in visible)
    assert all(r.get("host_kind") == "app" for r in rows if r not in visible)


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (("mikit:scaleSets", "web", "instances", 101), "mikit:scaleSets.web.instances", "is not a whole number of instances from 0 to 100"),
        (("mikit:scaleSets", "web", "userAssigned", ["nope"]), "mikit:scaleSets.web.userAssigned[0]", "is not a key of mikit:identities"),
        (("mikit:clusters", "aks", "name", "-aks"), "mikit:clusters.aks.name", "is not a valid AKS cluster name"),
        (("mikit:clusters", "aks", "workloads", {"api": {"namespace": "Shop", "serviceAccount": "api"}}), "mikit:clusters.aks.workloads.api.namespace", "is not a valid Kubernetes namespace"),
        (("mikit:clusters", "aks", "workloads", {"api": {"namespace": "shop", "serviceAccount": "api", "identity": "nope"}}), "mikit:clusters.aks.workloads.api.identity", "is not a key of mikit:identities"),
    ],
)  # fmt: skip
def test_fleet_config_errors(change: tuple[Any, ...], field: str, problem: str) -> None:
    config = fleet_config()
    top, key, attribute, value = change
    config[top][key][attribute] = value
    error = fails(config)
    assert (error.field, error.problem) == (field, problem)


def test_grant_to_a_workload_without_identity_is_refused() -> None:
    config = fleet_config()
    config["mikit:grants"][-1]["principal"] = "workload:batch"
    error = fails(config)
    assert error.field.endswith(".principal")
    assert "runs without workload identity" in error.problem


def test_the_21st_credential_on_one_identity_is_refused() -> None:
    config = fleet_config()
    config["mikit:identities"]["shared"]["federatedCredentials"] = [
        {"name": f"gh{i}", "issuer": "https://token.actions.githubusercontent.com", "subject": f"repo:o/r:environment:e{i}"}
        for i in range(20)
    ]  # fmt: skip
    error = fails(config)
    assert error.field == "mikit:clusters.aks.workloads.api.identity"
    assert "needs 21 federated credentials" in error.problem


@pytest.mark.parametrize(
    ("credential", "field", "problem"),
    [
        ({"issuer": AKS_ISSUER, "subject": "system:serviceaccount:shop:other"}, "issuer", "lacks the trailing slash"),
        ({"issuer": AKS_ISSUER + "/", "subject": "system:serviceaccounts:shop:other"}, "subject", "is not the subject of a Kubernetes service account token"),
        ({"issuer": AKS_ISSUER + "/", "subject": "system:serviceaccount:shop:api"}, "", "is the credential workload 'api'"),
        ({"issuer": AKS_ISSUER + "/", "subject": "system:serviceaccount:shop:other", "audiences": ["api://AzureADTokenExchange/"]}, "audiences", "is not the audience"),
    ],
)  # fmt: skip
def test_hand_written_cluster_federation_is_held_to_what_aks_tokens_carry(
    credential: dict[str, Any], field: str, problem: str
) -> None:
    config = fleet_config()
    config["mikit:identities"]["shared"]["federatedCredentials"] = [{"name": "k8s", **credential}]
    error = fails(config)
    where = "mikit:identities.shared.federatedCredentials[0]"
    assert error.field == (f"{where}.{field}" if field else where)
    assert problem in error.problem
