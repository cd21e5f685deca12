"""A Function app's host storage (``AzureWebJobsStorage``) reached with a managed identity:
the settings, the dedicated account, and Storage Blob Data Owner for the chosen identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pytest

from components.apps import SYSTEM, FunctionApp, FunctionAppArgs, WebApp, WebAppArgs
from components.apps.host_storage import host_storage_account_name
from components.arm.tokens import PULUMI_ROLE_ASSIGNMENT as ROLE_ASSIGNMENT
from components.arm.tokens import PULUMI_STORAGE_ACCOUNT as STORAGE_ACCOUNT
from components.arm.tokens import PULUMI_WEB_APP as SITE
from components.errors import ConfigError
from components.identity import ManagedIdentities, UserAssignedIdentity, UserAssignedIdentityArgs
from components.roles import RoleCatalog
from components.stack_config import AppConfig
from components.storage import StorageAccount, StorageAccountArgs
from components.testing import AzureMocks, InMemoryArm, load_stack_config, run_program
from tests.unit.conftest import PROGRAM, STACKS, Deployment, deploy, dev_config

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
UAI_A = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-a"
UAI_B = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-b"
BLOB_DATA_OWNER = RoleCatalog.builtin().get("Storage Blob Data Owner").guid


class _Uai:
    def __init__(self, arm_id: str, client_id: str) -> None:
        self.id = arm_id
        self.client_id = client_id


def _deploy(build: Callable[[dict[str, Any]], None]) -> tuple[dict[str, Any], AzureMocks]:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))

    def program() -> None:
        exports: dict[str, Any] = {}
        build(exports)
        for key, value in exports.items():
            pulumi.export(key, value)

    return run_program(program, {}, mocks=mocks), mocks


def _settings(mocks: AzureMocks) -> dict[str, str]:
    (site,) = mocks.of_type(SITE)
    return {s["name"]: s["value"] for s in site.inputs["siteConfig"]["appSettings"]}


def _func(
    *, system: bool, uais: int = 0, existing: bool = False, **extra: Any
) -> Callable[[dict[str, Any]], None]:
    def build(exports: dict[str, Any]) -> None:
        made = [
            UserAssignedIdentity(
                f"uai{i}", UserAssignedIdentityArgs(name=f"id-{i}", resource_group_name="rg")
            )
            for i in range(uais)
        ]
        args: dict[str, Any] = dict(
            name="func-one",
            resource_group_name="rg",
            identities=ManagedIdentities(
                system_assigned=system, user_assigned_ids=[u.id for u in made]
            ),
        )
        if made and not system:
            args["default_identity"] = made[0]
        if existing:
            account = StorageAccount(
                "shared", StorageAccountArgs(name="stsharedhost", resource_group_name="rg")
            )
            args["host_storage_account_id"] = account.id
            exports["existing_id"] = account.id
        if "pick" in extra:
            pick = extra.pop("pick")
            args["host_storage_identity"] = SYSTEM if pick == SYSTEM else made[pick]
        args.update(extra)
        app = FunctionApp("func", FunctionAppArgs(**args))
        exports.update(
            id=app.id,
            principal_id=app.principal_id,
            account_id=app.host_storage_account_id,
            account_name=app.host_storage_account_name,
            host_principal=app.host_storage_principal_id,
            uais=[
                {"id": u.id, "client_id": u.client_id, "principal_id": u.principal_id} for u in made
            ],
        )

    return build


def _child_of_the_app(mocks: AzureMocks, component: str) -> None:
    """The component's resource is registered by the Function app (parent=self)."""
    (registered,) = mocks.of_type(component)
    assert f"::mikit:web:FunctionApp${component}::" in registered.urn


def _assignment(mocks: AzureMocks) -> dict[str, Any]:
    (assignment,) = mocks.of_type(ROLE_ASSIGNMENT)
    _child_of_the_app(mocks, "mikit:authorization:RoleAssignment")
    return assignment.inputs


def test_a_function_app_gets_host_storage_with_its_system_identity() -> None:
    out, mocks = _deploy(_func(system=True))
    settings = _settings(mocks)
    name = host_storage_account_name("func-one")
    assert settings["AzureWebJobsStorage__accountName"] == name == out["account_name"]
    assert "AzureWebJobsStorage__credential" not in settings
    assert "AzureWebJobsStorage__clientId" not in settings
    assert not any(k == "AzureWebJobsStorage" for k in settings)  # no connection string
    (account,) = mocks.of_type(STORAGE_ACCOUNT)
    _child_of_the_app(mocks, "mikit:storage:StorageAccount")
    assert account.inputs["accountName"] == name
    assert account.inputs["allowSharedKeyAccess"] is False
    assert account.inputs["allowBlobPublicAccess"] is False
    assert account.inputs["minimumTlsVersion"] == "TLS1_2"
    assert account.inputs["enableHttpsTrafficOnly"] is True
    assignment = _assignment(mocks)
    assert assignment["roleDefinitionId"].rsplit("/", 1)[-1] == BLOB_DATA_OWNER
    assert assignment["scope"] == out["account_id"] == account.id
    assert assignment["principalId"] == out["principal_id"] == out["host_principal"]
    assert assignment["principalType"] == "ServicePrincipal"


def test_a_user_assigned_only_app_names_the_identity_and_its_client_id() -> None:
    out, mocks = _deploy(_func(system=False, uais=1))
    (uai,) = out["uais"]
    settings = _settings(mocks)
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == uai["client_id"]
    assignment = _assignment(mocks)
    assert assignment["principalId"] == uai["principal_id"] == out["host_principal"]
    assert assignment["scope"] == out["account_id"]


def test_with_a_system_identity_the_host_uses_it_unless_told_otherwise() -> None:
    out, mocks = _deploy(_func(system=True, uais=2))
    assert "AzureWebJobsStorage__clientId" not in _settings(mocks)
    assert _assignment(mocks)["principalId"] == out["principal_id"]
    out, mocks = _deploy(_func(system=True, uais=2, pick=1))
    chosen = out["uais"][1]
    assert _settings(mocks)["AzureWebJobsStorage__clientId"] == chosen["client_id"]
    assert _assignment(mocks)["principalId"] == chosen["principal_id"]


def test_several_user_assigned_identities_need_an_explicit_choice() -> None:
    with pytest.raises(ConfigError) as caught:
        _deploy(_func(system=False, uais=2))
    assert caught.value.field == "host_storage_identity"
    assert caught.value.problem.startswith(
        "is not set, but the app holds several user-assigned identities and no system identity"
    )
    assert "host_storage_identity=<the UserAssignedIdentity" in caught.value.fix
    out, mocks = _deploy(_func(system=False, uais=2, pick=1))
    assert _assignment(mocks)["principalId"] == out["uais"][1]["principal_id"]


def test_an_existing_account_is_used_as_given_and_none_is_created() -> None:
    out, mocks = _deploy(_func(system=True, existing=True))
    (account,) = mocks.of_type(STORAGE_ACCOUNT)  # only the caller's
    assert account.inputs["accountName"] == "stsharedhost"
    assert _settings(mocks)["AzureWebJobsStorage__accountName"] == "stsharedhost"
    assert _assignment(mocks)["scope"] == out["existing_id"] == out["account_id"]


def test_a_web_app_gets_no_host_storage() -> None:
    def build(exports: dict[str, Any]) -> None:
        WebApp(
            "web",
            WebAppArgs(
                name="web-one",
                resource_group_name="rg",
                identities=ManagedIdentities(system_assigned=True),
            ),
        )

    _, mocks = _deploy(build)
    assert not any(k.startswith("AzureWebJobsStorage") for k in _settings(mocks))
    assert mocks.of_type(STORAGE_ACCOUNT) == mocks.of_type(ROLE_ASSIGNMENT) == []


def test_the_account_name_is_azures_and_stable() -> None:
    for app in ("func-one", "f1", "A" * 60, "func-mikit-dev-4821"):
        name = host_storage_account_name(app)
        assert 3 <= len(name) <= 24 and name.isalnum() and name == name.lower()
        assert name == host_storage_account_name(app)
    assert host_storage_account_name("func-a-b") != host_storage_account_name("func-ab")


def _bad(**changes: Any) -> None:
    args: dict[str, Any] = dict(
        name="func-one",
        resource_group_name="rg",
        identities=ManagedIdentities(system_assigned=True),
    )
    args.update(changes)
    FunctionApp("func", FunctionAppArgs(**args))


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        (
            {"identities": ManagedIdentities()},
            "identities",
            "gives the Function app no identity, so its host could reach its storage",
        ),
        (
            {
                "host_storage_identity": SYSTEM,
                "identities": ManagedIdentities(user_assigned_ids=[UAI_A]),
                "default_identity": _Uai(UAI_A, "c"),
            },
            "host_storage_identity",
            "names the system identity for the Functions host's storage",
        ),
        (
            {"host_storage_identity": _Uai(UAI_B, "c")},
            "host_storage_identity",
            "is not an identity the app holds, so it cannot be used for the Functions host's",
        ),
        (
            {
                "host_storage_identity": UAI_A,
                "identities": ManagedIdentities(user_assigned_ids=[UAI_A]),
                "default_identity": _Uai(UAI_A, "c"),
            },
            "host_storage_identity",
            "is an identity ID, but the host also needs its client ID",
        ),
        (
            {"host_storage_account_id": f"{RG}/providers/Microsoft.KeyVault/vaults/kv"},
            "host_storage_account_id",
            "is not the ID of a storage account",
        ),
        (
            {"host_storage_account_name": "St-Host"},
            "host_storage_account_name",
            "is not a valid storage account name",
        ),
        (
            {
                "host_storage_account_name": "sthost",
                "host_storage_account_id": f"{RG}/providers/Microsoft.Storage/storageAccounts/x1",
            },
            "host_storage_account_name",
            "is set together with host_storage_account_id",
        ),
        (
            {"app_settings": {"AzureWebJobsStorage": "DefaultEndpointsProtocol=https;..."}},
            "app_settings[AzureWebJobsStorage]",
            "is set by the component: the host reaches its storage with a managed identity",
        ),
        (
            {"app_settings": {"azurewebjobsstorage__accountName": "other"}},
            "app_settings[azurewebjobsstorage__accountName]",
            "is set by the component",
        ),
    ],
)
def test_bad_host_storage_arguments_fail_before_any_resource(
    changes: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _bad(**changes)
    assert caught.value.field == field
    assert caught.value.problem.startswith(problem), caught.value.problem


def test_the_dev_stacks_function_app_starts_with_identity_based_host_storage(
    dev: Deployment,
) -> None:
    """The stack's Function app (the shared identity only) gets its own account, the
    identity-based settings naming that identity, and Storage Blob Data Owner there for it;
    the assignment is exported with the app, not as a grant, so the matrix is unchanged."""
    shared = dev.outputs["identities"]["shared"]
    func = dev.outputs["apps"]["func"]
    host = func["host_storage"]
    assert host["identity"] == "shared"
    assert host["principal_id"] == shared["principal_id"]
    assert host["role_name"] == "Storage Blob Data Owner"
    assert host["account_name"] == host_storage_account_name("func-mikit-dev-4821")
    site = next(r for r in dev.mocks.of_type(SITE) if r.inputs["kind"] == "functionapp,linux")
    settings = {s["name"]: s["value"] for s in site.inputs["siteConfig"]["appSettings"]}
    assert settings["AzureWebJobsStorage__accountName"] == host["account_name"]
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == shared["client_id"]
    account = dev.backend.get(host["account_id"])
    assert account is not None and account["properties"]["allowSharedKeyAccess"] is False
    assignment = dev.backend.get(host["assignment_id"])
    assert assignment is not None
    props = assignment["properties"]
    assert props["roleDefinitionId"].rsplit("/", 1)[-1] == BLOB_DATA_OWNER
    assert props["scope"].lower() == host["account_id"].lower()
    assert props["principalId"] == shared["principal_id"]
    assert host["assignment_id"] not in {g["id"] for g in dev.outputs["grants"]}
    assert all(a.get("host_storage") is None for k, a in dev.outputs["apps"].items() if k != "func")


def test_host_storage_in_a_declared_account_and_with_the_system_identity() -> None:
    apps = dict(load_stack_config(STACKS / "Pulumi.dev.yaml")["mikit:apps"])
    apps["func"] = {
        **apps["func"],
        "systemIdentity": True,
        "hostStorage": {"account": "hosts", "identity": "system"},
    }
    config = dev_config(
        **{
            "mikit:apps": apps,
            "mikit:storageAccounts": {
                **load_stack_config(STACKS / "Pulumi.dev.yaml")["mikit:storageAccounts"],
                "hosts": {"name": "stmikithosts4821"},
            },
        }
    )
    deployed = deploy(PROGRAM, config)
    host = deployed.outputs["apps"]["func"]["host_storage"]
    func = deployed.outputs["apps"]["func"]
    assert host["identity"] == "system"
    assert host["principal_id"] == func["system_principal_id"]
    assert host["account_id"] == deployed.outputs["storage_accounts"]["hosts"]["id"]
    assert host["account_name"] == "stmikithosts4821"
    assignment = deployed.backend.get(host["assignment_id"])
    assert assignment is not None
    assert assignment["properties"]["principalId"] == func["system_principal_id"]


@pytest.mark.parametrize(
    ("app", "identity"),
    [
        ({"systemIdentity": True, "userAssigned": ["a", "b"]}, "system"),
        ({"userAssigned": ["a"]}, "a"),
        (
            {"userAssigned": ["a", "b"], "defaultIdentity": "a", "hostStorage": {"identity": "b"}},
            "b",
        ),
        ({"systemIdentity": True, "hostStorage": {"identity": "system"}}, "system"),
    ],
)
def test_the_stack_configs_host_storage_identity(app: dict[str, Any], identity: str) -> None:
    config = AppConfig.model_validate({"kind": "functionapp", "name": "func-x", **app})
    assert config.host_storage_identity() == identity
    web = AppConfig.model_validate({"kind": "webapp", "name": "web-x", **app})
    assert web.host_storage_identity() is None
