"""The writes the sandbox's ARM front is serving at this moment, as a ``WriteOrdering``.

ARM sees only requests; two writes overlap when the second arrives while the first is
still being served. The Managed Identity RP serialises federated-credential writes per
identity and answers the overlapping one 409
``ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity``
(:func:`components.arm.rules.check_federated_credential_write`); the front registers each
such write here for as long as it is in flight and hands the model an ordering that
answers from these registrations, as the mock runtime's answers from Pulumi's graph.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["WritesInFlight"]


class WritesInFlight:
    """ARM IDs with a write in flight (a count each: the same ID may be written twice)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: Counter[str] = Counter()

    @contextmanager
    def writing(self, arm_id: str) -> Iterator[InFlightOrdering]:
        """Register a write of ``arm_id`` until the block ends; yields its ordering."""
        own = arm_id.rstrip("/").lower()
        with self._lock:
            self._ids[own] += 1
        try:
            yield InFlightOrdering(self, own)
        finally:
            with self._lock:
                self._ids[own] -= 1
                if self._ids[own] <= 0:
                    del self._ids[own]

    def in_flight(self, arm_id: str) -> bool:
        with self._lock:
            return self._ids.get(arm_id.rstrip("/").lower(), 0) > 0


class InFlightOrdering:
    """A :class:`components.arm.rules.WriteOrdering` for one write: another resource is
    concurrent with it while a write of that resource is in flight."""

    def __init__(self, writes: WritesInFlight, own: str) -> None:
        self._writes = writes
        self._own = own

    def concurrent_with(self, arm_id: str) -> bool:
        other = arm_id.rstrip("/").lower()
        return other != self._own and self._writes.in_flight(other)
