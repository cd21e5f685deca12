"""The access matrix and the sandbox's Blob data plane agree on every blob cell.

The sandbox stack is deployed with a storage account in the shape of the
dev topology (two containers; a grant at container scope; an account-wide grant whose
condition limits it to blobs with an index tag; a blob nobody may read). Then:

* every blob row of the exported matrix is tried with the real BlobClient and a token of
  that row's principal: "allowed" must read content whose SHA-256 is the stack's
  fingerprint, "denied" must be 403 ``AuthorizationPermissionMismatch``;
* the verifier's check (probe processes on each VM, the same evidence rules) passes;
* access the matrix does not expect (a grant added behind the stack's back) fails the
  check on exactly the blob cells it opens.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobClient

from components.mockruntime import load_stack_config
from components.stack_config import blob_value_key
from verify.report import write_reports
from verify.runner import check_report, lifecycle_report
from verify.sandbox import SandboxConfig
from verify.targets.sandbox import STACK_CONFIG, SandboxTarget

READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
ONLY_PUBLIC = (
    f"((!(ActionMatches{{'{READ}'}} AND NOT SubOperationMatches{{'Blob.List'}})) OR "
    "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:"
    "class<$key_case_sensitive$>] StringEquals 'public'))"
)
STORAGE = {
    "data": {
        "name": "stmikitblobtest01",
        "containers": ["config", "reports"],
        "blobs": [
            {"container": "config", "name": "app/settings.env", "tags": {"class": "internal"}},
            {"container": "reports", "name": "q4/summary.csv", "tags": {"class": "public"}},
            {"container": "reports", "name": "private/payroll.csv", "tags": {"class": "secret"}},
        ],
    }
}
CONTENTS = {
    ("config", "app/settings.env"): "DB_URL=postgres://settings-7731",
    ("reports", "q4/summary.csv"): "quarter,total\nq4,1200\n",
    ("reports", "private/payroll.csv"): "name,salary\nnobody,0\n",
}
STORAGE_GRANTS = [
    # container scope: vm:solo reads the config container only
    {"principal": "vm:solo", "role": "Storage Blob Data Reader", "target": "container:data/config"},
    # account scope with a condition: the shared identity reads blobs tagged class=public
    {
        "principal": "identity:shared",
        "role": "Storage Blob Data Reader",
        "target": "storage:data",
        "condition": ONLY_PUBLIC,
    },
]
# reports/private/payroll.csv: no grant reaches it (the condition keeps "shared" out).


def overrides() -> dict[str, Any]:
    base = load_stack_config(STACK_CONFIG)
    kept = [g for g in base["mikit:grants"] if "Storage" not in g["role"]]
    config: dict[str, Any] = {
        "mikit:storageAccounts": STORAGE,
        "mikit:grants": [*kept, *STORAGE_GRANTS],
    }
    for (container, name), content in CONTENTS.items():
        config[f"mikit:{blob_value_key('data', container, name)}"] = content
    return config


def _stack_without_its_storage(directory: Path) -> Path:
    """The sandbox stack file minus its own storage (account, blob values, Blob grants):
    this test brings its own topology under the same account key."""
    doc = yaml.safe_load(STACK_CONFIG.read_text())
    config = doc["config"]
    for key in [k for k in config if k.startswith("mikit:blob-")]:
        del config[key]
    config.pop("mikit:storageAccounts", None)
    config["mikit:grants"] = [g for g in config["mikit:grants"] if "Storage" not in g["role"]]
    path = directory / "Pulumi.sandbox.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def _deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxTarget]:
    """The stack with this module's storage, deployed once for the module."""
    stack_file = _stack_without_its_storage(tmp_path_factory.mktemp("stack"))
    with SandboxTarget(
        config=SandboxConfig(), stack_config=stack_file, config_overrides=overrides()
    ) as target:
        yield target


@pytest.fixture
def deployed(_deployment: SandboxTarget) -> SandboxTarget:
    """That deployment exactly as its deploy left it (``SandboxTarget.reset``), the test's
    to change."""
    _deployment.reset()
    return _deployment


def _try(target: SandboxTarget, url: str, principal_id: str) -> tuple[str, str | None]:
    sb = target.sandbox
    token_credential = sb.credential(sb.state.principal(principal_id))
    client = BlobClient.from_blob_url(
        url, credential=token_credential, retry_total=0, **sb.blob_client_kwargs()
    )
    with client:
        try:
            content = client.download_blob().readall()
        except HttpResponseError as exc:
            return "denied", f"{exc.status_code} {exc.error_code}"
    return "allowed", "sha256:" + hashlib.sha256(content).hexdigest()


def test_matrix_and_sandbox_agree_on_every_blob_cell(deployed: SandboxTarget) -> None:
    outputs = deployed.outputs()
    rows = [c for c in outputs.access_matrix if c.kind == "blob"]
    # every VM x identity x blob: 3 system identities + shared on three VMs, 3 blobs
    assert len([c for c in rows if c.vm is not None]) == 3 * (3 + 3)
    # and the other hosts: the scale set (system + shared), workload api (shared) and
    # workload batch (the kubelet identity), and the apps (web: system + shared, func:
    # shared, jobs: system + shared hidden from its code), 3 blobs each
    assert len(rows) == 3 * (3 + 3) + 3 * 4 + 3 * 5
    assert outputs.blob_fingerprints is not None
    seen = {"allowed": 0, "denied": 0}
    # The hidden identity's cells are the app's endpoint's to prove
    # (tests/verify/test_app_matrix_sandbox.py): RBAC alone would let it read.
    hidden = [c for c in rows if c.expected == "no_identity"]
    assert {(c.host, c.identity) for c in hidden} == {("app:jobs", "shared")}
    rows = [c for c in rows if c not in hidden]
    for row in rows:
        blob = outputs.blobs[row.target]
        observed, evidence = _try(deployed, blob.url, row.principal_id)
        where = f"{row.host}/{row.identity} {row.target}"
        assert observed == row.expected, f"{where}: matrix {row.expected}, sandbox {evidence}"
        if observed == "allowed":
            assert evidence == outputs.blob_fingerprints[row.target], where
        else:
            assert evidence == "403 AuthorizationPermissionMismatch", where
        seen[observed] += 1
    # both directions are exercised: container grant, conditional grant, nobody's blob
    allowed = {(c.host, c.identity, c.target) for c in rows if c.expected == "allowed"}
    assert ("solo", "system", "data/config/app/settings.env") in allowed
    assert ("worker1", "shared", "data/reports/q4/summary.csv") in allowed
    assert ("worker1", "shared", "data/reports/private/payroll.csv") not in allowed
    assert not any(t == "data/reports/private/payroll.csv" for _, _, t in allowed)
    assert ("workload:api", "shared", "data/reports/q4/summary.csv") in allowed
    assert ("app:func", "shared", "data/reports/q4/summary.csv") in allowed
    # + the scale set's and api's shared, + the web app's and the Function app's shared
    assert seen["allowed"] == len(allowed) == 1 + 3 + 2 + 2
    assert seen["denied"] == len(rows) - len(allowed)


def test_check_passes_with_blob_cells_both_ways(deployed: SandboxTarget) -> None:
    run = check_report(deployed, "sandbox")
    blob_cells = [c for c in run.check.cells if c.kind == "blob"]
    assert run.passed, run.check.failures
    assert {c.observed for c in blob_cells} == {"read", "forbidden", "no_identity"}
    assert all(c.fingerprint_match for c in blob_cells if c.observed == "read")
    denied = [c for c in blob_cells if c.expected == "denied"]
    assert denied and all(c.error_code == "AuthorizationPermissionMismatch" for c in denied)


def test_access_nobody_granted_fails_on_exactly_those_cells(deployed: SandboxTarget) -> None:
    outputs = deployed.outputs()
    sb = deployed.sandbox
    account = sb.state.storage_account(STORAGE["data"]["name"])
    assert account is not None
    batch = outputs.vms["batch"].system_principal_id
    assert batch is not None
    extra = sb.state.create_role_assignment(
        account.container_scope("reports"), "Storage Blob Data Reader", batch
    )
    try:
        run = check_report(deployed, "sandbox")
    finally:
        sb.state.delete_role_assignment(extra.id)
    failed = sorted((c.host, c.target) for c in run.check.cells if not c.passed)
    assert failed == [
        ("batch", "data/reports/private/payroll.csv"),
        ("batch", "data/reports/q4/summary.csv"),
    ]
    assert all("access nobody granted" in c.detail for c in run.check.cells if not c.passed)


def test_reports_show_storage_and_blob_cells_never_content(
    deployed: SandboxTarget, tmp_path: Path
) -> None:
    run = check_report(deployed, "sandbox")
    paths = write_reports(run, tmp_path)
    markdown = paths["markdown"].read_text()
    assert 'subgraph st_data["Storage account stmikitblobtest01"]' in markdown
    assert 'subgraph ct_data_config["container config"]' in markdown
    assert 'blob_data_reports_private_payroll_csv["private/payroll.csv<br/>class=secret"]' in (
        markdown
    )
    assert '-- "Storage Blob Data Reader with condition" --> blob_data_reports_q4_summary_csv' in (
        markdown
    )
    assert '-- "Storage Blob Data Reader" --> blob_data_config_app_settings_env' in markdown
    assert "| blob data/config/app/settings.env |" in markdown
    junit = paths["junit"].read_text()
    assert 'name="blob data/reports/private/payroll.csv denied"' in junit
    report = json.loads(paths["json"].read_text())
    kinds = {c["kind"] for c in report["check"]["cells"]}
    assert kinds == {"secret", "blob"}
    for path in paths.values():
        text = path.read_text()
        for content in CONTENTS.values():
            assert content not in text, f"{path.name} shows a blob's content"


def test_lifecycle_regrants_keep_their_condition(deployed: SandboxTarget) -> None:
    """recreate-identity makes the grants again for the new principal: an account-wide
    blob grant made without its condition would read every blob (the sandbox enforces it,
    so the scenario fails with "access nobody granted" on the old code)."""
    target = deployed
    run = lifecycle_report(target, "sandbox", scenarios=["recreate-identity"])
    assert run.passed, [s.details for sc in run.scenarios for s in sc.steps if not s.passed]
    steps = {s.name: s for sc in run.scenarios for s in sc.steps}
    after = steps["after the grants are made again, reads work"]
    assert after.observed == "21/21 cells as expected"  # 3 VMs x (4 secrets + 3 blobs)
    shared = target.outputs().identities["shared"]
    state = target.sandbox.state
    recreated = next(i for i in state.identities() if i.name == shared.name)
    assert recreated.principal_id != shared.principal_id
    account = state.storage_account(STORAGE["data"]["name"])
    assert account is not None
    regranted = state.role_assignments(scope=account.id, principal_id=recreated.principal_id)
    assert [a.condition for a in regranted] == [ONLY_PUBLIC]
