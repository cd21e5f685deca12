"""Fixtures for the verifier tests: a small sandbox world, a probe runner, a deployment.

The world is built directly in the sandbox state (not through the stack program) so the
probe and check tests do not depend on the components; the lifecycle tests deploy the
real stack program through the sandbox target instead. ``deployed_target`` is that
deployment as freshly made, for a test that changes it: each worker deploys once and
resets it before each test (``SandboxTarget.reset``; test_restore_deployment.py shows a
reset deployment is the fresh one), instead of deploying again per test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from verify_world import SECRET_VALUES, ProbeRunner, World

from verify import probe
from verify.sandbox import Sandbox, SandboxConfig

if TYPE_CHECKING:
    from verify.targets.sandbox import SandboxTarget


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with Sandbox(SandboxConfig()) as sb:
        st = sb.state
        st.create_resource_group("rg-test")
        vault = st.create_vault("rg-test", "kv-test")
        for name, value in SECRET_VALUES.items():
            st.set_secret("kv-test", name, value)
        shared = st.create_identity("rg-test", "id-shared")
        vm_a = st.create_vm("rg-test", "vm-a", system_assigned=True, user_assigned=[shared.id])
        vm_b = st.create_vm("rg-test", "vm-b", user_assigned=[shared.id])
        # vm-a's system identity: db-password only (secret scope); shared: whole vault.
        st.create_role_assignment(
            vault.secret_scope("db-password"), "Key Vault Secrets User", vm_a.system_principal_id
        )
        st.create_role_assignment(vault.id, "Key Vault Secrets User", shared.principal_id)
        yield World(sb, "kv-test", vm_a, vm_b, shared)


@pytest.fixture(scope="session")
def _deployment() -> Iterator[SandboxTarget]:
    """The sandbox stack, deployed once per worker by the real stack program."""
    from verify.targets.sandbox import SandboxTarget  # noqa: PLC0415 -- only its users pay

    with SandboxTarget() as target:
        yield target


@pytest.fixture
def deployed_target(_deployment: SandboxTarget) -> SandboxTarget:
    """A fresh deployment of the sandbox stack, the test's to change: the worker's one
    deployment, reset to exactly what its deploy left."""
    _deployment.reset()
    return _deployment


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "world" in request.fixturenames:
        w: World = request.getfixturevalue("world")
        w.sb.faults.clear()
        w.sb.faults.propagation_delay_seconds = 0.0
        w.sb.faults.deleted_principal_tokens = "accept"


@pytest.fixture
def run_probe(world: World, monkeypatch: pytest.MonkeyPatch) -> ProbeRunner:
    """Run the probe in-process "on" a VM: its IMDS, the sandbox CA, a spec."""

    def run(
        vm: Any, identities: list[str], secrets: list[str] | None = None, **spec: Any
    ) -> dict[str, Any]:
        for var in (
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_SECRET",
            "IDENTITY_ENDPOINT",
            "MSI_ENDPOINT",
        ):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", world.sb.imds_url(vm))
        full = {
            "vault_url": world.vault_url,
            "secrets": secrets or sorted(SECRET_VALUES),
            "identities": identities,
            "ca_bundle": world.sb.ca_cert_path,
            "verify_challenge_resource": False,
            "budget_seconds": 10,
            **spec,
        }
        return probe.run(probe.load_spec(full))

    return run
