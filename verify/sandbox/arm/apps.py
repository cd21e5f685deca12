"""ARM reads of the app hosts in the sandbox: Microsoft.Web sites (web and Function apps),
their Key Vault reference statuses, and Microsoft.App container apps.

- ``GET .../providers/Microsoft.Web/sites/{name}``, ``.../Microsoft.App/containerApps/{name}``:
  the document the deploy wrote, its ``identity`` rebuilt from the state (a system identity
  turned off, an identity deleted or re-created shows as ARM would show it);
- ``GET .../sites/{name}/config/configreferences/appsettings``: each Key Vault reference's
  ``status``, decided by the same RBAC evaluator the Key Vault data plane enforces
  (``components.arm.memory_apps.reference_statuses``, shared with the mock runtime).

Writes go through the deploy (the stack program); other methods are 405.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from components.arm.memory_apps import GET_SECRET, reference_statuses
from components.keyvault_refs import ParsedReference
from verify.sandbox.arm.errors import ArmHttpError
from verify.sandbox.state.apps import AppHost
from verify.sandbox.state.store import SandboxState

if TYPE_CHECKING:
    from verify.sandbox.arm.service import ArmService

APP_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"(?P<provider>microsoft\.web|microsoft\.app)/(?P<type>sites|containerapps)"
    r"/(?P<name>[^/]+)(?P<child>/config/configreferences/appsettings)?$",
    re.IGNORECASE,
)
_TYPES = {("microsoft.web", "sites"): "Microsoft.Web/sites",
          ("microsoft.app", "containerapps"): "Microsoft.App/containerApps"}  # fmt: skip


def app_identity_block(state: SandboxState, app: AppHost) -> dict[str, Any] | None:
    """An app's ``identity`` as ARM shows it: the state's
    :meth:`~verify.sandbox.state.apps.AppsMixin.app_identity_block`."""
    return state.app_identity_block(app)


def route(
    service: ArmService, request: Request, claims: dict[str, Any], path: str
) -> Response | None:
    """The answer for an app path, or None when ``path`` is not one."""
    m = APP_PATH.match(path)
    if m is None:
        return None
    state: SandboxState = service._state
    arm_type = _TYPES.get((m.group("provider").lower(), m.group("type").lower()))
    if arm_type is None:
        return None
    if request.method != "GET":
        raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
    group = f"/subscriptions/{state.subscription_id}/resourceGroups/{m.group('rg')}"
    name = m.group("name")
    app_id = f"{group}/providers/{arm_type}/{name}"
    app = state.app(app_id)
    if m.group("child"):
        service._authorize(claims, "Microsoft.Web/sites/config/read", app_id)
    else:
        service._authorize(claims, f"{arm_type}/read", app_id)
    if app is None or _type_of(app) != arm_type:
        raise ArmHttpError.of(
            404,
            "ResourceNotFound",
            f"The Resource '{arm_type}/{name}' under resource group '{m.group('rg')}' was "
            "not found.",
        )
    if not m.group("child"):
        return JSONResponse(_document(state, app))
    return JSONResponse({"value": _statuses(service, state, app)})


def _type_of(app: AppHost) -> str:
    return "Microsoft.App/containerApps" if app.kind == "containerapp" else "Microsoft.Web/sites"


def _document(state: SandboxState, app: AppHost) -> dict[str, Any]:
    """The app's document in the sandbox's one ARM model (its one record)."""
    return state.app_document(app)


def _statuses(service: ArmService, state: SandboxState, app: AppHost) -> list[dict[str, Any]]:
    vault_uri = service._vault_uri

    def vault_id(parsed: ParsedReference) -> str | None:
        for vault in state.vaults():
            by_name = parsed.vault and vault.name.lower() == parsed.vault.lower()
            url = (parsed.vault_url or "").rstrip("/").lower()
            if by_name or (url and vault_uri(vault.name).rstrip("/").lower() == url):
                return vault.id
        return None

    def secret_exists(secret_id: str) -> bool:
        vault = state.vault(secret_id.split("/secrets/", 1)[0])
        name = secret_id.rsplit("/", 1)[-1]
        return vault is not None and state.get_secret(vault.name, name) is not None

    def reads(principal_id: str, secret_id: str) -> bool:
        # A deleted identity gets no token: its orphaned assignments read nothing.
        if state.principal(principal_id) is None:
            return False
        decision = service._rbac.check_data_action(principal_id, GET_SECRET, secret_id)
        return decision.allowed

    return reference_statuses(
        _document(state, app),
        app.settings,
        vault_id=vault_id,
        secret_exists=secret_exists,
        reads_secret=reads,
        any_host=True,
    )
