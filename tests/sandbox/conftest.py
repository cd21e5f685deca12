"""One sandbox per test session, and a fresh topology per test.

Starting a sandbox takes ~0.1 s and stopping it ~0.3 s; sharing one across the session
keeps the suite fast, and every test builds its own uniquely named resource group,
vault, identities and VMs, so tests cannot see each other's state. Faults and knobs are
reset after every test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox_world import World, first_json_listing

from verify.sandbox import Sandbox, SandboxConfig, VirtualMachine

# Variables that would make azure-identity pick another managed-identity source (App
# Service, Arc, Cloud Shell...) or another credential in DefaultAzureCredential.
_HIJACKERS = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_USERNAME",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
)


REPO = Path(__file__).resolve().parents[2]
SANDBOX_STACK = REPO / "stacks" / "Pulumi.sandbox.yaml"


@pytest.fixture(scope="session")
def stack_command(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The listing ``python -m verify.sandbox --stack-file stacks/Pulumi.sandbox.yaml --json``
    prints, from one such command started for the tests that read it (each start deploys
    the stack in a new interpreter: ~3 s of CPU). The command keeps serving until the end,
    then must stop cleanly on Ctrl-C (SIGINT): exit 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "verify.sandbox", "--stack-file", str(SANDBOX_STACK), "--json",
         "--workdir", str(tmp_path_factory.mktemp("stack-command"))],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        yield first_json_listing(process.stdout)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr


@pytest.fixture(scope="session")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as sandbox:
        yield sandbox


@pytest.fixture(autouse=True)
def _isolated(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _HIJACKERS:
        monkeypatch.delenv(name, raising=False)
    yield
    sb.faults.clear()


@pytest.fixture
def world(sb: Sandbox) -> World:
    suffix = uuid.uuid4().hex[:8]
    st = sb.state
    rg = f"rg-{suffix}"
    st.create_resource_group(rg)
    vault = st.create_vault(rg, f"kv-{suffix}")
    values = {name: f"value-of-{name}-{uuid.uuid4().hex}" for name in ("db", "api", "tls")}
    for name, value in values.items():
        st.set_secret(vault.name, name, value)
    id_a = st.create_identity(rg, "id-a")
    id_b = st.create_identity(rg, "id-b")
    id_lone = st.create_identity(rg, "id-lone")
    vm_sys = st.create_vm(rg, f"vm-sys-{suffix}", system_assigned=True)
    vm_multi = st.create_vm(rg, f"vm-multi-{suffix}", user_assigned=[id_a.id, id_b.id])
    vm_both = st.create_vm(rg, f"vm-both-{suffix}", system_assigned=True, user_assigned=[id_a.id])
    assert vm_sys.system_principal_id is not None
    st.create_role_assignment(
        vault.secret_scope("db"), "Key Vault Secrets User", vm_sys.system_principal_id
    )
    st.create_role_assignment(vault.id, "Key Vault Secrets User", id_a.principal_id)
    st.create_role_assignment(vault.id, "Contributor", id_b.principal_id)
    return World(rg, vault, values, id_a, id_b, id_lone, vm_sys, vm_multi, vm_both)


@pytest.fixture
def on_vm(sb: Sandbox, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``on_vm(vm)`` makes this process "run on" ``vm``: IMDS requests reach its listener."""

    def enter(vm: VirtualMachine) -> None:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", sb.imds_url(vm))

    return enter
