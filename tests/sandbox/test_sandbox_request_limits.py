"""Bodies and half-open requests fail closed: authenticate before reading,
cap what is read, time out what never arrives.

Reproduced: ARM read a 200 MB body of an unauthenticated request before refusing it (the
server grew by 400 MB). These tests speak raw HTTP over TLS on loopback (no client library
sends an oversized or half-finished request), with bounded loops and generous deadlines:
they assert *that* the server stops, never how fast.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import time
from typing import Any

import pytest
from sandbox_world import World
from starlette.requests import Request

from verify.sandbox import Sandbox
from verify.sandbox.bodies import ARM_MAX_BODY_BYTES, BodyError, json_object, read_body
from verify.sandbox.server import EventLoopThread, Listener

ARM = "https://management.azure.com"
CHUNK = b"x" * 65536
BIG = 200 * 1024 * 1024  # what the attacker announces and tries to send


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:  # Linux: resident pages are the 2nd field
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _connect(sb: Sandbox, send_buffer: int | None = 64 * 1024) -> ssl.SSLSocket:
    """``send_buffer``: a fixed one, so what the client manages to push counts what the
    server took (and its receive buffer), not how far the client's kernel grew its own."""
    host, port = sb.arm_url.removeprefix("https://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=sb.ca_cert_path)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if send_buffer is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    raw.settimeout(10)
    raw.connect((host, int(port)))
    return context.wrap_socket(raw, server_hostname=host)


def _read_head(conn: socket.socket) -> bytes:
    """The response head (status line + headers), read with a bounded loop."""
    data = b""
    for _ in range(1000):
        if b"\r\n\r\n" in data:
            break
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


def _assignment_path(sb: Sandbox) -> str:
    return (
        f"/subscriptions/{sb.subscription_id}/providers/Microsoft.Authorization/"
        "roleAssignments/7f0b7a3e-1111-4222-8333-944445555666?api-version=2022-04-01"
    )


def _head(sb: Sandbox, length: int, token: str | None = None) -> bytes:
    lines = [
        f"PUT {_assignment_path(sb)} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _push_until_closed(conn: socket.socket, limit: int) -> int:
    """Send body chunks until the server closes the connection (or ``limit`` bytes)."""
    sent = 0
    conn.settimeout(5)
    try:
        while sent < limit:
            conn.sendall(CHUNK)
            sent += len(CHUNK)
    except (OSError, ssl.SSLError):  # reset, broken pipe, or a full window nobody drains
        pass
    return sent


def test_unauthenticated_large_body_is_refused_unread(sb: Sandbox, world: World) -> None:
    before = _rss_bytes()
    with _connect(sb) as conn:
        conn.sendall(_head(sb, BIG))
        conn.sendall(CHUNK)  # the body has started streaming
        head = _read_head(conn)  # answered while 200 MB are still announced
        sent = _push_until_closed(conn, BIG)
    assert head.startswith(b"HTTP/1.1 401"), head
    assert b"connection: close" in head.lower()
    assert sent < 64 * 1024 * 1024, f"the server kept reading: {sent} bytes accepted"
    assert _rss_bytes() - before < 100 * 1024 * 1024


def test_the_answer_to_an_unread_body_always_reaches_the_client(sb: Sandbox, world: World) -> None:
    """Answered before its body was read, the connection lingers (discarding what still
    comes, 64 KiB at most) instead of closing at once: a close with unread input resets the
    connection, and the reset often beat the 401 to the client (58 of 300 tries), which
    then saw only a dropped connection. 100 exchanges in a row, each answered."""
    answers = []
    for _ in range(100):
        with _connect(sb, send_buffer=None) as conn:
            conn.sendall(_head(sb, BIG))
            conn.sendall(CHUNK)
            answers.append(_read_head(conn).split(b"\r\n", 1)[0])
            sent = _push_until_closed(conn, BIG)
        assert sent < 64 * 1024 * 1024
    assert set(answers) == {b"HTTP/1.1 401 Unauthorized"}, set(answers)


def test_announced_body_over_arms_4_mb_cap_is_413_before_reading(sb: Sandbox, world: World) -> None:
    token = sb.issue_token(sb.operator, ARM)
    with _connect(sb) as conn:
        conn.sendall(_head(sb, ARM_MAX_BODY_BYTES + 1, token))
        head = _read_head(conn)
        sent = _push_until_closed(conn, ARM_MAX_BODY_BYTES + 1)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"connection: close" in head.lower()
    assert sent < ARM_MAX_BODY_BYTES


def _request(
    chunks: list[bytes], headers: dict[str, str] | None = None, stall: bool = False
) -> Request:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or stall}
        for i, c in enumerate(chunks)
    ]
    taken = {"n": 0}

    async def receive() -> dict[str, Any]:
        if taken["n"] < len(messages):
            taken["n"] += 1
            return messages[taken["n"] - 1]
        await asyncio.sleep(3600)  # a client that stopped sending
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "PUT",
        "path": "/",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    request = Request(scope, receive)
    request.state.taken = taken
    return request


def test_chunked_body_is_cut_at_the_first_chunk_past_the_limit() -> None:
    chunks = [b"a" * 1000] * 50  # 50 kB streamed without a Content-Length
    request = _request(chunks, {"transfer-encoding": "chunked"})
    with pytest.raises(BodyError) as refused:
        asyncio.run(read_body(request, limit=4500))
    assert refused.value.problem == "too_large"
    assert request.state.taken["n"] == 5  # 4 chunks fit, the 5th crossed the limit: stop there
    assert asyncio.run(read_body(_request([b"ab", b"cd"]), limit=4)) == b"abcd"


def test_announced_length_over_the_limit_reads_nothing() -> None:
    request = _request([b"a" * 10], {"content-length": "10"})
    with pytest.raises(BodyError) as refused:
        asyncio.run(read_body(request, limit=9))
    assert (refused.value.problem, request.state.taken["n"]) == ("too_large", 0)
    with pytest.raises(BodyError) as bad:
        asyncio.run(read_body(_request([b""], {"content-length": "ten"}), limit=9))
    assert bad.value.problem == "bad_length"


def test_a_stalled_body_times_out() -> None:
    request = _request([b"ab"], {"content-length": "10"}, stall=True)
    with pytest.raises(BodyError) as stalled:
        asyncio.run(read_body(request, limit=100, timeout_seconds=0.2))
    assert stalled.value.problem == "timeout"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"{", "invalid_json"),
        (b"[1, 2]", "not_object"),
        (b'"x"', "not_object"),
        (b"\xff", "invalid_json"),
    ],
)
def test_json_object_says_why(raw: bytes, problem: str) -> None:
    with pytest.raises(BodyError) as refused:
        json_object(raw)
    assert refused.value.problem == problem
    assert json_object(b"") == {}
    assert json_object(b'{"a": 1}') == {"a": 1}


async def _ok_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_a_half_sent_request_head_is_closed_after_the_header_timeout() -> None:
    loop = EventLoopThread()
    listener = Listener(loop, _ok_app, "127.0.0.1", header_timeout_seconds=0.3)
    try:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as full:
            full.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_head(full).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as slow:
            started = time.monotonic()
            slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
            assert slow.recv(1024) == b""  # closed by the server, well before our 10 s
            assert time.monotonic() - started >= 0.25
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as silent:
            assert silent.recv(1024) == b""  # connected and sent nothing: closed too
    finally:
        listener.stop()
        loop.stop()
