"""App hosts (App Service / Functions sites, container apps) in the sandbox's state (a
SandboxState mixin).

An app holds identities as a VM does (a system principal made with it and deleted with it
or when turned off; user-assigned identities bound as attached), plus what its identity
endpoint needs: the secret ``X-IDENTITY-HEADER`` value the platform gives the app's
process (``IDENTITY_HEADER``), and the identities hidden from the app's code by a Container
Apps ``identitySettings`` lifecycle of ``None`` (or ``Init``: init containers only; the
probe and the app's code run in the main container). Creating or deleting an app emits
``app_created`` / ``app_deleted`` so the Sandbox gives each app its own listener.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.arm import app_shapes
from components.arm.shapes import AttachedIdentity
from components.arm.store import ArmStore
from verify.sandbox.state.records import SandboxError, key

#: How identitySettings and Key Vault secrets name the system identity.
SYSTEM = "system"


@dataclass(frozen=True)
class AppHost:
    id: str
    name: str
    kind: str  # webapp | functionapp | containerapp
    resource_group: str
    system_principal_id: str | None
    user_assigned: tuple[str, ...]
    identity_header: str
    #: ``system`` and/or identity ARM IDs (lower-cased) the app's code cannot use.
    hidden: frozenset[str] = frozenset()
    tags: dict[str, str] = field(default_factory=dict)
    #: For sites, its app settings (its ARM document is the ARM model's, in ``arm_store``).
    settings: dict[str, str] = field(default_factory=dict)


class AppsMixin:
    """The host (SandboxState) provides ``_lock``, ``_emit``, ``_require_group``,
    ``_resource_id``, ``create_principal``, ``_delete_principal``, ``_identities`` and
    ``_bind``."""

    _lock: Any
    _apps: dict[str, AppHost]
    arm_store: ArmStore

    def _init_apps(self) -> None:
        self._apps = {}

    def create_or_update_app(
        self,
        app_id: str,
        *,
        kind: str,
        system_assigned: bool,
        user_assigned: Sequence[str],
        hidden: Collection[str] = (),
        tags: dict[str, str] | None = None,
        document: dict[str, Any] | None = None,
        settings: dict[str, str] | None = None,
    ) -> AppHost:
        """Create the app or set its identities (a PUT: every listed identity rebound);
        ``document`` / ``settings`` None keep what the app had. The document is the app's one
        ARM record (the model's, in ``arm_store``), its identity block the state's."""
        host: Any = self
        parts = app_id.rstrip("/").split("/")
        group, name = parts[parts.index("resourceGroups") + 1], parts[-1]
        host._require_group(group)
        events: list[tuple[str, object]] = []
        with self._lock:
            existing = self._apps.get(key(app_id))
            # Every listed identity is rebound, so each must exist (nothing is kept).
            principal_id, ids = host._identity_block(
                (name, app_id),
                existing.system_principal_id if existing else None,
                system_assigned,
                user_assigned,
                kept=(),
                events=events,
            )
            app = AppHost(
                id=app_id,
                name=name,
                kind=kind,
                resource_group=group,
                system_principal_id=principal_id,
                user_assigned=ids,
                identity_header=existing.identity_header if existing else secrets.token_hex(16),
                hidden=frozenset(h.lower() for h in hidden),
                tags=dict(tags or {}),
                settings=dict(
                    settings if settings is not None else (existing.settings if existing else {})
                ),
            )
            self._apps[key(app_id)] = app
            kept = {key(u) for u in existing.user_assigned} if existing else set()
            host._bind(app, kept, None)
            self._write_app_document(app, document)
        if existing is None:
            events.insert(0, ("app_created", app))
        host._emit(events)
        return app

    def app_identity_block(self, app: AppHost) -> dict[str, Any] | None:
        """An app's ``identity`` as ARM shows it: each user-assigned identity as attached."""
        host: Any = self
        attached = {}
        for uai_id in app.user_assigned:
            uai = host.attached_identity(app.id, uai_id)
            if uai is not None:
                attached[uai.id] = AttachedIdentity(uai.principal_id, uai.client_id)
        return app_shapes.identity(
            system_principal_id=app.system_principal_id,
            tenant_id=host.tenant_id,
            user_assigned=attached,
            compact=app.kind == "containerapp",
        )

    def app_document(self, app: AppHost) -> dict[str, Any]:
        """The app's ARM document (a copy), or the bare envelope when none was written."""
        with self._lock:
            doc = self.arm_store.resources.get(key(app.id))
            if doc is not None:
                return copy.deepcopy(doc)
        kind = (
            "Microsoft.App/containerApps" if app.kind == "containerapp" else "Microsoft.Web/sites"
        )
        return {"id": app.id, "name": app.name, "type": kind}

    def _write_app_document(self, app: AppHost, document: dict[str, Any] | None) -> None:
        """The app's document with the state's identity block (lock held); None keeps the
        one written before, its identity block brought up to date."""
        old = self.arm_store.resources.get(key(app.id))
        if document is None and old is None:
            return
        doc = copy.deepcopy(document if document is not None else old)
        assert doc is not None
        block = self.app_identity_block(app)
        doc.pop("identity", None)
        if block is not None:
            doc["identity"] = block
        self.arm_store.resources[key(app.id)] = doc

    def app(self, app_id: str) -> AppHost | None:
        with self._lock:
            return self._apps.get(key(app_id))

    def apps(self) -> list[AppHost]:
        with self._lock:
            return list(self._apps.values())

    def delete_app(self, app_id: str) -> AppHost | None:
        """Delete the app and its system principal; its role assignments stay, orphaned."""
        host: Any = self
        events: list[tuple[str, object]] = []
        with self._lock:
            app = self._apps.pop(key(app_id), None)
            if app is None:
                return None
            self.arm_store.resources.pop(key(app_id), None)
            for binding in [b for b in host._bindings if b[0] == key(app_id)]:
                del host._bindings[binding]
            if app.system_principal_id:
                events.append(
                    ("principal_deleted", host._delete_principal(app.system_principal_id))
                )
        host._emit([("app_deleted", app), *events])
        return app

    def set_app_system_identity(self, app_id: str, enabled: bool) -> AppHost:
        """Turn the app's system identity on or off (a new principal when turned on)."""
        app = self.app(app_id)
        if app is None:
            raise SandboxError(404, "ResourceNotFound", f"The Resource '{app_id}' was not found.")
        return self.create_or_update_app(
            app_id,
            kind=app.kind,
            system_assigned=enabled,
            user_assigned=app.user_assigned,
            hidden=app.hidden,
            tags=app.tags,
        )
