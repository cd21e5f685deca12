"""KeyVault: RBAC only, configurable purge protection and network access, secret scopes."""

from __future__ import annotations

import asyncio
from typing import Any

import pulumi
import pytest

from components.errors import ConfigError
from components.key_vault import KeyVault, KeyVaultArgs
from components.testing import AzureMocks, InMemoryArm, is_secret_envelope, run_program

SUB = "11111111-2222-3333-4444-555555555555"


def deploy(**changes: Any) -> tuple[dict[str, Any], AzureMocks]:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))

    def program() -> None:
        secrets = {"db": "plain-text-in", "api": pulumi.Output.from_input("from-output")}
        args = {"name": "kv-app-01", "resource_group_name": "rg", "tenant_id": "t-1"}
        kv = KeyVault("kv", KeyVaultArgs(**{**args, "secrets": secrets, **changes}))
        pulumi.export("id", kv.id)
        pulumi.export("uri", kv.uri)
        pulumi.export("scope", kv.secret_scope("db"))
        pulumi.export("secret_uri", kv.secret_uris["db"])

    return run_program(program, {}, mocks=mocks), mocks


def test_secrets_are_secret_and_scoped_one_by_one() -> None:
    out, mocks = deploy()
    assert out["scope"] == f"{out['id']}/secrets/db"
    assert out["secret_uri"] == "https://kv-app-01.vault.azure.net/secrets/db"
    secrets = {r.inputs["secretName"]: r for r in mocks.of_type("azure-native:keyvault:Secret")}
    assert set(secrets) == {"db", "api"}
    for name, value in (("db", "plain-text-in"), ("api", "from-output")):
        assert is_secret_envelope(secrets[name].raw_inputs["properties"]), name
        assert secrets[name].inputs["properties"]["value"] == value


def test_defaults_purge_protection_on_public_access_on() -> None:
    _, mocks = deploy()
    (vault,) = mocks.of_type("azure-native:keyvault:Vault")
    props = vault.inputs["properties"]
    assert props["enablePurgeProtection"] is True
    assert props["enableRbacAuthorization"] is True and props["accessPolicies"] == []
    assert (props["publicNetworkAccess"], props["networkAcls"]["defaultAction"]) == (
        "Enabled",
        "Allow",
    )
    assert props["sku"] == {"family": "A", "name": "standard"}


def test_private_vault_without_purge_protection() -> None:
    _, mocks = deploy(
        purge_protection=False, public_network_access=False, soft_delete_retention_days=7
    )
    props = mocks.of_type("azure-native:keyvault:Vault")[0].inputs["properties"]
    assert "enablePurgeProtection" not in props
    assert (props["publicNetworkAccess"], props["networkAcls"]["defaultAction"]) == (
        "Disabled",
        "Deny",
    )
    assert props["networkAcls"]["bypass"] == "AzureServices"
    assert props["softDeleteRetentionInDays"] == 7


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": "kv"}, "name"),
        ({"secrets": {"db_password": "x"}}, "secrets['db_password']"),
        ({"soft_delete_retention_days": 3}, "soft_delete_retention_days"),
        ({"sku": "gold"}, "sku"),
    ],
)
def test_bad_arguments(changes: dict[str, Any], field: str) -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))
    base: dict[str, Any] = {"name": "kv-app-01", "resource_group_name": "rg", "tenant_id": "t"}
    with pytest.raises(ConfigError) as caught:
        run_program(lambda: KeyVault("kv", KeyVaultArgs(**{**base, **changes})), {}, mocks=mocks)
    assert caught.value.field == field
    assert mocks.registrations == []


def test_scope_of_an_undeclared_secret_is_refused() -> None:
    errors: list[ConfigError] = []

    def program() -> None:
        kv = KeyVault("kv", KeyVaultArgs(name="kv-app-01", resource_group_name="rg", tenant_id="t",
                                         secrets={"db": "x"}))  # fmt: skip
        try:
            kv.secret_scope("dbb")
        except ConfigError as exc:
            errors.append(exc)

    run_program(program, {}, mocks=AzureMocks())
    assert [(e.field, e.value) for e in errors] == [("secret", "dbb")]
    assert "'db'" not in errors[0].fix and "db" in errors[0].fix


def test_a_grant_on_one_secret_waits_for_that_secret() -> None:
    """ARM refuses a role assignment whose scope does not exist yet: the scope of one
    secret must carry a dependency on the Secret resource, not only on the vault."""
    seen: dict[str, Any] = {}

    def program() -> None:
        kv = KeyVault(
            "kv",
            KeyVaultArgs(
                name="kv-app-01", resource_group_name="rg", tenant_id="t-1", secrets={"db": "x"}
            ),
        )
        scope = kv.secret_scope("db")
        seen["secret"] = kv.secrets["db"]
        seen["deps"] = asyncio.ensure_future(scope.resources())

    run_program(program, {}, mocks=AzureMocks(InMemoryArm(subscription_id=SUB)))
    assert seen["secret"] in seen["deps"].result()
