"""The apps of the reference topology (``mikit:apps``): one builder and one export per app.

Web apps and Function apps share a plan per distinct ``plan`` name, container apps an
environment per distinct ``environment`` name. Key Vault references point at the
topology's vault; the identities they and the code use are the topology's user-assigned
identities, chosen in the stack config and checked there. A Function app's host storage
is a dedicated account, or the ``mikit:storageAccounts`` account ``hostStorage.account``
names; its Storage Blob Data Owner assignment is exported with the app, not as a grant
(it is the platform's, not an access the matrix describes).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pulumi

from components.access import AppIdentities, HostRef, IdentityRef, app_hosts
from components.apps import (
    SYSTEM,
    ContainerApp,
    ContainerAppArgs,
    ContainerAppSecret,
    ContainerAppsEnvironment,
    FunctionApp,
    FunctionAppArgs,
    IdentitySetting,
    KeyVaultReference,
    WebApp,
    WebAppArgs,
)
from components.apps.web import AppServicePlan, AppServicePlanArgs
from components.identity import ManagedIdentities, UserAssignedIdentity
from components.key_vault import KeyVault
from components.stack_config import AppConfig, StackConfig
from components.stack_config.apps import FUNCTIONAPP, WEBAPP
from components.storage import StorageAccount

AppHost = WebApp | FunctionApp | ContainerApp


class AppsBuilder:
    """Builds every app of ``cfg.apps`` against the topology's vault and identities."""

    def __init__(
        self,
        cfg: StackConfig,
        *,
        resource_group_name: pulumi.Input[str],
        vault: KeyVault,
        identities: Mapping[str, UserAssignedIdentity],
        tags: Mapping[str, str],
        storage: Mapping[str, StorageAccount] | None = None,
    ) -> None:
        self.cfg = cfg
        self.rg = resource_group_name
        self.vault = vault
        self.identity_components = identities
        self.storage = dict(storage or {})
        self.tags = dict(tags)
        self.plans: dict[str, AppServicePlan] = {}
        self.environments: dict[str, ContainerAppsEnvironment] = {}
        self.apps: dict[str, AppHost] = {key: self._app(key, app) for key, app in cfg.apps.items()}

    def _identities(self, app: AppConfig) -> ManagedIdentities:
        return ManagedIdentities(
            system_assigned=app.system_identity,
            user_assigned_ids=[self.identity_components[k].id for k in app.user_assigned or []],
        )

    def _identity_id(self, choice: str) -> pulumi.Input[str]:
        return SYSTEM if choice == SYSTEM else self.identity_components[choice].id

    def _host_identity(self, app: AppConfig) -> UserAssignedIdentity | str | None:
        """The identity the Functions host reaches its storage with, as the component
        takes it (``system`` or the identity component, which carries the client ID)."""
        chosen = app.host_storage_identity()
        if chosen is None or chosen == SYSTEM:
            return chosen
        return self.identity_components[chosen]

    def _app(self, key: str, app: AppConfig) -> AppHost:
        code = app.code_identity()
        default = self.identity_components[code] if code else None
        if app.is_web:
            plan_name = app.plan_name()
            if plan_name not in self.plans:
                self.plans[plan_name] = AppServicePlan(
                    f"plan-{plan_name}",
                    AppServicePlanArgs(
                        name=plan_name,
                        resource_group_name=self.rg,
                        location=self.cfg.location,
                        tags=self.tags,
                    ),
                )
            args = dict(
                name=app.name,
                resource_group_name=self.rg,
                location=self.cfg.location,
                identities=self._identities(app),
                plan_id=self.plans[plan_name].id,
                app_settings=dict(app.settings),
                key_vault_references=[
                    KeyVaultReference.to(setting, self.vault, secret)
                    for setting, secret in sorted(app.key_vault_references.items())
                ],
                key_vault_reference_identity=self._identity_id(app.reference_identity()),
                default_identity=default,
                public_network_access=bool(app.public_network_access),
                tags=self.tags,
            )
            if app.kind == FUNCTIONAPP:
                account = app.host_storage_account()
                return FunctionApp(
                    f"app-{key}",
                    FunctionAppArgs(
                        **args,  # type: ignore[arg-type]
                        host_storage_account_id=self.storage[account].id if account else None,
                        host_storage_identity=self._host_identity(app),
                    ),
                )
            assert app.kind == WEBAPP
            return WebApp(f"app-{key}", WebAppArgs(**args))  # type: ignore[arg-type]
        env_name = app.environment_name(self.cfg)
        if env_name not in self.environments:
            self.environments[env_name] = ContainerAppsEnvironment(
                f"cae-{env_name}",
                name=env_name,
                resource_group_name=self.rg,
                location=self.cfg.location,
                tags=self.tags,
            )
        resolver = self._identity_id(app.reference_identity())
        return ContainerApp(
            f"app-{key}",
            ContainerAppArgs(
                name=app.name,
                resource_group_name=self.rg,
                location=self.cfg.location,
                identities=self._identities(app),
                environment_id=self.environments[env_name].id,
                env=dict(app.settings),
                secrets=[
                    ContainerAppSecret.from_vault(secret.lower(), self.vault, secret, resolver)
                    for secret in sorted(set(app.key_vault_references.values()))
                ],
                secret_env={
                    var: secret.lower() for var, secret in app.key_vault_references.items()
                },
                identity_settings=[
                    IdentitySetting(self._identity_id(identity), lifecycle)
                    for identity, lifecycle in sorted(app.identity_lifecycles.items())
                ],
                default_identity=default,
                ingress_port=app.ingress_port,
                external_ingress=bool(app.external_ingress),
                tags=self.tags,
            ),
        )

    def matrix_leaves(self) -> list[pulumi.Output[Any]]:
        """The Outputs the matrix reads, in the order :meth:`matrix_hosts` consumes them:
        each app's system principal."""
        return [host.principal_id for host in self.apps.values()]

    def matrix_hosts(
        self, values: Iterator[Any], identities: Mapping[str, IdentityRef]
    ) -> dict[str, HostRef]:
        """The matrix's ``app:<key>`` hosts (:func:`components.access.app_hosts`), from the
        values :meth:`matrix_leaves` gave."""
        apps = {
            key: AppIdentities(
                next(values), list(app.user_assigned or []), dict(app.identity_lifecycles)
            )
            for key, app in self.cfg.apps.items()
        }
        return app_hosts(apps, identities)

    def exports(self) -> dict[str, Any]:
        """``apps``: per app key its kind, name, id, system principal, identities, host
        name, the identity its code uses and its Key Vault references."""
        out: dict[str, Any] = {}
        for key, host in self.apps.items():
            app = self.cfg.apps[key]
            out[key] = {
                "kind": app.kind,
                "name": host.name,
                "id": host.id,
                "system_principal_id": host.principal_id,
                "user_assigned": list(app.user_assigned or []),
                "host_name": host.host_name,
                "default_identity": app.code_identity(),
                "key_vault_references": dict(app.key_vault_references),
                "key_vault_reference_identity": app.reference_identity(),
                "identity_lifecycles": dict(app.identity_lifecycles),
                "host_storage": self._host_storage_export(host, app),
            }
        return out

    @staticmethod
    def _host_storage_export(host: AppHost, app: AppConfig) -> dict[str, Any] | None:
        """A Function app's host storage: the account, the identity (``system`` or its
        key) and the role assignment the component made for it."""
        if not isinstance(host, FunctionApp):
            return None
        assignment = host.host_storage_assignment
        return {
            "account_name": host.host_storage_account_name,
            "account_id": host.host_storage_account_id,
            "identity": app.host_storage_identity(),
            "principal_id": host.host_storage_principal_id,
            "role_name": assignment.role_name,
            "assignment_id": assignment.id,
        }
