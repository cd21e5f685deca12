"""Role resolution: the catalog first, the Azure lookup by name only for the rest."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.authorization.v2022_04_01.models import Permission, RoleDefinition

from components.errors import ConfigError
from components.role_lookup import AzureRoleResolver, CatalogRoleResolver, default_role_resolver
from components.testing import AzureMocks, run_program

SUB = "11111111-2222-3333-4444-555555555555"
CUSTOM_GUID = "9f0c8a55-0d2e-4b7c-9a51-0f1e2d3c4b5a"


class FakeRoleDefinitions:
    """``client.role_definitions`` as azure-mgmt-authorization exposes it."""

    def __init__(self, results: list[RoleDefinition] | Exception) -> None:
        self.results = results
        self.calls: list[tuple[str, str]] = []

    def list(self, scope: str, filter: str) -> list[RoleDefinition]:
        self.calls.append((scope, filter))
        if isinstance(self.results, Exception):
            raise self.results
        return self.results

    def get(self, scope: str, role_definition_id: str) -> RoleDefinition:
        """As the SDK: the definition, or ResourceNotFoundError (status 404)."""
        self.calls.append((scope, f"get {role_definition_id}"))
        if isinstance(self.results, Exception):
            raise self.results
        for definition in self.results:
            if str(definition.name).lower() == role_definition_id.lower():
                return definition
        missing = ResourceNotFoundError(message="RoleDefinitionDoesNotExist")
        missing.status_code = 404
        raise missing


def resolver(
    results: list[RoleDefinition] | Exception,
) -> tuple[AzureRoleResolver, FakeRoleDefinitions, list[int]]:
    fake = FakeRoleDefinitions(results)
    created: list[int] = []

    def factory() -> Any:
        created.append(1)
        return SimpleNamespace(role_definitions=fake)

    return AzureRoleResolver(SUB, factory), fake, created


def custom_role() -> RoleDefinition:
    model = RoleDefinition(
        role_name="Payments Secret Reader",
        description="reads the payments secrets",
        role_type="CustomRole",
        permissions=[
            Permission(
                actions=[], data_actions=["Microsoft.KeyVault/vaults/secrets/getSecret/action"]
            )
        ],
        assignable_scopes=[f"/subscriptions/{SUB}"],
    )
    model.name = CUSTOM_GUID  # server-populated on real responses
    return model


def test_builtin_names_never_reach_azure() -> None:
    azure, fake, created = resolver([])
    assert azure.resolve("Key Vault Secrets User").guid == "4633458b-17de-408a-b874-0445c86b69e6"
    assert fake.calls == [] and created == []


def test_custom_guid_is_looked_up_in_azure_and_kept_with_its_permissions() -> None:
    azure, fake, _ = resolver([custom_role()])
    role = azure.resolve(CUSTOM_GUID)
    assert (role.name, role.guid) == ("Payments Secret Reader", CUSTOM_GUID)
    assert role.permits_data_action("Microsoft.KeyVault/vaults/secrets/getSecret/action")
    assert fake.calls == [(f"/subscriptions/{SUB}", f"get {CUSTOM_GUID}")]


def test_guid_unknown_in_azure_is_refused_before_any_deploy() -> None:
    azure, _, _ = resolver([])
    with pytest.raises(ConfigError) as caught:
        azure.resolve(CUSTOM_GUID, field="mikit:grants[0].role")
    assert caught.value.field == "mikit:grants[0].role"
    assert f"no role definition {CUSTOM_GUID} exists" in caught.value.problem


def test_custom_role_found_by_name_with_its_permissions() -> None:
    azure, fake, _ = resolver([custom_role()])
    role = azure.resolve("Payments Secret Reader")
    assert (role.name, role.guid, role.category) == (
        "Payments Secret Reader",
        CUSTOM_GUID,
        "custom",
    )
    assert role.permits_data_action("Microsoft.KeyVault/vaults/secrets/getSecret/action")
    assert fake.calls == [(f"/subscriptions/{SUB}", "roleName eq 'Payments Secret Reader'")]
    azure.resolve("payments secret reader")
    assert len(fake.calls) == 1  # cached, case-insensitively


def test_name_unknown_everywhere_suggests_builtin_matches() -> None:
    azure, fake, _ = resolver([])
    with pytest.raises(ConfigError) as caught:
        azure.resolve("Key Vault Secret Usr", field="mikit:grants[0].role")
    assert caught.value.field == "mikit:grants[0].role"
    assert "'Key Vault Secrets User'" in caught.value.fix
    assert len(fake.calls) == 1


def test_lookup_failure_is_a_config_error_naming_the_cause() -> None:
    azure, _, _ = resolver(PermissionError("AuthorizationFailed"))
    with pytest.raises(ConfigError) as caught:
        azure.resolve("Payments Secret Reader")
    assert "AuthorizationFailed" in caught.value.problem
    assert "roleDefinitions/read" in caught.value.fix


def test_quotes_cannot_inject_into_the_filter() -> None:
    azure, fake, _ = resolver([])
    with pytest.raises(ConfigError, match="contains a quote"):
        azure.resolve("x' or roleName eq 'Owner")
    assert fake.calls == []


def test_catalog_resolver_refuses_unknown_guids_and_names() -> None:
    """A GUID not in the catalog used to be taken as a custom role and crashed the deploy
    (105 tracebacks); without Azure to ask, it is refused up front."""
    catalog = CatalogRoleResolver()
    with pytest.raises(ConfigError, match="is a role GUID that is not in the built-in"):
        catalog.resolve(CUSTOM_GUID)
    with pytest.raises(ConfigError):
        catalog.resolve("Payments Secret Reader")
    with pytest.raises(ConfigError, match="is empty"):
        catalog.resolve(" ")


def test_default_resolver_is_catalog_only_in_the_mock_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARM_SUBSCRIPTION_ID", SUB)
    seen: list[object] = []
    run_program(lambda: seen.append(default_role_resolver()), {}, mocks=AzureMocks())
    assert isinstance(seen[0], CatalogRoleResolver)


def test_default_resolver_uses_azure_outside_the_mock_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARM_SUBSCRIPTION_ID", SUB)
    chosen = default_role_resolver()
    assert isinstance(chosen, AzureRoleResolver) and chosen.scope == f"/subscriptions/{SUB}"
    monkeypatch.delenv("ARM_SUBSCRIPTION_ID")
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID", raising=False)
    assert isinstance(default_role_resolver(), CatalogRoleResolver)
