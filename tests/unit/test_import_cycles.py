"""No import circle anywhere in the project's packages, read statically from the source.

Every ``import x`` / ``from x import y`` (at any depth: a function-level import still ties
the modules together) between modules of ``components``, ``verify`` and ``bootstrap`` is
an edge; ``from pkg import mod`` is an edge to the module ``pkg.mod`` (not to ``pkg``'s
``__init__``, as cyclic-import linters read it), ``from pkg import name`` one to ``pkg``.
A package's ``__init__`` is a module like any other. Imports under ``TYPE_CHECKING`` are
left out: they never run. Any strongly connected component of more than one module is a
circle, and the failure lists each one.
"""

from __future__ import annotations

import ast
import gc
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("components", "verify", "bootstrap")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """Project modules imported by ``module`` (relative imports resolved)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                names.add(sub if sub in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    # Python 3.11.7 (this project's interpreter) fails an ast.parse with "SystemError: AST
    # constructor recursion depth mismatch" when a garbage collection inside it runs a
    # finalizer that parses too: a Future dropped with an unretrieved exception logs its
    # traceback, and 3.11's traceback formatting calls ast.parse for its carets. Earlier
    # tests in the same process leave such Futures behind, so the collector stays off while
    # parsing (no collection can start inside a parse then; the garbage waits for the next
    # one, after. A full collection first cost 0.3 s on a test worker's heap, for nothing).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for name, path in modules.items():
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            imported = _imports(tree, name, path.name == "__init__.py", set(modules))
            graph[name] = {i for i in imported if i in modules and i != name}
    finally:
        if collecting:
            gc.enable()
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(found)


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    """The project's graph, read once for the tests that only look at it."""
    return import_graph()


def test_the_graph_is_read_from_the_source(graph: dict[str, set[str]]) -> None:
    assert "verify.evidence.judge" in graph["verify.runner"] or any(
        "verify.evidence" in m for m in graph["verify.runner"]
    )
    assert "components.access" in graph["verify.model"]


def test_the_detector_finds_a_planted_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle(graph: dict[str, set[str]]) -> None:
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


class _ParsesWhenCollected:
    """Cyclic garbage whose finalizer parses, as a dropped Future's does on Python 3.11.

    The Future logs its unretrieved exception, and 3.11's traceback formatting parses the
    source line for its carets. Each one leaves another behind, so a collection inside any
    later allocation finds one until ``stop`` is set.
    """

    stop = False

    def __init__(self) -> None:
        self.cycle = self

    def __del__(self) -> None:
        ast.parse("value = (1 + 2) * 3\n")
        if not _ParsesWhenCollected.stop:
            _ParsesWhenCollected()


def test_the_graph_survives_a_collection_that_parses() -> None:
    threshold = gc.get_threshold()
    gc.set_threshold(1)
    _ParsesWhenCollected.stop = False
    _ParsesWhenCollected()
    try:
        graph = import_graph()
    finally:
        _ParsesWhenCollected.stop = True
        gc.set_threshold(*threshold)
        gc.collect()
    assert "components.access" in graph["verify.model"]
