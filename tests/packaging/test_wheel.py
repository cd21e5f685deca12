"""The wheel a user installs: built with ``uv build``, installed into a fresh venv, run.

Offline throughout (``--offline``: hatchling and every dependency come from uv's cache,
which ``uv run --locked`` filled), so the test talks to nothing. It proves what a new
user gets from ``pip install``: the import names ``mikit.components`` / ``mikit.verify``
and no top-level ``components`` or ``verify`` to shadow theirs, the package data (the
stack program and the sandbox stack, the role catalog, the regions list, the probe),
``--version``, and ``mikit-verify check --target sandbox`` passing from an empty
directory. Measured: 61 s wall, 17 s of CPU, on the shared 2-core machine at load
average ~10 (build 3 s, venv and install from the cache 1 s, the installed check 50 s:
its first run also compiles every dependency's bytecode); it stays in the default suite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import hatch_build

REPO = Path(__file__).resolve().parents[2]
DISTRIBUTION = "managed-identity-kit"


def _uv() -> str:
    """The uv that runs this test (``uv run`` exports UV), else the one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        pytest.fail("uv is not available: run the tests with `python -m uv run pytest`")
    return found


def _run(
    argv: list[str], cwd: Path, timeout: float = 180, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # PYTHONDONTWRITEBYTECODE too: the throw-away venv is the test's own, and a user's
    # (pip compiles at install) holds bytecode; without it every run here compiled every
    # dependency again (the first run writes it, as it would on a machine without the
    # variable).
    dropped = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    env = clean | (env or {})
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{argv}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run([_uv(), "build", "--wheel", "--offline", "--out-dir", str(out), str(REPO)], REPO)
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding the locked runtime dependencies (no dev group) and the wheel.

    ``uv sync --frozen --no-dev --no-install-project`` into an empty environment installs
    exactly what ``pip install`` would resolve to under the lock, from uv's cache (an
    offline ``pip install`` cannot resolve: the cache holds the locked wheels, not the
    index pages a resolver reads); the wheel itself goes in with ``uv pip install``.
    """
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    _run([_uv(), "venv", "--offline", "--python", sys.executable, str(env_dir)], REPO)
    _run(
        [_uv(), "sync", "--frozen", "--offline", "--no-dev", "--no-install-project"],
        REPO,
        env={"UV_PROJECT_ENVIRONMENT": str(env_dir)},
    )
    python = env_dir / "bin" / "python"
    _run([_uv(), "pip", "install", "--offline", "--no-deps", "--python", str(python), str(wheel)],
         REPO)  # fmt: skip
    yield env_dir


def test_wheel_ships_the_packages_under_mikit_with_their_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"mikit"}  # no top-level components/ or verify/ to collide with a user's
    for needed in (
        "mikit/verify/_bundled/__main__.py",
        "mikit/verify/_bundled/stacks/Pulumi.sandbox.yaml",
        "mikit/verify/probe.py",
        "mikit/components/data/builtin_roles.json",
        "mikit/components/data/azure_regions.json",
    ):
        assert needed in names, needed
    program = zipfile.ZipFile(wheel).read("mikit/verify/_bundled/__main__.py").decode()
    assert "from mikit.components.stack_config import load" in program


def test_installed_cli_passes_check_on_the_sandbox_from_an_empty_directory(
    venv: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    version = _run([str(venv / "bin" / "mikit-verify"), "--version"], empty)
    assert version.stdout.strip() == f"mikit-verify {_project_version()}"
    done = _run(
        [str(venv / "bin" / "mikit-verify"), "check", "--target", "sandbox", "--quiet"], empty
    )
    assert "PASSED" in done.stdout
    report = json.loads((empty / "reports" / "report.json").read_text())
    assert report["passed"] and report["stack"] == "sandbox"
    assert report["stack_file"].endswith("mikit/verify/_bundled/stacks/Pulumi.sandbox.yaml")
    assert sorted(p.name for p in empty.iterdir()) == ["reports"]


def test_installed_names_do_not_shadow_a_users_components_or_verify(
    venv: Path, tmp_path: Path
) -> None:
    """A user's own ``components`` and ``verify`` packages keep their names."""
    for package in ("components", "verify"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text(f"MINE = {package!r}\n")
    probe = (
        "import components, verify, mikit.components.errors, mikit.verify.command_line; "
        "print(components.MINE, verify.MINE, mikit.verify.command_line.DISTRIBUTION)"
    )
    done = _run([str(venv / "bin" / "python"), "-c", probe], tmp_path)
    assert done.stdout.split() == ["components", "verify", DISTRIBUTION]


def _project_version() -> str:
    import tomllib  # noqa: PLC0415

    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def test_relocation_rewrites_imports_and_module_strings_only() -> None:
    source = (
        "import verify\n"
        "import os, verify as v\n"
        "from . import x\n"
        "from verify.cli import (main,\n    build_parser)\n"
        "from components.errors import ConfigError  # components stays in comments\n"
        "NAME = 'verify'\n"
        'PRELOAD = ("azure.identity", "verify.probe")\n'
        'DATA = resources.files("components.data")\n'
        'TEXT = "see components.errors for the error type"\n'
    )
    assert hatch_build.rewrite_source(source, REPO) == (
        "import mikit.verify as verify\n"
        "import os, mikit.verify as v\n"
        "from . import x\n"
        "from mikit.verify.cli import (main,\n    build_parser)\n"
        "from mikit.components.errors import ConfigError  # components stays in comments\n"
        "NAME = 'verify'\n"
        'PRELOAD = ("azure.identity", "mikit.verify.probe")\n'
        'DATA = resources.files("mikit.components.data")\n'
        'TEXT = "see components.errors for the error type"\n'
    )
    with pytest.raises(ValueError, match="cannot be relocated"):
        hatch_build.rewrite_source("import verify.cli\n", REPO)
