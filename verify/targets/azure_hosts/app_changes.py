"""What the verifier and the lifecycle read and change on an app in a real subscription:
whether it exists, its deletion, its system identity on or off, and its Key Vault
reference statuses. Plain ARM REST with the operator's credential (ARM token), as the
sandbox target does through its ARM front.

* web and Function apps: ``Microsoft.Web/sites`` at :data:`SITES_API_VERSION` (the
  version the sandbox target reads sites with);
* container apps: ``Microsoft.App/containerApps`` at the Container Apps path's version.

An identity change GETs the app and PATCHes an ``identity`` block rebuilt with
:func:`components.identity_type.identity_type`, listing every user-assigned identity the
app holds: a PATCH that omits them would drop them. A delete (and a Container Apps PATCH,
which ARM runs asynchronously) answers 202; the operation is then polled through its
``Azure-AsyncOperation`` or ``Location`` header, bounded. A 403 names the action to grant;
the operator's token appears in no message (:mod:`.rest`).
"""

from __future__ import annotations

from typing import Any

from components.identity_type import identity_type
from verify.targets.azure_hosts.app_service import READ_SITE, app_record
from verify.targets.azure_hosts.base import HostContext, HostProbeError, wait_until
from verify.targets.azure_hosts.container_app import APP_API_VERSION as CONTAINER_APPS_API_VERSION
from verify.targets.azure_hosts.rest import ARM, ARM_SCOPE, BearerClient, Refusal

#: Microsoft.Web sites and their config (verify/targets/sandbox.py ``APP_API_VERSION``).
SITES_API_VERSION = "2024-11-01"
#: Bound on waiting for a delete or an identity change ARM runs asynchronously.
OPERATION_WAIT_SECONDS = 600.0
#: One HTTP call.
CALL_TIMEOUT = 60.0

DELETE_SITE = Refusal("Microsoft.Web/sites/delete", "Website Contributor")
WRITE_SITE = Refusal(
    "Microsoft.Web/sites/write and Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    "Website Contributor + Managed Identity Operator on each identity it holds",
)
READ_REFERENCES = Refusal("Microsoft.Web/sites/config/Read", "Reader")
READ_CONTAINER_APP = Refusal("Microsoft.App/containerApps/read", "Reader")
DELETE_CONTAINER_APP = Refusal("Microsoft.App/containerApps/delete", "Contributor")
WRITE_CONTAINER_APP = Refusal(
    "Microsoft.App/containerApps/write and "
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    "Contributor + Managed Identity Operator on each identity it holds",
)

#: The RBAC actions these calls need (docs/verify.md's real-Azure table lists each).
PERMISSIONS = (
    READ_SITE.action,
    "Microsoft.Web/sites/delete",
    "Microsoft.Web/sites/write",
    "Microsoft.Web/sites/config/Read",
    "Microsoft.App/containerApps/read",
    "Microsoft.App/containerApps/delete",
    "Microsoft.App/containerApps/write",
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
)
_TERMINAL = {"succeeded", "failed", "canceled", "cancelled"}


def _app(ctx: HostContext, app: str) -> tuple[str, str, bool]:
    """(ARM ID, name, is a container app) of the stack's app ``app`` (``web`` or ``app:web``)."""
    record = app_record(ctx, app)
    return str(record["id"]), str(record.get("name") or app), record.get("kind") == "containerapp"


def _url(arm_id: str, container_app: bool) -> str:
    version = CONTAINER_APPS_API_VERSION if container_app else SITES_API_VERSION
    return f"{ARM}{arm_id}?api-version={version}"


def _client(ctx: HostContext) -> BearerClient:
    return BearerClient(ctx.credential, ctx.http)


def app_exists(ctx: HostContext, app: str) -> bool:
    """``GET`` the app: 200 -> True, 404 -> False."""
    arm_id, name, container = _app(ctx, app)
    reply = _client(ctx).request(
        "GET",
        _url(arm_id, container),
        scope=ARM_SCOPE,
        what=f"reading app {name}",
        refusal=READ_CONTAINER_APP if container else READ_SITE,
        timeout=CALL_TIMEOUT,
        ok=(200, 404),
    )
    return reply.status == 200


def _await(
    ctx: HostContext, client: BearerClient, headers: Any, what: str, refusal: Refusal
) -> None:
    """Poll a 202's operation (``Azure-AsyncOperation`` first, else ``Location``) until it
    is done, at most :data:`OPERATION_WAIT_SECONDS`; a failed operation raises."""
    lowered = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
    operation = lowered.get("azure-asyncoperation")
    location = lowered.get("location")
    if not operation and not location:
        return

    def poll() -> str | None:
        if operation:
            reply = client.request(
                "GET", operation, scope=ARM_SCOPE, what=what, refusal=refusal, timeout=CALL_TIMEOUT
            )
            body = reply.body if isinstance(reply.body, dict) else {}
            status = str(body.get("status") or "")
            return status if status.lower() in _TERMINAL else None
        reply = client.request(
            "GET",
            str(location),
            scope=ARM_SCOPE,
            what=what,
            refusal=refusal,
            timeout=CALL_TIMEOUT,
            ok=(200, 201, 202, 204, 404),
        )
        return None if reply.status == 202 else "Succeeded"

    status = wait_until(ctx, OPERATION_WAIT_SECONDS, poll, what)
    if status.lower() != "succeeded":
        raise HostProbeError(f"{what}: the operation ended {status}")


def delete_app(ctx: HostContext, app: str) -> None:
    """``DELETE`` the app and wait for ARM to finish (an app already gone is deleted)."""
    arm_id, name, container = _app(ctx, app)
    client = _client(ctx)
    what = f"deleting app {name}"
    refusal = DELETE_CONTAINER_APP if container else DELETE_SITE
    reply = client.request(
        "DELETE",
        _url(arm_id, container),
        scope=ARM_SCOPE,
        what=what,
        refusal=refusal,
        timeout=CALL_TIMEOUT,
        ok=(200, 202, 204, 404),
    )
    if reply.status == 202:
        _await(ctx, client, reply.headers, what, refusal)


def identity_block(current: Any, system: bool, *, compact: bool) -> dict[str, Any]:
    """The ``identity`` to PATCH: the system identity on or off, every user-assigned
    identity ``current`` (the app's identity as ARM returned it) lists kept."""
    users = list(((current or {}).get("userAssignedIdentities") or {}).keys())
    block: dict[str, Any] = {"type": identity_type(system, bool(users), compact=compact)}
    if users:
        block["userAssignedIdentities"] = {uid: {} for uid in users}
    return block


def set_app_system_identity(ctx: HostContext, app: str, enabled: bool) -> None:
    """Turn the app's system identity on or off, keeping its user-assigned identities."""
    arm_id, name, container = _app(ctx, app)
    client = _client(ctx)
    read = client.request(
        "GET",
        _url(arm_id, container),
        scope=ARM_SCOPE,
        what=f"reading app {name}",
        refusal=READ_CONTAINER_APP if container else READ_SITE,
        timeout=CALL_TIMEOUT,
    )
    site = read.body if isinstance(read.body, dict) else {}
    block = identity_block(site.get("identity"), enabled, compact=container)
    what = f"{'enabling' if enabled else 'disabling'} the system identity of app {name}"
    refusal = WRITE_CONTAINER_APP if container else WRITE_SITE
    reply = client.request(
        "PATCH",
        _url(arm_id, container),
        scope=ARM_SCOPE,
        what=what,
        refusal=refusal,
        json_body={"identity": block},
        timeout=CALL_TIMEOUT,
    )
    if reply.status in (201, 202):
        _await(ctx, client, reply.headers, what, refusal)


def key_vault_reference_statuses(ctx: HostContext, app: str) -> dict[str, str]:
    """``GET {site}/config/configreferences/appsettings``: setting -> status (web and
    Function apps; a container app has no such statuses)."""
    arm_id, name, container = _app(ctx, app)
    if container:
        raise HostProbeError(f"app {name} is a container app: it has no Key Vault references")
    reply = _client(ctx).request(
        "GET",
        _url(f"{arm_id}/config/configreferences/appsettings", False),
        scope=ARM_SCOPE,
        what=f"reading the Key Vault reference statuses of app {name}",
        refusal=READ_REFERENCES,
        timeout=CALL_TIMEOUT,
    )
    body = reply.body if isinstance(reply.body, dict) else {}
    return {
        str(ref["name"]): str((ref.get("properties") or {}).get("status") or "")
        for ref in body.get("value") or []
    }
