"""Wheel build hook: ship ``components`` and ``verify`` as ``mikit.components`` / ``mikit.verify``.

Why: installed as top-level ``components`` and ``verify``, the wheel would shadow (or be
shadowed by) a user's own packages of those common names. The repository keeps its
fixed layout (``components/``, ``verify/`` at the top, imported by those names in a
checkout, in tests and by ``pulumi up``); only the built wheel relocates them, the way
pip's ``vendoring`` relocates the packages it vendors:

* every ``import components...`` / ``from verify... import`` statement, and every string
  that names a module of the two packages (``resources.files("components.data")``,
  ``"verify.probe"``), is rewritten to the ``mikit.`` name: token by token, so no other
  text changes, and an unknown dotted string (``"verify"`` as a JUnit class name) stays;
* data the installed verifier needs comes along as package data: the stack program
  (``__main__.py``) and the sandbox stack (``stacks/Pulumi.sandbox.yaml``) under
  ``mikit/verify/_bundled/`` (``verify.stacks`` looks there first), the role catalog,
  the regions list and the probe inside their packages as in the checkout.

Editable installs (``uv sync``) are untouched: the checkout's root goes on ``sys.path``
and the names stay ``components`` / ``verify``; only the ``mikit-verify`` entry point
needs ``mikit.verify.cli``, so the editable wheel gets a three-file shim for it.
"""

from __future__ import annotations

import io
import shutil
import tempfile
import tokenize
from pathlib import Path
from typing import Any

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # imported by the tests for its rewrite functions, without hatchling
    BuildHookInterface = object  # type: ignore[assignment,misc]

PACKAGES = ("components", "verify")
PREFIX = "mikit"
BUNDLED = {"__main__.py": "__main__.py", "stacks/Pulumi.sandbox.yaml": "stacks/Pulumi.sandbox.yaml"}
SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}


def _module_exists(root: Path, dotted: str) -> bool:
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def rewrite_source(text: str, root: Path) -> str:  # noqa: PLR0912 -- one token state machine
    """``text`` with imports of (and dotted strings naming modules of) the packages
    moved under ``mikit.``; everything else byte for byte."""
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    lines = text.splitlines(keepends=True)
    edits: list[tuple[int, int, str]] = []  # (row, col, text to insert)
    statement: str | None = None  # "from" / "import" while inside one, else None
    expect_module = False
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            statement, expect_module = None, False
            continue
        if (
            tok.type == tokenize.NAME
            and tok.string in ("from", "import")
            and statement is None
            and _starts_statement(tokens, tok)
        ):
            statement, expect_module = tok.string, True
            continue
        if statement is not None:
            if tok.type == tokenize.NAME and expect_module:
                if tok.string in PACKAGES:
                    edits.append((tok.start[0], tok.start[1], f"{PREFIX}."))
                    if statement == "import":
                        edits.extend(_keep_bound_name(tokens, tok))
                expect_module = False
            elif tok.type == tokenize.OP and tok.string == "," and statement == "import":
                expect_module = True
            elif tok.type == tokenize.NAME and tok.string == "import" and statement == "from":
                statement = "names"  # the imported names are not module paths
            elif tok.type == tokenize.OP and tok.string == ".":
                expect_module = expect_module and statement != "from"
            continue
        if tok.type == tokenize.STRING:
            quote_at = _dotted_module_string(tok.string, root)
            if quote_at is not None:
                edits.append((tok.start[0], tok.start[1] + quote_at, f"{PREFIX}."))
    for row, col, insert in sorted(edits, reverse=True):
        line = lines[row - 1]
        lines[row - 1] = line[:col] + insert + line[col:]
    return "".join(lines)


def _keep_bound_name(
    tokens: list[tokenize.TokenInfo], tok: tokenize.TokenInfo
) -> list[tuple[int, int, str]]:
    """``import verify`` binds ``verify``; relocated it must still: ``... as verify``.

    ``import components.x`` (no ``as``) binds ``components`` to a package that no longer
    exists under that name; it has no safe rewrite, so the build refuses it.
    """
    following = tokens[tokens.index(tok) + 1]
    if following.type == tokenize.NAME and following.string == "as":
        return []
    if following.type == tokenize.OP and following.string == ".":
        raise ValueError(
            f"line {tok.start[0]}: 'import {tok.string}.<module>' cannot be relocated; "
            f"write 'from {tok.string} import <module>' or add 'as <name>'"
        )
    return [(tok.end[0], tok.end[1], f" as {tok.string}")]


def _starts_statement(tokens: list[tokenize.TokenInfo], tok: tokenize.TokenInfo) -> bool:
    """``from``/``import`` as the first token of a logical line (not ``yield from``)."""
    index = tokens.index(tok)
    for previous in reversed(tokens[:index]):
        if previous.type in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            continue
        return previous.type in (tokenize.NEWLINE, tokenize.ENCODING) or (
            previous.type == tokenize.OP and previous.string in (":", ";")
        )
    return True


def _dotted_module_string(literal: str, root: Path) -> int | None:
    """Offset of the content in a plain string literal naming ``components.x`` or
    ``verify.x`` (a module that exists), else None."""
    prefix_len = len(literal) - len(literal.lstrip("rRbBuUfF"))
    if literal[prefix_len:].startswith(('"""', "'''")) or "f" in literal[:prefix_len].lower():
        return None
    body = literal[prefix_len + 1 : -1]
    head, dot, _ = body.partition(".")
    dotted_name = body.replace(".", "").replace("_", "").isalnum()
    if head in PACKAGES and dot and dotted_name and _module_exists(root, body):
        return prefix_len + 1
    return None


def relocate(root: Path, out: Path) -> Path:
    """Write ``out/mikit/...``: the two packages rewritten, plus the bundled files."""
    target = out / PREFIX
    (target).mkdir(parents=True)
    (target / "__init__.py").write_text(
        '"""managed-identity-kit, installed: ``mikit.components`` and ``mikit.verify``."""\n'
    )
    for package in PACKAGES:
        for source in sorted((root / package).rglob("*")):
            relative = source.relative_to(root)
            if source.is_dir() or SKIP_DIRS & set(relative.parts):
                continue
            dest = target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.suffix == ".py":
                dest.write_text(rewrite_source(source.read_text(encoding="utf-8"), root))
            else:
                shutil.copy2(source, dest)
    for source, name in BUNDLED.items():
        dest = target / "verify" / "_bundled" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        text = (root / source).read_text(encoding="utf-8")
        dest.write_text(rewrite_source(text, root) if source.endswith(".py") else text)
    return target


EDITABLE_SHIM = {
    f"{PREFIX}/__init__.py": (
        '"""Editable checkout: the packages are ``components`` and ``verify``."""\n'
    ),
    f"{PREFIX}/verify/__init__.py": "",
    f"{PREFIX}/verify/cli.py": (
        '"""The ``mikit-verify`` entry point in an editable checkout."""\n\n'
        "from verify.cli import main\n\n"
        '__all__ = ["main"]\n'
    ),
}


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Relocate the packages under ``mikit`` in the wheel; a CLI shim in editables."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        self._tmp = Path(tempfile.mkdtemp(prefix="mikit-wheel-"))
        if version == "editable":
            for name, text in EDITABLE_SHIM.items():
                path = self._tmp / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            build_data["force_include_editable"][str(self._tmp / PREFIX)] = PREFIX
            return
        relocated = relocate(Path(self.root), self._tmp)
        self.build_config.set_exclude_all()  # only the relocated tree ships
        build_data["force_include"][str(relocated)] = PREFIX

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
