"""A user's own apps, from a stack file outside the repository: one web app, one Function
app and one container app sharing one user-assigned identity. ``check`` and ``lifecycle``
exit 0; every cell is an app's, each token came from the app's identity endpoint; the app
scenarios run and the VM ones are SKIPPED (the stack has no VM), saying so. The stack sets
no ``mikit:sshPublicKey``: only VMs and scale sets log in with one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from verify.cli import main

APPS = """\
config:
  mikit:location: westeurope
  mikit:resourceGroup: rg-apps-user
  mikit:vault: {name: kv-apps-user, softDeleteRetentionDays: 7, purgeProtection: false}
  mikit:secrets: [orders-db, web-db, reports-token]
  mikit:secret-orders-db: orders-value
  mikit:secret-web-db: web-value
  mikit:secret-reports-token: reports-value
  mikit:identities:
    shared: {name: id-apps-user-shared}
  mikit:apps:
    web:
      kind: webapp
      name: app-apps-user-web-7342
      systemIdentity: true
      userAssigned: [shared]
      keyVaultReferences: {WEB_DB: web-db}
    func:
      kind: functionapp
      name: func-apps-user-7342
      userAssigned: [shared]
      keyVaultReferences: {ORDERS_DB: orders-db}
      keyVaultReferenceIdentity: shared
    jobs:
      kind: containerapp
      name: ca-apps-user-jobs
      systemIdentity: true
      userAssigned: [shared]
      keyVaultReferences: {REPORTS_TOKEN: reports-token}
  mikit:grants:
    - {principal: "identity:shared", role: Key Vault Secrets User, target: "secret:orders-db"}
    - {principal: "app:web", role: Key Vault Secrets User, target: "secret:web-db"}
    - {principal: "app:jobs", role: Key Vault Secrets User, target: "secret:reports-token"}
"""


@pytest.fixture(scope="module")
def user_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("user-apps") / "Pulumi.apps.yaml"
    path.write_text(APPS)
    return path


def _run(argv: list[str], reports: Path) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--report-dir", str(reports), "--quiet"])
    return code, json.loads((reports / "report.json").read_text())


def test_check_verifies_the_users_apps(user_stack: Path, tmp_path: Path) -> None:
    code, report = _run(["check", "--stack-file", str(user_stack)], tmp_path)
    assert code == 0 and report["passed"], report["check"]
    cells = report["check"]["cells"]
    assert {c["host"] for c in cells} == {"app:web", "app:func", "app:jobs"}
    assert {c["host_kind"] for c in cells} == {"app"}
    # web: system + shared, func: shared, jobs: system + shared; 3 secrets each
    assert len(cells) == 5 * 3
    read = {(c["host"], c["identity"], c["target"]) for c in cells if c["observed"] == "read"}
    assert read == {
        ("app:web", "system", "web-db"),
        ("app:jobs", "system", "reports-token"),
        ("app:web", "shared", "orders-db"),
        ("app:func", "shared", "orders-db"),
        ("app:jobs", "shared", "orders-db"),
    }
    sources = {i["credential_source"] for i in report["check"]["identities"]}
    assert sources == {"app_service"}


def test_lifecycle_runs_the_app_scenarios_and_passes(user_stack: Path, tmp_path: Path) -> None:
    code, report = _run(["lifecycle", "--stack-file", str(user_stack)], tmp_path)
    status = {s["name"]: s["status"] for s in report["scenarios"]}
    failed = [
        (s["name"], [(st["name"], st["observed"]) for st in s["steps"] if not st["passed"]])
        for s in report["scenarios"]
        if s["status"] == "failed"
    ]
    assert code == 0 and report["passed"], failed
    assert {n for n, s in status.items() if s == "passed"} == {
        "delete-app",
        "remove-app-reference-grant",
        "disable-app-system-identity",
    }
    assert {n for n, s in status.items() if s == "skipped"} == {
        "remove-workload-federation",
        "scale-in-and-out",
        "delete-scale-set",
        "delete-vm",
        "disable-system-identity",
        "delete-one-sharing-vm",
        "delete-shared-identity",
        "recreate-identity",
    }  # no VM, scale set or cluster in this stack: said so, not failed
    subjects = {s["name"]: s["subjects"] for s in report["scenarios"]}
    assert subjects["delete-app"] == "app jobs (deleted, with its system identity)"
    assert subjects["disable-app-system-identity"] == "app web (system identity turned off)"
