"""``mikit:apps``: App Service web apps, Function apps and Container Apps.

Each entry holds identities like a VM (``systemIdentity``, ``userAssigned``) and adds what
an app host needs: Key Vault references (``keyVaultReferences``: app setting or environment
variable -> a ``mikit:secrets`` name) read by ``keyVaultReferenceIdentity`` (``system`` or
an identity key), the identity its code uses (``defaultIdentity``, set for you when the app
holds exactly one user-assigned identity and no system identity), and for container apps
each identity's ``identityLifecycles`` (``None`` hides it from the app's code), and for
Function apps ``hostStorage`` (the account and identity of the host's identity-based
``AzureWebJobsStorage``). Every choice is checked against what the app holds before
anything is deployed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from components.apps import host_storage, names
from components.apps.identities import CLIENT_ID_SETTING, SYSTEM
from components.errors import NOT_SET, ConfigError
from components.stack_config.base import ConfigModel, choices
from components.stack_config.hosts import (
    HostConfig,
    UserAssignedKeys,
    check_identity_refs,
    require_some_identity,
)

if TYPE_CHECKING:
    from components.stack_config.schema import StackConfig

WEBAPP = "webapp"
FUNCTIONAPP = "functionapp"
CONTAINERAPP = "containerapp"
Lifecycle = Literal["All", "Main", "Init", "None"]

#: Keys that only one family of app kinds takes.
_WEB_ONLY = {"plan": "plan", "public_network_access": "publicNetworkAccess"}
_CONTAINER_ONLY = {
    "environment": "environment",
    "identity_lifecycles": "identityLifecycles",
    "ingress_port": "ingressPort",
    "external_ingress": "externalIngress",
}
_FUNCTION_ONLY = {"host_storage": "hostStorage"}


class HostStorageConfig(ConfigModel):
    """A Function app's ``hostStorage``: ``account`` a ``mikit:storageAccounts`` key (left
    out: a dedicated account named from the app), ``identity`` ``system`` or one of the
    app's ``userAssigned`` keys (left out: the system identity when on, else the only
    user-assigned identity)."""

    account: str | None = None
    identity: str | None = None


class AppConfig(HostConfig):
    PRINCIPAL_PREFIX: ClassVar[str] = "app"
    NOUN: ClassVar[str] = "an app"
    PRINCIPAL_HINT: ClassVar[str] = "app:<app key> (its system identity)"

    kind: Literal["webapp", "functionapp", "containerapp"]
    name: str
    system_identity: bool = False
    user_assigned: UserAssignedKeys = None
    default_identity: str | None = None
    key_vault_references: dict[str, str] = Field(default_factory=dict)
    key_vault_reference_identity: str | None = None
    settings: dict[str, str] = Field(default_factory=dict)
    # webapp / functionapp
    plan: str | None = None
    public_network_access: bool | None = None
    # containerapp
    environment: str | None = None
    identity_lifecycles: dict[str, Lifecycle] = Field(default_factory=dict)
    ingress_port: int | None = None
    external_ingress: bool | None = None
    # functionapp
    host_storage: HostStorageConfig | None = None

    @property
    def is_web(self) -> bool:
        return self.kind in (WEBAPP, FUNCTIONAPP)

    def plan_name(self) -> str:
        return self.plan or f"{self.name}-plan"

    def environment_name(self, cfg: StackConfig) -> str:
        return self.environment or f"{cfg.resource_group.lower()}-cae"

    def code_identity(self) -> str | None:
        """The identity key whose client ID the code gets (None: the system identity)."""
        if self.default_identity is not None:
            return self.default_identity
        if not self.system_identity and len(self.user_assigned or []) == 1:
            return (self.user_assigned or [])[0]
        return None

    def reference_identity(self) -> str:
        """``system`` or the identity key that resolves Key Vault references."""
        return self.key_vault_reference_identity or SYSTEM

    def host_storage_identity(self) -> str | None:
        """``system`` or the identity key the Functions host reaches its storage with (None
        for other kinds); checked by :meth:`check` to be one the app holds."""
        if self.kind != FUNCTIONAPP:
            return None
        chosen = self.host_storage.identity if self.host_storage else None
        if chosen is not None:
            return chosen
        if self.system_identity:
            return SYSTEM
        return self.user_assigned[0] if self.user_assigned else None

    def host_storage_account(self) -> str | None:
        """The ``mikit:storageAccounts`` key of the host's account (None: a dedicated one)."""
        return self.host_storage.account if self.host_storage else None

    # -- checks ---------------------------------------------------------------------------

    def check(self, key: str, where: str, cfg: StackConfig) -> None:
        if self.is_web:
            names.site_name(self.name, f"{where}.name")
            if self.plan is not None:
                names.plan_name(self.plan, f"{where}.plan")
        else:
            names.container_app_name(self.name, f"{where}.name")
            if self.environment is not None:
                names.environment_name(self.environment, f"{where}.environment")
            if self.external_ingress and self.ingress_port is None:
                raise ConfigError(
                    f"{where}.externalIngress",
                    True,
                    "asks for public ingress without an ingressPort",
                    f"set {where}.ingressPort to the port the container listens on",
                )
        self._check_kind_keys(where)
        check_identity_refs(self.user_assigned, where, cfg)
        require_some_identity(self, where)
        self._check_settings(where, cfg)
        self._check_identity_choices(where)
        if not self.is_web:
            self._check_lifecycles(where)
        if self.kind == FUNCTIONAPP:
            self._check_host_storage(where, cfg)

    def _check_kind_keys(self, where: str) -> None:
        others = _CONTAINER_ONLY if self.is_web else _WEB_ONLY
        takes = "container apps" if self.is_web else "web apps and Function apps"
        only = [(a, alias, takes) for a, alias in others.items()]
        if self.kind != FUNCTIONAPP:
            only += [(a, alias, "Function apps") for a, alias in _FUNCTION_ONLY.items()]
        for attribute, alias, takes in only:
            value = getattr(self, attribute)
            if value is not None and value != {}:
                if isinstance(value, ConfigModel):
                    value = value.model_dump(by_alias=True, exclude_none=True)
                raise ConfigError(
                    f"{where}.{alias}",
                    value,
                    f"applies only to {takes}, and this app is kind {self.kind!r}",
                    "remove it, or change the app's kind",
                )

    def _check_settings(self, where: str, cfg: StackConfig) -> None:
        for setting, value in self.settings.items():
            names.setting_name(setting, f"{where}.settings.{setting}")
            if setting == CLIENT_ID_SETTING:
                raise ConfigError(
                    f"{where}.settings.{setting}",
                    value,
                    "is set by the kit from the app's defaultIdentity",
                    f"remove it and set {where}.defaultIdentity: <identity key>",
                )
            if self.kind == FUNCTIONAPP and host_storage.owns_setting(setting):
                raise ConfigError(
                    f"{where}.settings.{setting}",
                    value,
                    "is set by the kit: the Functions host reaches its storage with a managed "
                    "identity, never a connection string",
                    f"remove it; choose the account and identity with {where}.hostStorage",
                )
        for setting, secret in self.key_vault_references.items():
            at = f"{where}.keyVaultReferences.{setting}"
            names.setting_name(setting, at)
            if setting in self.settings or setting == CLIENT_ID_SETTING:
                raise ConfigError(
                    at,
                    secret,
                    f"uses the name of a plain setting ({setting})",
                    "give the reference its own name, or drop the plain setting",
                )
            if secret not in cfg.secrets:
                raise ConfigError(
                    at,
                    secret,
                    "names a secret that is not declared in mikit:secrets",
                    choices("use one of", cfg.secrets),
                )

    def _held(self, identity: str) -> bool:
        if identity == SYSTEM:
            return self.system_identity
        return identity in (self.user_assigned or [])

    def _not_held(self, field: str, identity: str, purpose: str) -> ConfigError:
        if identity == SYSTEM:
            return ConfigError(
                field,
                identity,
                f"names the system identity for {purpose}, but the app's system identity is off",
                "set systemIdentity: true, or name one of the app's userAssigned identities",
            )
        return ConfigError(
            field,
            identity,
            f"names an identity the app does not hold, so it cannot be used for {purpose}",
            choices(
                "use one of",
                ([SYSTEM] if self.system_identity else []) + list(self.user_assigned or []),
            ),
        )

    def _check_identity_choices(self, where: str) -> None:
        chosen = self.key_vault_reference_identity
        if chosen is not None and not self._held(chosen):
            raise self._not_held(
                f"{where}.keyVaultReferenceIdentity", chosen, "Key Vault references"
            )
        if self.key_vault_references and chosen is None and not self.system_identity:
            raise ConfigError(
                f"{where}.keyVaultReferenceIdentity",
                NOT_SET,
                "is not set, so Key Vault references would resolve with the system identity, "
                "which is off",
                "set it to the key of the user-assigned identity that may read the vault",
            )
        default = self.default_identity
        if default is not None and (default == SYSTEM or not self._held(default)):
            if default == SYSTEM:
                raise ConfigError(
                    f"{where}.defaultIdentity",
                    default,
                    "names the system identity, which the code uses anyway when no default is set",
                    "remove defaultIdentity, or name a user-assigned identity key",
                )
            raise self._not_held(f"{where}.defaultIdentity", default, "the app's code")
        if default is None and not self.system_identity and len(self.user_assigned or []) > 1:
            raise ConfigError(
                f"{where}.defaultIdentity",
                NOT_SET,
                "is not set, but the app holds several user-assigned identities and no "
                "system identity, so its code cannot know which to use",
                "set it to one of " + ", ".join(repr(i) for i in self.user_assigned or []),
            )

    def _check_lifecycles(self, where: str) -> None:
        for identity, lifecycle in self.identity_lifecycles.items():
            at = f"{where}.identityLifecycles.{identity}"
            if not self._held(identity):
                raise self._not_held(at, identity, "identity lifecycles")
            if lifecycle in ("None", "Init") and identity == (self.code_identity() or SYSTEM):
                raise ConfigError(
                    at,
                    lifecycle,
                    "hides the identity the app's code uses from its main container",
                    "use All or Main, or give the code another defaultIdentity",
                )

    def _check_host_storage(self, where: str, cfg: StackConfig) -> None:
        at = f"{where}.hostStorage"
        account = self.host_storage_account()
        if account is not None:
            if account not in cfg.storage_accounts:
                raise ConfigError(
                    f"{at}.account",
                    account,
                    "names a storage account that is not declared in mikit:storageAccounts",
                    choices("use one of", cfg.storage_accounts)
                    + ", or leave it out for a dedicated account",
                )
            if cfg.storage_accounts[account].containers:
                raise ConfigError(
                    f"{at}.account",
                    account,
                    "holds containers the access matrix covers, and the host's identity "
                    "gets Storage Blob Data Owner on the whole account, outside mikit:grants",
                    "leave it out (the app gets a dedicated account), or name an account "
                    "without containers",
                )
        chosen = self.host_storage.identity if self.host_storage else None
        if chosen is not None and not self._held(chosen):
            raise self._not_held(f"{at}.identity", chosen, "the Functions host's storage")
        if chosen is None and not self.system_identity and len(self.user_assigned or []) > 1:
            raise ConfigError(
                f"{at}.identity",
                NOT_SET,
                "is not set, but the app holds several user-assigned identities and no "
                "system identity, so the Functions host cannot know which one reaches its "
                "storage",
                "set it to one of " + ", ".join(repr(i) for i in self.user_assigned or []),
            )
