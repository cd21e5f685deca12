"""Is this principal really gone? Asked of the directory (Microsoft Graph), not of ARM.

ARM cannot tell: a role assignment of a deleted principal keeps its ``principalId``, a
VM whose delete failed may still answer 404 at the name the stack recorded, and a
principal held by something outside the stack looks unheld to anything that only reads
the stack. The directory is the authority: ``GET /v1.0/servicePrincipals/{id}`` answers
404 ``Request_ResourceNotFound`` only for a principal that does not exist. Any other
answer -- 200, 403 (no directory read permission), 401, 5xx, a reset -- is not proof and
is reported as what it is, so orphan cleanup can refuse (or hand the work to a human).

The request goes through the same credential the verifier already uses for ARM, with
token audience ``https://graph.microsoft.com``; the Azure target talks to
https://graph.microsoft.com, the sandbox target to ``Sandbox.graph_url``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from azure.core import PipelineClient
from azure.core.exceptions import AzureError
from azure.core.pipeline.policies import (
    BearerTokenCredentialPolicy,
    HeadersPolicy,
    RetryPolicy,
    UserAgentPolicy,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

from components.armid import is_guid

GRAPH_URL = "https://graph.microsoft.com"
GRAPH_AUDIENCE = "https://graph.microsoft.com"
#: The only answer that proves a service principal does not exist.
GONE = (404, "Request_ResourceNotFound")
#: Graph's answer to a caller without directory read permission.
REFUSED = (403, "Authorization_RequestDenied")

PrincipalStatus = Literal["exists", "gone", "refused", "unknown"]


@dataclass(frozen=True)
class DirectoryAnswer:
    """What Graph said about one object ID, and what that proves."""

    object_id: str
    status: PrincipalStatus
    http_status: int | None
    code: str | None
    message: str

    @property
    def summary(self) -> str:
        where = f"Graph GET /v1.0/servicePrincipals/{self.object_id}"
        return f"{where} answered {self.http_status or 'nothing'} {self.code or ''}".rstrip()


class DirectoryClient:
    """``GET /v1.0/servicePrincipals/{id}``, one request per question, no client retries.

    Retries are off (``retry_total=0``): a throttled or failing Graph is an answer of
    "unknown" here, and cleanup does nothing on "unknown", so waiting in a back-off would
    only delay the same refusal.
    """

    def __init__(
        self,
        credential: Any,
        graph_url: str = GRAPH_URL,
        *,
        audience: str = GRAPH_AUDIENCE,
        connection_verify: bool | str = True,
        timeout: float = 10.0,
    ) -> None:
        self.graph_url = graph_url.rstrip("/")
        transport = RequestsTransport(
            connection_verify=connection_verify,
            connection_timeout=timeout,
            read_timeout=timeout,
        )
        self._client: PipelineClient[Any, Any] = PipelineClient(
            self.graph_url,
            policies=[
                HeadersPolicy({"Accept": "application/json"}),
                UserAgentPolicy("mikit-verify"),
                RetryPolicy(retry_total=0),
                BearerTokenCredentialPolicy(credential, f"{audience.rstrip('/')}/.default"),
            ],
            transport=transport,
        )

    def service_principal(self, object_id: str) -> DirectoryAnswer:
        """Ask Graph about ``object_id``; only 404 ``Request_ResourceNotFound`` is "gone"."""
        if not is_guid(object_id):
            return DirectoryAnswer(object_id, "unknown", None, None, "not an object ID (GUID)")
        request = HttpRequest("GET", f"{self.graph_url}/v1.0/servicePrincipals/{object_id}")
        try:
            response = self._client.send_request(request)
        except AzureError as exc:  # no answer at all: connection refused, reset, timeout
            return DirectoryAnswer(object_id, "unknown", None, type(exc).__name__, str(exc)[:300])
        status = response.status_code
        if status == 200:
            found = _json(response).get("id")
            same = isinstance(found, str) and found.lower() == object_id.lower()
            verdict: PrincipalStatus = "exists" if same else "unknown"
            return DirectoryAnswer(object_id, verdict, status, None, "200: a service principal")
        code, message = _graph_error(response)
        known: dict[tuple[int, str | None], PrincipalStatus] = {GONE: "gone", REFUSED: "refused"}
        return DirectoryAnswer(
            object_id, known.get((status, code), "unknown"), status, code, message
        )

    def close(self) -> None:
        self._client.close()


def _json(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _graph_error(response: Any) -> tuple[str | None, str]:
    """Graph's ``{"error": {"code", "message"}}``."""
    error = _json(response).get("error")
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code")
    return (str(code) if code else None), str(error.get("message") or "")[:300]
