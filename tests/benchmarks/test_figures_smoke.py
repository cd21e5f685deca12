"""Every figure of ``tests/benchmarks/run.py`` still runs: each at its smallest size, once.

Part of the default suite, so a benchmark cannot rot unseen again (the graph figure once
crashed on a monitor the mock runtime no longer used, and the program figure on a grant
the ARM model rightly refused). The figures are printed (``pytest -s`` shows them) and
never judged: a smoke run's numbers say nothing on a shared machine. The measurements run
in the test's own process (``--in-process``; the lifecycle figure calls the CLI's ``main``)
so no figure pays a fresh interpreter's imports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run
import topology

#: What each figure prints once it has measured something (its own words, not numbers).
PRINTS = {
    "graph": ("makespan", "critical chain:"),
    "floor": ("plain HTTP", "ratio"),
    "ttv": ("first read", "refused requests while waiting"),
    "ttvcheck": ("last allowed cell read", "check started"),
    "fanout": ("1 VMs", "VMs vs 1"),
    "program": ("components", "raw+parent", "function calls at 1 VMs"),
    "lifecycle": ("command:", "warm run(s)"),
}


def test_every_figure_is_smoke_tested() -> None:
    assert set(PRINTS) == set(run.FIGURES)


@pytest.mark.parametrize("figure", run.FIGURES)
def test_figure_runs_at_its_smallest_size(
    figure: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--smoke", "--in-process", "--only", figure, "--json", str(tmp_path / "b.json")]
    if figure == "lifecycle":
        # The figure's own code with a cheap job: one scenario on a one-VM stack (the full
        # README job is the lifecycle tests' subject); reports in the test's directory.
        stack = tmp_path / "Pulumi.smoke.yaml"
        stack.write_text(json.dumps({"config": topology.stack_config(1, prefix="smoke")}))
        extra = f"--stack-file {stack} --scenario delete-vm --report-dir {tmp_path / 'reports'}"
        argv += ["--lifecycle-args", extra]
    assert run.main(argv) == 0
    printed = capsys.readouterr().out
    with capsys.disabled():
        print(printed)
    for words in PRINTS[figure]:
        assert words in printed, f"{figure!r} did not print {words!r}:\n{printed}"
    assert (tmp_path / "b.json").read_text().startswith("{")
