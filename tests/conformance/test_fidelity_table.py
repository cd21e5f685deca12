"""docs/azure-fidelity.md is held by tests: every row names the test that holds it, and
every test it names exists.

A row's references are ``tests/<path>.py::<name>`` (``::<Class>::<name>`` for a method);
a bare ``::<name>`` that follows in the same row belongs to the last file named. A row that
the sandbox or the model enforces (any status but "not modelled") names at least one test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "azure-fidelity.md"
_REFERENCE = re.compile(
    r"(?P<file>tests/[\w/.-]+\.py)?(?P<chain>(?:::[A-Za-z_]\w*(?:\[[^\]\s|]*\])?)+)"
    r"|(?P<bare>tests/[\w/.-]+\.py)"
)


@dataclass(frozen=True)
class Row:
    line: int
    cells: tuple[str, ...]

    @property
    def text(self) -> str:
        return " | ".join(self.cells)

    @property
    def status(self) -> str:
        return self.cells[1] if len(self.cells) > 1 else ""


def table_rows(text: str) -> list[Row]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith("|") or re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()):
            continue
        cells = tuple(cell.strip() for cell in line.strip().strip("|").split("|"))
        if cells[:2] == ("rule", "status"):
            continue
        rows.append(Row(number, cells))
    return rows


def references(row: Row) -> list[tuple[str, tuple[str, ...]]]:
    """(file, names) for each test the row names; names empty for a file named alone."""
    found: list[tuple[str, tuple[str, ...]]] = []
    last: str | None = None
    for match in _REFERENCE.finditer(row.text):
        if match.group("bare"):
            last = match.group("bare")
            found.append((last, ()))
            continue
        file = match.group("file") or last
        if file is None:
            continue  # a "::" that is not a test reference (no file named before it)
        last = file
        names = tuple(re.sub(r"\[.*\]$", "", n) for n in match.group("chain").split("::") if n)
        found.append((file, names))
    return found


def _defined(source: str, name: str) -> bool:
    return (
        re.search(rf"^\s*(?:async\s+def|def|class)\s+{re.escape(name)}\b", source, re.M) is not None
    )


ROWS = table_rows(DOC.read_text())


def test_the_table_has_rows() -> None:
    assert len(ROWS) >= 100


@pytest.mark.parametrize("row", ROWS, ids=[f"line{r.line}" for r in ROWS])
def test_every_test_a_row_names_exists(row: Row) -> None:
    for file, names in references(row):
        path = ROOT / file
        assert path.is_file(), f"line {row.line}: {file} does not exist"
        source = path.read_text()
        for name in names:
            assert _defined(source, name), f"line {row.line}: {file}::{name} does not exist"


@pytest.mark.parametrize("row", ROWS, ids=[f"line{r.line}" for r in ROWS])
def test_every_enforced_rule_names_the_test_that_holds_it(row: Row) -> None:
    if row.status.lower().startswith("not modelled"):
        return
    named = [names for _, names in references(row) if names]
    assert named, f"line {row.line} ({row.cells[0][:80]}...) names no test"


def test_a_missing_test_is_caught() -> None:
    """The check itself: a row naming a function that does not exist is found."""
    row = table_rows(
        "| r | modelled | a | s | `tests/conformance/test_fidelity_table.py::no_such_test` |"
    )[0]
    (file, names) = references(row)[0]
    assert names == ("no_such_test",)
    assert not _defined((ROOT / file).read_text(), "no_such_test")
    this = "tests/conformance/test_fidelity_table.py"
    row = table_rows(
        f"| r | modelled | a | s | `{this}::test_a_missing_test_is_caught`, `::table_rows` |"
    )[0]
    assert [n for _, n in references(row)] == [("test_a_missing_test_is_caught",), ("table_rows",)]
