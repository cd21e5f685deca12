"""How the suite is spread over pytest-xdist's workers (``-n auto --dist loadgroup``,
pyproject's addopts).

Tests are handed out one by one to whichever worker is free, except that the tests of a
module that share a module-scoped fixture (a deployment, a built wheel, a logged-in az,
a finished lifecycle run), or a session-scoped one their module defines (the Azurite
comparison's runs), go to one worker together: the fixture is then set up once, not
once per worker. Tests marked ``xdist_group`` by hand (two that share a cached
collection, the lock tests of one group) go to one worker per group the same way.
Session-scoped fixtures (the sandbox tests' sandbox, the unit tests' dev
deployment) are set up once per worker. A test that changes shared state keeps a fixture
of its own, as before; nothing here changes what any test sees.

``pytest -n 0`` (or ``-p no:xdist``) runs everything in one process, in file order.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_BYTECODE_DIR = pytest.StashKey[tuple[str, str]]()


def _shares_a_module_fixture(item: pytest.Item) -> bool:
    """A module-scoped fixture, or a session-scoped one the test module defines itself
    (only that module's tests use it: the Azurite comparison's ``runs``)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    module = item.nodeid.split("::", 1)[0]
    return any(
        defs
        and (
            defs[-1].scope == "module"
            or (defs[-1].scope == "session" and defs[-1].baseid == module)
        )
        for name, defs in info.name2fixturedefs.items()
        if name in info.names_closure
    )


def _with_group_suffix(item: pytest.Item, group: str) -> None:
    """Give ``item`` the node ID xdist's loadgroup scheduler groups by: ``<nodeid>@<group>``.

    xdist (3.8) writes that suffix to ``item._nodeid``, which pytest 9.2 no longer reads (its
    node IDs are structured, ``item._id``): the suffix is lost and every test is handed out
    on its own, so a module's fixture was set up once on each worker, and again whenever a
    worker came back to the module (pytest-dev/pytest-xdist#1386). Set it where pytest
    reads it; with a pytest that still reads ``_nodeid`` xdist's own suffix applies.
    """
    node_id = getattr(item, "_id", None)
    if node_id is None or str(node_id).endswith(f"@{group}"):
        return
    from _pytest.nodeid import NodeId  # noqa: PLC0415 -- pytest >= 9.2 only

    item._id = NodeId.parse(f"{node_id}@{group}")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (it runs in each worker)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    grouping = bool(getattr(config.option, "loadgroup", False))  # set in xdist's workers only
    for item in items:
        if _shares_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
        if grouping:
            # Every xdist_group mark, a test's own ones too, named as xdist names them.
            names = {
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group")
            }
            if names:
                _with_group_suffix(item, "_".join(sorted(names)))


def pytest_configure(config: pytest.Config) -> None:
    """Where PYTHONDONTWRITEBYTECODE is set (a developer's shell, not CI), every Python
    process the run starts (xdist's workers, the CLI and sandbox commands, pytest's own
    collections, probes) compiled every module it imported from source again: ~3 s of CPU
    each. They share one bytecode cache in a temporary directory instead, removed at the
    end; nothing is written next to the sources, as the variable asks. Only the processes
    started after this point use it (this one was already running).
    """
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    cache = tempfile.mkdtemp(prefix="mikit-test-bytecode-")
    config.stash[_BYTECODE_DIR] = (cache, os.environ.pop("PYTHONDONTWRITEBYTECODE"))
    os.environ["PYTHONPYCACHEPREFIX"] = cache


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = config.stash.get(_BYTECODE_DIR, None)
    if saved is not None:
        cache, setting = saved
        os.environ.pop("PYTHONPYCACHEPREFIX", None)
        os.environ["PYTHONDONTWRITEBYTECODE"] = setting
        shutil.rmtree(cache, ignore_errors=True)
