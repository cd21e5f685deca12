"""One connection to a sandbox listener: a deadline for the request head, a response's
writes sent together, and a lingering close after an answer to an unread body.

uvicorn's h11 protocol, with what the sandbox adds per connection (each rule's why is in
its docstring). :class:`~verify.sandbox.server.Listener` serves with this protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

#: A connection must deliver its request head (request line + headers) within this many
#: seconds of opening, or of starting a new request on a kept-alive connection; else it is
#: closed. uvicorn has no such timer: a client that connects and sends half a request line
#: held a connection (and a file descriptor) forever.
HEADER_READ_TIMEOUT_SECONDS = 10.0
#: After answering a request whose body it did not read, the connection stays open this
#: long at most, discarding at most this much of what the client still sends, so the
#: client reads the answer before the close resets it (see GuardedH11Protocol._linger).
LINGER_SECONDS = 1.0
LINGER_MAX_BYTES = 64 * 1024


class CoalescingTransport:
    """A connection's transport whose writes within one loop iteration go out as one.

    uvicorn writes a response's head and its body separately; over TLS that is two
    records and two ``send`` calls per response (and two wake-ups of the client), where
    one does. Writes are kept until the end of the current loop iteration and then
    written together; ``close`` writes what is kept first, ``abort`` drops it (as the
    transport's own buffer). Everything else is the wrapped transport's.
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        linger: Callable[[], bool] | None = None,
    ) -> None:
        """``linger``: asked at ``close``; True when the protocol keeps the connection
        open a while longer (it calls :meth:`close_now` itself)."""
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._linger = linger
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        if self._closing:
            return
        self._closing = True
        if self._linger is None or not self._linger():
            self._transport.close()

    def close_now(self) -> None:
        """Close the wrapped transport, lingering or not."""
        self._closing = True
        self._flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def abort(self) -> None:
        self._closing = True
        self._pending.clear()
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(d) for d in self._pending)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for the request head (slow-loris guard).

    The timer runs from the moment the connection opens (or a kept-alive connection starts
    sending its next request) until h11 has parsed the whole head; when it fires first, the
    connection is closed. Header size is already capped by h11 (``h11_max_incomplete_event_size``).
    """

    header_timeout_seconds: float = HEADER_READ_TIMEOUT_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._coalescing = CoalescingTransport(transport, self.loop, linger=self._linger)
        super().connection_made(self._coalescing)  # type: ignore[arg-type]
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def _linger(self) -> bool:
        """Closing after an answer to a request whose body is still coming (a 401 before
        reading it, a 413 over the cap): linger instead of closing at once.

        Closing a socket with unread input sends a TCP reset, and a reset that reaches the
        client before it has read the answer discards the answer: the client saw a dropped
        connection instead of the 401 (58 of 300 tries in a tight loop). So the answer is
        written and what the client still sends is discarded, never kept, until the client
        closes, :data:`LINGER_MAX_BYTES` have come or :data:`LINGER_SECONDS` have passed (a
        lingering close, as HTTP servers do).
        """
        if self.conn.their_state is not h11.SEND_BODY:
            return False
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, self._end_linger)
        self._discarded = 0
        self.flow.resume_reading()  # uvicorn stops reading past 64 KiB of unread body
        return True

    def _end_linger(self) -> None:
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        self._coalescing.close_now()

    def data_received(self, data: bytes) -> None:
        if self._linger_timer is not None:
            self._discarded += len(data)
            if self._discarded > LINGER_MAX_BYTES:
                self._end_linger()
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            if self._head_timer is None:
                self._arm_head_timer()
        else:
            self._cancel_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout_seconds, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()
