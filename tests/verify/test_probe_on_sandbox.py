"""The probe against the sandbox: real azure-identity / msal / SecretClient over loopback.

Each outcome the probe can report is produced here by the situation that causes it,
including the injected faults, and every test is bounded well under its budget.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from verify_world import SECRET_VALUES, ProbeRunner, World

from verify import probe
from verify.sandbox import Fault


def _only(result: dict, selector: str) -> dict:
    (report,) = [r for r in result["identities"] if r["selector"] == selector]
    return report


def test_system_identity_reads_granted_secret_and_is_refused_the_other(
    world: World, run_probe: ProbeRunner
) -> None:
    result = run_probe(world.vm_a, ["system"])
    report = _only(result, "system")
    assert report["claims"]["oid"] == world.vm_a.system_principal_id
    assert report["claims"]["xms_mirid"].lower() == world.vm_a.id.lower()
    assert report["claims"]["aud"].rstrip("/") == "https://vault.azure.net"
    assert report["claims"]["tid"] == world.sb.tenant_id
    read = report["secrets"]["db-password"]
    assert read["outcome"] == "read"
    expected = "sha256:" + hashlib.sha256(SECRET_VALUES["db-password"].encode()).hexdigest()
    assert read["fingerprint"] == expected
    denied = report["secrets"]["api-key"]
    assert denied["outcome"] == "forbidden"
    assert denied["http_status"] == 403
    assert denied["error_code"] == "Forbidden/ForbiddenByRbac"
    assert denied["attempts"] == 1  # no propagation wait asked: a 403 is not retried
    assert result["passed"] is False  # no expectations given: everything had to be read


def test_output_never_contains_a_token_or_a_value(world: World, run_probe: ProbeRunner) -> None:
    result = run_probe(world.vm_a, ["system", world.shared.client_id])
    text = repr(result)
    for value in SECRET_VALUES.values():
        assert value not in text
    assert "eyJ" not in text  # a JWT starts with base64 '{"'


def test_user_assigned_identity_by_client_id(world: World, run_probe: ProbeRunner) -> None:
    result = run_probe(world.vm_b, [world.shared.client_id])
    report = _only(result, world.shared.client_id)
    assert report["claims"]["oid"] == world.shared.principal_id
    assert report["claims"]["xms_mirid"].lower() == world.shared.id.lower()
    assert {s["outcome"] for s in report["secrets"].values()} == {"read"}
    assert result["passed"] is True


def test_expectations_decide_the_exit(world: World, run_probe: ProbeRunner) -> None:
    expect = {"system": {"db-password": "allowed", "api-key": "denied"}}
    assert run_probe(world.vm_a, ["system"], expect=expect)["passed"] is True
    wrong = {"system": {"db-password": "allowed", "api-key": "allowed"}}
    assert run_probe(world.vm_a, ["system"], expect=wrong)["passed"] is False


def test_missing_secret_is_not_found(world: World, run_probe: ProbeRunner) -> None:
    result = run_probe(world.vm_b, [world.shared.client_id], secrets=["no-such-secret"])
    outcome = _only(result, world.shared.client_id)["secrets"]["no-such-secret"]
    assert outcome["outcome"] == "not_found"
    assert outcome["error_code"] == "SecretNotFound"


def test_identity_the_vm_does_not_have_is_no_identity(world: World, run_probe: ProbeRunner) -> None:
    started = time.monotonic()
    unknown = "00000000-0000-0000-0000-000000000001"
    result = run_probe(world.vm_b, [unknown])
    assert time.monotonic() - started < 5  # a 400 is an answer, never retried
    report = _only(result, unknown)
    assert report["claims"] is None
    assert report["token"]["outcome"] == "no_identity"
    assert report["token"]["http_status"] == 400
    assert report["token"]["error_code"] == "invalid_request"
    assert {s["outcome"] for s in report["secrets"].values()} == {"no_identity"}


def test_system_on_a_vm_with_only_one_uai_gets_that_uai(
    world: World, run_probe: ProbeRunner
) -> None:
    """IMDS answers a "system" request with the single user-assigned identity (msal documents
    it); the probe reports whose token it got, which is why the check compares the oid."""
    report = _only(run_probe(world.vm_b, ["system"]), "system")
    assert report["claims"]["oid"] == world.shared.principal_id


def test_imds_5xx_is_unreachable_quickly(world: World, run_probe: ProbeRunner) -> None:
    world.sb.faults.add(Fault(service="imds", status=500, target="vm-b"))
    started = time.monotonic()
    result = run_probe(world.vm_b, [world.shared.client_id])
    assert time.monotonic() - started < 5  # not azure-identity's ~24 s back-off
    token = _only(result, world.shared.client_id)["token"]
    assert token["outcome"] == "unreachable"
    assert token["http_status"] == 500
    assert token["imds_requests"] == 1


def test_imds_410_is_unreachable_without_the_75_second_wait(
    world: World, run_probe: ProbeRunner
) -> None:
    world.sb.faults.add(Fault(service="imds", status=410, target="vm-b"))
    started = time.monotonic()
    token = _only(run_probe(world.vm_b, [world.shared.client_id]), world.shared.client_id)["token"]
    assert time.monotonic() - started < 5
    assert (token["outcome"], token["http_status"]) == ("unreachable", 410)


def test_keyvault_429_short_retry_after_is_waited_out(world: World, run_probe: ProbeRunner) -> None:
    world.sb.faults.add(
        Fault(service="keyvault", status=429, retry_after=1, path="/secrets/api-key", times=1)
    )
    result = run_probe(world.vm_b, [world.shared.client_id], secrets=["api-key"])
    outcome = _only(result, world.shared.client_id)["secrets"]["api-key"]
    assert outcome["outcome"] == "read"
    assert outcome["attempts"] == 2
    assert 900 <= outcome["waited_ms"] < 2000


def test_keyvault_429_long_retry_after_is_reported_not_waited(
    world: World, run_probe: ProbeRunner
) -> None:
    world.sb.faults.add(Fault(service="keyvault", status=429, retry_after=600, path="/secrets/"))
    started = time.monotonic()
    result = run_probe(world.vm_b, [world.shared.client_id], secrets=["api-key"])
    assert time.monotonic() - started < 5
    outcome = _only(result, world.shared.client_id)["secrets"]["api-key"]
    assert (outcome["outcome"], outcome["http_status"]) == ("unreachable", 429)
    assert outcome["attempts"] == 1


def test_propagation_delay_is_waited_out_and_reported(world: World, run_probe: ProbeRunner) -> None:
    """The probe keeps polling through a 403 until the grant takes effect.

    Deterministic on a loaded machine: the grant is held back (an hour's delay) until the
    sandbox has answered the probe 403 at least once, and only then does it take effect.
    A fixed sub-second delay raced the probe's own start-up: when the process took longer
    to start than the delay, the first read already succeeded and nothing was waited out.
    """
    st = world.sb.state
    vault = st.vault("kv-test")
    world.sb.faults.propagation_delay_seconds = 3600
    since = time.time()
    grant = st.create_role_assignment(
        vault.secret_scope("api-key"), "Key Vault Secrets User", world.vm_a.system_principal_id
    )

    def forbidden_once() -> bool:
        return any(
            r.status == 403 and r.principal_id == world.vm_a.system_principal_id
            for r in world.sb.request_log.records(service="keyvault", since=since)
        )

    def release_after_first_403() -> None:
        deadline = time.monotonic() + 20
        while not forbidden_once() and time.monotonic() < deadline:
            time.sleep(0.02)
        world.sb.faults.propagation_delay_seconds = 0.0

    releaser = threading.Thread(target=release_after_first_403, daemon=True)
    releaser.start()
    try:
        result = run_probe(world.vm_a, ["system"], secrets=["api-key"], propagation_wait_seconds=25)
    finally:
        releaser.join(timeout=25)
        world.sb.faults.propagation_delay_seconds = 0.0
        st.delete_role_assignment(grant.id)
    assert forbidden_once()
    outcome = _only(result, "system")["secrets"]["api-key"]
    assert outcome["outcome"] == "read"
    assert outcome["attempts"] >= 2
    assert outcome["waited_ms"] > 0


def test_propagation_wait_is_capped(world: World, run_probe: ProbeRunner) -> None:
    started = time.monotonic()
    result = run_probe(world.vm_a, ["system"], secrets=["api-key"], propagation_wait_seconds=0.5)
    elapsed = time.monotonic() - started
    outcome = _only(result, "system")["secrets"]["api-key"]
    assert outcome["outcome"] == "forbidden"
    assert outcome["attempts"] >= 2
    assert elapsed < 4


def test_stashed_token_replayed_after_the_identity_is_deleted(
    world: World, run_probe: ProbeRunner, tmp_path
) -> None:
    st = world.sb.state
    uai = st.create_identity("rg-test", "id-doomed")
    vm = st.create_vm("rg-test", "vm-doomed", user_assigned=[uai.id])
    st.create_role_assignment(st.vault("kv-test").id, "Key Vault Secrets User", uai.principal_id)
    stash = {"stash_token": True, "token_dir": str(tmp_path)}
    before = run_probe(vm, [uai.client_id], secrets=["api-key"], **stash)
    assert _only(before, uai.client_id)["token"]["stashed"] is True
    st.delete_identity(uai.id)

    fresh = run_probe(vm, [uai.client_id], secrets=["api-key"])
    assert _only(fresh, uai.client_id)["token"]["outcome"] == "no_identity"

    replay = {"mode": "replay", "token_dir": str(tmp_path)}
    world.sb.faults.deleted_principal_tokens = "accept"
    accepted = _only(run_probe(vm, [uai.client_id], secrets=["api-key"], **replay), uai.client_id)
    assert accepted["token"]["credential_source"] == "stash"
    assert accepted["claims"]["oid"] == uai.principal_id
    assert accepted["token"]["expires_in_seconds"] > 3600
    assert accepted["secrets"]["api-key"]["outcome"] == "read"

    world.sb.faults.deleted_principal_tokens = "refuse"
    refused = _only(run_probe(vm, [uai.client_id], secrets=["api-key"], **replay), uai.client_id)
    # Key Vault's 401 refuses the token; it is not an RBAC verdict, so not "forbidden".
    assert refused["secrets"]["api-key"]["outcome"] == "inconclusive"
    assert refused["secrets"]["api-key"]["http_status"] == 401
    assert refused["secrets"]["api-key"]["error_code"] == "Unauthorized"


def test_replay_without_a_stash_says_so(world: World, run_probe: ProbeRunner, tmp_path) -> None:
    result = run_probe(world.vm_b, [world.shared.client_id], mode="replay", token_dir=str(tmp_path))
    token = _only(result, world.shared.client_id)["token"]
    assert token["error_code"] == "NoStashedToken"


def test_budget_bounds_a_slow_vault(world: World, run_probe: ProbeRunner) -> None:
    world.sb.faults.add(Fault(service="keyvault", kind="delay", delay_seconds=1.0))
    started = time.monotonic()
    result = run_probe(
        world.vm_b, [world.shared.client_id], budget_seconds=1, read_timeout=0.3, connect_timeout=1
    )
    assert time.monotonic() - started < 3
    outcomes = {s["outcome"] for s in _only(result, world.shared.client_id)["secrets"].values()}
    assert outcomes == {"unreachable"}


def test_watchdog_ends_a_probe_that_hangs_anyway(tmp_path) -> None:
    """Every request is bounded by the budget; if something still hangs (here: the whole
    run, replaced by a sleep), the watchdog prints a result and exits 3 at budget + grace."""
    spec = {
        "vault_url": "https://kv.example/",
        "secrets": ["api-key"],
        "budget_seconds": 0.3,
        "watchdog_grace_seconds": 0.3,
    }
    # The child says when probe.main starts (CLOCK_MONOTONIC is one clock for every
    # process), so the bound is on the watchdog, not on starting Python and importing the
    # probe's dependencies, which a loaded machine can stretch past it.
    hang = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import probe; "
        "probe.run = lambda spec, partial: time.sleep(30); "
        "print(f'main-started-at {time.monotonic()}', file=sys.stderr, flush=True); "
        "sys.exit(probe.main(['--spec-json', sys.argv[2]]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", hang, str(Path(probe.__file__).parent), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    ended = time.monotonic()
    started = float(done.stderr.split("main-started-at ", 1)[1].split()[0])
    assert ended - started < 5
    assert done.returncode == probe.EXIT_WATCHDOG
    result = probe.parse_output(done.stdout)
    assert result["passed"] is False and "budget" in result["watchdog"]


def test_slow_imds_is_bounded_by_the_budget(world: World, run_probe: ProbeRunner) -> None:
    world.sb.faults.add(Fault(service="imds", kind="delay", delay_seconds=1.5, target="vm-b"))
    started = time.monotonic()
    result = run_probe(world.vm_b, [world.shared.client_id], budget_seconds=0.5, read_timeout=10)
    assert time.monotonic() - started < 1.4
    token = _only(result, world.shared.client_id)["token"]
    assert token["outcome"] == "unreachable"


def test_keyvault_401_is_inconclusive_not_forbidden(world: World, run_probe: ProbeRunner) -> None:
    """A 401 (here injected on one secret's path) proves nothing about RBAC."""
    world.sb.faults.add(Fault(service="keyvault", status=401, path="/secrets/api-key"))
    expect = {"system": {"db-password": "allowed", "api-key": "denied"}}
    result = run_probe(world.vm_a, ["system"], expect=expect)
    outcome = _only(result, "system")["secrets"]["api-key"]
    assert (outcome["outcome"], outcome["http_status"]) == ("inconclusive", 401)
    assert result["passed"] is False  # the denial the spec expected was not proven


def test_only_forbidden_by_rbac_is_forbidden(world: World, run_probe: ProbeRunner) -> None:
    result = run_probe(world.vm_a, ["system"], secrets=["api-key"])
    outcome = _only(result, "system")["secrets"]["api-key"]
    assert (outcome["outcome"], outcome["error_code"]) == ("forbidden", "Forbidden/ForbiddenByRbac")
    world.sb.faults.add(Fault(service="keyvault", status=403, path="/secrets/api-key"))
    result = run_probe(world.vm_a, ["system"], secrets=["api-key"], propagation_wait_seconds=5)
    outcome = _only(result, "system")["secrets"]["api-key"]
    assert (outcome["outcome"], outcome["http_status"]) == ("inconclusive", 403)
    assert outcome["attempts"] == 1  # not mistaken for RBAC propagation and retried


def test_imds_429_short_retry_after_is_waited_out(world: World, run_probe: ProbeRunner) -> None:
    world.sb.faults.add(Fault(service="imds", status=429, retry_after=1, target="vm-b", times=1))
    result = run_probe(world.vm_b, [world.shared.client_id], secrets=["api-key"])
    report = _only(result, world.shared.client_id)
    assert report["token"]["outcome"] == "ok"
    assert report["token"]["imds_requests"] == 2
    assert 900 <= report["token"]["waited_ms"] < 2000
    assert report["secrets"]["api-key"]["outcome"] == "read"


def test_imds_429_retry_after_beyond_the_budget_is_reported_not_waited(
    world: World, run_probe: ProbeRunner
) -> None:
    world.sb.faults.add(Fault(service="imds", status=429, retry_after=600, target="vm-b"))
    started = time.monotonic()
    result = run_probe(world.vm_b, [world.shared.client_id], secrets=["api-key"])
    assert time.monotonic() - started < 5
    token = _only(result, world.shared.client_id)["token"]
    assert (token["outcome"], token["http_status"], token["imds_requests"]) == (
        "unreachable",
        429,
        1,
    )
