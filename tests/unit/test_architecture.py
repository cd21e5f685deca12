"""docs/architecture.md stays true: every module it names exists, and nothing is left out.

The page maps each concept to its module in backticked paths, read from the repository
root; a one-segment name after a directory on the same line (`shapes.py`, `scenarios/`)
is read from that directory, as in "`components/arm/` (`shapes.py`, ...)". Moving a
module without updating the page fails here, and so does adding a top-level package or a
sandbox service package the page does not name.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
MAX_LINES = 50  # one screen
SANDBOX = ROOT / "verify" / "sandbox"
_TOKEN = re.compile(r"`([^`\s]+)`")
_SUFFIXES = (".py", ".lark", ".json", ".yaml", ".yml", ".md")


def _is_path(token: str) -> bool:
    return re.fullmatch(r"[\w.\-/]+", token) is not None and (
        "/" in token or token.endswith(_SUFFIXES)
    )


def named_paths(text: str, root: Path = ROOT) -> list[tuple[str, Path]]:
    """(token, resolved path) for every path-like token, in page order."""
    found = []
    for line in text.splitlines():
        base: Path | None = None
        for token in _TOKEN.findall(line):
            if not _is_path(token):
                continue
            single = "/" not in token.rstrip("/")
            if single and base is not None:
                path = base / token
            else:
                path = root / token
                if token.endswith("/"):
                    base = path
            found.append((token, path))
    return found


def packages(directory: Path) -> list[Path]:
    return sorted(p.parent for p in directory.glob("*/__init__.py"))


def _covered(package: Path, named: list[Path]) -> bool:
    return any(p == package or package in p.parents for p in named)


def test_the_page_fits_on_one_screen() -> None:
    assert len(PAGE.read_text().splitlines()) <= MAX_LINES


def test_every_named_module_exists() -> None:
    missing = [token for token, path in named_paths(PAGE.read_text()) if not path.exists()]
    assert missing == [], f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_top_level_package_is_named() -> None:
    named = [path for _, path in named_paths(PAGE.read_text())]
    left_out = [p.name for p in packages(ROOT) if not _covered(p, named)]
    assert left_out == [], f"docs/architecture.md does not name the packages {left_out}"


def test_every_sandbox_service_package_is_named() -> None:
    named = [path for _, path in named_paths(PAGE.read_text())]
    left_out = [p.name for p in packages(SANDBOX) if not _covered(p, named)]
    assert left_out == [], f"docs/architecture.md does not name verify/sandbox/{left_out}"


def test_relative_names_resolve_against_the_last_root_path(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    line = "| `top.py` | `pkg/sub/` (`a.py`, `inner/`), `pkg/b.py` | `None` `mikit:` `x y` |"
    assert named_paths(line, tmp_path) == [
        ("top.py", tmp_path / "top.py"),
        ("pkg/sub/", tmp_path / "pkg/sub/"),
        ("a.py", tmp_path / "pkg/sub/a.py"),
        ("inner/", tmp_path / "pkg/sub/inner/"),
        ("pkg/b.py", tmp_path / "pkg/b.py"),
    ]
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    assert packages(tmp_path / "pkg") == [tmp_path / "pkg" / "sub"]
    assert _covered(tmp_path / "pkg" / "sub", [tmp_path / "pkg/sub/a.py"])
    assert not _covered(tmp_path / "pkg" / "sub", [tmp_path / "pkg/b.py"])
