"""The expected-access matrix as a pure function: scope inheritance and data actions."""

from __future__ import annotations

from components.access import GrantRef, IdentityRef, VmIdentities, access_matrix
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
        },
        {
            "vm": "b",
            "identity": "system",
            "principal_id": "p-b",
            "client_id": None,
            "secret": "api",
            "expected": "denied",
        },
    ]
