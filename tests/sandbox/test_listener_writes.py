"""A response's head and body leave in one write (one TLS record, one ``send``), and a
connection's close or abort treats what is kept as the transport's own buffer would."""

from __future__ import annotations

import asyncio
from typing import Any

from verify.sandbox.server import _CoalescingTransport


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def abort(self) -> None:
        self.closing = True
        self.calls.append(("abort", None))

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def _run(body: Any) -> list[tuple[str, Any]]:
    async def main() -> list[tuple[str, Any]]:
        inner = _Recorder()
        outer = _CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        await body(outer)
        await asyncio.sleep(0)
        return inner.calls

    return asyncio.run(main())


def test_writes_of_one_loop_iteration_leave_together() -> None:
    async def respond(t: _CoalescingTransport) -> None:
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")
        t.write(b"body")
        assert t.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
        await asyncio.sleep(0)  # the iteration ends: written
        t.write(b"next")

    assert _run(respond) == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody"), ("write", b"next")]


def test_close_writes_what_is_kept_first_and_abort_drops_it() -> None:
    async def close(t: _CoalescingTransport) -> None:
        t.write(b"answer")
        t.close()

    assert _run(close) == [("write", b"answer"), ("close", None)]

    async def abort(t: _CoalescingTransport) -> None:
        t.write(b"never sent")
        t.abort()

    assert _run(abort) == [("abort", None)]


def test_everything_else_is_the_transports() -> None:
    async def ask(t: _CoalescingTransport) -> None:
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)

    assert _run(ask) == []
