"""Reports: what a reader and a CI system get from one run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from rich.console import Console
from verify_world import probe_result_for, sample_outputs

from verify.check import expectations_from
from verify.evidence.judge import judge
from verify.model import ProbeResult, load_outputs
from verify.report import print_summary, render_markdown, render_mermaid, write_reports
from verify.results import RunReport, ScenarioResult, Step


def _run(wrong: bool) -> RunReport:
    raw = sample_outputs()
    outputs = load_outputs(raw)
    overrides = {"web": {("system", "api-key"): "read"}} if wrong else {}
    probes = {
        vm: ProbeResult.model_validate(probe_result_for(raw, vm, overrides.get(vm)))
        for vm in raw["vms"]
    }
    run = RunReport("lifecycle", "sandbox", "sandbox", "2026-01-01T00:00:00Z", outputs=outputs)
    run.check = judge(outputs, expectations_from(outputs), probes)
    run.scenarios = [
        ScenarioResult(
            "delete-vm",
            "Deleting a VM deletes its system identity.",
            [
                Step("delete VM web", "VM deleted", "deleted", True, 0.2),
                Step(
                    "its assignments remain, orphaned",
                    "2 assignments",
                    "0 listed",
                    not wrong,
                    0.1,
                    ["missing /x/roleAssignments/g1"],
                ),
            ],
            0.3,
        )
    ]
    run.timings = {"deploy": 0.5, "baseline check": 1.0}
    return run


def test_mermaid_draws_vms_identities_grants_and_secrets() -> None:
    text = render_mermaid(load_outputs(sample_outputs()))
    assert text.startswith("flowchart LR")
    assert 'vm_web["VM web<br/>vm-web"]' in text
    assert "vm_web --> sys_web" in text and "vm_batch --> uai_shared" in text
    assert 'uai_shared -- "Key Vault Secrets User" --> sec_api_key' in text
    assert 'sys_web -- "Key Vault Secrets User" --> sec_db_password' in text
    # Reader reaches no secret: drawn as a dotted edge to the vault, not to a secret.
    assert 'sys_web -. "Reader (no secret read)" .-> Vault' in text
    assert 'sys_web -- "Reader"' not in text


def test_markdown_colours_each_cell_by_outcome() -> None:
    good = render_markdown(_run(wrong=False))
    assert "verify lifecycle: PASSED" in good
    assert "```mermaid" in good
    assert "| web | system | 🟦 forbidden | 🟩 read |" in good
    bad = render_markdown(_run(wrong=True))
    assert "verify lifecycle: FAILED" in bad
    assert "| web | system | 🟥 read (expected denied) | 🟩 read |" in bad
    assert "access nobody granted" in bad
    assert "## ❌ Scenario `delete-vm`" in bad


def test_junit_lists_each_failing_cell_and_step(tmp_path: Path) -> None:
    paths = write_reports(_run(wrong=True), tmp_path)
    root = ET.parse(paths["junit"]).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    matrix = suites["access-matrix"]
    assert matrix.get("failures") == "1"
    assert matrix.get("tests") == str(6 + 3)  # cells + identity checks
    failing = [c for c in matrix.iter("testcase") if c.find("failure") is not None]
    assert [(c.get("classname"), c.get("name")) for c in failing] == [
        ("matrix.web.system", "api-key denied")
    ]
    life = suites["lifecycle.delete-vm"]
    assert life.get("failures") == "1"


def test_json_report_round_trips_and_carries_no_fingerprints(tmp_path: Path) -> None:
    paths = write_reports(_run(wrong=False), tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["passed"] is True
    assert data["scenarios"][0]["passed"] is True
    assert len(data["check"]["cells"]) == 6
    assert "secret_fingerprints" not in data["stack_outputs"]
    assert "sha256:" not in paths["json"].read_text()
    assert "sha256:" not in paths["markdown"].read_text()


def test_terminal_summary_says_the_verdict() -> None:
    console = Console(record=True, width=160)
    print_summary(_run(wrong=True), console)
    text = console.export_text()
    assert "Access matrix" in text and "Lifecycle" in text
    assert "FAILED" in text
    assert "access nobody granted" in text


def test_unverified_values_say_value_not_compared_in_all_three_reports(tmp_path: Path) -> None:
    raw = sample_outputs()
    raw["secret_fingerprints"] = "[secret]"  # outputs taken without --show-secrets
    outputs = load_outputs(raw)
    probes = {vm: ProbeResult.model_validate(probe_result_for(raw, vm)) for vm in raw["vms"]}
    run = RunReport("check", "azure", "dev", "2026-01-01T00:00:00Z", outputs=outputs)
    run.check = judge(outputs, expectations_from(outputs), probes, allow_unverified_values=True)
    assert run.passed
    reads = {(c.host, c.identity, c.target) for c in run.check.cells if c.observed == "read"}
    paths = write_reports(run, tmp_path)

    data = json.loads(paths["json"].read_text())
    noted = {
        (c["host"], c["identity"], c["target"])
        for c in data["check"]["cells"]
        if c["note"] == "value not compared"
    }
    assert noted == reads

    markdown = paths["markdown"].read_text()
    assert markdown.count("read (value not compared)") == len(reads)

    root = ET.parse(paths["junit"]).getroot()
    junit_noted = {
        (case.get("classname"), case.get("name"))
        for case in root.iter("testcase")
        if case.findtext("system-out") == "value not compared"
    }
    assert junit_noted == {
        (f"matrix.{vm}.{ident}", f"{secret} allowed") for vm, ident, secret in reads
    }
