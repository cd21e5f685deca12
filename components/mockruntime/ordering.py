"""The order the Pulumi engine runs a program's writes in, from its dependency graph.

The ARM model's rules about concurrent writes (``components.arm.rules.WriteOrdering``)
ask whether another write of the same deployment may run alongside this one; the mock
runtime answers from the URNs and dependencies each registration carries.
"""

from __future__ import annotations

import threading
from collections.abc import Collection


class DependencyGraph:
    """The order the Pulumi engine would run this program's writes in.

    The engine starts a resource's step once every resource it depends on is done, and
    runs steps with no path between them in parallel. So two writes are concurrent
    exactly when neither resource depends, directly or transitively, on the other. Each
    resource registers only after its dependencies have (the SDK awaits their URNs), so
    when a write arrives everything it could wait for is already in the graph: the answer
    is the same whatever order the executor threads happen to run in.
    """

    def __init__(self) -> None:
        self._deps: dict[str, frozenset[str]] = {}
        self._urn_by_id: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, urn: str, dependencies: frozenset[str], arm_id: str | None) -> None:
        if not urn:
            return
        with self._lock:
            self._deps[urn] = dependencies
            if arm_id:
                self._urn_by_id[arm_id.lower()] = urn

    def ancestors(self, dependencies: Collection[str]) -> set[str]:
        """Every URN reachable from ``dependencies`` (what the write waits for)."""
        seen: set[str] = set()
        todo = list(dependencies)
        with self._lock:
            while todo:
                urn = todo.pop()
                if urn not in seen:
                    seen.add(urn)
                    todo.extend(self._deps.get(urn, ()))
        return seen

    def ordering(self, dependencies: frozenset[str]) -> GraphOrdering:
        return GraphOrdering(self, dependencies)

    def urn_of(self, arm_id: str) -> str | None:
        with self._lock:
            return self._urn_by_id.get(arm_id.lower())


class GraphOrdering:
    """``components.arm.rules.WriteOrdering`` answered from the dependency graph."""

    def __init__(self, graph: DependencyGraph, dependencies: frozenset[str]) -> None:
        self._graph = graph
        self._dependencies = dependencies
        self._ancestors: set[str] | None = None

    def concurrent_with(self, arm_id: str) -> bool:
        other = self._graph.urn_of(arm_id)
        if other is None:  # not written by this deployment: it finished before
            return False
        if self._ancestors is None:
            self._ancestors = self._graph.ancestors(self._dependencies)
        return other not in self._ancestors
