"""The sandbox's request log: what reached which service, and what it answered.

Tests and the verifier assert on it ("the probe asked VM a's IMDS for client_id X",
"Key Vault answered 403 twice"). It records method, path, query keys the services use,
status, duration and the calling principal, and never headers or bodies, so no token or
secret value can end up in it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestRecord:
    at: float
    service: str  # imds | keyvault | arm | issuer
    target: str  # the VM name, vault name, or "arm" / "issuer"
    method: str
    path: str
    query: str
    status: int  # 0 when the connection was reset before any answer
    duration_ms: float
    principal_id: str | None = None  # token oid (Key Vault, ARM) or client_id (IMDS)
    fault: str | None = None  # the injected fault's kind, if any


class RequestLog:
    """A bounded, thread-safe list of :class:`RequestRecord`."""

    def __init__(self, maxlen: int = 100_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(
        self, service: str | None = None, target: str | None = None, since: float | None = None
    ) -> list[RequestRecord]:
        with self._lock:
            found = list(self._records)
        return [
            r
            for r in found
            if (service is None or r.service == service)
            and (target is None or r.target.lower() == target.lower())
            and (since is None or r.at >= since)
        ]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    @staticmethod
    def now() -> float:
        return time.time()
