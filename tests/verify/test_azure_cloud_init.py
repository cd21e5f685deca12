"""`verify check --target azure` waits for cloud-init before probing, and gives up on a
Run Command that never reports back (a bound of its own, on the client side).

The generated RunShellScript runs with bash, as in test_azure_target, against sandbox VMs;
a fake ``cloud-init`` on PATH plays the VM's cloud-init: it "installs" the probe's venv (a
wrapper around this interpreter) when its status wait ends. Without the wait the script finds
no interpreter and the check reads "no probe result"; with it every cell is proved.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_azure_target import (
    FakeAuthorization,
    FakeCompute,
    FakeIdentities,
    FakeMsi,
    FakeRoleAssignments,
    FakeVirtualMachines,
    _outputs_for_world,
)
from verify_world import World

from verify.runner import check_report
from verify.targets.azure import RUN_COMMAND_OVERHEAD_SECONDS, AzureTarget, run_command_script
from verify.targets.cloud_init import DEFAULT_CLOUD_INIT_WAIT_SECONDS, MARKER, parse_status


def _fake_cloud_init(bin_dir: Path, body: str) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    tool = bin_dir / "cloud-init"
    tool.write_text("#!/bin/bash\n" + body)
    tool.chmod(0o755)
    return tool


def _target(
    world: World, tmp_path: Path, pythons: list[str], **kwargs: Any
) -> tuple[AzureTarget, list[str]]:
    imds = {"vm-a": world.sb.imds_url(world.vm_a), "vm-b": world.sb.imds_url(world.vm_b)}
    seen: list[str] = []

    def run_on_vm(name: str, script: list[str]) -> str:
        env = {
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": imds[name],
        }
        done = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        seen.append(done.stdout + done.stderr)
        # Run Command keeps the last 4 KiB of each stream.
        return done.stdout[-4096:] + "\n[stderr]\n" + done.stderr[-4096:]

    target = AzureTarget(
        outputs=_outputs_for_world(world),
        compute=FakeCompute(FakeVirtualMachines({}, run_on_vm)),
        msi=FakeMsi(FakeIdentities({})),
        authorization=FakeAuthorization(FakeRoleAssignments([])),
        probe_pythons=pythons,
        ca_bundle=world.sb.ca_cert_path,
        verify_challenge_resource=False,
        **kwargs,
    )
    return target, seen


def test_the_probe_runs_only_after_cloud_init_has_installed_its_venv(
    world: World, tmp_path: Path
) -> None:
    venv_python = tmp_path / "venv" / "bin" / "python3"
    log = tmp_path / "cloud-init.log"
    _fake_cloud_init(
        tmp_path / "bin",
        f'echo "$*" >> {log}\n'
        'if [ "$1 $2" = "status --wait" ]; then\n'
        "  sleep 0.2\n"
        # "pip install" done: the venv's interpreter appears (a wrapper around this one),
        # renamed into place: both VMs' cloud-init write it, and one VM exec'ing the file
        # while the other still has it open for writing failed with "Text file busy".
        f"  mkdir -p {venv_python.parent}\n"
        f"  printf '#!/bin/bash\\nexec {sys.executable} \"$@\"\\n' > {venv_python}.$$\n"
        f"  chmod +x {venv_python}.$$\n"
        f"  mv -f {venv_python}.$$ {venv_python}\n"
        "  exit 0\n"
        "fi\n"
        "exit 3\n",
    )
    target, seen = _target(world, tmp_path, [str(venv_python)])
    run = check_report(target, "test")
    assert run.check is not None
    assert run.check.passed, run.check.failures
    assert log.read_text().splitlines() == ["status --wait", "status --wait"]  # once per VM
    assert all(f"{MARKER} status=done rc=0" in out for out in seen)
    observed = {(c.host, c.identity, c.target): c.observed for c in run.check.cells}
    assert observed[("a", "system", "db-password")] == "read"
    assert observed[("a", "system", "api-key")] == "forbidden"


def test_cloud_init_still_running_at_the_bound_is_reported_and_the_probe_never_starts(
    world: World, tmp_path: Path
) -> None:
    started = tmp_path / "probe-started"
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(f'#!/bin/bash\ntouch {started}\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    _fake_cloud_init(tmp_path / "bin", 'if [ "$1 $2" = "status --wait" ]; then exec sleep 30; fi\n')
    target, _ = _target(world, tmp_path, [str(wrapper)], cloud_init_wait=1)
    run = check_report(target, "test")
    assert run.check is not None
    assert not run.check.passed
    assert {c.observed for c in run.check.cells} == {"not_probed"}
    assert all("cloud-init was still running after 1 s" in c.detail for c in run.check.cells)
    assert not started.exists()


def test_cloud_init_errors_are_named_when_the_probe_gives_no_result(
    world: World, tmp_path: Path
) -> None:
    _fake_cloud_init(tmp_path / "bin", 'if [ "$1 $2" = "status --wait" ]; then exit 1; fi\n')
    target, _ = _target(world, tmp_path, [str(tmp_path / "missing-venv" / "python3")])
    run = check_report(target, "test")
    assert run.check is not None
    assert {c.observed for c in run.check.cells} == {"not_probed"}
    assert all(
        "no probe result (cloud-init finished with errors (exit 1)" in c.detail
        for c in run.check.cells
    )


def test_a_degraded_cloud_init_still_lets_the_probe_run(world: World, tmp_path: Path) -> None:
    _fake_cloud_init(tmp_path / "bin", 'if [ "$1 $2" = "status --wait" ]; then exit 2; fi\n')
    target, seen = _target(world, tmp_path, [sys.executable])
    run = check_report(target, "test")
    assert run.check is not None
    assert run.check.passed, run.check.failures
    assert all(f"{MARKER} status=degraded rc=2" in out for out in seen)


def test_the_marker_line_parses_and_a_missing_one_is_none() -> None:
    status = parse_status(f"noise\n{MARKER} status=timeout rc=124 waited=900\nmore")
    assert status is not None
    assert (status.status, status.returncode, status.waited_seconds) == ("timeout", 124, 900)
    assert not status.finished
    assert parse_status("no marker here") is None
    script = "\n".join(run_command_script({"vault_url": "https://x"}, ["python3"], 42))
    assert "timeout 42 cloud-init status --wait" in script
    assert script.index("cloud-init status --wait") < script.index('"$PY" - --spec-b64')


class _HangingPoller:
    def __init__(self) -> None:
        self.waited: float | None = None

    def wait(self, timeout: float | None = None) -> None:
        self.waited = timeout  # returns at the bound, as LROPoller.wait does

    def done(self) -> bool:
        return False

    def result(self) -> Any:
        raise AssertionError("result() must not be read from an unfinished poller")


class _HangingVMs(FakeVirtualMachines):
    def __init__(self) -> None:
        super().__init__({})
        self.pollers: list[_HangingPoller] = []

    def begin_run_command(self, rg: str, name: str, parameters: Any, **kwargs: Any) -> Any:
        poller = _HangingPoller()
        self.pollers.append(poller)
        return poller


def test_a_run_command_that_never_reports_back_is_given_up_at_a_client_side_bound(
    world: World,
) -> None:
    vms = _HangingVMs()
    target = AzureTarget(
        outputs=_outputs_for_world(world),
        compute=FakeCompute(vms),
        msi=FakeMsi(FakeIdentities({})),
        authorization=FakeAuthorization(FakeRoleAssignments([])),
    )
    run = check_report(target, "test")
    assert run.check is not None
    assert {c.observed for c in run.check.cells} == {"not_probed"}
    assert all("did not finish within" in c.detail for c in run.check.cells)
    assert len(vms.pollers) == 2
    for poller in vms.pollers:
        assert poller.waited is not None
        assert poller.waited >= DEFAULT_CLOUD_INIT_WAIT_SECONDS + RUN_COMMAND_OVERHEAD_SECONDS
        assert poller.waited < DEFAULT_CLOUD_INIT_WAIT_SECONDS + RUN_COMMAND_OVERHEAD_SECONDS + 3600


@pytest.mark.parametrize("wait", [0, -5])
def test_a_cloud_init_wait_below_one_second_is_refused(wait: int) -> None:
    with pytest.raises(ValueError, match="at least 1 second"):
        run_command_script({"vault_url": "https://x"}, ["python3"], wait)


def test_the_cli_refuses_a_cloud_init_wait_below_one_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from verify.cli import main  # noqa: PLC0415

    code = main(
        ["check", "--target", "azure", "--cloud-init-wait", "0", "--report-dir", str(tmp_path)]
    )
    assert code == 2
    out = capsys.readouterr().out
    assert "--cloud-init-wait" in out
    assert "Traceback" not in out
