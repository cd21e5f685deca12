"""A user's own fleet: a two-instance scale set and two cluster workloads, one federated to
a user-assigned identity and one without workload identity, from a stack file outside the
repository. ``lifecycle`` (its baseline is ``check``) exits 0; the report names the workload
without an identity, the identity it was judged as (the node's kubelet identity) and the
source it reached (IMDS); the workload with one got its tokens by workload identity.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from verify.cli import main

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJLVFMIXrgzADPBSTYezYSlnCLrMmPku+3yCgAiifuvd me"
FLEET = f"""\
config:
  mikit:location: westeurope
  mikit:resourceGroup: rg-fleet-user
  mikit:sshPublicKey: {SSH_KEY}
  mikit:vault: {{name: kv-fleet-user, softDeleteRetentionDays: 7, purgeProtection: false}}
  mikit:secrets: [orders-db, payments-key]
  mikit:secret-orders-db: orders-value
  mikit:secret-payments-key: payments-value
  mikit:identities:
    fleet: {{name: id-fleet-user}}
  mikit:scaleSets:
    web: {{name: vmss-fleet-web, instances: 2, userAssigned: [fleet]}}
  mikit:clusters:
    aks:
      name: aks-fleet-user
      workloads:
        orders: {{namespace: shop, serviceAccount: orders, identity: fleet}}
        reports: {{namespace: shop, serviceAccount: reports}}
  mikit:grants:
    - {{principal: "identity:fleet", role: Key Vault Secrets User, target: "secret:orders-db"}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, Any], str]:
    stack = tmp_path_factory.mktemp("user-fleet") / "Pulumi.fleet.yaml"
    stack.write_text(FLEET)
    reports = tmp_path_factory.mktemp("reports")
    code = main(["lifecycle", "--stack-file", str(stack), "--report-dir", str(reports), "--quiet"])
    report = json.loads((reports / "report.json").read_text())
    return code, report, (reports / "report.md").read_text()


def test_the_fleet_passes_check_and_lifecycle(run: tuple[int, dict[str, Any], str]) -> None:
    code, report, _ = run
    assert code == 0 and report["passed"], report["check"]
    cells = report["check"]["cells"]
    assert {c["host"] for c in cells} == {"scaleset:web", "workload:orders", "workload:reports"}
    assert all(c["passed"] for c in cells)
    status = {s["name"]: s["status"] for s in report["scenarios"]}
    assert status["remove-workload-federation"] == "passed"
    assert status["scale-in-and-out"] == "passed"
    assert status["delete-scale-set"] == "passed"  # no system identity: fleet stays for orders
    assert {n for n, s in status.items() if s == "skipped"} == {
        "delete-vm",
        "disable-system-identity",
        "delete-one-sharing-vm",
        "delete-shared-identity",
        "recreate-identity",
        "delete-app",
        "remove-app-reference-grant",
        "disable-app-system-identity",
    }  # no VM and no app in this stack: said so, not failed


def test_the_report_names_the_workload_without_identity_and_its_source(
    run: tuple[int, dict[str, Any], str],
) -> None:
    _, report, markdown = run
    sources = {
        (i["host"], i["identity"]): (i["host_kind"], i["credential_source"])
        for i in report["check"]["identities"]
    }
    assert sources[("workload:reports", "kubelet")] == ("workload_without_identity", "imds")
    assert sources[("workload:orders", "fleet")] == ("workload", "workload_identity")
    assert sources[("scaleset:web", "fleet")] == ("scaleset", "imds")
    assert "workload:reports" in markdown and "kubelet" in markdown
