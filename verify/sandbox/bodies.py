"""Request bodies, read the way a front door reads them: bounded, after authentication.

Every sandbox service reads its request body through :func:`read_body`, with its own
limit, only after the caller is authenticated. Why: ARM used to buffer a 200 MB body of
an unauthenticated request before refusing it (the server grew by 400 MB). Azure's front
doors cap bodies (ARM: 4 MB, "Max Request Body Size" of the resource-provider contract;
Key Vault: a secret value is at most 25 KB) and refuse the request without reading past
the cap; so does this:

- a ``Content-Length`` above the limit is refused before a single body byte is read;
- a chunked body is counted as it streams and refused at the first chunk past the limit
  (so at most ``limit`` + one chunk is ever held in memory);
- the server then answers and closes the connection (uvicorn does not keep a connection
  whose body was not read).

:func:`json_object` parses a JSON object body, or raises :class:`BodyError` saying why
(each service answers with its own code: ARM ``InvalidRequestContent``, Key Vault
``BadParameter``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from starlette.requests import Request

#: ARM: "The maximum size of a request body that ARM will accept is 4 MB ... a 413 Payload
#: Too Large will be returned" (Azure/azure-resource-manager-rpc, v1.0/common-api-details.md).
ARM_MAX_BODY_BYTES = 4 * 1024 * 1024
#: Key Vault: a secret value is at most 25 KB ("About Azure Key Vault secrets"); a body
#: carries the value plus attributes, tags and content type, so the cap on the whole body
#: is set above the value's own limit (which :mod:`verify.sandbox.keyvault.service` checks).
KEYVAULT_MAX_BODY_BYTES = 256 * 1024

#: A body must arrive within this many seconds of its head (a client that announces a
#: body and then stalls holds a request task; uvicorn never times it out).
BODY_READ_TIMEOUT_SECONDS = 30.0

BodyProblem = Literal["too_large", "invalid_json", "not_object", "bad_length", "timeout"]


class BodyError(Exception):
    """Why a body is refused: ``too_large`` (with ``limit``), ``bad_length``, ``timeout``,
    ``invalid_json`` or ``not_object``; the service renders its own error."""

    def __init__(self, problem: BodyProblem, message: str, limit: int | None = None) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
        self.limit = limit


async def read_body(
    request: Request, limit: int, timeout_seconds: float = BODY_READ_TIMEOUT_SECONDS
) -> bytes:
    """The body of ``request``, at most ``limit`` bytes, within ``timeout_seconds``, or
    BodyError (``too_large``, ``bad_length``, ``timeout``)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError as exc:
            raise BodyError("bad_length", f"Content-Length '{declared}' is not a number.") from exc
        if length < 0:
            raise BodyError("bad_length", f"Content-Length '{declared}' is negative.")
        if length > limit:
            raise BodyError(
                "too_large",
                f"The request body is {length} bytes; the limit is {limit} bytes.",
                limit,
            )
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise BodyError(
                        "too_large", f"The request body exceeds the limit of {limit} bytes.", limit
                    )
                chunks.append(chunk)
    except TimeoutError as exc:
        raise BodyError(
            "timeout", f"The request body did not arrive within {timeout_seconds:g} seconds."
        ) from exc
    return b"".join(chunks)


def json_object(raw: bytes, *, empty_ok: bool = True) -> dict[str, Any]:
    """The JSON object in ``raw`` (``{}`` for an empty body when ``empty_ok``)."""
    if not raw.strip():
        if empty_ok:
            return {}
        raise BodyError("invalid_json", "The request body is empty; a JSON object is required.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError("invalid_json", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BodyError(
            "not_object", f"The request body is a JSON {type(body).__name__}, not an object."
        )
    return body
