"""The App Service / Functions / Container Apps identity endpoint, one per app, after a
stack with one app of each kind sharing one user-assigned identity is deployed into the
sandbox: the real azure-identity (sync and async) gets each app's tokens through the app's
own ``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``, and every refusal has the platform's
status and body."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import yaml
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential
from azure.keyvault.secrets import SecretClient

from components.testing import AzureMocks, run_program
from verify import probe
from verify.evidence.cells import Expectation
from verify.evidence.judge import judge_identity
from verify.model import IdentityReport, load_outputs
from verify.sandbox import Sandbox
from verify.stacks import PROGRAM
from verify.targets.sandbox import SandboxBackend

VAULT = "https://vault.azure.net"
REPO = Path(__file__).resolve().parents[2]
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJLVFMIXrgzADPBSTYezYSlnCLrMmPku+3yCgAiifuvd me"


@dataclass
class Deployed:
    outputs: dict[str, Any]
    backend: SandboxBackend
    values: dict[str, str]

    def app(self, key: str) -> dict[str, Any]:
        return dict(self.outputs["apps"][key])


def _config(suffix: str) -> dict[str, Any]:
    values = {"db": f"db-{uuid.uuid4().hex}", "api": f"api-{uuid.uuid4().hex}"}
    return {
        "mikit:location": "westeurope",
        "mikit:resourceGroup": f"rg-apps-{suffix}",
        "mikit:sshPublicKey": SSH_KEY,
        "mikit:vault": {"name": f"kv-apps-{suffix}", "softDeleteRetentionDays": 7},
        "mikit:secrets": ["db", "api"],
        **{f"mikit:secret-{k}": v for k, v in values.items()},
        "mikit:identities": {"shared": {"name": f"id-shared-{suffix}"}},
        "mikit:apps": {
            "web": {
                "kind": "webapp",
                "name": f"app-web-{suffix}",
                "systemIdentity": True,
                "userAssigned": ["shared"],
                "keyVaultReferences": {"DB_PASSWORD": "db", "API_KEY": "api"},
            },
            "func": {
                "kind": "functionapp",
                "name": f"func-{suffix}",
                "userAssigned": ["shared"],
                "keyVaultReferences": {"API_KEY": "api"},
                "keyVaultReferenceIdentity": "shared",
            },
            "jobs": {
                "kind": "containerapp",
                "name": f"ca-jobs-{suffix}",
                "systemIdentity": True,
                "userAssigned": ["shared"],
                "identityLifecycles": {"shared": "None"},
            },
        },
        "mikit:grants": [
            {"principal": "app:web", "role": "Key Vault Secrets User", "target": "secret:db"},
            {
                "principal": "identity:shared",
                "role": "Key Vault Secrets User",
                "target": "secret:api",
            },
        ],
    }


@pytest.fixture(scope="module")
def deployed(sb: Sandbox) -> Deployed:
    suffix = uuid.uuid4().hex[:6]
    config = _config(suffix)
    backend = SandboxBackend(sb)
    outputs = run_program(PROGRAM, config, mocks=AzureMocks(backend), stack="sandbox")
    values = {k.removeprefix("mikit:secret-"): v for k, v in config.items() if "secret-" in k}
    return Deployed(dict(outputs), backend, values)


@pytest.fixture
def on_app(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def enter(name: str) -> dict[str, str]:
        env = sb.app_env(name)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env

    yield enter


def _claims(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_each_app_gets_its_own_system_identity_through_azure_identity(
    deployed: Deployed, on_app: Any, sb: Sandbox
) -> None:
    for key in ("web", "jobs"):
        app = deployed.app(key)
        on_app(app["name"])
        token = ManagedIdentityCredential().get_token(f"{VAULT}/.default").token
        claims = _claims(token)
        assert claims["oid"] == app["system_principal_id"]
        assert claims["xms_mirid"].lower() == app["id"].lower()


def test_a_user_assigned_only_app_uses_its_client_id(
    deployed: Deployed, on_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = deployed.outputs["identities"]["shared"]
    on_app(deployed.app("func")["name"])
    # What the component sets as the app setting AZURE_CLIENT_ID, DefaultAzureCredential reads.
    monkeypatch.setenv("AZURE_CLIENT_ID", shared["client_id"])
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "ManagedIdentityCredential")
    token = DefaultAzureCredential().get_token(f"{VAULT}/.default").token
    assert _claims(token)["oid"] == shared["principal_id"]


def test_the_async_credential_and_a_secret_read(
    deployed: Deployed, on_app: Any, sb: Sandbox
) -> None:
    web = deployed.app("web")
    on_app(web["name"])

    async def token() -> str:
        async with AsyncManagedIdentityCredential() as credential:
            return str((await credential.get_token(f"{VAULT}/.default")).token)

    assert _claims(asyncio.run(token()))["oid"] == web["system_principal_id"]
    client = SecretClient(
        deployed.outputs["vault"]["uri"], ManagedIdentityCredential(), **sb.keyvault_client_kwargs()
    )
    assert client.get_secret("db").value == deployed.values["db"]


def test_selectors_and_the_hidden_identity(deployed: Deployed, sb: Sandbox) -> None:
    shared = deployed.outputs["identities"]["shared"]
    web, jobs = deployed.app("web"), deployed.app("jobs")
    env = sb.app_env(web["name"])
    base = f"{env['IDENTITY_ENDPOINT']}?api-version=2019-08-01&resource={VAULT}"
    header = {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}
    for selector in (
        f"client_id={shared['client_id']}",
        f"principal_id={shared['principal_id']}",
        f"object_id={shared['principal_id']}",
        f"mi_res_id={shared['id']}",
    ):
        status, body = _get(f"{base}&{selector}", header)
        assert status == 200, body
        answer = json.loads(body)
        assert set(answer) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
        assert isinstance(answer["expires_on"], str) and answer["expires_on"].isdigit()
        assert answer["client_id"] == shared["client_id"]
        assert _claims(answer["access_token"])["oid"] == shared["principal_id"]
    # The container app holds the shared identity, but its lifecycle None hides it from code.
    jobs_env = sb.app_env(jobs["name"])
    assert jobs_env["MSI_ENDPOINT"] == jobs_env["IDENTITY_ENDPOINT"]
    status, body = _get(
        f"{jobs_env['IDENTITY_ENDPOINT']}?api-version=2019-08-01&resource={VAULT}"
        f"&client_id={shared['client_id']}",
        {"X-IDENTITY-HEADER": jobs_env["IDENTITY_HEADER"]},
    )
    assert status == 500
    error = json.loads(body)
    assert set(error) == {"statusCode", "message", "correlationId"}
    assert error["statusCode"] == 500
    assert error["message"].startswith("No User Assigned or Delegated Managed Identity found")


def test_refusals_have_the_platform_status_and_body(deployed: Deployed, sb: Sandbox) -> None:
    web, func = deployed.app("web"), deployed.app("func")
    env = sb.app_env(web["name"])
    url = f"{env['IDENTITY_ENDPOINT']}?api-version=2019-08-01&resource={VAULT}"
    assert _get(url) == (403, b"")
    assert _get(url, {"X-IDENTITY-HEADER": "wrong"}) == (403, b"")
    # Another app's header is wrong here too: each app has its own.
    other = sb.app_env(func["name"])["IDENTITY_HEADER"]
    assert _get(url, {"X-IDENTITY-HEADER": other}) == (403, b"")
    assert _get(url, {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}, method="POST")[0] == 405
    status, body = _get(
        url.replace("2019-08-01", "2018-02-01"), {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}
    )
    assert status == 400 and set(json.loads(body)) == {"statusCode", "message", "correlationId"}
    header = {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]}
    status, body = _get(url.split("&resource=", maxsplit=1)[0], header)
    assert status == 400 and json.loads(body)["statusCode"] == 400
    # The platform's cache: the same identity and resource get the same token.
    first = _get(url, {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})[1]
    second = _get(url, {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})[1]
    assert json.loads(first)["access_token"] == json.loads(second)["access_token"]
    unknown = f"{url}&client_id={uuid.uuid4()}"
    status, body = _get(unknown, {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})
    assert status == 500 and json.loads(body)["statusCode"] == 500
    # No selector on an app without a system identity: there is no identity to use.
    func_env = sb.app_env(func["name"])
    status, body = _get(
        f"{func_env['IDENTITY_ENDPOINT']}?api-version=2019-08-01&resource={VAULT}",
        {"X-IDENTITY-HEADER": func_env["IDENTITY_HEADER"]},
    )
    assert status == 500


def test_key_vault_reference_statuses_come_from_the_vaults_rbac(deployed: Deployed) -> None:
    web, func = deployed.app("web"), deployed.app("func")
    web_statuses = {
        r["name"]: r["properties"]["status"]
        for r in deployed.backend.key_vault_reference_statuses(web["id"])
    }
    # The web app's system identity may read db only; api is the shared identity's.
    assert web_statuses == {"DB_PASSWORD": "Resolved", "API_KEY": "AccessToKeyVaultDenied"}
    func_statuses = {
        r["name"]: r["properties"]["status"]
        for r in deployed.backend.key_vault_reference_statuses(func["id"])
    }
    assert func_statuses == {"API_KEY": "Resolved"}


def test_deleting_an_app_removes_its_endpoint_and_principal(
    deployed: Deployed, sb: Sandbox
) -> None:
    jobs = deployed.app("jobs")
    sb.app_env(jobs["name"])
    sb.state.delete_app(jobs["id"])
    assert sb.state.principal(jobs["system_principal_id"]) is None
    with pytest.raises(Exception, match="is not an app of this sandbox"):
        sb.app_env(jobs["name"])


_USER_CODE = """
import json, os, sys
import jwt
from azure.identity import DefaultAzureCredential
out = {}
for key, app in json.load(sys.stdin).items():
    for var in [v for v in os.environ if v.startswith(("IDENTITY_", "MSI_", "AZURE_"))]:
        del os.environ[var]
    os.environ.update(app["env"])
    os.environ["AZURE_TOKEN_CREDENTIALS"] = "ManagedIdentityCredential"
    token = DefaultAzureCredential().get_token("https://vault.azure.net/.default").token
    out[key] = jwt.decode(token, options={"verify_signature": False})["xms_mirid"]
print(json.dumps(out))
"""


def test_the_command_lists_each_apps_environment_for_local_code(
    stack_command: dict[str, Any],
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    stack_file = REPO / "stacks" / "Pulumi.sandbox.yaml"
    apps = stack_command["hosts"]["apps"]
    assert {k: a["kind"] for k, a in apps.items()} == {
        "web": "webapp",
        "func": "functionapp",
        "jobs": "containerapp",
    }
    for app in apps.values():
        assert {"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "REQUESTS_CA_BUNDLE"} <= set(app["env"])
    assert "MSI_ENDPOINT" in apps["jobs"]["env"] and "AZURE_CLIENT_ID" in apps["func"]["env"]
    config = yaml.safe_load(stack_file.read_text())["config"]
    assert apps["web"]["env"]["DB_PASSWORD"] == config["mikit:secret-app-db-password"]
    assert apps["web"]["key_vault_references"] == {"DB_PASSWORD": "Resolved"}
    assert apps["jobs"]["env"]["REPORTS_TOKEN"] == config["mikit:secret-reports-token"]
    child = subprocess.run(
        [sys.executable, "-c", _USER_CODE],
        input=json.dumps(apps), cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    mirids = json.loads(child.stdout)
    assert mirids["web"].lower() == apps["web"]["id"].lower()
    assert mirids["jobs"].lower() == apps["jobs"]["id"].lower()
    assert "/userassignedidentities/" in mirids["func"].lower()
    # (The command stops cleanly on Ctrl-C: the stack_command fixture's end, conftest.py.)


def _arm_get(sb: Sandbox, path: str, version: str) -> tuple[int, Any]:
    token = sb.credential().get_token("https://management.azure.com/.default").token
    response = requests.get(
        f"{sb.arm_url}{path}?api-version={version}",
        headers={"Authorization": f"Bearer {token}"},
        verify=sb.ca_cert_path,
        timeout=10,
    )
    return response.status_code, response.json() if response.content else None


def test_arm_reads_sites_container_apps_and_reference_statuses(
    deployed: Deployed, sb: Sandbox
) -> None:
    web, func = deployed.app("web"), deployed.app("func")
    status, site = _arm_get(sb, web["id"], "2024-11-01")
    assert status == 200, site
    assert site["identity"]["principalId"] == web["system_principal_id"]
    assert site["properties"]["defaultHostName"] == web["host_name"]
    assert site["properties"]["siteConfig"]["appSettings"] is None
    status, function_site = _arm_get(sb, func["id"], "2024-11-01")
    assert status == 200 and function_site["kind"] == "functionapp,linux"
    status, refs = _arm_get(sb, f"{web['id']}/config/configreferences/appsettings", "2024-11-01")
    assert status == 200, refs
    assert {r["name"]: r["properties"]["status"] for r in refs["value"]} == {
        "API_KEY": "AccessToKeyVaultDenied",
        "DB_PASSWORD": "Resolved",
    }
    # The same answer as the deploy backend's (one rule, two fronts).
    assert refs["value"] == deployed.backend.key_vault_reference_statuses(web["id"])
    jobs = deployed.app("jobs")
    if sb.state.app(jobs["id"]) is not None:
        status, ca = _arm_get(sb, jobs["id"], "2025-07-01")
        assert status == 200 and ca["identity"]["type"] == "SystemAssigned,UserAssigned"
    status, missing = _arm_get(sb, web["id"] + "x", "2024-11-01")
    assert status == 404 and missing["error"]["code"] == "ResourceNotFound"


def _probe_in_app(sb: Sandbox, vault_url: str, identities: list[str], secrets: list[str]) -> Any:
    spec = probe.load_spec(
        {
            "vault_url": vault_url,
            "secrets": secrets,
            "identities": identities,
            "ca_bundle": sb.ca_cert_path,
            "verify_challenge_resource": False,
            "budget_seconds": 20,
        }
    )
    return probe.run(spec)["identities"]


def test_the_probe_in_an_app_reports_app_service_and_is_judged_as_an_app(
    deployed: Deployed, on_app: Any, sb: Sandbox
) -> None:
    web, func = deployed.app("web"), deployed.app("func")
    shared = deployed.outputs["identities"]["shared"]
    vault = deployed.outputs["vault"]["uri"]
    on_app(web["name"])
    (system,) = _probe_in_app(sb, vault, ["system"], ["db", "api"])
    assert system["token"]["credential_source"] == "app_service", system["token"]
    assert system["claims"]["oid"] == web["system_principal_id"]
    assert system["secrets"]["db"]["outcome"] == "read"
    assert system["secrets"]["api"]["outcome"] == "forbidden"
    report = IdentityReport.model_validate(system)
    allowed = Expectation(
        web["name"], "system", "system", web["system_principal_id"], "db", "allowed",
        resource_id=web["id"], host_kind="app",
    )  # fmt: skip
    assert judge_identity(allowed, report, sb.tenant_id).passed
    # The same token judged as a VM's: the wrong source, named.
    as_vm = Expectation(
        web["name"], "system", "system", web["system_principal_id"], "db", "allowed",
        resource_id=web["id"],
    )  # fmt: skip
    verdict = judge_identity(as_vm, report, sb.tenant_id)
    assert not verdict.passed and "credential source 'app_service'" in verdict.detail
    # A user-assigned-only app: the probe selects the identity by client ID.
    on_app(func["name"])
    (user,) = _probe_in_app(sb, vault, [shared["client_id"]], ["api"])
    assert user["token"]["credential_source"] == "app_service"
    assert user["claims"]["oid"] == shared["principal_id"]
    assert user["secrets"]["api"]["outcome"] == "read"


def test_the_outputs_parse_with_their_apps(deployed: Deployed) -> None:
    outputs = load_outputs(deployed.outputs)
    assert {k: a.kind for k, a in outputs.apps.items()} == {
        "web": "webapp",
        "func": "functionapp",
        "jobs": "containerapp",
    }
    web = deployed.app("web")
    # as matrix hosts apps are ``app:<key>``, so no app shares a host key with a VM
    # or a scale set (the dev stack has an app and a scale set both keyed "web")
    assert outputs.principal_of("app:web", "system", "app") == web["system_principal_id"]
    assert outputs.resource_id_of("app:web", "system", host_kind="app") == web["id"]
    assert outputs.host_record("app", "web") is None


def _statuses(sb: Sandbox, site_id: str) -> dict[str, str]:
    status, refs = _arm_get(sb, f"{site_id}/config/configreferences/appsettings", "2024-11-01")
    assert status == 200, refs
    return {r["name"]: r["properties"]["status"] for r in refs["value"]}


def test_reference_statuses_follow_grants_identities_and_deletions(
    deployed: Deployed, sb: Sandbox
) -> None:
    """Last in the module: it removes a grant, turns an identity off, deletes one."""
    web, func = deployed.app("web"), deployed.app("func")
    shared = deployed.outputs["identities"]["shared"]
    assert _statuses(sb, web["id"])["DB_PASSWORD"] == "Resolved"
    # A reference through a removed grant turns AccessToKeyVaultDenied.
    for assignment in sb.state.role_assignments(principal_id=web["system_principal_id"]):
        sb.state.delete_role_assignment(assignment.id)
    assert _statuses(sb, web["id"])["DB_PASSWORD"] == "AccessToKeyVaultDenied"
    # The resolving (system) identity turned off: MSINotEnabled; its endpoint has none.
    sb.state.set_app_system_identity(web["id"], False)
    assert _statuses(sb, web["id"]) == {
        "API_KEY": "MSINotEnabled",
        "DB_PASSWORD": "MSINotEnabled",
    }
    env = sb.app_env(web["name"])
    url = f"{env['IDENTITY_ENDPOINT']}?api-version=2019-08-01&resource={VAULT}"
    assert _get(url, {"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]})[0] == 500
    # The shared identity deleted: the app that resolved through it is denied; its
    # grant stays behind, orphaned, and reads nothing.
    assert _statuses(sb, func["id"]) == {"API_KEY": "Resolved"}
    sb.state.delete_identity(shared["id"])
    assert _statuses(sb, func["id"]) == {"API_KEY": "AccessToKeyVaultDenied"}
    assert sb.state.role_assignments(principal_id=shared["principal_id"])
    func_env = sb.app_env(func["name"])
    status, _ = _get(
        f"{func_env['IDENTITY_ENDPOINT']}?api-version=2019-08-01&resource={VAULT}"
        f"&client_id={shared['client_id']}",
        {"X-IDENTITY-HEADER": func_env["IDENTITY_HEADER"]},
    )
    assert status == 500
