"""WebApp, FunctionApp and ContainerApp as components: identities, secure defaults, Key
Vault references and the checks that run before any resource exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pulumi
import pytest

from components.apps import (
    SYSTEM,
    ContainerApp,
    ContainerAppArgs,
    ContainerAppSecret,
    FunctionApp,
    FunctionAppArgs,
    IdentitySetting,
    KeyVaultReference,
    WebApp,
    WebAppArgs,
)
from components.errors import ConfigError
from components.identity import ManagedIdentities, UserAssignedIdentity, UserAssignedIdentityArgs
from components.key_vault import KeyVault, KeyVaultArgs
from components.keyvault_refs import parse_reference, reference_value
from components.testing import AzureMocks, InMemoryArm, run_program

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
UAI_A = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-a"
UAI_B = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-b"
SITE = "azure-native:web:WebApp"
CONTAINER_APP = "azure-native:app:ContainerApp"
URI = "https://kv-apps.vault.azure.net/secrets/db"


class _Uai:
    """A user-assigned identity as the app needs it (id + client id), without deploying."""

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


def _site_program(kind: type, args_type: type) -> Callable[[dict[str, Any]], None]:
    def build(exports: dict[str, Any]) -> None:
        uai = UserAssignedIdentity(
            "uai", UserAssignedIdentityArgs(name="id-shared", resource_group_name="rg")
        )
        vault = KeyVault(
            "vault",
            KeyVaultArgs(
                name="kv-apps",
                resource_group_name="rg",
                tenant_id="00000000-0000-0000-0000-000000000001",
                secrets={"db": pulumi.Output.secret("v")},
            ),
        )
        app = kind(
            "app",
            args_type(
                name="app-one",
                resource_group_name="rg",
                identities=ManagedIdentities(system_assigned=False, user_assigned_ids=[uai.id]),
                key_vault_references=[KeyVaultReference.to("DB_PASSWORD", vault, "db")],
                key_vault_reference_identity=uai.id,
                default_identity=uai,
                app_settings={"MODE": "test"},
            ),
        )
        exports.update(
            principal_id=app.principal_id,
            host_name=app.host_name,
            id=app.id,
            client_id=app.client_id,
            uai_id=uai.id,
            uai_client_id=uai.client_id,
        )

    return build


@pytest.mark.parametrize(
    ("kind", "args_type", "site_kind"),
    [(WebApp, WebAppArgs, "app,linux"), (FunctionApp, FunctionAppArgs, "functionapp,linux")],
)
def test_site_sends_secure_defaults_references_and_the_chosen_identities(
    kind: type, args_type: type, site_kind: str
) -> None:
    out, mocks = _deploy(_site_program(kind, args_type))
    (site,) = mocks.of_type(SITE)
    inputs = site.inputs
    assert inputs["kind"] == site_kind
    assert inputs["httpsOnly"] is True
    assert inputs["publicNetworkAccess"] == "Disabled"
    assert inputs["identity"] == {
        "type": "UserAssigned",
        "userAssignedIdentities": [out["uai_id"]],
    }
    assert inputs["keyVaultReferenceIdentity"] == out["uai_id"]
    config = inputs["siteConfig"]
    assert (config["ftpsState"], config["minTlsVersion"], config["scmMinTlsVersion"]) == (
        "Disabled",
        "1.2",
        "1.2",
    )
    settings = {s["name"]: s["value"] for s in config["appSettings"]}
    assert settings["DB_PASSWORD"] == (
        "@Microsoft.KeyVault(SecretUri=https://kv-apps.vault.azure.net/secrets/db)"
    )
    assert settings["AZURE_CLIENT_ID"] == out["uai_client_id"] == out["client_id"]
    assert settings["MODE"] == "test"
    assert ("FUNCTIONS_EXTENSION_VERSION" in settings) == (kind is FunctionApp)
    ftp = mocks.of_type("azure-native:web:WebAppFtpAllowed")
    scm = mocks.of_type("azure-native:web:WebAppScmAllowed")
    assert [r.inputs["allow"] for r in ftp + scm] == [False, False]
    (plan,) = mocks.of_type("azure-native:web:AppServicePlan")
    assert (plan.inputs["kind"], plan.inputs["reserved"]) == ("linux", True)
    assert out["principal_id"] is None


def _container_program(**extra: Any) -> Callable[[dict[str, Any]], None]:
    def build(exports: dict[str, Any]) -> None:
        uai = UserAssignedIdentity(
            "uai", UserAssignedIdentityArgs(name="id-shared", resource_group_name="rg")
        )
        vault = KeyVault(
            "vault",
            KeyVaultArgs(
                name="kv-apps",
                resource_group_name="rg",
                tenant_id="00000000-0000-0000-0000-000000000001",
                secrets={"db": pulumi.Output.secret("v")},
            ),
        )
        app = ContainerApp(
            "ca",
            ContainerAppArgs(
                name="ca-one",
                resource_group_name="rg",
                environment_name="cae-one",
                identities=ManagedIdentities(system_assigned=True, user_assigned_ids=[uai.id]),
                secrets=[ContainerAppSecret.from_vault("db", vault, "db", uai.id)],
                secret_env={"DB_PASSWORD": "db"},
                identity_settings=[IdentitySetting(uai.id, "None")],
                **extra,
            ),
        )
        exports.update(principal_id=app.principal_id, host_name=app.host_name, uai_id=uai.id)

    return build


def test_container_app_sends_secrets_lifecycles_and_no_ingress_by_default() -> None:
    out, mocks = _deploy(_container_program())
    (app,) = mocks.of_type(CONTAINER_APP)
    inputs = app.inputs
    assert inputs["identity"]["type"] == "SystemAssigned,UserAssigned"
    configuration = inputs["configuration"]
    assert "ingress" not in configuration
    assert configuration["secrets"] == [
        {
            "name": "db",
            "keyVaultUrl": "https://kv-apps.vault.azure.net/secrets/db",
            "identity": out["uai_id"],
        }
    ]
    assert configuration["identitySettings"] == [{"identity": out["uai_id"], "lifecycle": "None"}]
    (container,) = inputs["template"]["containers"]
    assert container["env"] == [{"name": "DB_PASSWORD", "secretRef": "db"}]
    assert len(mocks.of_type("azure-native:app:ManagedEnvironment")) == 1


def _web(**changes: Any) -> None:
    args: dict[str, Any] = {
        "name": "app-one",
        "resource_group_name": "rg",
        "identities": ManagedIdentities(system_assigned=True),
        **changes,
    }
    WebApp("app", WebAppArgs(**args))


def _ca(**changes: Any) -> None:
    args: dict[str, Any] = {
        "name": "ca-one",
        "resource_group_name": "rg",
        "environment_name": "cae-one",
        "identities": ManagedIdentities(system_assigned=True),
        **changes,
    }
    ContainerApp("ca", ContainerAppArgs(**args))


@pytest.mark.parametrize(
    ("make", "changes", "field", "problem"),
    [
        (_web, {"name": "a"}, "name", "is not a valid App Service app name"),
        (_web, {"name": "-app"}, "name", "is not a valid App Service app name"),
        (_web, {"name": "x" * 61}, "name", "is not a valid App Service app name"),
        (_web, {"plan_name": "bad plan"}, "plan_name", "is not a valid App Service plan name"),
        (
            _web,
            {"plan_name": "p", "plan_id": f"{RG}/providers/Microsoft.Web/serverfarms/p"},
            "plan_name",
            "is set together with plan_id",
        ),
        (_web, {"app_settings": {"1X": "v"}}, "app_settings[1X]", "is not a valid app setting"),
        (
            _web,
            {"app_settings": {"AZURE_CLIENT_ID": "x"}},
            "app_settings[AZURE_CLIENT_ID]",
            "is set by the component",
        ),
        (
            _web,
            {"key_vault_references": [KeyVaultReference("DB", "https://x.example/secrets/db")]},
            "key_vault_references[DB].secret_uri",
            "is not a Key Vault secret URI",
        ),
        (
            _web,
            {
                "app_settings": {"DB": "plain"},
                "key_vault_references": [KeyVaultReference("DB", URI)],
            },
            "key_vault_references[DB]",
            "is also a plain app setting",
        ),
        (
            _web,
            {"key_vault_reference_identity": UAI_A},
            "key_vault_reference_identity",
            "is not an identity the app holds",
        ),
        (
            _web,
            {
                "identities": ManagedIdentities(user_assigned_ids=[UAI_A]),
                "key_vault_references": [KeyVaultReference("DB", URI)],
                "default_identity": _Uai(UAI_A, "c"),
            },
            "key_vault_reference_identity",
            "is not set, so Key Vault references would resolve with the system identity",
        ),
        (
            _web,
            {"identities": ManagedIdentities(user_assigned_ids=[UAI_A])},
            "default_identity",
            "is not set, but the app's only identity is user-assigned",
        ),
        (
            _web,
            {"identities": ManagedIdentities(user_assigned_ids=[UAI_A, UAI_B])},
            "default_identity",
            "is not set, but the app holds several user-assigned identities",
        ),
        (
            _web,
            {"default_identity": _Uai(UAI_B, "c")},
            "default_identity",
            "is not an identity the app holds",
        ),
        (
            _web,
            {
                "identities": ManagedIdentities(user_assigned_ids=[UAI_A]),
                "key_vault_reference_identity": SYSTEM,
                "default_identity": _Uai(UAI_A, "c"),
            },
            "key_vault_reference_identity",
            "names the system identity for Key Vault references, but",
        ),
        (_ca, {"name": "CA-one"}, "name", "is not a valid container app name"),
        (_ca, {"name": "c" * 33}, "name", "is not a valid container app name"),
        (_ca, {"name": "ca--one"}, "name", "is not a valid container app name"),
        (_ca, {"environment_name": "Env_1"}, "environment_name", "is not a valid Container Apps"),
        (_ca, {"environment_name": None}, "environment_name", "must be given alone"),
        (_ca, {"external_ingress": True}, "external_ingress", "asks for public ingress without"),
        (
            _ca,
            {"secret_env": {"DB": "db"}},
            "secret_env[DB]",
            "names a secret the app does not declare",
        ),
        (
            _ca,
            {"secrets": [ContainerAppSecret("db", URI, UAI_A)]},
            "secrets[db].identity",
            "is not an identity the app holds",
        ),
        (
            _ca,
            {"secrets": [ContainerAppSecret("DB", URI)]},
            "secrets[DB]",
            "is not a valid container app secret name",
        ),
        (
            _ca,
            {"identity_settings": [IdentitySetting(SYSTEM, "Sometimes")]},
            "identity_settings[0].lifecycle",
            "is not a Container Apps identity lifecycle",
        ),
        (
            _ca,
            {"identity_settings": [IdentitySetting(SYSTEM, "None")]},
            "identity_settings",
            "hides the system identity from the app's main container",
        ),
        (
            _ca,
            {
                "identities": ManagedIdentities(user_assigned_ids=[UAI_A]),
                "default_identity": _Uai(UAI_A, "c"),
                "identity_settings": [IdentitySetting(UAI_A, "Init")],
            },
            "default_identity",
            "is hidden from the app's main container",
        ),
    ],
)
def test_bad_app_arguments_fail_before_any_resource(
    make: Callable[..., None], changes: dict[str, Any], field: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        make(**changes)
    assert caught.value.field == field
    assert caught.value.problem.startswith(problem), caught.value.problem


def test_reference_to_a_secret_the_vault_does_not_declare() -> None:
    class Vault:
        secret_uris: ClassVar[dict[str, str]] = {"db": URI}

    with pytest.raises(ConfigError) as caught:
        KeyVaultReference.to("API_KEY", Vault(), "api-key")
    assert (caught.value.field, caught.value.problem) == (
        "key_vault_references[API_KEY]",
        "is not a secret the vault declares",
    )


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        (reference_value(URI), ("kv-apps", "db", None)),
        ("@Microsoft.KeyVault(SecretUri=" + URI + "/abc123)", ("kv-apps", "db", "abc123")),
        ("@Microsoft.KeyVault(VaultName=kv-apps;SecretName=db)", ("kv-apps", "db", None)),
        (
            "@Microsoft.KeyVault(VaultName=kv-apps;SecretName=db;SecretVersion=v1)",
            ("kv-apps", "db", "v1"),
        ),
        ("@Microsoft.KeyVault(SecretUri=http://kv-apps.vault.azure.net/secrets/db)", None),
        ("@Microsoft.KeyVault(VaultName=kv-apps)", None),
        ("@Microsoft.KeyVault(VaultName=kv;SecretName=db;Colour=red)", None),
        ("@Microsoft.KeyVault(SecretUri=" + URI, None),
    ],
)
def test_key_vault_reference_syntax(value: str, parsed: tuple[str, str, str | None] | None) -> None:
    got = parse_reference(value)
    assert (None if got is None else (got.vault, got.secret, got.version)) == parsed


def _status_program(grant: bool, kv_identity: str) -> Callable[[dict[str, Any]], None]:
    def build(exports: dict[str, Any]) -> None:
        uai = UserAssignedIdentity(
            "uai", UserAssignedIdentityArgs(name="id-shared", resource_group_name="rg")
        )
        vault = KeyVault(
            "vault",
            KeyVaultArgs(
                name="kv-apps",
                resource_group_name="rg",
                tenant_id="00000000-0000-0000-0000-000000000001",
                secrets={"db": pulumi.Output.secret("v")},
            ),
        )
        app = WebApp(
            "app",
            WebAppArgs(
                name="app-one",
                resource_group_name="rg",
                identities=ManagedIdentities(system_assigned=True, user_assigned_ids=[uai.id]),
                key_vault_references=[
                    KeyVaultReference.to("DB", vault, "db"),
                    KeyVaultReference("GONE", "https://kv-apps.vault.azure.net/secrets/gone"),
                    KeyVaultReference("ELSEWHERE", "https://kv-other.vault.azure.net/secrets/x"),
                ],
                key_vault_reference_identity=SYSTEM if kv_identity == "system" else uai.id,
                app_settings={
                    "BROKEN": "@Microsoft.KeyVault(VaultName=kv-apps)",
                    "PLAIN": "x",
                },
            ),
        )
        if grant:
            holder = app if kv_identity == "system" else uai
            holder.grant("Key Vault Secrets User", vault.id, name="reads-vault")
        exports.update(id=app.id, principal_id=app.principal_id, host=app.host_name)

    return build


@pytest.mark.parametrize("kv_identity", ["system", "user"])
@pytest.mark.parametrize("grant", [True, False])
def test_key_vault_reference_statuses_follow_the_grants(grant: bool, kv_identity: str) -> None:
    out, mocks = _deploy(_status_program(grant, kv_identity))
    backend: InMemoryArm = mocks.backend  # type: ignore[assignment]
    site = backend.get(out["id"])
    assert site is not None
    assert out["principal_id"] == site["identity"]["principalId"]
    assert out["host"] == "app-one.azurewebsites.net"
    statuses = {
        r["name"]: r["properties"]["status"]
        for r in backend.key_vault_reference_statuses(out["id"])
    }
    allowed = "Resolved" if grant else "AccessToKeyVaultDenied"
    assert statuses == {
        "BROKEN": "InvalidSyntax",
        "DB": allowed,
        "ELSEWHERE": "VaultNotFound",
        "GONE": "SecretNotFound" if grant else "AccessToKeyVaultDenied",
    }


def test_container_app_answers_like_arm() -> None:
    out, mocks = _deploy(_container_program(ingress_port=8080))
    (app,) = mocks.of_type(CONTAINER_APP)
    identity = app.outputs["identity"]
    assert identity["type"] == "SystemAssigned,UserAssigned"
    assert out["principal_id"] == identity["principalId"]
    assert set(identity["userAssignedIdentities"]) == {out["uai_id"]}
    assert out["host_name"].startswith("ca-one--")
    assert ".internal." in out["host_name"]
