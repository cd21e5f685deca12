"""The expected-access matrix as a pure function: scope inheritance, data actions and
role-assignment conditions (evaluated per target, as Azure does)."""

from __future__ import annotations

import pytest

from components.access import BlobRef, GrantRef, IdentityRef, VmIdentities, access_matrix
from components.conditions import parse_condition
from components.roles import RoleCatalog, RoleDefinition

RG = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg"
VAULT = f"{RG}/providers/Microsoft.KeyVault/vaults/kv"
SECRETS = {"api": f"{VAULT}/secrets/api", "api-key": f"{VAULT}/secrets/api-key"}
ROLES = RoleCatalog.builtin()


def allowed(grants: list[GrantRef]) -> set[tuple[str, str, str]]:
    rows = access_matrix(
        vms={"a": VmIdentities("p-sys", ["u"])},
        identities={"u": IdentityRef("p-u", "c-u")},
        grants=grants,
        secrets=SECRETS,
    )
    assert len(rows) == 4
    return {(r["vm"], r["identity"], r["secret"]) for r in rows if r["expected"] == "allowed"}


def test_secret_scope_grant_covers_only_that_secret_segment_aware() -> None:
    grant = GrantRef("vm:a", ROLES.get("Key Vault Secrets User"), SECRETS["api"])
    assert allowed([grant]) == {("a", "system", "api")}  # not "api-key"


def test_vault_scope_grant_covers_every_secret_for_that_identity_only() -> None:
    grant = GrantRef("identity:u", ROLES.get("Key Vault Secrets Officer"), VAULT)
    assert allowed([grant]) == {("a", "u", "api"), ("a", "u", "api-key")}


def test_management_roles_and_unknown_custom_roles_read_nothing() -> None:
    custom = RoleDefinition(
        name="custom", guid="0" * 8 + "-0000-0000-0000-" + "0" * 12, category="custom"
    )
    grants = [
        GrantRef("vm:a", ROLES.get(r), VAULT)
        for r in ("Owner", "Contributor", "Reader", "Key Vault Reader")
    ]
    assert allowed([*grants, GrantRef("vm:a", custom, VAULT)]) == set()


def test_rows_carry_the_identity_to_use() -> None:
    rows = access_matrix(
        vms={"a": VmIdentities(None, ["u"]), "b": VmIdentities("p-b", [])},
        identities={"u": IdentityRef("p-u", "c-u")},
        grants=[],
        secrets={"api": SECRETS["api"]},
    )
    assert rows == [
        {
            "vm": "a",
            "identity": "u",
            "principal_id": "p-u",
            "client_id": "c-u",
            "secret": "api",
            "expected": "denied",
            "kind": "secret",
        },
        {
            "vm": "b",
            "identity": "system",
            "principal_id": "p-b",
            "client_id": None,
            "secret": "api",
            "expected": "denied",
            "kind": "secret",
        },
    ]


ACCOUNT = f"{RG}/providers/Microsoft.Storage/storageAccounts/stmikit"
CONTAINERS = f"{ACCOUNT}/blobServices/default/containers"
BLOBS = {
    "data/reports/q1.csv": BlobRef("stmikit", "reports", "q1.csv", f"{CONTAINERS}/reports"),
    "data/reports/private/pay.csv": BlobRef(
        "stmikit", "reports", "private/pay.csv", f"{CONTAINERS}/reports", {"class": "restricted"}
    ),
    "data/archive/old.csv": BlobRef(
        "stmikit", "archive", "old.csv", f"{CONTAINERS}/archive", {"class": "public"}
    ),
}
READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"


def blob_cells(grants: list[GrantRef]) -> set[str]:
    rows = access_matrix(
        vms={"a": VmIdentities("p-sys", [])},
        identities={},
        grants=grants,
        secrets=SECRETS,
        blobs=BLOBS,
    )
    assert [r["kind"] for r in rows] == ["secret"] * 2 + ["blob"] * 3
    assert all("secret" not in r for r in rows if r["kind"] == "blob")
    return {r["blob"] for r in rows if r["kind"] == "blob" and r["expected"] == "allowed"}


def test_container_scope_grant_covers_only_that_container() -> None:
    grant = GrantRef("vm:a", ROLES.get("Storage Blob Data Reader"), f"{CONTAINERS}/reports")
    assert blob_cells([grant]) == {"data/reports/q1.csv", "data/reports/private/pay.csv"}


def test_account_scope_grant_without_condition_covers_every_blob() -> None:
    grant = GrantRef("vm:a", ROLES.get("Storage Blob Data Reader"), ACCOUNT)
    assert blob_cells([grant]) == set(BLOBS)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (
            "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] "
            "StringEquals 'archive'",
            {"data/archive/old.csv"},
        ),
        (
            "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:"
            "class<$key_case_sensitive$>] StringEquals 'public'",
            {"data/archive/old.csv"},
        ),
        (
            "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] "
            "StringNotLike 'private/*'",
            {"data/reports/q1.csv", "data/archive/old.csv"},
        ),
    ],
)
def test_account_scope_grant_with_a_condition_covers_what_the_condition_admits(
    expression: str, expected: set[str]
) -> None:
    condition = parse_condition(
        f"((!(ActionMatches{{'{READ}'}} AND NOT SubOperationMatches{{'Blob.List'}})) "
        f"OR ({expression}))"
    )
    grant = GrantRef("vm:a", ROLES.get("Storage Blob Data Reader"), ACCOUNT, condition)
    assert blob_cells([grant]) == expected


def test_a_condition_on_one_grant_does_not_narrow_another_grant() -> None:
    """Azure: any assignment that permits the action grants it (troubleshooting, cause 1)."""
    narrow = parse_condition(
        f"((!(ActionMatches{{'{READ}'}})) OR (@Resource[Microsoft.Storage/storageAccounts/"
        "blobServices/containers:name] StringEquals 'archive'))"
    )
    reader = ROLES.get("Storage Blob Data Reader")
    grants = [
        GrantRef("vm:a", reader, ACCOUNT, narrow),
        GrantRef("vm:a", reader, f"{CONTAINERS}/reports"),
    ]
    assert blob_cells(grants) == set(BLOBS)


def test_secret_roles_read_no_blob_and_blob_roles_read_no_secret() -> None:
    grants = [
        GrantRef("vm:a", ROLES.get("Key Vault Secrets User"), RG),
        GrantRef("vm:a", ROLES.get("Storage Blob Data Reader"), ACCOUNT),
    ]
    rows = access_matrix(
        vms={"a": VmIdentities("p-sys", [])},
        identities={},
        grants=grants[:1],
        secrets=SECRETS,
        blobs=BLOBS,
    )
    assert {r.get("secret") or r["blob"] for r in rows if r["expected"] == "allowed"} == set(
        SECRETS
    )
    assert blob_cells(grants[1:]) == set(BLOBS)
    assert allowed(grants[1:]) == set()
