"""The reference topology, built from a validated :class:`StackConfig`, and its exports.

``__main__.py`` stays thin: read config, ``Topology(...)``, export ``topology.exports()``.
The exports follow docs/contracts.md "Stack outputs" exactly, because the verifier is
coded against them; the access matrix is computed from the same grant objects that
create the role assignments.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_azure_native as azure_native

from components import armid
from components.access import BlobRef, GrantRef, IdentityRef, VmIdentities, access_matrix
from components.conditions import CONDITION_VERSION
from components.fleet_hosts import FleetHosts
from components.grants import Grantable
from components.identity import (
    FederatedCredential,
    ManagedIdentities,
    UserAssignedIdentity,
    UserAssignedIdentityArgs,
)
from components.key_vault import KeyVault, KeyVaultArgs
from components.network import Network, NetworkArgs
from components.role_assignment import RoleAssignment
from components.role_lookup import RoleResolver
from components.stack_config import (
    APP_PREFIX,
    BLOB_VALUE_PREFIX,
    CONTAINER_PREFIX,
    IDENTITY_PREFIX,
    SECRET_PREFIX,
    STORAGE_PREFIX,
    VAULT_TARGET,
    VM_PREFIX,
    StackConfig,
    blob_key,
    grant_principals,
)
from components.storage import BlobSeed, StorageAccount, StorageAccountArgs
from components.topology_apps import AppsBuilder
from components.vm import LinuxVirtualMachine, LinuxVirtualMachineArgs


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def fingerprint(value: str) -> str:
    """``sha256:<hex>`` of a secret value: lets the verifier compare without the value."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


class Topology:
    """Resource group (unless it exists already), network, vault + secrets, identities,
    VMs and grants."""

    def __init__(
        self,
        cfg: StackConfig,
        secret_values: Mapping[str, pulumi.Input[str]],
        resolver: RoleResolver,
    ) -> None:
        self.cfg = cfg
        self.client = azure_native.authorization.get_client_config_output()
        tags = {"managed-by": "managed-identity-kit", **cfg.tags}
        self.resource_group: azure_native.resources.ResourceGroup | None = None
        rg_name: pulumi.Input[str]
        if cfg.create_resource_group:
            self.resource_group = azure_native.resources.ResourceGroup(
                "rg", resource_group_name=cfg.resource_group, location=cfg.location, tags=tags
            )
            rg_name = self.resource_group.name
            self.resource_group_id: pulumi.Output[str] = self.resource_group.id
        else:
            # An existing group (mikit:createResourceGroup: false) is not a resource of
            # this stack: nothing registers, adopts or could ever delete it. Its ID is
            # built from the deployer's subscription; no lookup is needed, and a missing
            # group surfaces as ARM's ResourceGroupNotFound on the first child resource.
            rg_name = cfg.resource_group
            self.resource_group_id = self.client.subscription_id.apply(
                lambda sub: str(armid.resource_group(sub, cfg.resource_group))
            )
        self.network = Network(
            "network",
            NetworkArgs(
                name=cfg.resource_group,
                resource_group_name=rg_name,
                location=cfg.location,
                address_space=cfg.network.address_space,
                subnet_prefix=cfg.network.subnet_prefix,
                nat_gateway=cfg.network.nat_gateway,
                tags=tags,
            ),
        )
        self.secret_values = {
            name: pulumi.Output.secret(secret_values[name]) for name in cfg.secrets
        }
        self.vault = KeyVault(
            "vault",
            KeyVaultArgs(
                name=cfg.vault.name,
                resource_group_name=rg_name,
                tenant_id=self.client.tenant_id,
                location=cfg.location,
                secrets=self.secret_values,
                purge_protection=cfg.vault.purge_protection,
                public_network_access=cfg.vault.public_network_access,
                soft_delete_retention_days=cfg.vault.soft_delete_retention_days,
                create_mode=cfg.vault.create_mode,
                tags=tags,
            ),
        )
        self.blob_values = {
            blob_key(key, b.container, b.name): pulumi.Output.secret(
                secret_values[BLOB_VALUE_PREFIX + blob_key(key, b.container, b.name)]
            )
            for key, account in cfg.storage_accounts.items()
            for b in account.blobs
        }
        self.storage = {
            key: StorageAccount(
                f"storage-{key}",
                StorageAccountArgs(
                    name=account.name,
                    resource_group_name=rg_name,
                    location=cfg.location,
                    containers=list(account.containers),
                    blobs=[
                        BlobSeed(
                            b.container,
                            b.name,
                            self.blob_values[blob_key(key, b.container, b.name)],
                            b.content_type,
                            dict(b.tags),
                        )
                        for b in account.blobs
                    ],
                    public_network_access=account.public_network_access,
                    tags=tags,
                ),
            )
            for key, account in cfg.storage_accounts.items()
        }
        self.identities = {
            key: UserAssignedIdentity(
                f"identity-{key}",
                UserAssignedIdentityArgs(
                    name=ident.name,
                    resource_group_name=rg_name,
                    location=cfg.location,
                    lock=ident.lock,
                    federated_credentials=[
                        FederatedCredential(f.name, f.issuer, f.subject, tuple(f.audiences))
                        for f in ident.federated_credentials
                    ],
                    tags=tags,
                ),
            )
            for key, ident in cfg.identities.items()
        }
        self.vms = {
            key: LinuxVirtualMachine(
                f"vm-{key}",
                LinuxVirtualMachineArgs(
                    name=vm.name,
                    resource_group_name=rg_name,
                    subnet_id=self.network.subnet_id,
                    admin_username=cfg.admin_username,
                    ssh_public_key=cfg.ssh_public_key or "",  # required with hosts (stack check)
                    identities=ManagedIdentities(
                        system_assigned=vm.system_identity,
                        user_assigned_ids=[self.identities[k].id for k in vm.user_assigned or []],
                    ),
                    location=cfg.location,
                    size=vm.size or cfg.vm_size,
                    tags=tags,
                ),
            )
            for key, vm in cfg.vms.items()
        }
        #: Each host's grant reference (``vm:<key>`` ...) -> the component that holds it.
        self.apps = AppsBuilder(
            cfg,
            resource_group_name=rg_name,
            vault=self.vault,
            identities=self.identities,
            storage=self.storage,
            tags=tags,
        )
        self.hosts: dict[str, Grantable] = {f"{VM_PREFIX}{k}": vm for k, vm in self.vms.items()}
        self.fleet = FleetHosts(
            cfg,
            resource_group_name=rg_name,
            subnet_id=self.network.subnet_id,
            identities=self.identities,
            tags=tags,
        )
        self.hosts.update(self.fleet.hosts)
        self.hosts.update({f"{APP_PREFIX}{k}": app for k, app in self.apps.apps.items()})
        self.grants: list[tuple[str, RoleAssignment]] = []
        for grant in cfg.grants:
            holder = self._principal(grant.principal)
            scope = self._scope(grant.target)
            assignment = holder.grant(
                grant.role,
                scope,
                name=f"{_slug(grant.role)}-{_slug(grant.target)}",
                description=grant.description
                or f"{grant.principal} -> {grant.target} (managed-identity-kit)",
                condition=grant.condition,
                condition_version=grant.condition_version,
                allow_privileged=grant.allow_privileged,
                role_resolver=resolver,
            )
            self.grants.append((grant.principal, assignment))

    def _principal(self, reference: str) -> Grantable:
        if reference.startswith(IDENTITY_PREFIX):
            return self.identities[reference.removeprefix(IDENTITY_PREFIX)]
        # A host reference: its own system identity, or the identity it stands for.
        identity = grant_principals(self.cfg)[reference].identity
        return self.hosts[reference] if identity is None else self.identities[identity]

    def _scope(self, target: str) -> pulumi.Output[str]:
        if target == VAULT_TARGET:
            return self.vault.id
        if target.startswith(STORAGE_PREFIX):
            return self.storage[target.removeprefix(STORAGE_PREFIX)].id
        if target.startswith(CONTAINER_PREFIX):
            account, _, container = target.removeprefix(CONTAINER_PREFIX).partition("/")
            return self.storage[account].container_scope(container)
        return self.vault.secret_scope(target.removeprefix(SECRET_PREFIX))

    # -- exports (docs/contracts.md "Stack outputs") -------------------------------------

    def exports(self) -> dict[str, Any]:
        secrets = {
            name: {"scope": self.vault.secret_scope(name), "uri": self.vault.secret_uris[name]}
            for name in self.cfg.secrets
        }
        identities = {
            key: {
                "name": ident.name,
                "id": ident.id,
                "client_id": ident.client_id,
                "principal_id": ident.principal_id,
                "tenant_id": ident.tenant_id,
                # A CanNotDelete lock: the lifecycle must not plan to delete this identity.
                "locked": ident.lock is not None,
            }
            for key, ident in self.identities.items()
        }
        vms = {
            key: {
                "name": vm.name,
                "id": vm.id,
                "system_principal_id": vm.principal_id,
                "user_assigned": list(self.cfg.vms[key].user_assigned or []),
            }
            for key, vm in self.vms.items()
        }
        grants = [
            {
                "name": a.name,
                "id": a.id,
                "principal": principal,
                "principal_id": a.principal_id,
                "principal_type": a.principal_type,
                "role_name": a.role_name,
                "role_definition_id": a.role_definition_id,
                "scope": a.scope,
                # What the matrix evaluated, so a verifier re-deriving it agrees.
                "condition": a.condition.text if a.condition else None,
                "condition_version": CONDITION_VERSION if a.condition else None,
            }
            for principal, a in self.grants
        ]
        return {
            "tenant_id": self.client.tenant_id,
            "subscription_id": self.client.subscription_id,
            "location": self.cfg.location,
            "resource_group_id": self.resource_group_id,
            "vault": {"name": self.vault.name, "id": self.vault.id, "uri": self.vault.uri},
            "secrets": secrets,
            "secret_fingerprints": pulumi.Output.secret(
                pulumi.Output.all(**self.secret_values).apply(
                    lambda values: {k: fingerprint(v) for k, v in values.items()}
                )
            ),
            "identities": identities,
            "vms": vms,
            "apps": self.apps.exports(),
            "grants": grants,
            **self._storage_exports(),
            **self.fleet.exports(),
            "access_matrix": self._matrix(secrets, identities, vms, grants),
        }

    def _storage_exports(self) -> dict[str, Any]:
        """``storage_accounts``, ``containers``, ``blobs``, ``blob_fingerprints`` (secret)."""
        accounts = {
            key: {"name": sa.name, "id": sa.id, "blob_endpoint": sa.blob_endpoint}
            for key, sa in self.storage.items()
        }
        containers = {
            f"{key}/{name}": {"account": key, "name": name, "scope": sa.container_scope(name)}
            for key, sa in self.storage.items()
            for name in sa.containers
        }
        blobs = {
            blob_key(key, container, name): {
                "account": key,
                "container": container,
                "name": name,
                "scope": sa.container_scope(container),
                "url": sa.blob_urls[(container, name)],
                "tags": dict(self._blob_config(key, container, name).tags),
            }
            for key, sa in self.storage.items()
            for container, name in sa.blobs
        }
        return {
            "storage_accounts": accounts,
            "containers": containers,
            "blobs": blobs,
            "blob_fingerprints": pulumi.Output.secret(
                pulumi.Output.all(**self.blob_values).apply(
                    lambda values: {k: fingerprint(v) for k, v in dict(values).items()}
                )
                if self.blob_values
                else {}
            ),
        }

    def _blob_config(self, account: str, container: str, name: str) -> Any:
        return next(
            b
            for b in self.cfg.storage_accounts[account].blobs
            if (b.container, b.name) == (container, name)
        )

    def _matrix(
        self,
        secrets: Mapping[str, Mapping[str, Any]],
        identities: Mapping[str, Mapping[str, Any]],
        vms: Mapping[str, Mapping[str, Any]],
        grants: Sequence[Mapping[str, Any]],
    ) -> pulumi.Output[list[dict[str, Any]]]:
        roles = [a.role for _, a in self.grants]
        conditions = [a.condition for _, a in self.grants]
        # One flat Output.all over just the values the matrix reads, taken from the very
        # Outputs being exported. Output.from_input on the nested export dicts resolved
        # every exported field through several Output layers each, and cost as much as
        # ~10% of a whole 25-VM program run in the mock runtime (tests/benchmarks).
        leaves: list[Any] = [v["system_principal_id"] for v in vms.values()]
        for ident in identities.values():
            leaves += [ident["principal_id"], ident["client_id"]]
        leaves += [g["scope"] for g in grants]
        leaves += [s["scope"] for s in secrets.values()]
        blob_meta = [
            (blob_key(key, c, n), self.cfg.storage_accounts[key].name, c, n)
            for key, sa in self.storage.items()
            for c, n in sa.blobs
        ]
        leaves += [self.storage[k.split("/", 1)[0]].container_scope(c) for k, _, c, _ in blob_meta]
        leaves += self.fleet.matrix_leaves()
        leaves += self.apps.matrix_leaves()

        principals = grant_principals(self.cfg)

        def holder(reference: str) -> str:
            """The principal Azure sees: a workload's grant is its identity's grant."""
            found = principals.get(reference)
            return f"{IDENTITY_PREFIX}{found.identity}" if found and found.identity else reference

        def compute(values: list[Any]) -> list[dict[str, Any]]:
            it = iter(values)
            vm_refs = {k: VmIdentities(next(it), v["user_assigned"]) for k, v in vms.items()}
            id_refs = {}
            for k in identities:
                principal_id = next(it)
                id_refs[k] = IdentityRef(principal_id, next(it))
            grant_refs = [
                GrantRef(holder(g["principal"]), role, next(it), condition)
                for g, role, condition in zip(grants, roles, conditions, strict=True)
            ]
            secret_scopes = {k: next(it) for k in secrets}
            blob_refs = {
                key: BlobRef(
                    account, container, name, next(it),
                    dict(self._blob_config(key.split("/", 1)[0], container, name).tags),
                )
                for key, account, container, name in blob_meta
            }  # fmt: skip
            return access_matrix(
                vms=vm_refs,
                identities=id_refs,
                grants=grant_refs,
                secrets=secret_scopes,
                blobs=blob_refs,
                hosts={
                    **self.fleet.matrix_hosts(it, id_refs),
                    **self.apps.matrix_hosts(it, id_refs),
                },
            )

        return pulumi.Output.all(*leaves).apply(compute)
