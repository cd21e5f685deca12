"""Azure's rules and the cross-references pydantic cannot check.

Every name as Azure requires it, every ``userAssigned`` entry an identity key, every grant
principal a host reference or identity that can hold a grant (through the table the host
kinds build), every grant target declared, no grant twice.
"""

from __future__ import annotations

from components import validation
from components.conditions import validate_condition
from components.config_rules import config_set_command
from components.errors import NOT_SET, ConfigError
from components.identity import FederatedCredential, check_federated_credentials
from components.network import check_address_plan
from components.role_lookup import RoleResolver
from components.roles import RoleDefinition
from components.stack_config.base import choices, unique
from components.stack_config.clusters import check_declared_federation
from components.stack_config.hosts import GrantPrincipal
from components.stack_config.keys import (
    CONTAINER_PREFIX,
    IDENTITY_PREFIX,
    NAMESPACE,
    SECRET_PREFIX,
    STORAGE_PREFIX,
    VAULT_TARGET,
    blob_key,
    blob_value_key,
)
from components.stack_config.schema import HOST_KINDS, StackConfig


def _check_ssh_public_key(cfg: StackConfig) -> None:
    """The key VMs and scale sets log in with: required by them, checked whenever given."""
    field = f"{NAMESPACE}:sshPublicKey"
    if cfg.ssh_public_key is not None:
        validation.ssh_public_key(cfg.ssh_public_key, field)
        return
    needing = [f"vms.{k}" for k in cfg.vms] + [f"scaleSets.{k}" for k in cfg.scale_sets]
    if needing:
        command = config_set_command(field, '"$(cat ~/.ssh/id_ed25519.pub)"')
        raise ConfigError(
            field,
            NOT_SET,
            f"is required but not set ({needing[0]} is a Linux host that logs in with it)",
            f"set it: {command} (see docs/stack-config.md)",
        )


def check(cfg: StackConfig, resolver: RoleResolver) -> dict[int, RoleDefinition]:
    """Azure rules and cross-references; returns each grant's resolved role by index."""
    validation.resource_group_name(cfg.resource_group, f"{NAMESPACE}:resourceGroup")
    validation.admin_username(cfg.admin_username, f"{NAMESPACE}:adminUsername")
    _check_ssh_public_key(cfg)
    validation.vm_size(cfg.vm_size, f"{NAMESPACE}:vmSize")
    check_address_plan(
        cfg.network.address_space,
        cfg.network.subnet_prefix,
        f"{NAMESPACE}:network.addressSpace",
        f"{NAMESPACE}:network.subnetPrefix",
    )
    validation.vault_name(cfg.vault.name, f"{NAMESPACE}:vault.name")
    unique(cfg.secrets, f"{NAMESPACE}:secrets", lambda s: s.lower())
    for i, secret in enumerate(cfg.secrets):
        validation.secret_name(secret, f"{NAMESPACE}:secrets[{i}]")
    for key, identity in cfg.identities.items():
        validation.logical_key(key, f"{NAMESPACE}:identities.{key}")
        validation.identity_name(identity.name, f"{NAMESPACE}:identities.{key}.name")
        check_federated_credentials(
            [
                FederatedCredential(f.name, f.issuer, f.subject, tuple(f.audiences))
                for f in identity.federated_credentials
            ],
            f"{NAMESPACE}:identities.{key}.federatedCredentials",
        )
    unique([i.name for i in cfg.identities.values()], f"{NAMESPACE}:identities.*.name", str.lower)
    check_declared_federation(cfg)
    for kind in HOST_KINDS:
        entries = kind.entries(cfg)
        for key, host in entries.items():
            where = kind.where(key)
            validation.logical_key(key, where)
            host.check(key, where, cfg)
        unique([h.name for h in entries.values()], f"{NAMESPACE}:{kind.key}.*.name", str.lower)
    _check_storage(cfg)
    principals = grant_principals(cfg)
    roles: dict[int, RoleDefinition] = {}
    seen: dict[tuple[str, str, str], int] = {}
    for i, grant in enumerate(cfg.grants):
        where = f"{NAMESPACE}:grants[{i}]"
        _check_principal(cfg, principals, grant.principal, f"{where}.principal")
        _check_target(cfg, grant.target, f"{where}.target")
        roles[i] = resolver.resolve(grant.role, f"{where}.role")
        validate_condition(
            roles[i],
            grant.condition,
            grant.condition_version,
            field=f"{where}.condition",
            version_field=f"{where}.conditionVersion",
        )
        triple = (grant.principal, roles[i].guid, grant.target.lower())
        if triple in seen:
            raise ConfigError(
                where,
                grant.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True),
                f"repeats grants[{seen[triple]}] (same principal, role and target)",
                "remove one of them",
            )
        seen[triple] = i
    return roles


def grant_principals(cfg: StackConfig) -> dict[str, GrantPrincipal]:
    """Every host reference a grant may name (``vm:<key>``, ...), from the host kinds."""
    return {
        p.reference: p
        for kind in HOST_KINDS
        for key, host in kind.entries(cfg).items()
        for p in host.grant_principals(key, kind.where(key))
    }


def _check_storage(cfg: StackConfig) -> None:
    """Names as Azure requires them, blobs in declared containers, one value key each."""
    value_keys: dict[str, str] = {}
    for key, account in cfg.storage_accounts.items():
        where = f"{NAMESPACE}:storageAccounts.{key}"
        validation.logical_key(key, where)
        validation.storage_account_name(account.name, f"{where}.name")
        unique(account.containers, f"{where}.containers", str)
        for i, container in enumerate(account.containers):
            validation.container_name(container, f"{where}.containers[{i}]")
        for i, blob in enumerate(account.blobs):
            at = f"{where}.blobs[{i}]"
            if blob.container not in account.containers:
                raise ConfigError(
                    f"{at}.container",
                    blob.container,
                    "is not a container of this storage account",
                    choices("use one of", account.containers),
                )
            validation.blob_name(blob.name, f"{at}.name")
            validation.blob_index_tags(blob.tags, f"{at}.tags")
            value_key = blob_value_key(key, blob.container, blob.name)
            if value_key in value_keys:
                raise ConfigError(
                    at,
                    blob_key(key, blob.container, blob.name),
                    f"needs the same content key {NAMESPACE}:{value_key} as "
                    f"{value_keys[value_key]}",
                    "rename one of the blobs (keys replace every non-alphanumeric by '-')",
                )
            value_keys[value_key] = blob_key(key, blob.container, blob.name)
    unique(
        [a.name for a in cfg.storage_accounts.values()],
        f"{NAMESPACE}:storageAccounts.*.name",
        str.lower,
    )


def _check_principal(
    cfg: StackConfig, principals: dict[str, GrantPrincipal], principal: str, field: str
) -> None:
    options = [r for r, p in principals.items() if p.unavailable is None] + [
        f"{IDENTITY_PREFIX}{k}" for k in cfg.identities
    ]
    if principal.startswith(IDENTITY_PREFIX):
        if principal.removeprefix(IDENTITY_PREFIX) not in cfg.identities:
            raise ConfigError(
                field,
                principal,
                "names an identity that does not exist",
                choices("use one of", options),
            )
        return
    prefix, colon, _ = principal.partition(":")
    kind = next((k for k in HOST_KINDS if colon and k.prefix == prefix), None)
    if kind is None:
        hints = [k.model.PRINCIPAL_HINT for k in HOST_KINDS]
        raise ConfigError(
            field,
            principal,
            "is not a principal reference",
            f"write {', '.join(hints)} or {IDENTITY_PREFIX}<identity key>",
        )
    found = principals.get(principal)
    if found is None:
        raise ConfigError(
            field,
            principal,
            f"names {kind.model.NOUN} that does not exist",
            choices("use one of", options),
        )
    if found.unavailable is not None:
        problem, fix = found.unavailable
        raise ConfigError(field, principal, problem, fix)


def _check_target(cfg: StackConfig, target: str, field: str) -> None:
    if target == VAULT_TARGET:
        return
    if target.startswith(SECRET_PREFIX):
        if target.removeprefix(SECRET_PREFIX) not in cfg.secrets:
            raise ConfigError(
                field,
                target,
                "names a secret that is not declared in mikit:secrets",
                choices(
                    "use one of", [f"{SECRET_PREFIX}{s}" for s in cfg.secrets] + [VAULT_TARGET]
                ),
            )
        return
    if target.startswith(STORAGE_PREFIX):
        if target.removeprefix(STORAGE_PREFIX) not in cfg.storage_accounts:
            raise ConfigError(
                field,
                target,
                "names a storage account that is not declared in mikit:storageAccounts",
                choices("use one of", [f"{STORAGE_PREFIX}{k}" for k in cfg.storage_accounts]),
            )
        return
    if target.startswith(CONTAINER_PREFIX):
        account, _, container = target.removeprefix(CONTAINER_PREFIX).partition("/")
        declared = cfg.storage_accounts.get(account)
        if declared is None or container not in declared.containers:
            options = [
                f"{CONTAINER_PREFIX}{k}/{c}"
                for k, a in cfg.storage_accounts.items()
                for c in a.containers
            ]
            raise ConfigError(
                field,
                target,
                "names a container that is not declared in mikit:storageAccounts",
                choices("use one of", options),
            )
        return
    raise ConfigError(
        field,
        target,
        "is not a grant target",
        "write secret:<secret name>, vault, storage:<account key> or "
        "container:<account key>/<container>",
    )
