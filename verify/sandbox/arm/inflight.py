"""The writes the sandbox's ARM front is serving at this moment, as a ``WriteOrdering``.

ARM sees only requests; two writes overlap when the second arrives while the first is
still being served. The Managed Identity RP serialises federated-credential writes per
identity and answers the overlapping one 409
``ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity``
(:func:`components.arm.rules.check_federated_credential_write`); the front registers each
such write here for as long as it is in flight and hands the model an ordering that
answers from these registrations, as the mock runtime's answers from Pulumi's graph.

An accepted write may be held in flight (the Managed Identity RP takes its time:
:meth:`WritesInFlight.hold`) for at most a given time, and no longer than until another
write of a credential of the same identity has been answered: the overlap the hold is
there to allow has then happened, so a caller that provokes it waits for nothing more.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from components.arm.rules import FEDERATED_CREDENTIALS_SEGMENT

__all__ = ["WritesInFlight"]


class WritesInFlight:
    """ARM IDs with a write in flight (a count each: the same ID may be written twice)."""

    #: How often a held write looks whether it has been released (seconds).
    POLL_SECONDS = 0.005

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: Counter[str] = Counter()
        #: The writes in flight of each identity: (the write's ID, set when released).
        self._holders: dict[str, list[tuple[str, threading.Event]]] = {}

    @contextmanager
    def writing(self, arm_id: str) -> Iterator[InFlightOrdering]:
        """Register a write of ``arm_id`` until the block ends; yields its ordering."""
        own = arm_id.rstrip("/").lower()
        holder = (own, threading.Event())
        with self._lock:
            self._ids[own] += 1
            self._holders.setdefault(_identity(own), []).append(holder)
        try:
            yield InFlightOrdering(self, own, holder[1])
        finally:
            with self._lock:
                self._ids[own] -= 1
                if self._ids[own] <= 0:
                    del self._ids[own]
                holders = self._holders[_identity(own)]
                holders.remove(holder)
                if not holders:
                    del self._holders[_identity(own)]

    def answered(self, arm_id: str) -> None:
        """A write of ``arm_id`` has been answered (accepted or refused): every other write
        of the same identity held in flight is released."""
        own = arm_id.rstrip("/").lower()
        with self._lock:
            for other, released in self._holders.get(_identity(own), []):
                if other != own:
                    released.set()

    async def hold(self, ordering: InFlightOrdering, seconds: float) -> None:
        """Keep the accepted write in flight for ``seconds`` at most, until another write of
        its identity has been answered (:meth:`answered`)."""
        deadline = time.monotonic() + seconds
        while not ordering.released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(min(self.POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def in_flight(self, arm_id: str) -> bool:
        with self._lock:
            return self._ids.get(arm_id.rstrip("/").lower(), 0) > 0


class InFlightOrdering:
    """A :class:`components.arm.rules.WriteOrdering` for one write: another resource is
    concurrent with it while a write of that resource is in flight."""

    def __init__(self, writes: WritesInFlight, own: str, released: threading.Event) -> None:
        self._writes = writes
        self._own = own
        #: Set once another write of the same identity has been answered.
        self.released = released

    def concurrent_with(self, arm_id: str) -> bool:
        other = arm_id.rstrip("/").lower()
        return other != self._own and self._writes.in_flight(other)


def _identity(arm_id: str) -> str:
    """The identity a credential's ID is under (the ID itself for any other resource)."""
    return arm_id.split(FEDERATED_CREDENTIALS_SEGMENT.lower(), 1)[0]
