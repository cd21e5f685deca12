"""Running the sandbox: loopback only, start/stop, the command, discovery, the request log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
import requests
from azure.identity import ManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from sandbox_world import VAULT_SCOPE, OnVm, World, first_json_listing

from components.errors import ConfigError
from verify.sandbox import Sandbox, SandboxConfig
from verify.sandbox.imds.service import TOKEN_PATH

REPO = Path(__file__).resolve().parents[2]


def refuses_connections(url: str) -> bool:
    host, port = url.split("//", 1)[1].rstrip("/").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::", "example.com"])
def test_refuses_to_bind_beyond_loopback(host: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Sandbox(SandboxConfig(host=host))
    assert refused.value.field == "host" and refused.value.value == host
    assert "127.0.0.1" in refused.value.fix


@pytest.mark.parametrize(
    ("field", "config"),
    [
        ("tenant_id", SandboxConfig(tenant_id="not-a-guid")),
        ("token_lifetime_seconds", SandboxConfig(token_lifetime_seconds=5)),
        ("propagation_delay_seconds", SandboxConfig(propagation_delay_seconds=-1)),
        ("arm_port", SandboxConfig(arm_port=70000)),
    ],
)
def test_bad_config_is_refused_before_start(field: str, config: SandboxConfig) -> None:
    with pytest.raises(ConfigError) as refused:
        Sandbox(config)
    assert refused.value.field == field


def test_start_stop_and_token_lifetime(monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox(SandboxConfig(host="localhost", token_lifetime_seconds=900)) as sb:
        sb.state.create_resource_group("rg")
        vm = sb.state.create_vm("rg", "vm", system_assigned=True)
        sb.state.create_vault("rg", "kv-life")
        urls = [sb.arm_url, sb.authority_url, sb.imds_url(vm), sb.vault_url("kv-life")]
        assert all(u.split("//")[1].startswith("127.0.0.1:") for u in urls)
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", sb.imds_url(vm))
        token = ManagedIdentityCredential().get_token(VAULT_SCOPE)
        claims = sb.issuer_service.verify(token.token, ["https://vault.azure.net"])
        assert claims["exp"] - claims["iat"] == 900
        ca = Path(sb.ca_cert_path)
        assert ca.read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert all(refuses_connections(u) for u in urls)
    assert not ca.exists(), "the temporary CA directory is removed on stop"
    with pytest.raises(RuntimeError, match="not started"):
        _ = sb.arm_url


def test_discovery_endpoints_verify_tokens(sb: Sandbox, world: World) -> None:
    base = f"{sb.authority_url}/{sb.tenant_id}"
    config = requests.get(
        f"{base}/.well-known/openid-configuration", verify=sb.ca_cert_path, timeout=5
    ).json()
    assert config["issuer"] == sb.issuer == f"https://sts.windows.net/{sb.tenant_id}/"
    jwks = requests.get(config["jwks_uri"], verify=sb.ca_cert_path, timeout=5).json()
    token = requests.get(
        sb.imds_url(world.vm_sys) + TOKEN_PATH,
        params={"api-version": "2018-02-01", "resource": "https://vault.azure.net"},
        headers={"Metadata": "true"},
        timeout=5,
    ).json()["access_token"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(
        token, key.key, algorithms=["RS256"], audience="https://vault.azure.net", issuer=sb.issuer
    )
    assert claims["oid"] == world.vm_sys.system_principal_id
    wrong_tenant = requests.get(
        f"{sb.authority_url}/{'0' * 8}-0000-0000-0000-{'0' * 12}/.well-known/openid-configuration",
        verify=sb.ca_cert_path,
        timeout=5,
    )
    assert wrong_tenant.status_code == 400


def test_request_log_never_holds_tokens_or_values(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_sys)
    credential = ManagedIdentityCredential()
    token = credential.get_token(VAULT_SCOPE).token
    since = sb.request_log.now()
    client = SecretClient(sb.vault_url(world.vault), credential, **sb.keyvault_client_kwargs())
    assert client.get_secret("db").value == world.values["db"]
    records = sb.request_log.records(target=world.vault.name, since=since)
    assert [r.status for r in records] == [401, 200]  # challenge, then the read
    assert records[1].principal_id == world.vm_sys.system_principal_id
    dump = repr(sb.request_log.records())
    assert token not in dump and world.values["db"] not in dump


def test_command_prints_endpoints_and_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "verify.sandbox", "--demo", "--json", "--workdir", str(tmp_path)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoints = first_json_listing(process.stdout)
        assert set(endpoints["imds"]) == {"vm-web", "vm-batch", "vm-ops"}
        assert Path(endpoints["ca_cert_path"]) == tmp_path / "sandbox-ca.pem"
        challenge = requests.get(
            endpoints["vaults"]["kv-sandbox"] + "secrets/db-password/?api-version=2026-04-01",
            verify=endpoints["ca_cert_path"],
            timeout=5,
        )
        assert challenge.status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "sandbox stopped" in stderr
    assert refuses_connections(endpoints["arm_url"])


def test_command_refuses_a_public_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "verify.sandbox", "--host", "0.0.0.0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "host" in result.stderr and "loopback" in result.stderr


def test_faults_file_in_config(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(
        'deleted_principal_tokens = "refuse"\n[[faults]]\nservice = "arm"\nstatus = 503\n'
    )
    sb = Sandbox(SandboxConfig(faults_file=path))
    assert sb.faults.deleted_principal_tokens == "refuse"
    assert [(f.service, f.status) for f in sb.faults.faults] == [("arm", 503)]
    with pytest.raises(ConfigError) as bad:
        Sandbox(SandboxConfig(faults_file=tmp_path / "missing.toml"))
    assert bad.value.field == "faults_file"
