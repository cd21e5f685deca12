"""The dev stack's apps (``mikit:apps``) in the mock runtime: one web app, one Function app
and one container app sharing the identity the VMs use."""

from __future__ import annotations

import pytest

from components.arm.tokens import PULUMI_CONTAINER_APP as CONTAINER_APP
from components.arm.tokens import PULUMI_WEB_APP as WEB_APP
from components.errors import ConfigError
from components.testing import AzureMocks, InMemoryArm, run_program
from tests.unit.conftest import PROGRAM, Deployment, dev_config


def test_apps_export_what_the_verifier_needs(dev: Deployment) -> None:
    apps = dev.outputs["apps"]
    shared = dev.outputs["identities"]["shared"]
    assert {k: a["kind"] for k, a in apps.items()} == {
        "web": "webapp",
        "func": "functionapp",
        "jobs": "containerapp",
    }
    assert apps["web"]["host_name"] == "app-mikit-dev-web-4821.azurewebsites.net"
    assert apps["func"]["system_principal_id"] is None
    assert apps["func"]["default_identity"] == "shared"
    assert apps["web"]["default_identity"] is None
    for app in apps.values():
        arm = dev.backend.get(app["id"])
        assert arm is not None
        assert set(arm["identity"]["userAssignedIdentities"]) == {shared["id"]}
        if app["system_principal_id"] is not None:
            assert app["system_principal_id"] == arm["identity"]["principalId"]


def test_a_user_assigned_only_app_gets_its_client_id(dev: Deployment) -> None:
    shared = dev.outputs["identities"]["shared"]
    func = next(r for r in dev.mocks.of_type(WEB_APP) if r.inputs["kind"] == "functionapp,linux")
    settings = {s["name"]: s["value"] for s in func.inputs["siteConfig"]["appSettings"]}
    assert settings["AZURE_CLIENT_ID"] == shared["client_id"]
    assert func.inputs["keyVaultReferenceIdentity"] == shared["id"]
    (jobs,) = dev.mocks.of_type(CONTAINER_APP)
    configuration = jobs.inputs["configuration"]
    assert configuration["identitySettings"] == [{"identity": shared["id"], "lifecycle": "None"}]
    assert configuration["secrets"] == [
        {
            "name": "reports-token",
            "keyVaultUrl": dev.outputs["secrets"]["reports-token"]["uri"],
            "identity": "system",
        }
    ]


def test_every_key_vault_reference_of_the_dev_stack_resolves(dev: Deployment) -> None:
    for key in ("web", "func"):
        statuses = dev.backend.key_vault_reference_statuses(dev.outputs["apps"][key]["id"])
        assert [(r["name"], r["properties"]["status"]) for r in statuses] == [
            ({"web": "DB_PASSWORD", "func": "API_KEY"}[key], "Resolved")
        ]


def test_app_config_errors_stop_the_program_before_any_resource() -> None:
    config = dev_config()
    apps = dict(config["mikit:apps"])
    apps["func"] = {**apps["func"], "keyVaultReferenceIdentity": None}
    with pytest.raises(ConfigError) as caught:
        run_program(PROGRAM, {**config, "mikit:apps": apps}, mocks=AzureMocks(InMemoryArm()))
    assert caught.value.field == "mikit:apps.func.keyVaultReferenceIdentity"
