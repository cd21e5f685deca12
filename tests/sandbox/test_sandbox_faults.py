"""Every fault kind, seen through the real clients, with retries tuned so nothing waits long.

Client retry facts (azure-core / azure-identity): the first retry is immediate, later ones
back off; a 410 from IMDS backs off 2.5 s x 2^n, so 410 faults here hit once; Key Vault and
ARM clients honour ``Retry-After``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import AzureError, HttpResponseError, ServiceResponseError
from azure.identity import CredentialUnavailableError, ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient
from sandbox_world import VAULT_SCOPE, OnVm, World

from components.errors import ConfigError
from verify.sandbox import Fault, FaultPlan, Sandbox
from verify.sandbox.imds.service import TOKEN_PATH


def vault_client(sb: Sandbox, world: World, **retry: float) -> SecretClient:
    """A client as id_a (granted on the whole vault), with the given retry settings."""
    principal = sb.state.principal(world.id_a.principal_id)
    assert principal is not None
    settings = {"retry_total": 0, **retry}
    return SecretClient(
        sb.vault_url(world.vault),
        sb.credential(principal),
        **settings,
        **sb.keyvault_client_kwargs(),
    )


def statuses(sb: Sandbox, service: str, target: str) -> list[tuple[int, str | None]]:
    return [(r.status, r.fault) for r in sb.request_log.records(service=service, target=target)]


# ---------------------------------------------------------------------- IMDS
@pytest.mark.parametrize("status", [429, 500, 410])
def test_imds_error_status_without_retries(
    sb: Sandbox, world: World, on_vm: OnVm, status: int
) -> None:
    on_vm(world.vm_sys)
    sb.faults.add(Fault("imds", status=status, retry_after=3, target=world.vm_sys.name))
    with pytest.raises(CredentialUnavailableError) as failed:
        ManagedIdentityCredential(retry_total=0).get_token(VAULT_SCOPE)
    assert {429: "too_many_requests", 500: "internal_error", 410: "service_unavailable"}[
        status
    ] in str(failed.value)
    raw = requests.get(
        sb.imds_url(world.vm_sys) + TOKEN_PATH, headers={"Metadata": "true"}, timeout=5
    )
    assert (raw.status_code, raw.headers["Retry-After"]) == (status, "3")
    assert statuses(sb, "imds", world.vm_sys.name)[-1] == (status, "status")


@pytest.mark.parametrize("status", [429, 500, 410])
def test_imds_transient_error_is_retried_away(
    sb: Sandbox, world: World, on_vm: OnVm, status: int
) -> None:
    on_vm(world.vm_sys)
    fault = sb.faults.add(Fault("imds", status=status, times=1, target=world.vm_sys.name))
    started = time.monotonic()
    token = ManagedIdentityCredential(retry_backoff_factor=0.01).get_token(VAULT_SCOPE)
    assert token.token and fault.hits == 1
    assert time.monotonic() - started < 2, "the first retry is immediate"
    assert statuses(sb, "imds", world.vm_sys.name)[-2:] == [(status, "status"), (200, None)]


def test_imds_connection_reset(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_sys)
    with sb.faults.injected(Fault("imds", kind="reset", target=world.vm_sys.name)):
        with pytest.raises(CredentialUnavailableError, match="no response from the IMDS endpoint"):
            ManagedIdentityCredential(retry_total=0).get_token(VAULT_SCOPE)
        with pytest.raises(requests.ConnectionError):
            requests.get(
                sb.imds_url(world.vm_sys) + TOKEN_PATH, headers={"Metadata": "true"}, timeout=5
            )
    assert statuses(sb, "imds", world.vm_sys.name)[-1] == (0, "reset")
    assert ManagedIdentityCredential().get_token(VAULT_SCOPE).token  # fault gone, IMDS back


def test_imds_slow_response(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_sys)
    with sb.faults.injected(Fault("imds", kind="delay", delay_seconds=0.3)):
        started = time.monotonic()
        ManagedIdentityCredential().get_token(VAULT_SCOPE)
        assert time.monotonic() - started >= 0.3


# ---------------------------------------------------------------- Key Vault
def test_key_vault_429_with_retry_after(sb: Sandbox, world: World) -> None:
    fault = Fault("keyvault", status=429, retry_after=7, target=world.vault.name)
    with sb.faults.injected(fault), pytest.raises(HttpResponseError) as throttled:
        vault_client(sb, world).get_secret("db")
    assert throttled.value.status_code == 429
    assert throttled.value.response.headers["Retry-After"] == "7"
    assert throttled.value.error.code == "Throttled"  # type: ignore[union-attr]
    # with retries on, the client waits Retry-After (1 s here) and then succeeds
    sb.faults.add(
        Fault("keyvault", status=429, retry_after=1, times=1, target=world.vault.name, method="GET")
    )
    started = time.monotonic()
    assert vault_client(sb, world, retry_total=2).get_secret("db").value == world.values["db"]
    assert time.monotonic() - started >= 0.95


def test_key_vault_500_retried_and_path_filter(sb: Sandbox, world: World) -> None:
    sb.faults.add(Fault("keyvault", status=500, path="/secrets/api", target=world.vault.name))
    client = vault_client(sb, world)
    assert client.get_secret("db").value == world.values["db"]  # other paths unaffected
    with pytest.raises(HttpResponseError) as failed:
        client.get_secret("api")
    assert failed.value.status_code == 500
    sb.faults.clear()
    once = sb.faults.add(
        Fault("keyvault", status=500, times=1, target=world.vault.name, path="/secrets/api")
    )
    assert vault_client(sb, world, retry_total=2, retry_backoff_factor=0.01).get_secret("api").value
    assert once.hits == 1


def test_key_vault_slow_response_and_client_timeout(sb: Sandbox, world: World) -> None:
    client = vault_client(sb, world)
    client.get_secret("tls")  # warm: the challenge is answered before the delay (one wait)
    with sb.faults.injected(
        Fault("keyvault", kind="delay", delay_seconds=0.5, target=world.vault.name)
    ):
        started = time.monotonic()
        assert client.get_secret("db").value == world.values["db"]
        assert time.monotonic() - started >= 0.5
        with pytest.raises(ServiceResponseError):
            vault_client(sb, world, read_timeout=0.1).get_secret("db")


def test_key_vault_connection_reset(sb: Sandbox, world: World) -> None:
    with sb.faults.injected(
        Fault("keyvault", kind="reset", target=world.vault.name, path="/secrets/db")
    ):
        client = vault_client(sb, world)
        client.get_secret("tls")  # warm: challenge done, connection pooled
        with pytest.raises(AzureError):
            client.get_secret("db")
    sb.faults.add(
        Fault("keyvault", kind="reset", times=1, target=world.vault.name, path="/secrets/db")
    )
    assert vault_client(sb, world, retry_total=2, retry_backoff_factor=0.01).get_secret("db").value


# ---------------------------------------------------------------------- ARM
@pytest.mark.parametrize(
    ("status", "code"), [(429, "TooManyRequests"), (500, "InternalServerError")]
)
def test_arm_error_status(sb: Sandbox, world: World, status: int, code: str) -> None:
    client = AuthorizationManagementClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )
    fault = Fault("arm", status=status, retry_after=1, path="/roleAssignments")
    with sb.faults.injected(fault), pytest.raises(HttpResponseError) as failed:
        list(client.role_assignments.list_for_scope(world.vault.id))
    assert (failed.value.status_code, failed.value.error.code) == (status, code)  # type: ignore[union-attr]
    assert list(client.role_assignments.list_for_scope(world.vault.id))


# --------------------------------------------------------------- config file
def test_fault_file_toml(sb: Sandbox, world: World, on_vm: OnVm, tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(
        "propagation_delay_seconds = 30\n"
        'deleted_principal_tokens = "refuse"\n'
        "[[faults]]\n"
        'service = "imds"\n'
        "status = 429\n"
        "retry_after = 2\n"
        f'target = "{world.vm_sys.name}"\n'
        "times = 1\n"
    )
    sb.faults.load(path)
    assert (sb.faults.propagation_delay_seconds, sb.faults.deleted_principal_tokens) == (
        30.0,
        "refuse",
    )
    on_vm(world.vm_sys)
    with pytest.raises(CredentialUnavailableError, match="too_many_requests"):
        ManagedIdentityCredential(retry_total=0).get_token(VAULT_SCOPE)
    assert ManagedIdentityCredential(retry_total=0).get_token(VAULT_SCOPE).token  # times = 1
    # the 30 s propagation delay from the file applies to a new grant
    vm = sb.state.create_vm(world.rg, "vm-late", system_assigned=True)
    sb.state.create_role_assignment(
        world.vault.id, "Key Vault Secrets User", vm.system_principal_id or ""
    )
    assert not sb.rbac.check_data_action(
        vm.system_principal_id or "",
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
        world.vault.secret_scope("db"),
    ).allowed


def test_fault_file_json_and_errors(tmp_path: Path) -> None:
    good = tmp_path / "faults.json"
    good.write_text('{"faults": [{"service": "keyvault", "kind": "delay", "delay_seconds": 0.2}]}')
    plan = FaultPlan()
    plan.load(good)
    assert [(f.service, f.kind, f.delay_seconds) for f in plan.faults] == [
        ("keyvault", "delay", 0.2)
    ]
    cases = {
        '{"faults": [{"service": "dns"}]}': "fault.service",
        '{"faults": [{"service": "imds", "status": 200}]}': "fault.status",
        '{"faults": [{"service": "imds", "colour": "red"}]}': "faults[0]",
        '{"deleted_principal_tokens": "maybe"}': "deleted_principal_tokens",
        '{"propagation": 1}': "bad.json",
        "{not json": "faults_file",
    }
    for text, field in cases.items():
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ConfigError) as error:
            FaultPlan().load(bad)
        assert field in error.value.field, text
    with pytest.raises(ConfigError, match="cannot be read"):
        FaultPlan().load(tmp_path / "absent.toml")


# ---------------------------------------------------- each service's own body
def test_a_fault_on_the_issuer_answers_in_entra_s_error_shape(sb: Sandbox) -> None:
    """Each listener renders an injected fault through its own service's error factory: the
    issuer used to borrow IMDS's, so msal saw a body Entra never sends."""
    url = f"{sb.authority_url}/{sb.tenant_id}/v2.0/.well-known/openid-configuration"
    with sb.faults.injected(Fault("issuer", status=429, retry_after=1)):
        raw = requests.get(url, verify=sb.ca_cert_path, timeout=5)
    body = raw.json()
    assert raw.status_code == 429
    assert (body["error"], body["error_codes"]) == ("temporarily_unavailable", [90055])
    assert body["error_description"].startswith("AADSTS90055: ")
    with sb.faults.injected(Fault("graph", status=503)):
        graph = requests.get(f"{sb.graph_url}/v1.0/servicePrincipals", verify=sb.ca_cert_path)
    assert graph.json()["error"]["code"] == "serviceNotAvailable"
    assert set(graph.json()["error"]["innerError"]) == {"date", "request-id", "client-request-id"}


def test_another_tenant_s_discovery_is_entra_s_90002_body(sb: Sandbox) -> None:
    other = "00000000-0000-0000-0000-000000000000"
    raw = requests.get(
        f"{sb.authority_url}/{other}/v2.0/.well-known/openid-configuration",
        verify=sb.ca_cert_path,
        timeout=5,
    )
    body = raw.json()
    assert (raw.status_code, body["error"], body["error_codes"]) == (400, "invalid_tenant", [90002])
    assert body["error_description"].startswith("AADSTS90002: Tenant ")
