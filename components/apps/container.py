"""Container Apps in a managed environment, with managed identities only.

Secrets are Key Vault references (``configuration.secrets[] = {name, keyVaultUrl,
identity}``), each naming the identity that fetches it; environment variables take them by
``secretRef``. ``configuration.identitySettings[].lifecycle`` says when each identity is
available to the app's code (``All``, ``Main``, ``Init``; ``None`` hides it from the code
while the platform still uses it, e.g. for secrets). No ingress unless asked, and then
internal (environment-only) unless ``external_ingress``; never plain HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from components.apps import names
from components.apps.identities import (
    CLIENT_ID_SETTING,
    SYSTEM,
    HasClientId,
    check_held,
    code_client_id,
    shown,
)
from components.errors import ConfigError
from components.grants import Grantable, system_identity_principal
from components.identity import ManagedIdentities
from components.identity_type import identity_type

LIFECYCLES = ("All", "Main", "Init", "None")
HELLO_IMAGE = "mcr.microsoft.com/azuredocs/containerapps-helloworld:latest"


@dataclass(frozen=True)
class ContainerAppSecret:
    """Secret ``name`` = the Key Vault secret at ``key_vault_url``, fetched by ``identity``
    (``"system"`` or the ID of a user-assigned identity the app holds)."""

    name: str
    key_vault_url: pulumi.Input[str]
    identity: pulumi.Input[str] = SYSTEM

    @classmethod
    def from_vault(
        cls, name: str, vault: Any, secret: str, identity: pulumi.Input[str] = SYSTEM
    ) -> ContainerAppSecret:
        """A reference to ``secret``, which ``vault`` (a :class:`KeyVault`) must declare."""
        uris: Mapping[str, pulumi.Input[str]] = vault.secret_uris
        if secret not in uris:
            raise ConfigError(
                f"secrets[{name}]",
                secret,
                "is not a secret the vault declares",
                "use one of " + (", ".join(repr(s) for s in uris) or "(none declared)"),
            )
        return cls(name, uris[secret], identity)


@dataclass(frozen=True)
class IdentitySetting:
    identity: pulumi.Input[str]
    """``"system"`` or a user-assigned identity ID the app holds."""
    lifecycle: str = "All"


@dataclass(frozen=True)
class ContainerAppArgs:
    name: str
    resource_group_name: pulumi.Input[str]
    identities: ManagedIdentities = field(default_factory=ManagedIdentities)
    location: pulumi.Input[str] | None = None
    environment_id: pulumi.Input[str] | None = None
    """An existing managed environment; None: the component creates ``environment_name``."""
    environment_name: str | None = None
    image: str = HELLO_IMAGE
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    secrets: Sequence[ContainerAppSecret] = ()
    secret_env: Mapping[str, str] = field(default_factory=dict)
    """Environment variable -> the name of one of ``secrets``."""
    identity_settings: Sequence[IdentitySetting] = ()
    default_identity: HasClientId | None = None
    """The user-assigned identity the app's code uses (``AZURE_CLIENT_ID``)."""
    ingress_port: int | None = None
    external_ingress: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


def _check(args: ContainerAppArgs) -> pulumi.Input[str] | None:
    names.container_app_name(args.name, "name")
    if (args.environment_id is None) == (args.environment_name is None):
        raise ConfigError(
            "environment_name",
            args.environment_name,
            "must be given alone, or environment_id instead",
            "give environment_id (an existing environment) or environment_name (a new one)",
        )
    if args.environment_name is not None:
        names.environment_name(args.environment_name, "environment_name")
    if args.external_ingress and args.ingress_port is None:
        raise ConfigError(
            "external_ingress",
            True,
            "asks for public ingress without an ingress_port",
            "set ingress_port to the port the container listens on",
        )
    declared = _check_secrets(args)
    _check_env(args, declared)
    hidden = _check_identity_settings(args)
    client_id = code_client_id(args.identities, args.default_identity, "default_identity")
    if args.default_identity is not None and any(
        h is args.default_identity.id or h == args.default_identity.id for h in hidden
    ):
        raise ConfigError(
            "default_identity",
            shown(args.default_identity.id),
            "is hidden from the app's main container by its identity setting (lifecycle "
            "None or Init), so its code could not use it",
            "give it lifecycle All or Main, or choose another default identity",
        )
    if client_id is None and any(isinstance(h, str) and h == SYSTEM for h in hidden):
        raise ConfigError(
            "identity_settings",
            SYSTEM,
            "hides the system identity from the app's main container, but its code uses it "
            "(no default_identity is set)",
            "give the system identity lifecycle All or Main, or set default_identity",
        )
    return client_id


def _check_secrets(args: ContainerAppArgs) -> set[str]:
    declared: set[str] = set()
    for secret in args.secrets:
        where = f"secrets[{secret.name}]"
        names.container_app_secret_name(secret.name, where)
        if secret.name in declared:
            raise ConfigError(where, secret.name, "appears twice", "give each a distinct name")
        declared.add(secret.name)
        check_held(args.identities, secret.identity, f"{where}.identity", "Key Vault secrets")
    return declared


def _check_env(args: ContainerAppArgs, declared: set[str]) -> None:
    for var in args.env:
        names.setting_name(var, f"env[{var}]")
        if var == CLIENT_ID_SETTING:
            raise ConfigError(
                f"env[{var}]",
                var,
                "is set by the component from default_identity",
                "remove it and pass default_identity=<the UserAssignedIdentity>",
            )
    for var, ref in args.secret_env.items():
        names.setting_name(var, f"secret_env[{var}]")
        if var in args.env or var == CLIENT_ID_SETTING:
            raise ConfigError(
                f"secret_env[{var}]", var, "is also a plain variable", "keep one of them"
            )
        if ref not in declared:
            raise ConfigError(
                f"secret_env[{var}]",
                ref,
                "names a secret the app does not declare",
                "use one of " + (", ".join(repr(s) for s in sorted(declared)) or "(none)"),
            )


def _check_identity_settings(args: ContainerAppArgs) -> list[pulumi.Input[str]]:
    """Each identity setting valid and held; returns the identities hidden from the code."""
    hidden: list[pulumi.Input[str]] = []
    seen: list[pulumi.Input[str]] = []
    for i, setting in enumerate(args.identity_settings):
        where = f"identity_settings[{i}]"
        if setting.lifecycle not in LIFECYCLES:
            raise ConfigError(
                f"{where}.lifecycle",
                setting.lifecycle,
                "is not a Container Apps identity lifecycle",
                "use one of " + ", ".join(LIFECYCLES),
            )
        check_held(args.identities, setting.identity, f"{where}.identity", "identity settings")
        if any(s is setting.identity or s == setting.identity for s in seen):
            raise ConfigError(
                f"{where}.identity",
                shown(setting.identity),
                "has a second identity setting",
                "give each identity one entry",
            )
        seen.append(setting.identity)
        if setting.lifecycle in ("None", "Init"):
            hidden.append(setting.identity)
    return hidden


class ContainerAppsEnvironment(pulumi.ComponentResource):
    """A Container Apps managed environment. Outputs: ``id``, ``name``, ``default_domain``."""

    def __init__(
        self,
        resource_name: str,
        *,
        name: str,
        resource_group_name: pulumi.Input[str],
        location: pulumi.Input[str] | None = None,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        names.environment_name(name, "name")
        super().__init__("mikit:app:ContainerAppsEnvironment", resource_name, None, opts)
        env = azure_native.app.ManagedEnvironment(
            resource_name,
            environment_name=name,
            resource_group_name=resource_group_name,
            location=location,
            tags=dict(tags or {}) or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.id: pulumi.Output[str] = env.id
        self.name: pulumi.Output[str] = env.name
        self.default_domain: pulumi.Output[str] = env.default_domain
        self.register_outputs({"id": self.id, "name": self.name})


class ContainerApp(pulumi.ComponentResource, Grantable):
    """A container app whose only credentials are its managed identities.

    Outputs: ``id``, ``name``, ``principal_id`` (system identity; None when off),
    ``identity`` (azure-native's output with the user-assigned map), ``host_name`` (the
    latest revision's FQDN; empty without ingress), ``client_id`` (``AZURE_CLIENT_ID``,
    None: system), ``secrets`` (name -> Key Vault URL). ``grant(role, scope)`` grants the
    system identity.
    """

    kind = "containerapp"

    def __init__(
        self, resource_name: str, args: ContainerAppArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        client_id = _check(args)
        super().__init__("mikit:app:ContainerApp", resource_name, None, opts)
        self._grant_name = resource_name
        self.identities = args.identities
        child = pulumi.ResourceOptions(parent=self)
        environment_id = args.environment_id
        self.environment: ContainerAppsEnvironment | None = None
        if environment_id is None:
            self.environment = ContainerAppsEnvironment(
                f"{resource_name}-env",
                name=str(args.environment_name),
                resource_group_name=args.resource_group_name,
                location=args.location,
                tags=args.tags,
                opts=child,
            )
            environment_id = self.environment.id
        env_vars = [
            azure_native.app.EnvironmentVarArgs(name=k, value=v)
            for k, v in sorted(args.env.items())
        ]
        env_vars += [
            azure_native.app.EnvironmentVarArgs(name=k, secret_ref=v)
            for k, v in sorted(args.secret_env.items())
        ]
        if client_id is not None:
            env_vars.append(
                azure_native.app.EnvironmentVarArgs(name=CLIENT_ID_SETTING, value=client_id)
            )
        app = azure_native.app.ContainerApp(
            resource_name,
            container_app_name=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            managed_environment_id=environment_id,
            identity=azure_native.app.ManagedServiceIdentityArgs(
                type=identity_type(
                    args.identities.system_assigned,
                    bool(args.identities.user_assigned_ids),
                    compact=True,
                ),
                user_assigned_identities=list(args.identities.user_assigned_ids) or None,
            ),
            configuration=azure_native.app.ConfigurationArgs(
                active_revisions_mode="Single",
                ingress=(
                    azure_native.app.IngressArgs(
                        target_port=args.ingress_port,
                        external=args.external_ingress,
                        allow_insecure=False,
                    )
                    if args.ingress_port is not None
                    else None
                ),
                secrets=[
                    azure_native.app.SecretArgs(
                        name=s.name, key_vault_url=s.key_vault_url, identity=s.identity
                    )
                    for s in args.secrets
                ]
                or None,
                identity_settings=[
                    azure_native.app.IdentitySettingsArgs(
                        identity=s.identity, lifecycle=s.lifecycle
                    )
                    for s in args.identity_settings
                ]
                or None,
            ),
            template=azure_native.app.TemplateArgs(
                containers=[
                    azure_native.app.ContainerArgs(
                        name="app",
                        image=args.image,
                        env=env_vars or None,
                        resources=azure_native.app.ContainerResourcesArgs(cpu=0.25, memory="0.5Gi"),
                    )
                ],
                scale=azure_native.app.ScaleArgs(min_replicas=0, max_replicas=1),
            ),
            tags=dict(args.tags) or None,
            opts=child,
        )
        self.id: pulumi.Output[str] = app.id
        self.name: pulumi.Output[str] = app.name
        self.identity: pulumi.Output[Any] = app.identity
        self.principal_id: pulumi.Output[str | None] = app.identity.apply(
            lambda i: (i.principal_id if i else None) if args.identities.system_assigned else None
        )
        self.host_name: pulumi.Output[str] = app.latest_revision_fqdn
        self.client_id: pulumi.Input[str] | None = client_id
        self.secrets: dict[str, pulumi.Input[str]] = {s.name: s.key_vault_url for s in args.secrets}
        self.register_outputs(
            {
                "id": self.id,
                "name": self.name,
                "principal_id": self.principal_id,
                "host_name": self.host_name,
            }
        )

    def _grant_principal(self) -> pulumi.Output[str]:
        return system_identity_principal(
            self.identities, self.principal_id, self._grant_name, "app"
        )
