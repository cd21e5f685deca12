"""The stack config's storage accounts: built, granted, exported and in the matrix.

Grants with target ``storage:<account>`` / ``container:<account>/<name>``, a condition on
an account-wide grant, a blob nobody may read, and every config mistake as a ConfigError
at its key before anything registers.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from components.arm.memory import InMemoryArm
from components.arm.tokens import PULUMI_SEEDED_BLOB
from components.errors import ConfigError
from components.mockruntime import AzureMocks, run_program
from components.stack_config import blob_value_key
from tests.unit.conftest import PROGRAM, dev_config

READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
TAG_CONDITION = (
    f"((!(ActionMatches{{'{READ}'}} AND NOT SubOperationMatches{{'Blob.List'}})) OR "
    "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:"
    "class<$key_case_sensitive$>] StringEquals 'public'))"
)
STORAGE = {
    "data": {
        "name": "stmikittest01",
        "containers": ["reports", "vault-copy"],
        "blobs": [
            {"container": "reports", "name": "q1/summary.csv", "tags": {"class": "public"}},
            {"container": "reports", "name": "private/pay.csv", "tags": {"class": "restricted"}},
            {
                "container": "vault-copy",
                "name": "dump.bin",
                "contentType": "application/octet-stream",
            },
        ],
    }
}
CONTENTS = {
    ("reports", "q1/summary.csv"): "q1-CONTENT-11",
    ("reports", "private/pay.csv"): "pay-CONTENT-22",
    ("vault-copy", "dump.bin"): "dump-CONTENT-33",
}


def storage_config(
    storage: dict[str, Any] | None = None, grants: list[Any] | None = None
) -> dict[str, Any]:
    base = dev_config()
    # The dev topology's own storage grants name its account; this test brings its own.
    base["mikit:grants"] = [g for g in base["mikit:grants"] if "Storage" not in g["role"]]
    base = {k: v for k, v in base.items() if not k.startswith("mikit:blob-")}
    storage = copy.deepcopy(STORAGE if storage is None else storage)
    config = {**base, "mikit:storageAccounts": storage}
    for (container, name), content in CONTENTS.items():
        config[f"mikit:{blob_value_key('data', container, name)}"] = content
    extra = [
        {
            "principal": "vm:solo",
            "role": "Storage Blob Data Reader",
            "target": "container:data/reports",
        },
        {
            "principal": "identity:shared",
            "role": "Storage Blob Data Reader",
            "target": "storage:data",
            "condition": TAG_CONDITION,
        },
    ]
    config["mikit:grants"] = base["mikit:grants"] + (extra if grants is None else grants)
    return config


@pytest.fixture(scope="module")
def deployed() -> tuple[dict[str, Any], AzureMocks]:
    mocks = AzureMocks(InMemoryArm())
    return run_program(PROGRAM, storage_config(), mocks=mocks), mocks


def test_storage_exports_follow_the_contract(deployed: tuple[dict[str, Any], AzureMocks]) -> None:
    out, _ = deployed
    account = out["storage_accounts"]["data"]
    assert set(account) == {"name", "id", "blob_endpoint"}
    assert account["name"] == "stmikittest01"
    assert account["blob_endpoint"] == "https://stmikittest01.blob.core.windows.net/"
    assert account["id"].endswith("/providers/Microsoft.Storage/storageAccounts/stmikittest01")
    assert out["containers"]["data/reports"] == {
        "account": "data",
        "name": "reports",
        "scope": f"{account['id']}/blobServices/default/containers/reports",
    }
    blob = out["blobs"]["data/reports/q1/summary.csv"]
    assert blob == {
        "account": "data",
        "container": "reports",
        "name": "q1/summary.csv",
        "scope": f"{account['id']}/blobServices/default/containers/reports",
        "url": "https://stmikittest01.blob.core.windows.net/reports/q1/summary.csv",
        "tags": {"class": "public"},
    }
    assert set(out["blobs"]) == {f"data/{c}/{n}" for c, n in CONTENTS}


def test_blob_fingerprints_are_secret_and_match_the_content(
    deployed: tuple[dict[str, Any], AzureMocks],
) -> None:
    out, mocks = deployed
    assert "blob_fingerprints" in out.secret_keys  # type: ignore[attr-defined]
    assert out["blob_fingerprints"] == {
        f"data/{c}/{n}": "sha256:" + hashlib.sha256(v.encode()).hexdigest()
        for (c, n), v in CONTENTS.items()
    }
    plain = repr(out.plain())  # type: ignore[attr-defined]
    for content in CONTENTS.values():
        assert content not in plain
    seeded = mocks.of_type(PULUMI_SEEDED_BLOB)
    assert len(seeded) == 3
    for reg in seeded:
        assert reg.inputs["source"] not in repr(reg.outputs)


def test_grant_scopes_are_the_container_and_the_account(
    deployed: tuple[dict[str, Any], AzureMocks],
) -> None:
    out, _ = deployed
    by_principal = {g["principal"]: g for g in out["grants"] if "Storage" in g["role_name"]}
    assert by_principal["vm:solo"]["scope"] == out["containers"]["data/reports"]["scope"]
    assert by_principal["vm:solo"]["condition"] is None
    assert by_principal["identity:shared"]["scope"] == out["storage_accounts"]["data"]["id"]
    assert by_principal["identity:shared"]["condition"] == TAG_CONDITION
    assert by_principal["identity:shared"]["condition_version"] == "2.0"


def test_matrix_blob_rows_follow_scopes_and_conditions(
    deployed: tuple[dict[str, Any], AzureMocks],
) -> None:
    out, _ = deployed
    rows = [r for r in out["access_matrix"] if r["kind"] == "blob"]
    allowed = {
        (r.get("vm") or r["host"], r["identity"], r["blob"])
        for r in rows
        if r["expected"] == "allowed"
    }
    solo = {
        ("solo", "system", b)
        for b in ("data/reports/q1/summary.csv", "data/reports/private/pay.csv")
    }
    # every host holding the shared identity: VMs, the scale set, the federated workload, the
    # apps, except an app whose identity settings hide it from the code (no token at all)
    shared_vms = {
        r.get("vm") or r["host"]
        for r in rows
        if r["identity"] == "shared" and r["expected"] != "no_identity"
    }
    assert shared_vms, "the dev topology attaches the shared identity to VMs"
    tagged = {(vm, "shared", "data/reports/q1/summary.csv") for vm in shared_vms}
    assert allowed == solo | tagged
    hidden = [r for r in rows if r["expected"] == "no_identity"]
    assert all(r.get("host_kind") == "app" and r["identity"] == "shared" for r in hidden)
    # A blob nobody may read: every row for it is denied (a hidden identity gets no token).
    dump = [r for r in rows if r["blob"] == "data/vault-copy/dump.bin" and r not in hidden]
    assert {r["expected"] for r in dump} == {"denied"}
    # Secret rows are untouched apart from kind.
    for row in out["access_matrix"]:
        if row["kind"] == "secret":
            where = ["vm"] if "vm" in row else ["host", "host_kind"]  # a VM, or another host
            assert list(row) == [
                *where, "identity", "principal_id", "client_id", "secret", "expected", "kind",
            ]  # fmt: skip


def fails(config: dict[str, Any]) -> ConfigError:
    mocks = AzureMocks(InMemoryArm())
    with pytest.raises(ConfigError) as caught:
        run_program(PROGRAM, config, mocks=mocks)
    assert mocks.custom_registrations() == [], "a resource was registered before the error"
    assert caught.value.fix
    return caught.value


def with_storage(**changes: Any) -> dict[str, Any]:
    storage = copy.deepcopy(STORAGE)
    storage["data"].update(changes)
    return storage_config(storage)


@pytest.mark.parametrize(
    ("config", "field"),
    [
        (lambda: with_storage(name="Bad_Name"), "mikit:storageAccounts.data.name"),
        (
            lambda: with_storage(containers=["reports", "ab"]),
            "mikit:storageAccounts.data.containers[1]",
        ),
        (
            lambda: with_storage(blobs=[{"container": "nope", "name": "x"}]),
            "mikit:storageAccounts.data.blobs[0].container",
        ),
        (
            lambda: with_storage(blobs=[{"container": "reports", "name": "x/"}]),
            "mikit:storageAccounts.data.blobs[0].name",
        ),
        (
            lambda: with_storage(
                blobs=[{"container": "reports", "name": "a", "tags": {"bad!": "x"}}]
            ),
            "mikit:storageAccounts.data.blobs[0].tags.bad!",
        ),
        (
            lambda: with_storage(
                blobs=[
                    {"container": "reports", "name": "a.b"},
                    {"container": "reports", "name": "a/b"},
                ]
            ),
            "mikit:storageAccounts.data.blobs[1]",
        ),
        (
            lambda: storage_config(
                grants=[
                    {
                        "principal": "vm:solo",
                        "role": "Storage Blob Data Reader",
                        "target": "container:data/nope",
                    }
                ]
            ),
            None,
        ),
        (
            lambda: storage_config(
                grants=[
                    {
                        "principal": "vm:solo",
                        "role": "Storage Blob Data Reader",
                        "target": "storage:nope",
                    }
                ]
            ),
            None,
        ),
    ],
)
def test_storage_config_mistakes_fail_at_their_key(config: Any, field: str | None) -> None:
    error = fails(config())
    if field is not None:
        assert error.field == field
    else:
        assert error.field.endswith(".target")


def test_missing_blob_content_names_the_secret_key() -> None:
    config = storage_config()
    key = f"mikit:{blob_value_key('data', 'reports', 'q1/summary.csv')}"
    assert key == "mikit:blob-data-reports-q1-summary-csv"
    del config[key]
    error = fails(config)
    assert error.field == key
    assert "pulumi config set --secret" in error.fix


def test_a_condition_naming_an_attribute_the_action_lacks_is_refused_at_the_grant() -> None:
    listing = (
        f"((!(ActionMatches{{'{READ}'}} AND SubOperationMatches{{'Blob.List'}})) OR "
        "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] "
        "StringLike 'q1/*'))"
    )
    grants = [
        {
            "principal": "vm:solo",
            "role": "Storage Blob Data Reader",
            "target": "storage:data",
            "condition": listing,
        }
    ]
    config = storage_config(grants=grants)
    error = fails(config)
    index = len(config["mikit:grants"]) - 1
    assert error.field == f"mikit:grants[{index}].condition"
    assert "does not exist for" in error.problem
