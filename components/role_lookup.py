"""Resolve a role reference (name, GUID or definition ID) to a :class:`RoleDefinition`.

The built-in catalog answers without a cloud call and with close-match hints. Custom
roles (and built-ins newer than the shipped catalog) are found by name through
azure-mgmt-authorization, but only when deploying to real Azure: the lookup is an
injected object, so unit tests fake the client and mock runs never reach the network.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pulumi.runtime import mocks, settings

from components.errors import ConfigError
from components.roles import RoleCatalog, RoleDefinition, guid_from_role_reference


class RoleResolver(Protocol):
    def resolve(self, reference: str, field: str = "role") -> RoleDefinition:
        """The role ``reference`` names; :class:`ConfigError` naming ``field`` if none."""
        ...


class CatalogRoleResolver:
    """Built-in roles only: a name or GUID not in the catalog is refused.

    A GUID the catalog does not know may be a custom role, or a typo; taken on trust it
    used to pass validation and fail at deploy time with an ARM error per resource.
    Only the real-Azure lookup (:class:`AzureRoleResolver`) can say which.
    """

    def __init__(self, catalog: RoleCatalog | None = None) -> None:
        self.catalog = catalog or RoleCatalog.builtin()

    def resolve(self, reference: str, field: str = "role") -> RoleDefinition:
        if not isinstance(reference, str) or not reference.strip():
            raise ConfigError(
                field, reference, "is empty", "name a role, e.g. 'Key Vault Secrets User'"
            )
        role = self.catalog.find(reference)
        if role is not None:
            return role
        if guid_from_role_reference(reference) is not None:
            raise ConfigError(
                field,
                reference,
                "is a role GUID that is not in the built-in role catalog",
                "use a built-in role name (e.g. 'Key Vault Secrets User'); a custom role's "
                "GUID is looked up in Azure only when deploying there (pulumi up with "
                "ARM_SUBSCRIPTION_ID set)",
            )
        return self.catalog.get(reference, field)  # raises with the closest names


class RoleDefinitionsClient(Protocol):
    """The slice of ``AuthorizationManagementClient`` the lookup uses."""

    @property
    def role_definitions(self) -> Any: ...


def _to_role(definition: Any) -> RoleDefinition:
    """An azure-mgmt-authorization ``RoleDefinition`` model -> our :class:`RoleDefinition`."""
    perms = list(definition.permissions or [])

    def collect(attr: str) -> tuple[str, ...]:
        return tuple(item for p in perms for item in (getattr(p, attr, None) or []))

    return RoleDefinition(
        name=definition.role_name,
        guid=str(definition.name).lower(),
        description=definition.description or "",
        category="custom" if definition.role_type == "CustomRole" else "",
        actions=collect("actions"),
        not_actions=collect("not_actions"),
        data_actions=collect("data_actions"),
        not_data_actions=collect("not_data_actions"),
    )


class AzureRoleResolver:
    """Catalog first, then ``role_definitions.list(scope, filter="roleName eq '...'")``.

    ``client_factory`` builds an ``AuthorizationManagementClient`` on first need, so a
    stack whose roles are all built-in never creates a credential.
    """

    def __init__(
        self,
        subscription_id: str,
        client_factory: Callable[[], RoleDefinitionsClient],
        catalog: RoleCatalog | None = None,
    ) -> None:
        self.scope = f"/subscriptions/{subscription_id}"
        self._factory = client_factory
        self._client: RoleDefinitionsClient | None = None
        self._catalog = CatalogRoleResolver(catalog)
        self._cache: dict[str, RoleDefinition] = {}

    def resolve(self, reference: str, field: str = "role") -> RoleDefinition:
        found = self._catalog.catalog.find(reference) if isinstance(reference, str) else None
        if found is not None or not isinstance(reference, str) or not reference.strip():
            return self._catalog.resolve(reference, field)
        key = reference.strip().lower()
        if key not in self._cache:
            guid = guid_from_role_reference(reference)
            self._cache[key] = (
                self._lookup(reference.strip(), field)
                if guid is None
                else self._lookup_guid(reference.strip(), guid, field)
            )
        return self._cache[key]

    def _client_or_new(self) -> RoleDefinitionsClient:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def _lookup_guid(self, reference: str, guid: str, field: str) -> RoleDefinition:
        """``role_definitions.get(scope, guid)``: a custom role exists, or it is refused."""
        try:
            definition = self._client_or_new().role_definitions.get(self.scope, guid)
        except Exception as exc:
            if getattr(exc, "status_code", None) == 404:
                raise ConfigError(
                    field,
                    reference,
                    f"is not a built-in role and no role definition {guid} exists in {self.scope}",
                    "check the GUID (az role definition list --custom-role-only true "
                    "--query '[].name'), or use a built-in role name",
                ) from exc
            raise ConfigError(
                field,
                reference,
                f"is not a built-in role and looking it up in Azure failed ({exc})",
                "check the GUID, your Azure login and Microsoft.Authorization/roleDefinitions/read",
            ) from exc
        return _to_role(definition)

    def _lookup(self, name: str, field: str) -> RoleDefinition:
        if "'" in name:
            raise ConfigError(field, name, "contains a quote", "give the role name exactly")
        client = self._client_or_new()
        try:
            hits: Iterable[Any] = list(
                client.role_definitions.list(self.scope, filter=f"roleName eq '{name}'")
            )
        except Exception as exc:
            raise ConfigError(
                field,
                name,
                f"is not a built-in role and looking it up in Azure failed ({exc})",
                "check the name, your Azure login and Microsoft.Authorization/roleDefinitions/read",
            ) from exc
        roles = [_to_role(d) for d in hits]
        if not roles:
            return self._catalog.resolve(name, field)  # raises with the closest names
        return roles[0]


def default_role_resolver() -> RoleResolver:
    """Catalog-only in Pulumi's mock runtime (tests, sandbox); Azure fallback otherwise.

    The subscription for the fallback comes from ``ARM_SUBSCRIPTION_ID`` or
    ``AZURE_SUBSCRIPTION_ID`` (as the azure-native provider reads it); without one, the
    catalog alone is used and unknown names fail with close matches.
    """
    if isinstance(settings.get_monitor(), mocks.MockMonitor):
        return CatalogRoleResolver()
    subscription = os.environ.get("ARM_SUBSCRIPTION_ID") or os.environ.get("AZURE_SUBSCRIPTION_ID")
    if not subscription:
        return CatalogRoleResolver()

    def client() -> RoleDefinitionsClient:
        # Imported on first need: the management SDK is slow to import and most stacks
        # never leave the catalog.
        from azure.identity import DefaultAzureCredential  # noqa: PLC0415
        from azure.mgmt.authorization import AuthorizationManagementClient  # noqa: PLC0415

        return AuthorizationManagementClient(DefaultAzureCredential(), subscription)

    return AzureRoleResolver(subscription, client)
