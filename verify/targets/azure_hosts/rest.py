"""Bearer-token HTTPS calls for the host paths that have no management SDK here.

ARM (Microsoft.Web, Microsoft.App, Microsoft.ContainerService), the Kudu API of an app,
Log Analytics' query API and a cluster's Kubernetes API all take an Entra token as
``Authorization: Bearer``; one small client does that over a ``requests.Session`` (the
project's own dependency), with a timeout on every call. The token is put in the header
and nowhere else: errors name the call, its status and Azure's error code, never the
token or a response body that could echo it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verify.targets.azure_hosts.base import HostProbeError, MissingPermissionError

ARM = "https://management.azure.com"
ARM_SCOPE = "https://management.azure.com/.default"
#: The AKS Microsoft Entra server application: the audience of a cluster API token.
AKS_SERVER_APP_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"
AKS_SCOPE = f"{AKS_SERVER_APP_ID}/.default"
LOG_ANALYTICS = "https://api.loganalytics.io"
LOG_ANALYTICS_SCOPE = "https://api.loganalytics.io/.default"
#: Seconds for one HTTP call unless the caller gives more (a Kudu command runs longer).
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class Refusal:
    """What a 403 means on this call: the action and a built-in role that grants it."""

    action: str
    role: str


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]


def _code_of(body: Any) -> str:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return str(error.get("code") or "")
        if isinstance(body.get("reason"), str):  # Kubernetes Status
            return str(body["reason"])
    return ""


class BearerClient:
    """``request(method, url, scope=..., ...)`` with a fresh Entra token for ``scope``."""

    def __init__(self, credential: Any, session: Any) -> None:
        self._credential = credential
        self._session = session

    def request(
        self,
        method: str,
        url: str,
        *,
        scope: str,
        what: str,
        refusal: Refusal,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        ok: tuple[int, ...] = (200, 201, 202, 204),
    ) -> Reply:
        token = self._credential.get_token(scope).token
        sent = {"Authorization": f"Bearer {token}", **(headers or {})}
        kwargs: dict[str, Any] = {"headers": sent, "timeout": timeout, "verify": verify}
        if json_body is not None:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
        try:
            response = self._session.request(method, url, **kwargs)
        except Exception as exc:  # connection reset, DNS, the transport's own timeout
            raise HostProbeError(f"{what}: no answer ({type(exc).__name__})") from None
        status = int(response.status_code)
        text = response.text or ""
        try:
            body: Any = json.loads(text) if text.strip() else None
        except ValueError:
            body = text
        if status in ok:
            return Reply(status, body, dict(response.headers or {}))
        code = _code_of(body)
        if status == 403 or (status == 401 and code in ("AuthorizationFailed", "Forbidden")):
            raise MissingPermissionError(what, status, refusal.action, refusal.role, code)
        raise HostProbeError(f"{what} failed ({status}{' ' + code if code else ''})")
