"""A user's own topology, from a stack file outside the repository: check and lifecycle.

The issue's example: three VMs, two shared identities, one vault-scope grant, one
system-only VM. ``check`` and ``lifecycle`` exit 0 and the reports name the stack file and
its VMs; the scenarios this topology cannot run are SKIPPED with the reason and what to
add; ``--require-all-scenarios`` turns those skips into a failure.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from verify.cli import main

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJLVFMIXrgzADPBSTYezYSlnCLrMmPku+3yCgAiifuvd me"
THREE_VMS = f"""\
# A plain 3-VM topology: two shared identities, one vault-scope grant, one system-only VM.
config:
  mikit:location: northeurope
  mikit:resourceGroup: rg-mine
  mikit:sshPublicKey: {SSH_KEY}
  mikit:vault: {{name: kv-mine-3vm, purgeProtection: false, softDeleteRetentionDays: 7}}
  mikit:secrets: [db-password]
  mikit:secret-db-password: not-a-real-password
  mikit:identities:
    app: {{name: id-mine-app}}
    ops: {{name: id-mine-ops}}
  mikit:vms:
    web1: {{name: vm-mine-web1, userAssigned: [app, ops]}}
    web2: {{name: vm-mine-web2, userAssigned: [app, ops]}}
    batch: {{name: vm-mine-batch, systemIdentity: true}}
  mikit:grants:
    - {{principal: "identity:app", role: Key Vault Secrets User, target: vault}}
"""


@pytest.fixture(scope="module")
def user_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stack file in a directory of its own, far from the repository's stacks/."""
    path = tmp_path_factory.mktemp("user-project") / "Pulumi.mine.yaml"
    path.write_text(THREE_VMS)
    return path


def _run(argv: list[str], reports: Path) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--report-dir", str(reports), "--quiet"])
    return code, json.loads((reports / "report.json").read_text())


def test_check_verifies_the_users_topology_and_names_it(user_stack: Path, tmp_path: Path) -> None:
    code, report = _run(["check", "--stack-file", str(user_stack)], tmp_path)
    assert code == 0, report["check"]
    assert (report["stack"], report["stack_file"]) == ("mine", str(user_stack))
    assert sorted(report["stack_outputs"]["vms"]) == ["batch", "web1", "web2"]
    assert {c["host"] for c in report["check"]["cells"]} == {"batch", "web1", "web2"}
    markdown = (tmp_path / "report.md").read_text()
    assert f"- stack file: `{user_stack}`" in markdown
    assert "`web1` (vm-mine-web1)" in markdown and "`batch` (vm-mine-batch)" in markdown


@pytest.fixture(scope="module")
def lifecycle_run(user_stack: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reports = tmp_path_factory.mktemp("reports")
    code, report = _run(["lifecycle", "--stack-file", str(user_stack)], reports)
    report["exit_code"] = code
    report["junit"] = (reports / "junit.xml").read_text()
    return report


def test_lifecycle_runs_what_the_topology_allows_and_passes(lifecycle_run: dict[str, Any]) -> None:
    by_name = {s["name"]: s for s in lifecycle_run["scenarios"]}
    assert lifecycle_run["exit_code"] == 0 and lifecycle_run["passed"]
    assert {n: s["status"] for n, s in by_name.items()} == {
        "remove-workload-federation": "skipped",  # this user's stack has no cluster
        "scale-in-and-out": "skipped",  # nor a scale set
        "delete-scale-set": "skipped",
        "delete-vm": "skipped",
        "disable-system-identity": "skipped",
        "delete-one-sharing-vm": "passed",
        "delete-shared-identity": "passed",
        "recreate-identity": "passed",
        "delete-app": "skipped",  # nor an app
        "remove-app-reference-grant": "skipped",
        "disable-app-system-identity": "skipped",
    }
    assert by_name["delete-one-sharing-vm"]["subjects"] == (
        "identity app: VM web1 deleted, web2 keep reading"
    )
    assert lifecycle_run["stack_file"].endswith("Pulumi.mine.yaml")


def test_skipped_scenarios_say_why_and_what_to_add(lifecycle_run: dict[str, Any]) -> None:
    by_name = {s["name"]: s for s in lifecycle_run["scenarios"]}
    skipped = by_name["delete-vm"]
    assert skipped["skipped"] == "no VM with a granted system-assigned identity is left"
    assert skipped["fix"] == (
        "grant vm:batch's system identity something: add to mikit:grants "
        "{principal: vm:batch, role: Key Vault Secrets User, target: secret:db-password}"
    )
    assert skipped["steps"] == [] and skipped["error"] is None
    assert (
        '<skipped message="no VM with a granted system-assigned identity'
        in (lifecycle_run["junit"])
    )


def test_require_all_scenarios_fails_a_run_that_skipped_one(
    user_stack: Path, tmp_path: Path
) -> None:
    code, report = _run(
        [
            "lifecycle",
            "--stack-file",
            str(user_stack),
            "--scenario",
            "delete-vm",
            "--require-all-scenarios",
        ],
        tmp_path,
    )
    assert code == 1 and not report["passed"]
    assert [s["status"] for s in report["scenarios"]] == ["skipped"]


def test_stack_name_resolves_stacks_dir_of_the_current_directory(
    user_stack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.mine.yaml").write_text(user_stack.read_text())
    monkeypatch.chdir(tmp_path)
    code, report = _run(["check", "--stack", "mine"], tmp_path / "reports")
    assert code == 0
    assert report["stack_file"] == str(tmp_path / "stacks" / "Pulumi.mine.yaml")


def test_unknown_stack_names_the_path_and_the_stacks_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to deploy the built-in topology under the given name, and pass."""
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.mine.yaml").write_text(THREE_VMS)
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--stack", "mnie", "--report-dir", str(tmp_path / "r")]) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert (
        f"error: --stack: 'mnie' has no stack file: {tmp_path}/stacks/Pulumi.mnie.yaml does not "
        "exist (stacks there: mine; built in: sandbox). Fix: did you mean 'mine'? pass an "
        "existing stack, or --stack-file <path> for a stack file elsewhere"
    ) in out
    assert not (tmp_path / "r" / "report.json").exists()


def test_encrypted_secret_values_get_throwaway_values_on_the_sandbox(tmp_path: Path) -> None:
    """A real stack file holds its secrets encrypted ({secure: ...}), which only the Pulumi
    CLI can decrypt; the sandbox deploys values of its own and the check still compares
    each read value with the fingerprint that deploy exported."""
    stack = tmp_path / "Pulumi.enc.yaml"
    stack.write_text(
        THREE_VMS.replace(
            "mikit:secret-db-password: not-a-real-password",
            "mikit:secret-db-password: {secure: v1:bm90LWRlY3J5cHRhYmxl}",
        )
    )
    code, report = _run(["check", "--stack-file", str(stack)], tmp_path / "reports")
    assert code == 0, report["check"]
    assert all(c["fingerprint_match"] for c in report["check"]["cells"] if c["observed"] == "read")
