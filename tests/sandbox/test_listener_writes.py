"""A response's head and body leave in one write (one TLS record, one ``send``), and a
connection's close or abort treats what is kept as the transport's own buffer would; one
task per event loop ticks every listener's server (its Date header) once a second."""

from __future__ import annotations

import asyncio
from typing import Any

from verify.sandbox import server
from verify.sandbox.connections import CoalescingTransport


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
        outer = CoalescingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]
        await body(outer)
        await asyncio.sleep(0)
        return inner.calls

    return asyncio.run(main())


def test_writes_of_one_loop_iteration_leave_together() -> None:
    async def respond(t: CoalescingTransport) -> None:
        t.write(b"HTTP/1.1 200 OK\r\n\r\n")
        t.write(b"")
        t.write(b"body")
        assert t.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
        await asyncio.sleep(0)  # the iteration ends: written
        t.write(b"next")

    assert _run(respond) == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody"), ("write", b"next")]


def test_close_writes_what_is_kept_first_and_abort_drops_it() -> None:
    async def close(t: CoalescingTransport) -> None:
        t.write(b"answer")
        t.close()

    assert _run(close) == [("write", b"answer"), ("close", None)]

    async def abort(t: CoalescingTransport) -> None:
        t.write(b"never sent")
        t.abort()

    assert _run(abort) == [("abort", None)]


def test_everything_else_is_the_transports() -> None:
    async def ask(t: CoalescingTransport) -> None:
        assert t.get_extra_info("peername") == ("127.0.0.1", 1)

    assert _run(ask) == []


class _FakeServer:
    def __init__(self, exit_after: int) -> None:
        self.ticks = 0
        self.exit_after = exit_after
        self.woken = 0

    async def on_tick(self, counter: int) -> bool:
        assert counter % 10 == 0  # every tick refreshes the Date header
        self.ticks += 1
        return self.ticks >= self.exit_after

    def wake(self) -> None:
        self.woken += 1


def test_one_ticker_ticks_every_server_of_its_loop(monkeypatch: Any) -> None:
    """The Date header of every listener is refreshed by one task per loop; a server whose
    tick says "exit" is woken; the task ends with the last server."""
    monkeypatch.setattr(server, "TICK_SECONDS", 0.01)

    async def main() -> tuple[_FakeServer, _FakeServer, bool]:
        ticker = server._Ticker.of(asyncio.get_running_loop())
        assert server._Ticker.of(asyncio.get_running_loop()) is ticker
        staying, leaving = _FakeServer(exit_after=10**6), _FakeServer(exit_after=2)
        ticker.add(staying)  # type: ignore[arg-type]
        ticker.add(leaving)  # type: ignore[arg-type]
        await asyncio.sleep(0.2)
        task = ticker._task
        ticker.discard(leaving)  # type: ignore[arg-type]
        ticker.discard(staying)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        return staying, leaving, task is not None and task.cancelled()

    staying, leaving, ended = asyncio.run(main())
    assert staying.ticks >= 3 and leaving.woken >= 1
    assert ended
