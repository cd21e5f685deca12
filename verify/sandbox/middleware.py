"""What every sandbox service's responses pass through: faults, the request log, the
headers a real service adds, and closing a connection whose body was not read.

:class:`ServiceMiddleware` wraps each service's ASGI app: it applies the
:class:`~verify.sandbox.faults.FaultPlan` (an error status in the service's own shape, a
slow answer, or a TCP reset) and writes the :class:`~verify.sandbox.requestlog.RequestLog`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
