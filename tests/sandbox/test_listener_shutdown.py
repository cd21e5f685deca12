"""A listener that stops answers or closes every connection it accepted: none is left hanging.

Reproduced: deleting a VM stops its IMDS listener; a token request that reached the socket
as it stopped got neither an answer nor a refusal, and the client waited out its read
timeout (a 1 s ``ReadTimeout`` in a CI run). asyncio accepts in one loop iteration and
builds the connection's transport in the next; the server closed in between, and CPython
3.11 then drops the accepted socket without closing it.

The test makes that interleaving certain rather than likely: it holds the event loop while
a client connects (so the accept and the start of the shutdown fall in the same iteration),
then releases it and reads, with a bounded deadline.
"""

from __future__ import annotations

import socket
import threading
from concurrent.futures import Future
from typing import Any

from verify.sandbox.server import EventLoopThread, Listener


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _answer(client: socket.socket) -> bytes:
    """What the server sent before closing; b"" for a close or a reset, never a hang."""
    data = b""
    for _ in range(100):
        try:
            chunk = client.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return data


def test_a_connection_accepted_as_the_listener_stops_is_answered_or_closed() -> None:
    loop = EventLoopThread()
    listener = Listener(loop, _ok, "127.0.0.1")
    try:
        probe = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        probe.sendall(b"GET / HTTP/1.1\r\nHost: imds\r\nConnection: close\r\n\r\n")
        assert _answer(probe).startswith(b"HTTP/1.1 200"), "the listener serves before it stops"
        probe.close()

        blocked, release = threading.Event(), threading.Event()
        shut_down: Future[None] = Future()

        def hold_loop() -> None:
            blocked.set()
            release.wait(5)

        def begin_shutdown() -> None:
            server = listener._server
            server.should_exit = True
            task = loop.loop.create_task(server.shutdown())
            task.add_done_callback(lambda _: shut_down.set_result(None))

        loop.loop.call_soon_threadsafe(hold_loop)
        assert blocked.wait(5)
        # The kernel completes the handshake while the loop is held; asyncio accepts it in
        # the same iteration that runs begin_shutdown, and builds its transport in the next.
        client = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        client.sendall(b"GET / HTTP/1.1\r\nHost: imds\r\nConnection: close\r\n\r\n")
        loop.loop.call_soon_threadsafe(begin_shutdown)
        release.set()
        try:
            answer = _answer(client)  # socket.timeout here is the hang this test is about
        finally:
            client.close()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 200")
        shut_down.result(timeout=10)
    finally:
        listener.stop()
        loop.stop()
