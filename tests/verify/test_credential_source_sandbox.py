"""The probe names the credential source that answered, through the real azure-identity,
and the judge refuses a token from the wrong one: the pod that silently reaches IMDS.

A pod of an AKS workload with workload identity gets its token from the federated
exchange (``workload_identity``); a pod without it reaches the node's IMDS and gets the
kubelet identity (``imds``), a token that looks fine and is the wrong proof.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from verify_world import World

from verify import probe
from verify.evidence.cells import Expectation
from verify.evidence.judge import judge_identity
from verify.model import IdentityReport
from verify.sandbox.aks.workloads import pod_environment
from verify.sandbox.state.fleet import Workload

AUDIENCE = "api://AzureADTokenExchange"


def _cluster(world: World) -> tuple[Workload, Workload, str]:
    """A cluster whose ``api`` workload is federated to the shared identity (which reads the
    whole vault) and whose ``batch`` workload has no identity."""
    sb, suffix = world.sb, uuid.uuid4().hex[:8]
    st = sb.state
    rg = f"rg-aks-{suffix}"
    st.create_resource_group(rg)
    node_rg = f"MC_{rg}_aks_westeurope"
    st.create_resource_group(node_rg)
    kubelet = st.create_identity(node_rg, "aks-agentpool")
    issuer = sb.clusters.issuer_url("westeurope", sb.tenant_id, str(uuid.uuid4()))
    cluster = st.create_cluster(
        rg, f"aks-{suffix}", issuer_url=issuer, kubelet_identity_id=kubelet.id,
        node_resource_group=node_rg,
    )  # fmt: skip
    st.create_federated_credential(
        world.shared.id, f"aks-{suffix}", issuer, "system:serviceaccount:shop:api", (AUDIENCE,)
    )
    api = st.add_workload(cluster.id, f"api-{suffix}", "shop", "api", world.shared.client_id)
    batch = st.add_workload(cluster.id, f"batch-{suffix}", "shop", "batch")
    return api, batch, kubelet.principal_id


def _probe_as_pod(
    world: World, workload: Workload, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    for name, value in pod_environment(world.sb, workload, tmp_path).env().items():
        monkeypatch.setenv(name, value)
    spec = probe.load_spec(
        {
            "vault_url": world.vault_url,
            "secrets": ["db-password"],
            "ca_bundle": world.sb.ca_cert_path,
            "verify_challenge_resource": False,
            "budget_seconds": 20,
        }
    )
    (report,) = probe.run(spec)["identities"]
    return dict(report)


def test_a_pod_reports_workload_identity_and_an_unlabelled_pod_imds(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, batch, kubelet_principal = _cluster(world)
    with monkeypatch.context() as env:
        federated = _probe_as_pod(world, api, tmp_path / "api", env)
    assert federated["token"]["credential_source"] == "workload_identity", federated["token"]
    assert federated["claims"]["oid"] == world.shared.principal_id
    assert federated["secrets"]["db-password"]["outcome"] == "read"
    with monkeypatch.context() as env:
        trapped = _probe_as_pod(world, batch, tmp_path / "batch", env)
    assert trapped["token"]["credential_source"] == "imds", trapped["token"]
    assert trapped["claims"]["oid"] == kubelet_principal  # a token, but the node's

    # Judged as a VM (the only host kind whose source is IMDS today), the pod's token
    # fails and says where it came from.
    exp = Expectation(
        "api", "shared", "system", world.shared.principal_id, "db-password", "allowed"
    )
    verdict = judge_identity(exp, IdentityReport.model_validate(federated), world.sb.tenant_id)
    assert not verdict.passed and verdict.credential_source == "workload_identity"
    assert "credential source 'workload_identity'" in verdict.detail
