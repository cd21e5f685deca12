"""The CLI's start path imports only what the command needs.

``--version``, ``--help`` and a usage error answer without the run's modules (the
evidence model, the lifecycle, the targets and Azure's SDK models, ~0.5 s); a command
that runs imports them after its input is checked (:func:`verify.cli._load_run`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN_MODULES = ("verify.runner", "verify.lifecycle", "verify.orphans", "verify.report", "pulumi")

_PROBE = """
import json, sys
sys.argv = ["mikit-verify", *json.loads(sys.argv[1])]
from verify.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": sorted(m for m in %r if m in sys.modules)}))
"""


def _loaded_by(*argv: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE % (RUN_MODULES,), json.dumps(argv)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    last = json.loads(done.stdout.strip().splitlines()[-1])
    return last["code"], last["loaded"]


def test_version_help_and_a_usage_error_import_none_of_the_run() -> None:
    assert _loaded_by("--version") == (0, [])
    assert _loaded_by("--help") == (0, [])
    assert _loaded_by("check", "--parallel", "0") == (2, [])
