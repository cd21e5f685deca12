"""Fixtures for the verifier tests: a small sandbox world, a probe runner, a deployment.

The world is built directly in the sandbox state (not through the stack program) so the
probe and check tests do not depend on the components; the lifecycle tests deploy the
real stack program through the sandbox target instead. ``deployed_target`` is that
deployment as freshly made, for a test that changes it: each worker deploys once and
resets it before each test (``SandboxTarget.reset``; test_restore_deployment.py shows a
reset deployment is the fresh one, compared with ``deployed_dump``, the dump taken right
after that deploy), instead of deploying again per test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from deployment_dump import LifecycleRun
from verify_world import SECRET_VALUES, ProbeRunner, World

from verify import probe
from verify.sandbox import Sandbox, SandboxConfig

if TYPE_CHECKING:
    from verify.model import StackOutputs
    from verify.targets.sandbox import SandboxTarget

#: The prod stack file (a CanNotDelete lock on its shared identity).
PROD_STACK = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.prod.yaml"


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
def _deployed() -> Iterator[tuple[SandboxTarget, tuple[list[str], dict[str, Any]]]]:
    """The sandbox stack, deployed once per worker by the real stack program, and what it
    showed right after the deploy (deployment_dump.py: its ARM IDs and its dump)."""
    from deployment_dump import as_deployed  # noqa: PLC0415 -- only its users pay

    from verify.targets.sandbox import SandboxTarget  # noqa: PLC0415

    with SandboxTarget() as target:
        yield target, as_deployed(target)


@pytest.fixture(scope="session")
def _deployment(
    _deployed: tuple[SandboxTarget, tuple[list[str], dict[str, Any]]],
) -> SandboxTarget:
    """The worker's one deployment (as it is now: reset it before use)."""
    return _deployed[0]


@pytest.fixture(scope="session")
def deployed_dump(
    _deployed: tuple[SandboxTarget, tuple[list[str], dict[str, Any]]],
) -> tuple[list[str], dict[str, Any]]:
    """The worker's deployment right after its deploy: its ARM IDs and its dump
    (deployment_dump.py), what a reset must give back."""
    return _deployed[1]


@pytest.fixture(scope="session")
def lifecycle_run(
    _deployment: SandboxTarget,
    deployed_dump: tuple[list[str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> LifecycleRun:
    """``verify lifecycle --target sandbox --cleanup`` in-process (test_lifecycle_sandbox.py
    asserts its report), then ``cleanup`` of batch's principal and a reset
    (test_restore_deployment.py asserts the reset gives back the deploy's dump): one run
    for both, on the worker's deployment, reset first.

    The sandbox target the command makes is the worker's deployment: the one the same
    constructor made with the same stack, config and overrides (checked here), so the
    command runs on a fresh deployment of it without deploying it again; its close leaves
    the worker's deployment up. The tests that use this run are one xdist group
    (``lifecycle-run``), so it runs once."""
    from deployment_dump import dump  # noqa: PLC0415 -- only its users pay

    from verify.cli import main  # noqa: PLC0415
    from verify.runner import cleanup_report  # noqa: PLC0415
    from verify.targets import sandbox as sandbox_target  # noqa: PLC0415

    reports = tmp_path_factory.mktemp("reports")
    made: list[dict[str, Any]] = []

    def worker_deployment(**kwargs: Any) -> SandboxTarget:
        made.append(kwargs)
        assert kwargs == {
            "config": SandboxConfig(),
            "stack_config": sandbox_target.STACK_CONFIG,
            "stack": "sandbox",
            "config_overrides": {},
            "max_parallel": None,
        }
        _deployment.reset()
        return _deployment

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sandbox_target, "SandboxTarget", worker_deployment)
        patch.setattr(_deployment, "close", lambda: None)
        code = main(
            ["lifecycle", "--target", "sandbox", "--cleanup", "--propagation-wait", "10",
             "--report-dir", str(reports), "--quiet"]
        )  # fmt: skip
    assert len(made) == 1
    report = json.loads((reports / "report.json").read_text())
    report["exit_code"] = code
    report["files"] = sorted(p.name for p in reports.iterdir())
    ids, _ = deployed_dump
    batch = _deployment.outputs().vms["batch"].system_principal_id or ""
    cleanup_report(_deployment, "sandbox", [batch])
    changed = dump(_deployment, ids)
    _deployment.reset()
    return LifecycleRun(report, changed, dump(_deployment, ids))


@pytest.fixture(scope="session")
def prod_plan() -> tuple[dict[str, Any], StackOutputs]:
    """``stacks/Pulumi.prod.yaml`` deployed in the mock runtime (an in-memory ARM, stack
    ``plan``) with stand-in values for its secrets and blob contents (encrypted in the
    file, or set with ``pulumi config set --secret``): its config and outputs, read-only
    (the outputs are frozen). The planning and lock-lifting tests that use it are one
    xdist group (``prod-plan``), so it is deployed once."""
    from components.stack_config import secret_config_keys  # noqa: PLC0415
    from components.testing import (  # noqa: PLC0415 -- only its users pay
        AzureMocks,
        InMemoryArm,
        load_stack_config,
        run_program,
    )
    from verify.model import load_outputs  # noqa: PLC0415
    from verify.stacks import PROGRAM  # noqa: PLC0415

    config = dict(load_stack_config(PROD_STACK))
    config.update({key: "v" for key in secret_config_keys(config)})
    raw = run_program(PROGRAM, config, mocks=AzureMocks(InMemoryArm()), stack="plan")
    return config, load_outputs(dict(raw), "test")


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
