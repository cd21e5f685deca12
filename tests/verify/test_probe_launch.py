"""Probe processes forked from the pre-warmed fork server behave like probe.py run as a file.

The sandbox target forks each VM's probe from a fork server that has already imported
azure-identity and azure-keyvault-secrets. These tests pin what that must not change:
each child sees only its own VM's IMDS (set in the child, after the imports), the JSON
result and exit codes are those of ``python probe.py``, and a hung child is killed.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from verify_world import SECRET_VALUES, World

from verify import probe
from verify.targets.probing import (
    ProbeRun,
    ProbeTimeoutError,
    run_probe_forked,
    run_probe_subprocess,
)
from verify.targets.sandbox import probe_environment


def _spec(world: World, identities: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "vault_url": world.vault_url,
        "secrets": sorted(SECRET_VALUES),
        "identities": identities,
        "ca_bundle": world.sb.ca_cert_path,
        "verify_challenge_resource": False,
        "budget_seconds": 10,
        **extra,
    }


def _oids(run: ProbeRun) -> dict[str, str]:
    result = probe.parse_output(run.stdout)
    return {r["selector"]: r["claims"].get("oid") for r in result["identities"]}


def test_each_forked_child_uses_the_imds_of_its_own_vm(world: World) -> None:
    """azure-identity, preloaded in the fork server, reads the IMDS host set in the child."""
    on_a = run_probe_forked(
        _spec(world, ["system"]), probe_environment(world.sb.imds_url(world.vm_a)), 30
    )
    on_b = run_probe_forked(
        _spec(world, [world.shared.client_id]),
        probe_environment(world.sb.imds_url(world.vm_b)),
        30,
    )
    # Same selector, other VM: vm-b has no system identity, so its IMDS answers with its
    # only user-assigned identity (as Azure's does); never with vm-a's system identity.
    system_on_b = run_probe_forked(
        _spec(world, ["system"]), probe_environment(world.sb.imds_url(world.vm_b)), 30
    )
    assert _oids(on_a) == {"system": world.vm_a.system_principal_id}
    assert _oids(on_b) == {world.shared.client_id: world.shared.principal_id}
    assert _oids(system_on_b) == {"system": world.shared.principal_id}


def test_forked_and_subprocess_probes_report_the_same(world: World) -> None:
    expect = {"system": {"db-password": "allowed", "api-key": "denied"}}
    spec = _spec(world, ["system"], expect=expect)
    env = probe_environment(world.sb.imds_url(world.vm_a))
    forked = run_probe_forked(spec, env, 30)
    spawned = run_probe_subprocess(spec, env, 30)

    def outcomes(run: ProbeRun) -> dict[str, Any]:
        result = probe.parse_output(run.stdout)
        (ident,) = result["identities"]
        return {
            "passed": result["passed"],
            "oid": ident["claims"]["oid"],
            "secrets": {k: v["outcome"] for k, v in ident["secrets"].items()},
        }

    assert forked.returncode == spawned.returncode == probe.EXIT_PASS
    assert outcomes(forked) == outcomes(spawned)
    assert outcomes(forked)["secrets"] == {"api-key": "forbidden", "db-password": "read"}


def test_bad_spec_exit_code_and_stderr_reach_the_parent(world: World) -> None:
    run = run_probe_forked({"secrets": ["x"]}, probe_environment("http://127.0.0.1:1"), 30)
    assert run.returncode == probe.EXIT_USAGE
    assert "bad spec" in run.stderr
    assert run.stdout == ""


@pytest.fixture
def silent_imds() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_hung_child_is_killed_at_the_timeout(world: World, silent_imds: str) -> None:
    spec = _spec(world, ["system"], budget_seconds=20, read_timeout=20)
    started = time.monotonic()
    with pytest.raises(ProbeTimeoutError, match="killed"):
        run_probe_forked(spec, probe_environment(silent_imds), 0.5)
    assert time.monotonic() - started < 5


def test_the_child_environment_does_not_leak_into_the_verifier(world: World) -> None:
    before = dict(os.environ)
    run_probe_forked(_spec(world, ["system"]), probe_environment(world.sb.imds_url(world.vm_a)), 30)
    assert dict(os.environ) == before


def test_sandbox_target_refuses_an_unknown_launcher() -> None:
    from verify.targets.sandbox import SandboxTarget  # noqa: PLC0415

    with pytest.raises(ValueError, match="probe_launcher 'fork'"):
        SandboxTarget(probe_launcher="fork")  # type: ignore[arg-type]
