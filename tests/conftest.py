"""How the suite is spread over pytest-xdist's workers (``-n auto --dist loadgroup``,
pyproject's addopts).

Tests are handed out one by one to whichever worker is free, except that the tests of a
module that share a module-scoped fixture (a deployment, a built wheel, a logged-in az,
a finished lifecycle run) go to one worker together: the fixture is then set up once, not
once per worker. Session-scoped fixtures (the sandbox tests' sandbox, the unit tests' dev
deployment) are set up once per worker. A test that changes shared state keeps a fixture
of its own, as before; nothing here changes what any test sees.

``pytest -n 0`` (or ``-p no:xdist``) runs everything in one process, in file order.
"""

from __future__ import annotations

import pytest


def _shares_a_module_fixture(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    return any(
        defs and defs[-1].scope == "module"
        for name, defs in info.name2fixturedefs.items()
        if name in info.names_closure
    )


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (it runs in each worker)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _shares_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.path.stem))
