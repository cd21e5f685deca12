"""Listeners: uvicorn servers on loopback sockets, on one event loop thread.

Every endpoint of the sandbox (ARM, the token issuer's discovery, one IMDS per VM, one
Key Vault per vault) is a :class:`Listener`: a socket bound here, synchronously, on a
loopback address (so its URL is known and connectable at once), served by a real
ASGI server (uvicorn, TLS where Azure uses HTTPS) as a task on one shared event-loop
thread. Starting and stopping a listener is cheap, which is what lets a VM's IMDS appear
and disappear with the VM.

Each app is wrapped in :class:`~verify.sandbox.middleware.ServiceMiddleware` (faults, the
request log); each connection is :mod:`verify.sandbox.connections`' protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
import weakref
from pathlib import Path
from typing import Any, ClassVar

import trustme
import uvicorn

from components.errors import ConfigError
from verify.sandbox.connections import HEADER_READ_TIMEOUT_SECONDS, GuardedH11Protocol
from verify.sandbox.middleware import ASGIApp

#: Idle keep-alive connections are closed after this long (uvicorn's timer).
KEEP_ALIVE_TIMEOUT_SECONDS = 5
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
