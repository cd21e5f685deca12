"""Listeners: uvicorn servers on loopback sockets, one event loop thread, faults, logging.

Every endpoint of the sandbox (ARM, the token issuer's discovery, one IMDS per VM, one
Key Vault per vault) is a :class:`Listener`: a socket bound here, synchronously, on a
loopback address (so its URL is known and connectable at once), served by a real
ASGI server (uvicorn, TLS where Azure uses HTTPS) as a task on one shared event-loop
thread. Starting and stopping a listener is cheap, which is what lets a VM's IMDS appear
and disappear with the VM.

:class:`ServiceMiddleware` wraps each app: it applies the :class:`FaultPlan` (error
status in the service's own shape, slow answer, or a TCP reset) and writes the
:class:`RequestLog`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import struct
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import h11
import trustme
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from components.errors import ConfigError
from verify.sandbox.faults import FaultPlan
from verify.sandbox.requestlog import RequestLog, RequestRecord

ASGIApp = Callable[..., Any]


@dataclass(frozen=True)
class RawBody:
    """A fault's error body that is not JSON (Blob Storage answers in XML)."""

    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


ErrorBody = Callable[[int], "dict[str, Any] | RawBody"]

#: A connection must deliver its request head (request line + headers) within this many
#: seconds of opening, or of starting a new request on a kept-alive connection; else it is
#: closed. uvicorn has no such timer: a client that connects and sends half a request line
#: held a connection (and a file descriptor) forever.
HEADER_READ_TIMEOUT_SECONDS = 10.0
#: Idle keep-alive connections are closed after this long (uvicorn's timer).
KEEP_ALIVE_TIMEOUT_SECONDS = 5
#: After answering a request whose body it did not read, the connection stays open this
#: long at most, discarding at most this much of what the client still sends, so the
#: client reads the answer before the close resets it (see GuardedH11Protocol._linger).
LINGER_SECONDS = 1.0
LINGER_MAX_BYTES = 64 * 1024
#: How often the listeners' servers tick (refresh their Date header): :class:`_Ticker`.
TICK_SECONDS = 1.0


def require_loopback(host: str) -> str:
    """The loopback address to bind, or ConfigError: the sandbox never listens beyond the host.

    Its tokens are signed by a throw-away key and its Key Vault hands out secret values to
    anyone holding one; exposing that on a network interface would be a real leak.
    """
    candidate = "127.0.0.1" if host == "localhost" else host
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError as exc:
        raise ConfigError(
            "host", host, "is not an IP address", "use 127.0.0.1 (the sandbox binds loopback only)"
        ) from exc
    if not address.is_loopback:
        raise ConfigError(
            "host",
            host,
            "is not a loopback address; the sandbox refuses to listen on a network interface",
            "use 127.0.0.1 (or another 127.x.y.z / ::1 address)",
        )
    return str(address)


class Tls:
    """A CA made at start and a server certificate for the loopback names, as PEM files."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name="managed-identity-kit sandbox")
        cert = self._ca.issue_cert("127.0.0.1", "::1", "localhost")
        self.ca_cert_path = directory / "sandbox-ca.pem"
        self.server_pem_path = directory / "sandbox-server.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_cert_path))
        cert.private_key_and_cert_chain_pem.write_to_path(str(self.server_pem_path))
        self.server_pem_path.chmod(0o600)


class EventLoopThread:
    """One asyncio loop on a daemon thread, hosting every listener."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="sandbox-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _arm_headers(scope: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """What every ARM response carries: its own request ID and the correlation ID, echoed
    when the client sent one (``az`` and azure-mgmt-* print them with every error)."""
    correlation = _header(scope, b"x-ms-correlation-request-id") or str(uuid.uuid4())
    return [
        (b"x-ms-request-id", str(uuid.uuid4()).encode()),
        (b"x-ms-correlation-request-id", correlation.encode("latin-1")),
    ]


def _keyvault_headers(scope: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """Key Vault's request ID on every response (azure-keyvault-* log it with errors)."""
    return [(b"x-ms-request-id", str(uuid.uuid4()).encode())]


#: Headers a real service adds to every response, by sandbox service name (Blob sets its
#: own in verify.sandbox.blob.wire). Microsoft's REST API examples and the services' REST
#: references list them; only the ones clients read are modelled.
SERVICE_HEADERS: dict[str, Any] = {"arm": _arm_headers, "keyvault": _keyvault_headers}


class ServiceMiddleware:
    """Faults and the request log, around one service's ASGI app."""

    def __init__(
        self,
        app: ASGIApp,
        service: str,
        target: str,
        *,
        faults: FaultPlan,
        log: RequestLog,
        error_body: ErrorBody,
        aliases: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.service = service
        self.target = target
        self.targets = (target, *aliases)
        self.faults = faults
        self.log = log
        self.error_body = error_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        logged = False
        scope.setdefault("state", {})
        fault = self.faults.take(self.service, self.targets, scope["method"], scope["path"])

        def record() -> None:
            # Logged before the last byte leaves, so a client that has its answer can
            # already find the request in the log.
            nonlocal logged
            if logged:
                return
            logged = True
            self.log.add(
                RequestRecord(
                    at=time.time(),
                    service=self.service,
                    target=self.target,
                    method=scope["method"],
                    path=scope["path"],
                    query=scope.get("query_string", b"").decode("latin-1"),
                    status=status,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    principal_id=scope["state"].get("principal_id"),
                    fault=fault.kind if fault else None,
                )
            )

        body_read = not _has_body(scope)

        async def tracked_receive() -> dict[str, Any]:
            nonlocal body_read
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request" and not message.get("more_body"):
                body_read = True
            return message

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = SERVICE_HEADERS.get(self.service)
                if extra is not None:
                    present = {name.lower() for name, _ in message.get("headers", [])}
                    added = [(k, v) for k, v in extra(scope) if k not in present]
                    message = {**message, "headers": [*message.get("headers", []), *added]}
                if not body_read:
                    # Answered without reading the body (a 401 before it, a 413 over the cap):
                    # close the connection after the answer instead of draining what the
                    # client still sends (uvicorn would read and discard all of it).
                    message = {**message, "headers": [*message.get("headers", []), _CLOSE]}
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                record()
            await send(message)

        try:
            if fault is not None and fault.kind == "reset":
                record()
                await self._reset(receive, send)
            elif fault is not None and fault.kind == "status":
                await self._status(fault.status, fault.retry_after, capture)
            else:
                if fault is not None and fault.kind == "delay":
                    await asyncio.sleep(fault.delay_seconds)
                await self.app(scope, tracked_receive, capture)
        finally:
            record()

    async def _status(self, status: int, retry_after: int | None, send: Any) -> None:
        payload = self.error_body(status)
        if isinstance(payload, RawBody):
            body, content_type, extra = payload.body, payload.content_type, payload.headers
        else:
            body, content_type, extra = json.dumps(payload).encode(), "application/json", {}
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in extra.items()),
        ]
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    async def _reset(receive: Any, send: Any) -> None:
        """Abort the TCP connection with a RST (SO_LINGER 0) before any response byte.

        ASGI has no "reset" message; uvicorn's ``send`` is a bound method of its
        per-request cycle, which holds the transport. If that ever changes, fall back to
        a response that starts and then breaks off, which clients also see as a dropped
        connection.
        """
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"100")],
                }
            )
            raise ConnectionResetError("sandbox fault: connection dropped mid-response")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        while (await receive())["type"] != "http.disconnect":
            pass


_CLOSE = (b"connection", b"close")


def _has_body(scope: dict[str, Any]) -> bool:
    """True when the request announces a body (a non-zero Content-Length, or chunked)."""
    for name, value in scope.get("headers", []):
        if name == b"transfer-encoding":
            return True
        if name == b"content-length":
            return value.strip() not in (b"0", b"")
    return False


class _CoalescingTransport:
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
        self._coalescing = _CoalescingTransport(transport, self.loop, linger=self._linger)
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


class _Ticker:
    """Ticks every live server of one event loop once a second (uvicorn's ``on_tick``:
    the ``Date`` header), from one task that runs while there is a server to tick."""

    _by_loop: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Ticker]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self) -> None:
        self._servers: dict[_Server, None] = {}  # insertion-ordered set
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Ticker:
        ticker = cls._by_loop.get(loop)
        if ticker is None:
            ticker = cls._by_loop[loop] = cls()
        return ticker

    def add(self, server: _Server) -> None:
        self._servers[server] = None
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, server: _Server) -> None:
        self._servers.pop(server, None)
        if not self._servers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            for server in list(self._servers):
                if await server.on_tick(0):
                    server.wake()


class _Server(uvicorn.Server):
    """uvicorn, with a shutdown that lets in-flight requests finish but does not wait for
    idle keep-alive (TLS) connections, which clients may hold open indefinitely; and that
    starts at once when asked (:meth:`wake`), not at uvicorn's next 0.1 s tick, nor after its
    0.1 s pause for connections when none is open. A sandbox stops each listener of every
    deleted resource and all of them at its end, so those pauses added up across a run.

    Between wake-ups it does not tick ten times a second: a tick's only other work is the
    ``Date`` header, which uvicorn refreshes once a second; one :class:`_Ticker` per event
    loop does that for every server of the loop. A sandbox with hundreds of listeners (a
    VM's IMDS, a vault, an app each) woke its loop thousands of times a second for it."""

    _wake: asyncio.Event | None = None

    def wake(self) -> None:
        """Called on the loop after ``should_exit`` is set: leave the main loop now."""
        if self._wake is not None:
            self._wake.set()

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        should_exit = await self.on_tick(0)  # counter 0: the Date header is refreshed
        if should_exit:
            return
        ticker = _Ticker.of(asyncio.get_running_loop())
        ticker.add(self)
        try:
            while not should_exit:
                await self._wake.wait()
                self._wake.clear()
                should_exit = await self.on_tick(0)
        finally:
            ticker.discard(self)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._stop_accepting()
        if self.server_state.connections:
            await super().shutdown(sockets)
            return
        # uvicorn's shutdown without its pause for open connections: there is none.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._wait_tasks_to_complete(), timeout=self.config.timeout_graceful_shutdown
            )
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _stop_accepting(self) -> None:
        """Stop accepting, then let connections accepted already get their transports.

        asyncio accepts in a reader callback and builds each connection's transport one loop
        iteration later; a server closed in between makes that build fail, and CPython (3.11)
        then drops the accepted socket without closing it: the client waited, unanswered and
        unrefused, until the garbage collector ran (seen as a 1 s read timeout on a deleted
        VM's IMDS). With the reader removed first, every accepted connection reaches
        ``connection_made`` and is served or closed by the shutdown below; connections still
        in the kernel's backlog are reset when the socket closes.
        """
        loop = asyncio.get_running_loop()
        for server in self.servers:
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
        for _ in range(2):  # transport built (next iteration), then connection_made (the one after)
            await asyncio.sleep(0)

    async def _wait_tasks_to_complete(self) -> None:
        while self.server_state.tasks and not self.force_exit:
            await asyncio.sleep(0.05)
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()


def hold_port(host: str, port: int) -> socket.socket:
    """A socket bound to ``port`` that does not listen: a connection there is refused, as
    to a closed port, but no other program (a client's ephemeral port) can take the port
    until a ``reuse_port`` listener binds it again and this socket is closed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    held = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    held.bind((host, port))
    return held


class Listener:
    """One uvicorn server on one loopback socket."""

    def __init__(
        self,
        loop: EventLoopThread,
        app: ASGIApp,
        host: str,
        port: int = 0,
        tls: Tls | None = None,
        *,
        header_timeout_seconds: float = HEADER_READ_TIMEOUT_SECONDS,
        reuse_port: bool = False,
    ) -> None:
        """``reuse_port``: SO_REUSEPORT, so a :func:`hold_port` socket may hold the port
        before this listener binds it and after it stops."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY for accepted connections only
        # when the socket says it is TCP; without it, Nagle + delayed ACK add ~40 ms to
        # every keep-alive request.
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if reuse_port:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._sock.bind((host, port))
        self._sock.listen(2048)
        self._sock.setblocking(False)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.scheme = "https" if tls else "http"
        config = uvicorn.Config(
            app,
            log_config=None,  # never reconfigure the host process's logging
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=2,
            timeout_keep_alive=KEEP_ALIVE_TIMEOUT_SECONDS,
            http=type(
                "ListenerH11Protocol",
                (GuardedH11Protocol,),
                {"header_timeout_seconds": header_timeout_seconds},
            ),
            ssl_certfile=str(tls.server_pem_path) if tls else None,
        )
        self._server = _Server(config)
        self._loop = loop
        self._future = loop.submit(self._server.serve(sockets=[self._sock]))

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def stop(self, wait: bool = True) -> None:
        """Stop accepting, finish in-flight requests (2 s at most), close the socket."""
        self._server.should_exit = True
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.loop.call_soon_threadsafe(self._server.wake)
        if wait:
            self.wait()

    def wait(self) -> None:
        """Wait for a stopped listener to finish shutting down."""
        with contextlib.suppress(Exception):
            self._future.result(timeout=10)
        self._sock.close()  # uvicorn closed it already; this covers a failed startup
