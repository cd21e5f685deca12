"""Ctrl-C and SIGTERM stop a run within 2 s, write the reports marked INTERRUPTED, and
leave no temporary file behind.

The CLI runs as a real process on the sandbox with TMPDIR pointed at a directory of the
test's own, so everything it would leave (the sandbox's TLS key, stashed tokens, probe
outputs, multiprocessing's fork-server directory) is visible. An RBAC propagation delay
longer than the check's wait keeps the probes polling when the signal arrives.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Two VMs, each granted one secret: the smallest stack that has two probes polling at once
# (the sandbox stack would only make the deploy before the signal longer).
TWO_VM_STACK = {
    "config": {
        "azure-native:location": "westeurope",
        "mikit:location": "westeurope",
        "mikit:resourceGroup": "rg-mikit-interrupt",
        "mikit:sshPublicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJLVFMIXrgzADPBSTYezYSlnCLrMmPku"
        "+3yCgAiifuvd interrupt",
        "mikit:vault": {"name": "kv-mikit-interrupt", "purgeProtection": False},
        "mikit:secrets": ["db-password"],
        "mikit:secret-db-password": "interrupt-db-password",
        "mikit:vms": {
            key: {"name": f"vm-mikit-interrupt-{key}", "systemIdentity": True}
            for key in ("one", "two")
        },
        "mikit:grants": [
            {
                "principal": f"vm:{key}",
                "role": "Key Vault Secrets User",
                "target": "secret:db-password",
            }
            for key in ("one", "two")
        ],
    }
}


def _wait_for(predicate: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_stops_within_2s_reports_interrupted_and_leaves_no_temp_file(
    tmp_path: Path, sig: signal.Signals
) -> None:
    # The run's own TMPDIR, short: multiprocessing's fork server puts a Unix socket in it,
    # and a socket path may not exceed 107 bytes (tmp_path under pytest-xdist is longer).
    tmp = Path(tempfile.mkdtemp(prefix="mikit-interrupt-"))
    reports = tmp_path / "reports"
    faults = tmp_path / "faults.toml"
    faults.write_text("propagation_delay_seconds = 300\n")  # probes keep polling
    stack = tmp_path / "Pulumi.interrupt.yaml"
    stack.write_text(json.dumps(TWO_VM_STACK))
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "verify", "check", "--target", "sandbox",
         "--stack-file", str(stack), "--sandbox-faults", str(faults),
         "--propagation-wait", "120", "--parallel", "2", "--report-dir", str(reports)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    output: list[str] = []
    reader = threading.Thread(
        target=lambda: output.extend(iter(process.stdout.readline, "")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        # Mid-run: both probes are running (each forked child opens its stdout file in
        # its own output directory under TMPDIR) and polling the vault.
        _wait_for(
            lambda: (
                len(list(tmp.glob("mikit-probe-run-*/stdout"))) == 2 or process.poll() is not None
            ),
            120,
            "2 probes",
        )
        assert process.poll() is None, "".join(output)
        sent = time.monotonic()
        process.send_signal(sig)
        code = process.wait(timeout=30)
        elapsed = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        left = sorted(p.name for p in tmp.iterdir())
        shutil.rmtree(tmp, ignore_errors=True)
    reader.join(timeout=5)
    text = "".join(output)
    assert elapsed < 2.0, f"took {elapsed:.2f} s to stop\n{text}"
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], text
    assert "Traceback" not in text

    report = json.loads((reports / "report.json").read_text())
    assert report["verdict"] == "INTERRUPTED" and report["interrupted"] == sig.name
    assert report["passed"] is False
    assert "INTERRUPTED" in (reports / "report.md").read_text().splitlines()[0]
    junit = ET.parse(reports / "junit.xml").getroot()
    assert [c.get("name") for c in junit.iter("testcase")] == ["INTERRUPTED"]
    assert "INTERRUPTED" in text

    assert left == []
