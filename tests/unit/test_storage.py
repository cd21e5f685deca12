"""StorageAccount: Entra-only Blob Storage, container scopes, secret seeded blobs with tags."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi_azure_native import storage

from components.arm.errors import ArmError
from components.arm.memory import InMemoryArm
from components.arm.tokens import (
    PULUMI_BLOB_CONTAINER,
    PULUMI_SEEDED_BLOB,
    PULUMI_STORAGE_ACCOUNT,
)
from components.errors import ConfigError
from components.mockruntime import AzureMocks, is_secret_envelope, run_program
from components.storage import BlobSeed, StorageAccount, StorageAccountArgs

SUB = "11111111-2222-3333-4444-555555555555"
ACCOUNT = (
    f"/subscriptions/{SUB}/resourceGroups/rg-st/providers/Microsoft.Storage/storageAccounts/"
    "stmikit01"
)
CONTENT = "s3cr3t-blob-VALUE-42"


def args(**changes: Any) -> StorageAccountArgs:
    base: dict[str, Any] = {
        "name": "stmikit01",
        "resource_group_name": "rg-st",
        "location": "westeurope",
        "containers": ["reports", "archive"],
        "blobs": [
            BlobSeed("reports", "2026/q1.csv", CONTENT, tags={"class": "public"}),
            BlobSeed("archive", "old.txt", "old-content"),
        ],
    }
    base.update(changes)
    return StorageAccountArgs(**base)


def deploy(a: StorageAccountArgs) -> tuple[dict[str, Any], AzureMocks, InMemoryArm]:
    arm = InMemoryArm(subscription_id=SUB)
    mocks = AzureMocks(arm)

    def program() -> None:
        sa = StorageAccount("st", a)
        pulumi.export("id", sa.id)
        pulumi.export("blob_endpoint", sa.blob_endpoint)
        pulumi.export("scope", sa.container_scope("reports"))
        pulumi.export("urls", {"/".join(k): v for k, v in sa.blob_urls.items()})

    return run_program(program, {}, mocks=mocks), mocks, arm


def test_account_is_entra_only_private_tls12_https() -> None:
    out, mocks, _ = deploy(args())
    (component,) = mocks.of_type("mikit:storage:StorageAccount")
    (reg,) = mocks.of_type(PULUMI_STORAGE_ACCOUNT)
    assert reg.inputs["allowSharedKeyAccess"] is False
    assert reg.inputs["allowBlobPublicAccess"] is False
    assert reg.inputs["minimumTlsVersion"] == "TLS1_2"
    assert reg.inputs["enableHttpsTrafficOnly"] is True
    assert reg.inputs["defaultToOAuthAuthentication"] is True
    assert reg.inputs["kind"] == "StorageV2"
    assert out["id"] == ACCOUNT
    assert out["blob_endpoint"] == "https://stmikit01.blob.core.windows.net/"
    assert component.name == "st"


def test_containers_are_private_and_scoped_down_to_one_container() -> None:
    out, mocks, _ = deploy(args())
    containers = mocks.of_type(PULUMI_BLOB_CONTAINER)
    assert {c.inputs["containerName"] for c in containers} == {"reports", "archive"}
    assert {c.inputs["publicAccess"] for c in containers} == {"None"}
    assert out["scope"] == f"{ACCOUNT}/blobServices/default/containers/reports"


def test_seeded_blob_content_is_secret_and_never_an_output() -> None:
    out, mocks, arm = deploy(args())
    seeded = {r.inputs["blobName"]: r for r in mocks.of_type(PULUMI_SEEDED_BLOB)}
    assert set(seeded) == {"2026/q1.csv", "old.txt"}
    q1 = seeded["2026/q1.csv"]
    assert is_secret_envelope(q1.raw_inputs["source"])
    assert q1.inputs["tags"] == {"class": "public"}
    assert CONTENT not in repr(q1.outputs)
    assert q1.outputs["tags"] == {"class": "public"}
    assert arm.blob_values[q1.id.lower()] == CONTENT.encode()
    assert out["urls"]["reports/2026/q1.csv"] == (
        "https://stmikit01.blob.core.windows.net/reports/2026/q1.csv"
    )
    assert q1.id == f"{ACCOUNT}/blobServices/default/containers/reports/blobs/2026/q1.csv"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "St-Mikit"}, "name"),
        ({"name": "st"}, "name"),
        ({"name": "s" * 25}, "name"),
        ({"containers": ["ab"]}, "containers[0]"),
        ({"containers": ["Reports"]}, "containers[0]"),
        ({"containers": ["a--b"]}, "containers[0]"),
        ({"containers": ["-abc"]}, "containers[0]"),
        ({"containers": ["abc-"]}, "containers[0]"),
        ({"containers": ["x" * 64]}, "containers[0]"),
        ({"containers": ["abc", "abc"]}, "containers[1]"),
        ({"blobs": [BlobSeed("nope", "a", "x")]}, "blobs[0].container"),
        ({"blobs": [BlobSeed("reports", "a/", "x")]}, "blobs[0].name"),
        ({"blobs": [BlobSeed("reports", "a//b", "x")]}, "blobs[0].name"),
        ({"blobs": [BlobSeed("reports", "a.", "x")]}, "blobs[0].name"),
        ({"blobs": [BlobSeed("reports", "x" * 1025, "x")]}, "blobs[0].name"),
        ({"blobs": [BlobSeed("reports", "a", "x", tags={"k!": "v"})]}, "blobs[0].tags.k!"),
        (
            {"blobs": [BlobSeed("reports", "a", "x", tags={f"k{i}": "v" for i in range(11)})]},
            "blobs[0].tags",
        ),
        ({"sku": "Premium_LRS"}, "sku"),
    ],
)
def test_bad_names_fail_before_anything_registers(changes: dict[str, Any], field: str) -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))
    with pytest.raises(ConfigError) as caught:
        run_program(lambda: StorageAccount("st", args(**changes)) and None, {}, mocks=mocks)
    assert caught.value.field == field
    assert caught.value.fix
    assert mocks.registrations == []


def test_container_scope_of_an_unknown_container_is_refused() -> None:
    def program() -> None:
        StorageAccount("st", args()).container_scope("nope")

    with pytest.raises(ConfigError, match="is not a container"):
        run_program(program, {}, mocks=AzureMocks(InMemoryArm(subscription_id=SUB)))


def test_the_arm_model_refuses_a_key_written_blob_on_a_shared_key_off_account() -> None:
    """azure-native's storage.Blob writes with the account key: ARM says 403."""

    def program() -> None:
        sa = StorageAccount("st", args(blobs=[]))
        storage.Blob(
            "keyed",
            account_name=sa.name,
            container_name="reports",
            blob_name="x.txt",
            resource_group_name="rg-st",
            source=pulumi.StringAsset("x"),
            opts=pulumi.ResourceOptions(depends_on=list(sa.containers.values())),
        )

    with pytest.raises(Exception) as caught:  # Pulumi wraps the mock's ArmError
        run_program(program, {}, mocks=AzureMocks(InMemoryArm(subscription_id=SUB)))
    assert "KeyBasedAuthenticationNotPermitted" in str(caught.value)


def test_the_arm_model_refuses_a_public_container_and_a_bad_account_name() -> None:
    arm = InMemoryArm(subscription_id=SUB)
    arm.create_or_update(PULUMI_STORAGE_ACCOUNT, ACCOUNT, {"accountName": "stmikit01"})
    with pytest.raises(ArmError) as public:
        arm.create_or_update(
            PULUMI_BLOB_CONTAINER,
            f"{ACCOUNT}/blobServices/default/containers/pub",
            {"accountName": "stmikit01", "publicAccess": "Blob"},
        )
    assert (public.value.status, public.value.code) == (409, "PublicAccessNotPermitted")
    with pytest.raises(ArmError) as orphan:
        arm.create_or_update(
            PULUMI_BLOB_CONTAINER,
            f"{ACCOUNT}x/blobServices/default/containers/c",
            {"accountName": "x"},
        )
    assert (orphan.value.status, orphan.value.code) == (404, "ParentResourceNotFound")
    with pytest.raises(ArmError) as bad:
        arm.create_or_update(PULUMI_STORAGE_ACCOUNT, ACCOUNT + "X", {"accountName": "Bad_Name"})
    assert (bad.value.status, bad.value.code) == (400, "AccountNameInvalid")
