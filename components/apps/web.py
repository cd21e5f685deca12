"""App Service web apps and Function apps (Linux), with managed identities only.

Both are ``Microsoft.Web/sites`` (a Function app is ``kind: functionapp,linux``) on a Linux
``Microsoft.Web/serverfarms`` plan the component creates or is given. Secure defaults: HTTPS
only, FTP(S) off, minimum TLS 1.2 (site and SCM), basic publishing credentials off for FTP
and SCM (``basicPublishingCredentialsPolicies``), public network access off unless asked.
Key Vault references are app settings resolved by the platform with the identity named by
``keyVaultReferenceIdentity``, always sent, so which identity reads the vault is never a
silent default. A Function app's host reaches its storage (``AzureWebJobsStorage``) with a
managed identity too (:mod:`components.apps.host_storage`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi
import pulumi_azure_native as azure_native

from components.apps import host_storage, names
from components.apps.identities import (
    CLIENT_ID_SETTING,
    SYSTEM,
    HasClientId,
    check_held,
    code_client_id,
)
from components.errors import NOT_SET, ConfigError
from components.grants import Grantable, system_identity_principal
from components.identity import ManagedIdentities
from components.keyvault_refs import SYSTEM_ASSIGNED, parse_secret_uri, reference_value
from components.role_assignment import RoleAssignment, RoleAssignmentArgs
from components.storage import StorageAccount, StorageAccountArgs

WEBAPP_KIND = "app,linux"
FUNCTIONAPP_KIND = "functionapp,linux"
MIN_TLS = "1.2"


@dataclass(frozen=True)
class KeyVaultReference:
    """App setting ``setting`` = the Key Vault secret at ``secret_uri`` (versionless to
    follow rotation, e.g. ``KeyVault.secret_uris[name]``), fetched by the platform."""

    setting: str
    secret_uri: pulumi.Input[str]

    @classmethod
    def to(cls, setting: str, vault: Any, secret: str) -> KeyVaultReference:
        """A reference to ``secret``, which ``vault`` (a :class:`KeyVault`) must declare."""
        uris: Mapping[str, pulumi.Input[str]] = vault.secret_uris
        if secret not in uris:
            raise ConfigError(
                f"key_vault_references[{setting}]",
                secret,
                "is not a secret the vault declares",
                "use one of " + (", ".join(repr(s) for s in uris) or "(none declared)"),
            )
        return cls(setting, uris[secret])


@dataclass(frozen=True)
class AppServicePlanArgs:
    """A Linux plan (``kind: linux``, ``reserved: true``)."""

    name: str
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str] | None = None
    sku: str = "B1"
    tags: Mapping[str, str] = field(default_factory=dict)


class AppServicePlan(pulumi.ComponentResource):
    """Outputs: ``id``, ``name``."""

    def __init__(
        self,
        resource_name: str,
        args: AppServicePlanArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        names.plan_name(args.name, "name")
        super().__init__("mikit:web:AppServicePlan", resource_name, None, opts)
        plan = azure_native.web.AppServicePlan(
            resource_name,
            name=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind="linux",
            reserved=True,
            sku=azure_native.web.SkuDescriptionArgs(name=args.sku),
            tags=dict(args.tags) or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id: pulumi.Output[str] = plan.id
        self.name: pulumi.Output[str] = plan.name
        self.register_outputs({"id": self.id, "name": self.name})


@dataclass(frozen=True)
class WebAppArgs:
    name: str
    resource_group_name: pulumi.Input[str]
    identities: ManagedIdentities = field(default_factory=ManagedIdentities)
    location: pulumi.Input[str] | None = None
    plan_id: pulumi.Input[str] | None = None
    """An existing Linux plan; None: the component creates one named ``plan_name``."""
    plan_name: str | None = None
    plan_sku: str = "B1"
    app_settings: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    key_vault_references: Sequence[KeyVaultReference] = ()
    key_vault_reference_identity: pulumi.Input[str] | None = None
    """``"system"`` or the ID of a user-assigned identity the app holds; None: the system
    identity (an error when it is off and there are references)."""
    default_identity: HasClientId | None = None
    """The user-assigned identity the app's code uses (``AZURE_CLIENT_ID``)."""
    public_network_access: bool = False
    linux_fx_version: str = "PYTHON|3.12"
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionAppArgs(WebAppArgs):
    worker_runtime: str = "python"
    linux_fx_version: str = "Python|3.12"
    host_storage_account_id: pulumi.Input[str] | None = None
    """An existing storage account for the host (``AzureWebJobsStorage``); None: the
    component creates a dedicated one (:mod:`components.apps.host_storage`)."""
    host_storage_account_name: str | None = None
    """The name of the account the component creates; None: derived from ``name``."""
    host_storage_identity: HasClientId | str | None = None
    """``"system"`` or the user-assigned identity (id and client_id) the host reaches its
    storage with; None: the system identity when on, else the app's only one."""


class _Site(pulumi.ComponentResource, Grantable):
    KIND: ClassVar[str]
    COMPONENT_TYPE: ClassVar[str]

    def __init__(
        self, resource_name: str, args: WebAppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        settings, kv_identity, client_id = self._check(args)
        super().__init__(self.COMPONENT_TYPE, resource_name, None, opts)
        self._grant_name = resource_name
        self.identities = args.identities
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags) or None
        plan_id = args.plan_id
        self.plan: AppServicePlan | None = None
        if plan_id is None:
            self.plan = AppServicePlan(
                f"{resource_name}-plan",
                AppServicePlanArgs(
                    name=args.plan_name or f"{args.name}-plan",
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    sku=args.plan_sku,
                    tags=args.tags,
                ),
                opts=child,
            )
            plan_id = self.plan.id
        self._before_site(resource_name, args)
        if client_id is not None:
            settings[CLIENT_ID_SETTING] = client_id
        site = azure_native.web.WebApp(
            resource_name,
            name=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            kind=self.KIND,
            reserved=True,
            server_farm_id=plan_id,
            identity=azure_native.web.ManagedServiceIdentityArgs(
                type=args.identities.type,  # type: ignore[arg-type]
                user_assigned_identities=list(args.identities.user_assigned_ids) or None,
            ),
            key_vault_reference_identity=kv_identity,
            https_only=True,
            public_network_access="Enabled" if args.public_network_access else "Disabled",
            site_config=azure_native.web.SiteConfigArgs(
                linux_fx_version=args.linux_fx_version,
                ftps_state="Disabled",
                min_tls_version=MIN_TLS,
                scm_min_tls_version=MIN_TLS,
                http20_enabled=True,
                app_settings=[
                    azure_native.web.NameValuePairArgs(name=k, value=v)
                    for k, v in sorted(settings.items())
                ],
            ),
            tags=tags,
            opts=child,
        )
        # Basic (user/password) publishing credentials off for FTP and for SCM (Kudu).
        site_child = pulumi.ResourceOptions(parent=self, depends_on=[site])
        self.ftp_publishing = azure_native.web.WebAppFtpAllowed(
            f"{resource_name}-ftp",
            name=site.name,
            resource_group_name=args.resource_group_name,
            allow=False,
            opts=site_child,
        )
        self.scm_publishing = azure_native.web.WebAppScmAllowed(
            f"{resource_name}-scm",
            name=site.name,
            resource_group_name=args.resource_group_name,
            allow=False,
            opts=site_child,
        )
        self._after_site(resource_name, args, site)
        self.id: pulumi.Output[str] = site.id
        self.name: pulumi.Output[str] = site.name
        self.kind = self.KIND
        self.identity: pulumi.Output[Any] = site.identity
        self.principal_id: pulumi.Output[str | None] = site.identity.apply(
            lambda i: (i.principal_id if i else None) if args.identities.system_assigned else None
        )
        self.host_name: pulumi.Output[str] = site.default_host_name
        self.client_id: pulumi.Input[str] | None = client_id
        self.key_vault_reference_identity: pulumi.Input[str] = kv_identity
        self.key_vault_references: dict[str, pulumi.Input[str]] = {
            r.setting: r.secret_uri for r in args.key_vault_references
        }
        self.register_outputs(
            {
                "id": self.id,
                "name": self.name,
                "principal_id": self.principal_id,
                "host_name": self.host_name,
                **self._extra_outputs(),
            }
        )

    def _extra_settings(self, args: WebAppArgs) -> dict[str, pulumi.Input[str]]:
        return {}

    def _host_settings(
        self, args: WebAppArgs, default: HasClientId | None
    ) -> dict[str, pulumi.Input[str]]:
        """Settings decided once the identities are checked (the Functions host's)."""
        return {}

    def _before_site(self, resource_name: str, args: WebAppArgs) -> None:
        """Children the site needs first."""

    def _after_site(self, resource_name: str, args: WebAppArgs, site: Any) -> None:
        """Children made from the site's outputs."""

    def _extra_outputs(self) -> dict[str, Any]:
        return {}

    def _check(
        self, args: WebAppArgs
    ) -> tuple[dict[str, pulumi.Input[str]], pulumi.Input[str], pulumi.Input[str] | None]:
        names.site_name(args.name, "name")
        if args.plan_id is not None and args.plan_name is not None:
            raise ConfigError(
                "plan_name",
                args.plan_name,
                "is set together with plan_id",
                "give plan_id (an existing plan) or plan_name (a new one), not both",
            )
        if args.plan_name is not None:
            names.plan_name(args.plan_name, "plan_name")
        settings: dict[str, pulumi.Input[str]] = dict(self._extra_settings(args))
        for key, value in args.app_settings.items():
            names.setting_name(key, f"app_settings[{key}]")
            if key == CLIENT_ID_SETTING:
                raise ConfigError(
                    f"app_settings[{key}]",
                    value if isinstance(value, str) else "<an Output>",
                    "is set by the component from default_identity",
                    "remove it and pass default_identity=<the UserAssignedIdentity>",
                )
            settings[key] = value
        for ref in args.key_vault_references:
            where = f"key_vault_references[{ref.setting}]"
            names.setting_name(ref.setting, where)
            if ref.setting in settings or ref.setting == CLIENT_ID_SETTING:
                raise ConfigError(
                    where,
                    ref.setting,
                    "is also a plain app setting",
                    "give the reference its own setting name, or drop the plain setting",
                )
            if isinstance(ref.secret_uri, str) and parse_secret_uri(ref.secret_uri) is None:
                raise ConfigError(
                    f"{where}.secret_uri",
                    ref.secret_uri,
                    "is not a Key Vault secret URI",
                    "use https://<vault>.vault.azure.net/secrets/<name>[/<version>] "
                    "(e.g. vault.secret_uris['<name>'])",
                )
            settings[ref.setting] = ref.secret_uri  # made a reference below, once all passed
        chosen = args.key_vault_reference_identity
        kv_identity: pulumi.Input[str]
        if chosen is None:
            if args.key_vault_references and not args.identities.system_assigned:
                raise ConfigError(
                    "key_vault_reference_identity",
                    NOT_SET,
                    "is not set, so Key Vault references would resolve with the system "
                    "identity, which is off",
                    "set it to the ID of the user-assigned identity that may read the vault",
                )
            kv_identity = SYSTEM_ASSIGNED
        else:
            check_held(
                args.identities, chosen, "key_vault_reference_identity", "Key Vault references"
            )
            kv_identity = SYSTEM_ASSIGNED if chosen == SYSTEM else chosen
        client_id = code_client_id(args.identities, args.default_identity, "default_identity")
        settings.update(self._host_settings(args, args.default_identity))
        for ref in args.key_vault_references:
            settings[ref.setting] = pulumi.Output.from_input(ref.secret_uri).apply(reference_value)
        return settings, kv_identity, client_id

    def _grant_principal(self) -> pulumi.Output[str]:
        return system_identity_principal(
            self.identities, self.principal_id, self._grant_name, "app"
        )


class WebApp(_Site):
    """A Linux App Service app whose only credentials are its managed identities.

    Outputs: ``id``, ``name``, ``principal_id`` (system identity; None when off),
    ``identity`` (azure-native's output with the user-assigned map), ``host_name``
    (``<name>.azurewebsites.net``), ``client_id`` (``AZURE_CLIENT_ID``, None: system),
    ``key_vault_reference_identity``, ``key_vault_references`` (setting -> secret URI).
    ``grant(role, scope)`` grants the system identity.
    """

    KIND = WEBAPP_KIND
    COMPONENT_TYPE = "mikit:web:WebApp"


class FunctionApp(_Site):
    """A Linux Function app (``kind: functionapp,linux``): the same identities, settings and
    outputs as :class:`WebApp`, plus the Functions runtime settings and identity-based host
    storage (:mod:`components.apps.host_storage`): ``AzureWebJobsStorage__accountName``
    (with ``__credential``/``__clientId`` for a user-assigned identity), a dedicated storage
    account unless ``host_storage_account_id`` names one, and Storage Blob Data Owner for
    the chosen identity at that account's scope, registered as a child.

    More outputs: ``host_storage_account_id``, ``host_storage_account_name``,
    ``host_storage_identity`` (``"system"`` or the identity's ID),
    ``host_storage_principal_id``; ``host_storage_account`` (the created
    :class:`~components.storage.StorageAccount`, None for an existing one) and
    ``host_storage_assignment`` (the :class:`~components.role_assignment.RoleAssignment`).
    """

    KIND = FUNCTIONAPP_KIND
    COMPONENT_TYPE = "mikit:web:FunctionApp"

    def _extra_settings(self, args: WebAppArgs) -> dict[str, pulumi.Input[str]]:
        runtime = args.worker_runtime if isinstance(args, FunctionAppArgs) else "python"
        return {"FUNCTIONS_EXTENSION_VERSION": "~4", "FUNCTIONS_WORKER_RUNTIME": runtime}

    def _host_settings(
        self, args: WebAppArgs, default: HasClientId | None
    ) -> dict[str, pulumi.Input[str]]:
        fargs = args if isinstance(args, FunctionAppArgs) else FunctionAppArgs(**vars(args))
        for key, value in args.app_settings.items():
            if host_storage.owns_setting(key):
                raise ConfigError(
                    f"app_settings[{key}]",
                    value if isinstance(value, str) else "<an Output>",
                    "is set by the component: the host reaches its storage with a managed "
                    "identity, never a connection string",
                    "remove it; choose the account with host_storage_account_id and the "
                    "identity with host_storage_identity",
                )
        self._host_plan = host_storage.plan_host_storage(
            app_name=args.name,
            identities=args.identities,
            account_id=fargs.host_storage_account_id,
            account_name=fargs.host_storage_account_name,
            chosen=fargs.host_storage_identity,
            default_identity=default,
        )
        return self._host_plan.settings()

    def _before_site(self, resource_name: str, args: WebAppArgs) -> None:
        plan = self._host_plan
        self.host_storage_account: StorageAccount | None = None
        account_id = plan.account_id
        if account_id is None:
            self.host_storage_account = StorageAccount(
                f"{resource_name}-host-storage",
                StorageAccountArgs(
                    name=str(plan.account_name),
                    resource_group_name=args.resource_group_name,
                    location=args.location,
                    tags=args.tags,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            account_id = self.host_storage_account.id
        self.host_storage_account_id: pulumi.Output[str] = pulumi.Output.from_input(account_id)
        self.host_storage_account_name: pulumi.Output[str] = pulumi.Output.from_input(
            plan.account_name
        )
        self.host_storage_identity: pulumi.Input[str] = plan.identity

    def _after_site(self, resource_name: str, args: WebAppArgs, site: Any) -> None:
        plan = self._host_plan
        self.host_storage_principal_id: pulumi.Output[str] = plan.principal_id(site.identity)
        self.host_storage_assignment = RoleAssignment(
            f"{resource_name}-host-storage",
            RoleAssignmentArgs(
                role=host_storage.HOST_STORAGE_ROLE,
                principal_id=self.host_storage_principal_id,
                scope=self.host_storage_account_id,
                description=f"Functions host storage (AzureWebJobsStorage) of {args.name}",
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[site]),
        )

    def _extra_outputs(self) -> dict[str, Any]:
        return {
            "host_storage_account_id": self.host_storage_account_id,
            "host_storage_account_name": self.host_storage_account_name,
            "host_storage_principal_id": self.host_storage_principal_id,
        }
