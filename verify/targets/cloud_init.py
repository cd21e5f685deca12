"""Wait for cloud-init on the VM before the probe runs there through Run Command.

``verify check`` right after ``pulumi up`` finds VMs whose cloud-init is still running
``pip install`` into the probe's venv: the probe then fails to import azure-identity and
the cell reads "no probe result", which says nothing about access. So the Run Command
script first waits for cloud-init's *own* status, bounded: ``timeout <s> cloud-init status
--wait``, whose exit code is cloud-init's verdict (0 done, 2 done with recoverable errors
from cloud-init 23.4 on, 1 error) or 124 when the bound ran out. One marker line carries
that verdict back; on a timeout the probe is not started at all, and the verifier reports
the VM as not probed, naming cloud-init, instead of guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: cloud-init installs a venv with azure-identity and azure-keyvault-secrets; a few minutes
#: on a small VM, so 15 minutes is a generous bound that still ends.
DEFAULT_CLOUD_INIT_WAIT_SECONDS = 900
MARKER = "MIKIT-CLOUD-INIT"
_LINE = re.compile(rf"^{MARKER} status=(\w+) rc=(\d+) waited=(\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class CloudInitStatus:
    """cloud-init's verdict as the VM saw it: ``done``, ``degraded`` (done with recoverable
    errors), ``error``, ``timeout`` (still running at the bound) or ``absent`` (no
    cloud-init on this image)."""

    status: str
    returncode: int
    waited_seconds: int

    @property
    def finished(self) -> bool:
        return self.status != "timeout"

    def describe(self) -> str:
        if self.status == "timeout":
            return (
                f"cloud-init was still running after {self.waited_seconds} s (it installs "
                "the probe's venv)"
            )
        if self.status == "error":
            return (
                f"cloud-init finished with errors (exit {self.returncode}); see "
                "/var/log/cloud-init-output.log on the VM"
            )
        return f"cloud-init {self.status} after {self.waited_seconds} s"


def wait_lines(wait_seconds: int) -> list[str]:
    """Bash lines that wait for cloud-init, print the marker, and stop on a timeout."""
    if wait_seconds < 1:
        raise ValueError("the cloud-init wait must be at least 1 second")
    return [
        "CI_STATUS=absent; CI_RC=0; CI_START=$SECONDS",
        "if command -v cloud-init >/dev/null 2>&1; then",
        f"  timeout {int(wait_seconds)} cloud-init status --wait >/dev/null 2>&1",
        "  CI_RC=$?",
        '  case "$CI_RC" in',
        "    0) CI_STATUS=done ;;",
        "    2) CI_STATUS=degraded ;;",
        "    124) CI_STATUS=timeout ;;",
        "    *) CI_STATUS=error ;;",
        "  esac",
        "fi",
        f'CI_LINE="{MARKER} status=$CI_STATUS rc=$CI_RC waited=$((SECONDS - CI_START))"',
        # Both streams: Run Command keeps only the last 4 KiB of each, and the probe's
        # result follows on stdout.
        'echo "$CI_LINE"; echo "$CI_LINE" >&2',
        'if [ "$CI_STATUS" = timeout ]; then exit 0; fi',
    ]


def parse_status(stdout: str) -> CloudInitStatus | None:
    """The marker line of a Run Command's output (None when it is missing)."""
    match = _LINE.search(stdout)
    if match is None:
        return None
    return CloudInitStatus(match[1], int(match[2]), int(match[3]))
