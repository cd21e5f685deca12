"""App Service, Functions and Container Apps in the in-memory ARM.

A mixin of :class:`components.arm.memory.InMemoryArm`, as :mod:`memory_storage` is. What
it answers is what ARM returns (:mod:`components.arm.app_shapes`): the identity output map
(``userAssignedIdentities``: ID -> principalId, clientId), the system principal kept across
updates, ``defaultHostName``, ``latestRevisionFqdn``. Rules where the components meet them:

* a site needs its plan (404 ``NotFound`` "Cannot find ServerFarm ...") and a name no other
  site holds (site names are global: 409 ``Conflict``);
* every user-assigned identity must exist (400 ``FailedIdentityOperation``, as for VMs);
* a publishing-credentials policy needs its site; a container app its environment.

App settings are kept in :attr:`app_settings` (``POST .../config/appsettings/list``, not in
the site's GET), and :meth:`key_vault_reference_statuses` answers
``.../config/configreferences/appsettings`` from them, the vault's secrets and the role
assignments, with the status the platform would report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from components import armid, keyvault_refs
from components.arm import app_shapes
from components.arm.shapes import AttachedIdentity
from components.arm.tokens import (
    PULUMI_APP_SERVICE_PLAN,
    PULUMI_CONTAINER_APP,
    PULUMI_MANAGED_ENVIRONMENT,
    PULUMI_WEB_APP,
    PULUMI_WEB_APP_FTP_ALLOWED,
    PULUMI_WEB_APP_SCM_ALLOWED,
)
from components.roles import RoleCatalog

JSON = dict[str, Any]


GET_SECRET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"  # noqa: S105 (an action)


class AppsArm:
    """Handlers for the app tokens; the host provides ``get``, ``of_type``, ``_location``,
    ``_host_identities``, ``_new_guid``, ``tenant_id`` and ``_arm_error``."""

    @property
    def app_settings(self) -> dict[str, dict[str, str]]:  # provided by InMemoryArm
        raise NotImplementedError

    _new_guid: Callable[[], str]

    def get(self, arm_id: str) -> JSON | None:  # provided by InMemoryArm
        raise NotImplementedError

    def of_type(self, arm_type: str) -> list[JSON]:  # provided by InMemoryArm
        raise NotImplementedError

    def _location(self, inputs: JSON) -> str:  # provided by InMemoryArm
        raise NotImplementedError

    def _arm_error(self, status: int, code: str, message: str) -> Exception:
        raise NotImplementedError

    def _host_identities(
        self, arm_id: str, inputs: JSON, host: str
    ) -> tuple[str | None, dict[str, AttachedIdentity]]:
        raise NotImplementedError

    @property
    def tenant_id(self) -> str:
        raise NotImplementedError

    def apps_handlers(self) -> dict[str, Callable[[str, JSON], JSON]]:
        return {
            PULUMI_APP_SERVICE_PLAN: self._server_farm,
            PULUMI_WEB_APP: self._site,
            PULUMI_WEB_APP_FTP_ALLOWED: self._publishing_policy,
            PULUMI_WEB_APP_SCM_ALLOWED: self._publishing_policy,
            PULUMI_MANAGED_ENVIRONMENT: self._managed_environment,
            PULUMI_CONTAINER_APP: self._container_app,
        }

    # -- Microsoft.Web ------------------------------------------------------------------

    def _server_farm(self, arm_id: str, inputs: JSON) -> JSON:
        return app_shapes.server_farm(
            arm_id=arm_id,
            location=self._location(inputs),
            kind=str(inputs.get("kind") or "app"),
            reserved=bool(inputs.get("reserved", False)),
            sku=inputs.get("sku"),
            tags=inputs.get("tags"),
        )

    def _site(self, arm_id: str, inputs: JSON) -> JSON:
        farm_id = str(inputs.get("serverFarmId") or "")
        if self.get(farm_id) is None:
            raise self._arm_error(
                404, "NotFound", f"Cannot find ServerFarm with name {farm_id.rsplit('/', 1)[-1]}."
            )
        name = arm_id.rsplit("/", 1)[-1].lower()
        for other in self.of_type("Microsoft.Web/sites"):
            if other["name"].lower() == name and other["id"].lower() != arm_id.lower():
                raise self._arm_error(
                    409, "Conflict", f"Website with given name {name} already exists."
                )
        system, attached = self._host_identities(arm_id, inputs, "a site")
        site_config = dict(inputs.get("siteConfig") or {})
        self.app_settings[arm_id.lower()] = {
            str(s.get("name")): str(s.get("value") or "")
            for s in site_config.pop("appSettings", None) or []
        }
        return app_shapes.site(
            arm_id=arm_id,
            location=self._location(inputs),
            kind=str(inputs.get("kind") or "app"),
            identity_block=app_shapes.identity(
                system_principal_id=system, tenant_id=self.tenant_id, user_assigned=attached
            ),
            server_farm_id=farm_id,
            https_only=bool(inputs.get("httpsOnly", False)),
            key_vault_reference_identity=str(
                inputs.get("keyVaultReferenceIdentity") or keyvault_refs.SYSTEM_ASSIGNED
            ),
            public_network_access=inputs.get("publicNetworkAccess"),
            site_config=site_config,
            tags=inputs.get("tags"),
        )

    def _publishing_policy(self, arm_id: str, inputs: JSON) -> JSON:
        site_id = arm_id.split("/basicPublishingCredentialsPolicies/", 1)[0]
        if self.get(site_id) is None:
            raise self._arm_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.Web/sites/{site_id.rsplit('/', 1)[-1]}' under "
                "resource group was not found.",
            )
        return app_shapes.publishing_policy(arm_id=arm_id, allow=bool(inputs.get("allow")))

    # -- Microsoft.App --------------------------------------------------------------------

    def _managed_environment(self, arm_id: str, inputs: JSON) -> JSON:
        existing = self.get(arm_id)
        domain = (existing or {}).get("properties", {}).get("defaultDomain") or (
            f"{arm_id.rsplit('/', 1)[-1]}-{self._new_guid()[:8]}."
            f"{self._location(inputs).replace(' ', '').lower()}.azurecontainerapps.io"
        )
        return app_shapes.managed_environment(
            arm_id=arm_id,
            location=self._location(inputs),
            default_domain=domain,
            tags=inputs.get("tags"),
        )

    def _container_app(self, arm_id: str, inputs: JSON) -> JSON:
        env_id = str(inputs.get("managedEnvironmentId") or inputs.get("environmentId") or "")
        environment = self.get(env_id)
        if environment is None:
            raise self._arm_error(
                404,
                "ManagedEnvironmentNotFound",
                f"Managed environment '{env_id.rsplit('/', 1)[-1]}' was not found.",
            )
        system, attached = self._host_identities(arm_id, inputs, "a container app")
        configuration = dict(inputs.get("configuration") or {})
        held = {i.lower() for i in attached} | ({"system"} if system else set())
        for setting in configuration.get("identitySettings") or []:
            if str(setting.get("identity", "")).lower() not in held:
                raise self._arm_error(
                    400,
                    "InvalidIdentitySettings",
                    f"Identity '{setting.get('identity')}' in identitySettings is not "
                    "assigned to the container app.",
                )
        existing = self.get(arm_id)
        revision = (existing or {}).get("properties", {}).get("latestRevisionName")
        suffix = revision.rsplit("--", 1)[-1] if revision else self._new_guid()[:7]
        return app_shapes.container_app(
            arm_id=arm_id,
            location=self._location(inputs),
            identity_block=app_shapes.identity(
                system_principal_id=system,
                tenant_id=self.tenant_id,
                user_assigned=attached,
                compact=True,
            ),
            environment_id=environment["id"],
            default_domain=environment["properties"]["defaultDomain"],
            configuration=configuration,
            template=dict(inputs.get("template") or {}),
            latest_revision=suffix,
            tags=inputs.get("tags"),
        )

    # -- Key Vault references -------------------------------------------------------------

    def key_vault_reference_statuses(
        self,
        site_id: str,
        reads_secret: Callable[[str, str], bool] | None = None,
        *,
        any_host: bool = False,
    ) -> list[JSON]:
        """``GET .../sites/{app}/config/configreferences/appsettings``: one entry per
        setting that is a Key Vault reference, with the status App Service would report.

        ``reads_secret(principal_id, secret_arm_id)`` is the data plane's RBAC decision
        (the sandbox passes its evaluator); by default the role assignments held here are
        evaluated for ``getSecret``. ``any_host`` accepts SecretUri hosts other than
        ``*.vault.azure.net`` (a loopback vault)."""
        site = self.get(site_id)
        if site is None:
            return []

        def vault_id(parsed: keyvault_refs.ParsedReference) -> str | None:
            docs = self.of_type("Microsoft.KeyVault/vaults")
            return next((str(v["id"]) for v in docs if _is_vault(v, parsed)), None)

        return reference_statuses(
            site,
            self.app_settings.get(site["id"].lower(), {}),
            vault_id=vault_id,
            secret_exists=lambda secret_id: self.get(secret_id) is not None,
            reads_secret=reads_secret or self._reads_secret,
            any_host=any_host,
        )

    def _reads_secret(self, principal_id: str, secret_id: str) -> bool:
        catalog = RoleCatalog.builtin()
        assignments: Iterable[JSON] = self.of_type("Microsoft.Authorization/roleAssignments")
        for doc in assignments:
            props = doc["properties"]
            if props.get("principalId") != principal_id:
                continue
            if not armid.is_within(str(props.get("scope")), secret_id):
                continue
            role = catalog.find(str(props.get("roleDefinitionId")))
            if role is not None and role.permits_data_action(GET_SECRET):
                return True
        return False


def _is_vault(doc: JSON, parsed: keyvault_refs.ParsedReference) -> bool:
    """The vault a reference names: by name, or (a loopback vault) by its URI."""
    if parsed.vault:
        return str(doc["name"]).lower() == parsed.vault.lower()
    uri = str((doc.get("properties") or {}).get("vaultUri") or "")
    return (
        bool(parsed.vault_url)
        and uri.rstrip("/").lower() == str(parsed.vault_url).rstrip("/").lower()
    )


def reference_statuses(
    site: JSON,
    settings: Mapping[str, str],
    *,
    vault_id: Callable[[keyvault_refs.ParsedReference], str | None],
    secret_exists: Callable[[str], bool],
    reads_secret: Callable[[str, str], bool],
    any_host: bool = False,
) -> list[JSON]:
    """``.../config/configreferences/appsettings`` of ``site`` (its ARM document) with
    ``settings``: one entry per Key Vault reference, in the order App Service checks it
    (syntax, the resolving identity, the vault, access, the secret). One function for the
    in-memory ARM and the sandbox's ARM front; each passes its own lookups."""
    chosen = str(site["properties"].get("keyVaultReferenceIdentity") or "SystemAssigned")
    identity = site.get("identity") or {}
    user_assigned = {
        k.lower(): v for k, v in (identity.get("userAssignedIdentities") or {}).items()
    }
    if chosen == keyvault_refs.SYSTEM_ASSIGNED:
        principal = identity.get("principalId")
        kind, uai = "SystemAssigned", None
    else:
        principal = (user_assigned.get(chosen.lower()) or {}).get("principalId")
        kind, uai = "UserAssigned", chosen
    out = []
    for setting, value in sorted(settings.items()):
        if not keyvault_refs.is_reference(value):
            continue
        parsed = keyvault_refs.parse_reference(value, any_host=any_host)
        status, details = _reference_status(
            parsed, principal, vault_id, secret_exists, reads_secret
        )
        out.append(
            app_shapes.config_reference(
                site_id=site["id"],
                setting=setting,
                reference=value,
                status=status,
                identity_type=kind,
                user_assigned_id=uai,
                vault_name=parsed.vault if parsed else None,
                secret_name=parsed.secret if parsed else None,
                secret_version=parsed.version if parsed else None,
                details=details,
            )
        )
    return out


def _reference_status(
    parsed: keyvault_refs.ParsedReference | None,
    principal: str | None,
    vault_id: Callable[[keyvault_refs.ParsedReference], str | None],
    secret_exists: Callable[[str], bool],
    reads_secret: Callable[[str, str], bool],
) -> tuple[str, str]:
    if parsed is None:
        return keyvault_refs.INVALID_SYNTAX, "The reference syntax is invalid."
    if not principal:
        return (
            keyvault_refs.MSI_NOT_ENABLED,
            "The identity chosen to resolve Key Vault references is not enabled.",
        )
    vault = vault_id(parsed)
    if vault is None:
        named = parsed.vault or parsed.vault_url
        return keyvault_refs.VAULT_NOT_FOUND, f"Key Vault '{named}' was not found."
    secret_id = f"{vault}/secrets/{parsed.secret}"
    if not reads_secret(principal, secret_id):
        return (
            keyvault_refs.ACCESS_DENIED,
            "Access to Key Vault was denied: the identity lacks a role with "
            f"'{GET_SECRET}' at the secret or above.",
        )
    if not secret_exists(secret_id):
        return keyvault_refs.SECRET_NOT_FOUND, f"Secret '{parsed.secret}' was not found."
    return keyvault_refs.RESOLVED, "Reference resolved successfully."
