"""Key Vault's ARM routes in the sandbox: a vault (get) and the soft-deleted vaults.

``GET .../providers/Microsoft.KeyVault/vaults/{name}`` answers the vault as ARM does;
``GET /subscriptions/{id}/providers/Microsoft.KeyVault[/locations/{location}]/deletedVaults
[/{name}]`` the vaults whose names soft delete holds, what ``python -m verify preflight``
asks before a vault is created.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from components import armid
from components.arm import rules as arm_rules
from components.arm import shapes as arm_shapes
from verify.sandbox.arm.errors import ArmHttpError, error
from verify.sandbox.state.records import DeletedVault
from verify.sandbox.state.store import SandboxState

DELETED_VAULTS = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.keyvault"
    r"(?:/locations/(?P<location>[^/]+))?/deletedvaults(?:/(?P<name>[^/]+))?$",
    re.IGNORECASE,
)


class VaultRoutes:
    """The routes; :class:`~verify.sandbox.arm.service.ArmService` sets ``_state`` and
    ``_vault_uri`` and provides ``_authorize``."""

    _state: SandboxState
    _vault_uri: Callable[[str], str]

    def _authorize(self, claims: dict[str, Any], action: str, scope: str) -> None:
        raise NotImplementedError  # AuthorizationRoutes._authorize

    def _deleted_vaults(
        self, request: Request, claims: dict[str, Any], match: re.Match[str]
    ) -> Response:
        """Soft-deleted vaults (they hold their global name): ``GET .../providers/
        Microsoft.KeyVault[/locations/{location}]/deletedVaults[/{name}]``, what
        ``python -m verify preflight`` asks before a vault is created."""
        if request.method != "GET":
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        sub = match.group("sub")
        if sub.lower() != self._state.subscription_id.lower():
            raise ArmHttpError.of(
                404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found."
            )
        self._authorize(
            claims, "Microsoft.KeyVault/locations/deletedVaults/read", f"/subscriptions/{sub}"
        )
        location, name = match.group("location"), match.group("name")
        if name is None:
            found = [
                d
                for d in self._state.deleted_vaults()
                if location is None or _same_region(d.vault.location, location)
            ]
            return JSONResponse({"value": [self._deleted_vault_json(d) for d in found]})
        held = self._state.deleted_vault(name)
        if held is None or location is None or not _same_region(held.vault.location, location):
            missing = arm_rules.deleted_vault_not_found(name)
            return error(missing.status, missing.code, missing.message)
        return JSONResponse(self._deleted_vault_json(held))

    def _deleted_vault_json(self, held: DeletedVault) -> dict[str, Any]:
        return arm_shapes.deleted_key_vault(
            subscription_id=self._state.subscription_id,
            name=held.vault.name,
            location=held.vault.location,
            vault_id=held.vault.id,
            deletion_date=_utc(held.deletion_date),
            scheduled_purge_date=_utc(held.scheduled_purge_date),
            purge_protection_enabled=held.vault.purge_protection,
        )

    def _vault(self, claims: dict[str, Any], rg: str, name: str) -> Response:
        vault_id = str(
            armid.resource(self._state.subscription_id, rg, "Microsoft.KeyVault", "vaults", name)
        )
        self._authorize(claims, "Microsoft.KeyVault/vaults/read", vault_id)
        vault = self._state.vault(vault_id)
        if vault is None:
            return _not_found("Microsoft.KeyVault/vaults", name, rg)
        return JSONResponse(
            arm_shapes.key_vault(
                arm_id=vault.id,
                location=vault.location,
                tenant_id=self._state.tenant_id,
                vault_uri=self._vault_uri(vault.name),
                soft_delete_retention_in_days=vault.soft_delete_retention_days,
                enable_purge_protection=vault.purge_protection,
            )
        )


def _same_region(a: str, b: str) -> bool:
    """``West Europe`` and ``westeurope`` name one region."""
    return a.replace(" ", "").lower() == b.replace(" ", "").lower()


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _not_found(type_: str, name: str, rg: str) -> JSONResponse:
    return error(
        404,
        "ResourceNotFound",
        f"The Resource '{type_}/{name}' under resource group '{rg}' was not found.",
    )
