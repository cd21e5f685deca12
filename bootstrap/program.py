"""The bootstrap program: everything CI needs to deploy with no stored secret.

Run once by an administrator (``pulumi up`` in ``bootstrap/``). It creates

* a ``<prefix>-cicd`` resource group holding the deployer identity, the state storage
  account and the secrets-provider vault: *outside* every scope the deployer holds a role
  on, so the deployer can neither widen its own access nor tamper with its trust;
* the workload resource groups the stacks deploy into (the deployer gets roles there and
  nowhere else, so it never needs a subscription-wide role; for the same reason it cannot
  create a group, so the workload stacks set ``mikit:createResourceGroup: false`` and
  deploy into these as they are);
* the deployer user-assigned identity with one federated credential per GitHub subject;
* exactly six kinds of grant, each explained in ``GRANT_REASONS``;
* for the configured administrator (a user or group) the deployer's two data roles on the
  same two scopes, and nothing else (``ADMINISTRATOR_REASONS``), so a human can create the
  first stack: ``python -m bootstrap.next_steps`` prints the commands, in order.

All names and roles are checked by :mod:`bootstrap.config` before anything is registered.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, resources

from bootstrap.conditions import constrain_role_assignments
from bootstrap.config import BootstrapConfig
from components.identity import UserAssignedIdentity, UserAssignedIdentityArgs
from components.key_vault import KeyVault, KeyVaultArgs
from components.role_assignment import RoleAssignment, RoleAssignmentArgs
from components.secrets_provider_key import SecretsProviderKey, SecretsProviderKeyArgs
from components.state_backend import StateBackend, StateBackendArgs

CONTRIBUTOR = "Contributor"
RBAC_ADMIN = "Role Based Access Control Administrator"
BLOB_DATA_CONTRIBUTOR = "Storage Blob Data Contributor"
BLOB_DATA_OWNER = "Storage Blob Data Owner"
CRYPTO_USER = "Key Vault Crypto User"
AKS_CLUSTER_ADMIN = "Azure Kubernetes Service RBAC Cluster Admin"

# Why each grant exists; shown in the stack outputs and docs/deploy-from-ci.md, so the
# reason travels with the permission.
GRANT_REASONS = {
    CONTRIBUTOR: "create, update and delete the workload's resources (VMs, vault, identities) "
    "in its resource group; Contributor cannot assign roles or read Key Vault secret values",
    RBAC_ADMIN: "make the stack's grants (e.g. Key Vault Secrets User for a VM's identity); "
    "the ABAC condition limits it to the listed data roles for service principals, on "
    "create and on delete",
    BLOB_DATA_CONTRIBUTOR: "read and write Pulumi state and its lock files in the one state "
    "container (the account has shared-key access off, so this role is the only way in)",
    CRYPTO_USER: "encrypt and decrypt stack secrets with the one secrets-provider key",
    BLOB_DATA_OWNER: "seed the stack's blobs with their index tags over Entra ID (the "
    "workload storage accounts have shared-key access off, and writing tags needs "
    "blobs/tags/write, which Storage Blob Data Contributor lacks)",
    AKS_CLUSTER_ADMIN: "create the stack's Kubernetes objects (Namespaces, ServiceAccounts, "
    "Deployments) in its AKS clusters, whose API servers authorize through Azure RBAC with "
    "local accounts off; namespaces/write is in no narrower built-in role (RBAC Writer and "
    "RBAC Admin exclude it), and Contributor could re-enable local accounts anyway",
}
# The administrator's two grants: what `pulumi login azblob://`, `pulumi stack init
# --secrets-provider azurekeyvault://` and `pulumi config set --secret` need, nothing more.
ADMINISTRATOR_REASONS = {
    BLOB_DATA_CONTRIBUTOR: "administrator: `pulumi login azblob://...` and `pulumi stack init` "
    "write the state container (shared keys are off, Owner has no Blob data actions)",
    CRYPTO_USER: "administrator: `pulumi stack init --secrets-provider azurekeyvault://...` "
    "wraps the stack's data key and `pulumi config set --secret` encrypts with it",
}


@dataclass
class Bootstrap:
    """What the program built, for the exports and for tests."""

    deployer: UserAssignedIdentity
    grants: list[RoleAssignment]
    state: StateBackend
    vault: KeyVault
    key: SecretsProviderKey
    workload_groups: dict[str, resources.ResourceGroup]
    condition: str
    administrator_grants: list[RoleAssignment]


def build(cfg: BootstrapConfig) -> Bootstrap:
    client = authorization.get_client_config_output()
    tags = {"managed-by": "pulumi", "purpose": "ci-bootstrap", **cfg.tags}
    cicd = resources.ResourceGroup(
        "cicd", resource_group_name=cfg.cicd_resource_group, location=cfg.location, tags=tags
    )
    workload_groups = {
        name: resources.ResourceGroup(
            f"workload-{name}",
            resource_group_name=name,
            location=cfg.location,
            tags={**tags, "purpose": "workload"},
        )
        for name in cfg.workload_resource_groups
    }
    deployer = UserAssignedIdentity(
        "deployer",
        UserAssignedIdentityArgs(
            name=cfg.deployer_name,
            resource_group_name=cicd.name,
            location=cfg.location,
            federated_credentials=cfg.github.federated_credentials(),
            # Deleting it would lock CI out until an administrator re-runs the bootstrap.
            # The lock waits for the credentials, so `pulumi destroy` lifts it first.
            lock=cfg.lock_deployer,
            tags=tags,
        ),
    )
    state = StateBackend(
        "state",
        StateBackendArgs(
            resource_group_name=cicd.name,
            account_name=cfg.state_account_name,
            container_name=cfg.state_container_name,
            location=cfg.location,
            retention_days=cfg.state_retention_days,
            tags=tags,
        ),
    )
    vault = KeyVault(
        "secrets-provider-vault",
        KeyVaultArgs(
            name=cfg.vault_name,
            resource_group_name=cicd.name,
            tenant_id=client.tenant_id,
            location=cfg.location,
            purge_protection=True,
            tags=tags,
        ),
    )
    key = SecretsProviderKey(
        "secrets-provider",
        SecretsProviderKeyArgs(
            resource_group_name=cicd.name,
            vault_name=vault.name,
            vault_uri=vault.uri,
            key_name=cfg.key_name,
            tags=tags,
        ),
    )

    condition = constrain_role_assignments([r.guid for r in cfg.assignable_roles])
    grants: list[RoleAssignment] = []
    for name, group in workload_groups.items():
        grants.append(
            deployer.grant(
                CONTRIBUTOR,
                group.id,
                name=f"contributor-{name}",
                description=f"CI deployer: {GRANT_REASONS[CONTRIBUTOR]}",
                allow_privileged=True,
            )
        )
        grants.append(
            deployer.grant(
                RBAC_ADMIN,
                group.id,
                name=f"rbac-admin-{name}",
                description=(
                    "CI deployer: may assign only "
                    + ", ".join(r.name for r in cfg.assignable_roles)
                    + " to service principals"
                ),
                condition=condition,
                allow_privileged=True,
            )
        )
        grants.append(
            deployer.grant(
                BLOB_DATA_OWNER,
                group.id,
                name=f"blob-data-owner-{name}",
                description=f"CI deployer: {GRANT_REASONS[BLOB_DATA_OWNER]}",
            )
        )
        grants.append(
            deployer.grant(
                AKS_CLUSTER_ADMIN,
                group.id,
                name=f"aks-cluster-admin-{name}",
                description=f"CI deployer: {GRANT_REASONS[AKS_CLUSTER_ADMIN]}",
                allow_privileged=True,
            )
        )
    grants.append(
        deployer.grant(
            BLOB_DATA_CONTRIBUTOR,
            state.container_scope,
            name="state-container",
            description=f"CI deployer: {GRANT_REASONS[BLOB_DATA_CONTRIBUTOR]}",
        )
    )
    grants.append(
        deployer.grant(
            CRYPTO_USER,
            key.key_scope,
            name="secrets-provider-key",
            description=f"CI deployer: {GRANT_REASONS[CRYPTO_USER]}",
        )
    )
    admin = cfg.administrator
    administrator_grants = [
        RoleAssignment(
            f"administrator-{name}",
            RoleAssignmentArgs(
                role=role,
                principal_id=admin.principal_id,
                principal_type=admin.principal_type,
                scope=scope,
                description=ADMINISTRATOR_REASONS[role],
            ),
        )
        for name, role, scope in (
            ("state-container", BLOB_DATA_CONTRIBUTOR, state.container_scope),
            ("secrets-provider-key", CRYPTO_USER, key.key_scope),
        )
    ]
    return Bootstrap(
        deployer, grants, state, vault, key, workload_groups, condition, administrator_grants
    )


def export(cfg: BootstrapConfig, built: Bootstrap) -> None:
    """Stack outputs: the values GitHub needs, and the access the deployer holds (and why)."""
    client = authorization.get_client_config_output()
    deployer = built.deployer
    pulumi.export(
        "deployer",
        {
            "name": deployer.name,
            "id": deployer.id,
            "client_id": deployer.client_id,
            "principal_id": deployer.principal_id,
            "tenant_id": deployer.tenant_id,
        },
    )
    pulumi.export(
        "federated_credentials",
        [
            {
                "name": c.name,
                "issuer": c.issuer,
                "subject": c.subject,
                "audiences": list(c.audiences),
            }
            for c in cfg.github.federated_credentials()
        ],
    )
    pulumi.export(
        "role_assignments",
        [
            {
                "role_name": g.role_name,
                "scope": g.scope,
                "name": g.name,
                "condition": built.condition if g.role_name == RBAC_ADMIN else None,
                "why": GRANT_REASONS[g.role_name],
            }
            for g in built.grants
        ],
    )
    pulumi.export(
        "administrator",
        {
            "principal_id": cfg.administrator.principal_id,
            "principal_type": cfg.administrator.principal_type,
            "role_assignments": [
                {
                    "role_name": g.role_name,
                    "scope": g.scope,
                    "name": g.name,
                    "why": ADMINISTRATOR_REASONS[g.role_name],
                }
                for g in built.administrator_grants
            ],
        },
    )
    pulumi.export("github_repository", cfg.github.slug)
    pulumi.export("github_environments", list(cfg.github.environments))
    pulumi.export("assignable_roles", [r.name for r in cfg.assignable_roles])
    pulumi.export("workload_resource_groups", {n: g.id for n, g in built.workload_groups.items()})
    # Repository variables (not secrets: none of these grants anything on its own).
    lifecycle = (
        {"LIFECYCLE_RESOURCE_GROUP": cfg.lifecycle_resource_group}
        if cfg.lifecycle_resource_group
        else {}
    )
    pulumi.export(
        "github_variables",
        {
            **lifecycle,
            "AZURE_CLIENT_ID": deployer.client_id,
            "AZURE_TENANT_ID": deployer.tenant_id,
            "AZURE_SUBSCRIPTION_ID": client.subscription_id,
            "PULUMI_BACKEND_URL": built.state.backend_url,
            "PULUMI_STATE_STORAGE_ACCOUNT": built.state.account_name,
            "PULUMI_SECRETS_PROVIDER": built.key.secrets_provider_url,
        },
    )
