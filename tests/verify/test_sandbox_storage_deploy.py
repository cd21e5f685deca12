"""Deploying storage into the sandbox: the stack program's accounts, containers and blobs
land in the sandbox state, and the real BlobClient reads what the program seeded.

The program here is a small one of this test's own (not the dev topology), so the deploy
path is pinned independently of the StorageAccount component's shape.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pulumi
import pytest
from azure.storage.blob import BlobClient
from pulumi_azure_native import resources, storage

from components.arm.errors import ArmError
from components.mockruntime import AzureMocks, run_program
from components.storage import BlobSeed, StorageAccount, StorageAccountArgs
from verify.sandbox import Sandbox, SandboxConfig
from verify.targets.sandbox import SandboxBackend, asset_bytes

SEED = "db=postgres://seeded"  # the secret configuration a blob carries
TAGS = {"project": "config"}


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as sandbox:
        yield sandbox


def program() -> StorageAccount:
    rg = resources.ResourceGroup("rg", resource_group_name="rg-store")
    account = StorageAccount(
        "store",
        StorageAccountArgs(
            name="stseeded01",
            resource_group_name=rg.name,
            containers=["config", "reports"],
            blobs=[
                BlobSeed("config", "app/settings.env", pulumi.Output.secret(SEED), tags=TAGS),
            ],
        ),
    )
    pulumi.export("account_id", account.id)
    pulumi.export("blob_endpoint", account.blob_endpoint)
    return account


def plain_blob_program() -> None:
    """azure-native's own Blob writes with the account key: refused on this account."""
    account = program()
    storage.Blob(
        "plain",
        account_name="stseeded01",
        container_name="reports",
        blob_name="x.txt",
        resource_group_name="rg-store",
        source=pulumi.StringAsset("x"),
        opts=pulumi.ResourceOptions(depends_on=[account]),
    )


def test_program_creates_account_containers_and_seeded_blob(sb: Sandbox) -> None:
    outputs = run_program(program, {}, mocks=AzureMocks(SandboxBackend(sb)))
    account = sb.state.storage_account("stseeded01")
    assert account is not None
    assert account.resource_group == "rg-store"
    assert account.allow_shared_key_access is False
    assert [c.name for c in sb.state.containers(account.name)] == ["config", "reports"]
    seeded = sb.state.get_blob(account.name, "config", "app/settings.env")
    assert seeded is not None and seeded.content == SEED.encode()
    assert seeded.content_type == "text/plain"
    assert seeded.tags == TAGS
    # The export carries the account's loopback endpoint, path-style, as the vault's does.
    assert outputs["blob_endpoint"] == sb.blob_url(account) + "/"
    # The account got its listener: the real client reads the seeded content through it.
    reader = sb.state.create_principal("blob-reader")
    sb.state.create_role_assignment(
        account.container_scope("config"), "Storage Blob Data Reader", reader.object_id
    )
    client = BlobClient.from_blob_url(
        f"{sb.blob_url(account)}/config/app/settings.env",
        credential=sb.credential(reader),
        retry_total=0,
        **sb.blob_client_kwargs(),
    )
    with client:
        data = client.download_blob().readall()
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(SEED.encode()).hexdigest()


def test_azure_native_blob_is_refused_without_shared_key() -> None:
    with Sandbox(SandboxConfig()) as fresh:
        with pytest.raises(ArmError, match="KeyBasedAuthenticationNotPermitted"):
            run_program(plain_blob_program, {}, mocks=AzureMocks(SandboxBackend(fresh)))
        assert fresh.state.get_blob("stseeded01", "reports", "x.txt") is None


def test_asset_contents() -> None:
    assert asset_bytes(pulumi.StringAsset("x")) == b"x"
    assert asset_bytes({"text": "y"}) == b"y"
    assert asset_bytes(None) == b""
    with pytest.raises(ArmError, match="source"):
        asset_bytes(42)
