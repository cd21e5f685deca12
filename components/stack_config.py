"""The stack config (namespace ``mikit``): typed, validated, cross-checked, up front.

Read once by ``__main__.py``. pydantic checks types and shapes; this module then checks
what pydantic cannot (Azure naming rules, role names, that every ``vm:``/``identity:``
principal and every ``secret:`` target exists) and turns every failure into a
:class:`ConfigError` naming the config key, the value and the fix. Nothing is
registered until all of it passes, so a typo never leaves half a topology behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from components import config_rules, validation
from components.conditions import validate_condition
from components.config_rules import config_set_command, did_you_mean
from components.errors import NOT_SET, ConfigError
from components.identity import FederatedCredential, check_federated_credentials
from components.network import check_address_plan
from components.role_lookup import RoleResolver
from components.roles import RoleDefinition
from components.vm_sizes import DEFAULT_VM_SIZE

NAMESPACE = "mikit"
VAULT_TARGET = "vault"
SECRET_PREFIX = "secret:"  # noqa: S105 (a reference prefix)
VM_PREFIX = "vm:"
IDENTITY_PREFIX = "identity:"
STORAGE_PREFIX = "storage:"
CONTAINER_PREFIX = "container:"
#: Prefix of a seeded blob's content in the values :func:`load` returns (':' never
#: appears in a Key Vault secret name, so the two cannot collide).
BLOB_VALUE_PREFIX = "blob:"


def secret_value_key(name: str) -> str:
    """The key holding a secret's value: ``pulumi config set --secret mikit:secret-<name>``."""
    return f"secret-{name}"


def blob_key(account: str, container: str, name: str) -> str:
    """``<account key>/<container>/<path>``: how outputs and the matrix name a blob."""
    return f"{account}/{container}/{name}"


def blob_value_key(account: str, container: str, name: str) -> str:
    """The key holding a seeded blob's content:
    ``pulumi config set --secret mikit:blob-<account key>-<container>-<path>``, where every
    character of the path other than a letter or digit becomes ``-`` (so the key needs no
    quoting and no ``--path``). Two blobs mapping to one key are refused by :func:`check`.
    """
    slug = re.sub(r"[^A-Za-z0-9]", "-", name)
    return f"blob-{account}-{container}-{slug}"


def secret_config_keys(config: Mapping[str, Any]) -> list[str]:
    """Every secret-config key a stack's raw config (``mikit:``-prefixed keys, as in a stack
    file) needs a value for: ``mikit:secret-<name>`` per ``mikit:secrets`` entry, then
    ``mikit:blob-...`` per seeded blob of ``mikit:storageAccounts``. The bootstrap's
    next steps and preflight list them from here, so a new kind cannot be forgotten."""
    keys = [f"{NAMESPACE}:{secret_value_key(str(n))}" for n in config.get("mikit:secrets") or []]
    for account, raw in (config.get("mikit:storageAccounts") or {}).items():
        for blob in (raw or {}).get("blobs") or []:
            container, name = str(blob.get("container")), str(blob.get("name"))
            keys.append(f"{NAMESPACE}:{blob_value_key(str(account), container, name)}")
    return keys


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


class NetworkConfig(_Model):
    address_space: str = "10.42.0.0/16"
    subnet_prefix: str = "10.42.1.0/24"
    nat_gateway: bool = True


class VaultConfig(_Model):
    name: str
    purge_protection: bool = True
    public_network_access: bool = True
    soft_delete_retention_days: Annotated[int, Field(ge=7, le=90)] = 90
    #: ``recover`` brings back a soft-deleted vault of this name (with its secrets) instead
    #: of failing with 409 ConflictError; set it for the one `pulumi up` after a destroy
    #: (`python -m verify preflight` says when), then remove it.
    create_mode: Literal["default", "recover"] = "default"


class FederatedCredentialConfig(_Model):
    name: str
    issuer: str
    subject: str
    audiences: list[str] = Field(default_factory=lambda: ["api://AzureADTokenExchange"])


class IdentityConfig(_Model):
    name: str
    lock: bool = False
    federated_credentials: list[FederatedCredentialConfig] = Field(default_factory=list)


class VmConfig(_Model):
    name: str
    system_identity: bool = False
    user_assigned: list[str] | None = None
    size: str | None = None

    @field_validator("user_assigned")
    @classmethod
    def _not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("is an empty list; a user-assigned identity is required here")
        return value


class GrantConfig(_Model):
    principal: str
    role: str
    target: str
    description: str | None = None
    #: An Azure ABAC condition (Storage Blob/Queue data roles only), e.g. limiting an
    #: account-wide grant to one container or to blobs with an index tag.
    condition: str | None = None
    condition_version: str | None = None
    #: A privileged role (Owner, User Access Administrator, Key Vault Administrator, ...)
    #: at any scope, the vault and one secret included, needs this explicit opt-in.
    allow_privileged: bool = False


class BlobConfig(_Model):
    container: str
    name: str
    content_type: str = "text/plain"
    #: Blob index tags (what conditions read as @Resource[.../blobs/tags:<key>...]).
    tags: dict[str, str] = Field(default_factory=dict)


class StorageAccountConfig(_Model):
    name: str
    containers: list[str] = Field(default_factory=list)
    blobs: list[BlobConfig] = Field(default_factory=list)
    public_network_access: bool = True


class StackConfig(_Model):
    """Everything ``__main__.py`` needs; see the README's ``components`` section."""

    location: str
    resource_group: str
    #: False: the group already exists (made by an administrator or the CI bootstrap,
    #: because a deployer scoped to the group cannot create it); the program then
    #: registers no ResourceGroup and deploys into the group by name.
    create_resource_group: bool = True
    ssh_public_key: str
    vault: VaultConfig
    admin_username: str = "azureuser"
    vm_size: str = DEFAULT_VM_SIZE
    tags: dict[str, str] = Field(default_factory=dict)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    secrets: list[str] = Field(default_factory=list)
    identities: dict[str, IdentityConfig] = Field(default_factory=dict)
    vms: dict[str, VmConfig] = Field(default_factory=dict)
    grants: list[GrantConfig] = Field(default_factory=list)
    storage_accounts: dict[str, StorageAccountConfig] = Field(default_factory=dict)


# Top-level keys in the order the schema documents them.
KEYS: tuple[str, ...] = tuple((f.alias or name) for name, f in StackConfig.model_fields.items())

#: pydantic error type -> (problem, fix) in our words; ``{ctx}`` fields come from pydantic.
_WORDING: Mapping[str, tuple[str, str]] = {
    "bool_parsing": ("is not true or false", "use true or false"),
    "bool_type": ("is not true or false", "use true or false"),
    "int_parsing": ("is not a whole number", "use a whole number"),
    "int_type": ("is not a whole number", "use a whole number"),
    "int_from_float": ("is not a whole number", "use a whole number"),
    "string_type": ("is not a string", "write it as text (quote it in YAML)"),
    "list_type": ("is not a list", "write a YAML list: [a, b] or one '- item' per line"),
    "dict_type": ("is not a mapping", "write key: value pairs"),
    "model_type": ("is not a mapping", "write key: value pairs"),
    "greater_than_equal": ("is below the minimum {ge}", "use a number from {ge}"),
    "less_than_equal": ("is above the maximum {le}", "use a number up to {le}"),
}


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys accepted at the mapping that holds ``loc`` (for 'unknown key' errors)."""
    model: Any = StackConfig
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        field = fields.get(str(part))
        if field is None:
            continue  # a user key in a dict, e.g. vms.<key>
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        inner = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = inner[0] if inner else None
    if model is None:
        return []
    return [f.alias or n for n, f in model.model_fields.items()]


def _first_required(loc: tuple[int | str, ...]) -> str | None:
    """For a missing section (``vault``), its first required key (``name``), if any."""
    model: Any = StackConfig
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        fields = {(f.alias or n): f for n, f in model.model_fields.items()}
        field = fields.get(str(part))
        if field is None:
            continue
        annotation = field.annotation
        inner = [
            a
            for a in (annotation, *getattr(annotation, "__args__", ()))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        model = inner[0] if inner else None
    if model is None or model is StackConfig:
        return None
    required = [f.alias or n for n, f in model.model_fields.items() if f.is_required()]
    return required[0] if required else None


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = f"{NAMESPACE}:{loc[0]}" if loc else NAMESPACE
    for part in loc[1:]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _from_pydantic(error: ValidationError) -> ConfigError:
    """The first schema failure as a ConfigError in the project's words (never pydantic's)."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    key = _dotted(loc)
    kind = first["type"]
    if kind == "missing":
        first_part = _first_required(loc)
        command = config_set_command(f"{key}.{first_part}" if first_part else key)
        also = " and its other keys" if first_part else ""
        return ConfigError(
            key,
            NOT_SET,
            "is required but not set",
            f"set it: {command}{also} (see the README's config schema)",
        )
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc)
        hint = did_you_mean(str(loc[-1]), allowed)
        return ConfigError(
            key,
            first["input"],
            "is not a known setting",
            f"{hint}remove it or fix its spelling; allowed here: "
            + (", ".join(allowed) or "(see the README)"),
        )
    if loc and loc[-1] == "userAssigned" and kind == "value_error":
        return ConfigError(
            key,
            first.get("input"),
            "is an empty list",
            "list at least one identity key (from mikit:identities), or leave the key out",
        )
    if kind == "value_error":
        problem = str(first["msg"]).removeprefix("Value error, ").rstrip(".")
        return ConfigError(key, first.get("input"), problem, "see the README's config schema")
    ctx = {k: v for k, v in (first.get("ctx") or {}).items()}
    problem, fix = _WORDING.get(kind, ("has the wrong type", "see the README's config schema"))
    return ConfigError(key, first.get("input"), problem.format(**ctx), fix.format(**ctx))


def parse(raw: Mapping[str, Any]) -> StackConfig:
    """Validate raw config values (keys without the namespace) into a StackConfig."""
    try:
        return StackConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise _from_pydantic(exc) from None


def check(cfg: StackConfig, resolver: RoleResolver) -> dict[int, RoleDefinition]:
    """Azure rules and cross-references; returns each grant's resolved role by index."""
    validation.resource_group_name(cfg.resource_group, f"{NAMESPACE}:resourceGroup")
    validation.admin_username(cfg.admin_username, f"{NAMESPACE}:adminUsername")
    validation.ssh_public_key(cfg.ssh_public_key, f"{NAMESPACE}:sshPublicKey")
    validation.vm_size(cfg.vm_size, f"{NAMESPACE}:vmSize")
    check_address_plan(
        cfg.network.address_space,
        cfg.network.subnet_prefix,
        f"{NAMESPACE}:network.addressSpace",
        f"{NAMESPACE}:network.subnetPrefix",
    )
    validation.vault_name(cfg.vault.name, f"{NAMESPACE}:vault.name")
    _unique(cfg.secrets, f"{NAMESPACE}:secrets", lambda s: s.lower())
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
    _unique([i.name for i in cfg.identities.values()], f"{NAMESPACE}:identities.*.name", str.lower)
    for key, vm in cfg.vms.items():
        where = f"{NAMESPACE}:vms.{key}"
        validation.logical_key(key, where)
        validation.vm_name(vm.name, f"{where}.name")
        if vm.size is not None:
            validation.vm_size(vm.size, f"{where}.size")
        for j, ref in enumerate(vm.user_assigned or []):
            if ref not in cfg.identities:
                raise ConfigError(
                    f"{where}.userAssigned[{j}]",
                    ref,
                    "is not a key of mikit:identities",
                    _choices("use one of", cfg.identities),
                )
        if not vm.system_identity and not vm.user_assigned:
            raise ConfigError(
                where,
                {"systemIdentity": False, "userAssigned": None},
                "has no identity at all",
                "set systemIdentity: true and/or userAssigned: [<identity key>]",
            )
    _unique([v.name for v in cfg.vms.values()], f"{NAMESPACE}:vms.*.name", str.lower)
    _check_storage(cfg)
    roles: dict[int, RoleDefinition] = {}
    seen: dict[tuple[str, str, str], int] = {}
    for i, grant in enumerate(cfg.grants):
        where = f"{NAMESPACE}:grants[{i}]"
        _check_principal(cfg, grant.principal, f"{where}.principal")
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


def _check_storage(cfg: StackConfig) -> None:
    """Names as Azure requires them, blobs in declared containers, one value key each."""
    value_keys: dict[str, str] = {}
    for key, account in cfg.storage_accounts.items():
        where = f"{NAMESPACE}:storageAccounts.{key}"
        validation.logical_key(key, where)
        validation.storage_account_name(account.name, f"{where}.name")
        _unique(account.containers, f"{where}.containers", str)
        for i, container in enumerate(account.containers):
            validation.container_name(container, f"{where}.containers[{i}]")
        for i, blob in enumerate(account.blobs):
            at = f"{where}.blobs[{i}]"
            if blob.container not in account.containers:
                raise ConfigError(
                    f"{at}.container",
                    blob.container,
                    "is not a container of this storage account",
                    _choices("use one of", account.containers),
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
    _unique(
        [a.name for a in cfg.storage_accounts.values()],
        f"{NAMESPACE}:storageAccounts.*.name",
        str.lower,
    )


def _unique(values: list[str], field: str, norm: Callable[[str], str]) -> None:
    seen: set[str] = set()
    for value in values:
        if norm(value) in seen:
            raise ConfigError(field, value, "appears twice", "give each a distinct name")
        seen.add(norm(value))


def _choices(prefix: str, keys: Mapping[str, Any] | list[str]) -> str:
    listed = ", ".join(repr(k) for k in keys)
    return f"{prefix} {listed}" if listed else "declare it first"


def _check_principal(cfg: StackConfig, principal: str, field: str) -> None:
    options = [f"{VM_PREFIX}{k}" for k, v in cfg.vms.items() if v.system_identity] + [
        f"{IDENTITY_PREFIX}{k}" for k in cfg.identities
    ]
    if principal.startswith(VM_PREFIX):
        key = principal.removeprefix(VM_PREFIX)
        if key not in cfg.vms:
            raise ConfigError(
                field, principal, "names a VM that does not exist", _choices("use one of", options)
            )
        if not cfg.vms[key].system_identity:
            raise ConfigError(
                field,
                principal,
                "names a VM whose system identity is off",
                f"set mikit:vms.{key}.systemIdentity: true, or grant a user-assigned identity",
            )
        return
    if principal.startswith(IDENTITY_PREFIX):
        if principal.removeprefix(IDENTITY_PREFIX) not in cfg.identities:
            raise ConfigError(
                field,
                principal,
                "names an identity that does not exist",
                _choices("use one of", options),
            )
        return
    raise ConfigError(
        field,
        principal,
        "is not a principal reference",
        "write vm:<vm key> (its system identity) or identity:<identity key>",
    )


def _check_target(cfg: StackConfig, target: str, field: str) -> None:
    if target == VAULT_TARGET:
        return
    if target.startswith(SECRET_PREFIX):
        if target.removeprefix(SECRET_PREFIX) not in cfg.secrets:
            raise ConfigError(
                field,
                target,
                "names a secret that is not declared in mikit:secrets",
                _choices(
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
                _choices("use one of", [f"{STORAGE_PREFIX}{k}" for k in cfg.storage_accounts]),
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
                _choices("use one of", options),
            )
        return
    raise ConfigError(
        field,
        target,
        "is not a grant target",
        "write secret:<secret name>, vault, storage:<account key> or "
        "container:<account key>/<container>",
    )


def read_pulumi_config(config: Any) -> dict[str, Any]:
    """Raw values of every schema key from a ``pulumi.Config(NAMESPACE)``.

    Structured keys are JSON in Pulumi config; a value that is not valid JSON where a
    structure is expected fails here with the key named.
    """
    raw: dict[str, Any] = {}
    for key in KEYS:
        text = config.get(key)
        if text is None:
            continue
        if key in _STRING_KEYS or key in _BOOL_KEYS:
            raw[key] = text  # a bool is checked (and its error worded) by pydantic
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            is_list = key in _LIST_KEYS
            part = "[0]" if is_list else ".<key>"
            raise ConfigError(
                f"{NAMESPACE}:{key}",
                text,
                f"is not a {'list' if is_list else 'mapping'}",
                f"write it as a YAML {'list' if is_list else 'mapping'} in the stack file "
                f"({NAMESPACE}:{key}: {'[a, b]' if is_list else '{k: v}'}), or set its parts "
                f"with {config_set_command(f'{NAMESPACE}:{key}{part}')}",
            ) from None
    return raw


_STRING_KEYS = frozenset({"location", "resourceGroup", "sshPublicKey", "adminUsername", "vmSize"})
_BOOL_KEYS = frozenset({"createResourceGroup"})
_LIST_KEYS = frozenset(
    (f.alias or n) for n, f in StackConfig.model_fields.items() if get_origin(f.annotation) is list
)


def all_config() -> dict[str, str]:
    """Every config key of this run as the Pulumi CLI passed it (full key -> string).

    ``pulumi.Config`` only answers for keys one asks about; the unknown-key check needs
    them all, and the Python SDK keeps them in its runtime config.
    """
    from pulumi.runtime.config import CONFIG  # noqa: PLC0415 -- the SDK's own store

    return {str(k): str(v) for k, v in CONFIG.get().items()}


def check_rules(
    cfg: StackConfig, roles: Mapping[int, RoleDefinition], values: Mapping[str, str]
) -> None:
    """The rules beyond the schema and the cross-references (see :mod:`config_rules`)."""
    config_rules.check_location(cfg.location, f"{NAMESPACE}:location")
    config_rules.check_secret_values(values, cfg.secrets)
    for i, grant in enumerate(cfg.grants):
        role = roles[i]
        if role.privileged and not grant.allow_privileged:
            where = f"{NAMESPACE}:grants[{i}]"
            opt_in = config_set_command(f"{where}.allowPrivileged", "true")
            raise ConfigError(
                f"{where}.role",
                grant.role,
                f"is a privileged role (it can change access or holds a whole data plane), "
                f"here at {grant.target!r}",
                "grant a data role such as 'Key Vault Secrets User', or opt in with "
                f"allowPrivileged: true on that grant ({opt_in})",
            )


def validate(
    values: Mapping[str, str], resolver: RoleResolver
) -> tuple[StackConfig, dict[int, RoleDefinition]]:
    """All of the checks on the config as Pulumi passes it, before anything else runs.

    ``values`` maps full keys to strings (what ``pulumi config`` holds, decrypted). The
    verifier calls this on a stack file before it starts anything; the stack program
    calls it through :func:`load`.
    """
    declared = _declared_secrets(values)
    config_rules.check_keys(values, KEYS, declared)
    cfg = parse(read_pulumi_config(_MappingConfig(values)))
    roles = check(cfg, resolver)
    config_rules.check_blob_values(
        values,
        {
            blob_value_key(key, blob.container, blob.name): blob_key(key, blob.container, blob.name)
            for key, account in cfg.storage_accounts.items()
            for blob in account.blobs
        },
    )
    check_rules(cfg, roles, values)
    return cfg, roles


def _declared_secrets(values: Mapping[str, str]) -> list[str] | None:
    """``mikit:secrets``, or None when it is malformed (the schema then reports it)."""
    try:
        secrets = json.loads(values.get(f"{NAMESPACE}:secrets", "[]"))
    except json.JSONDecodeError:
        return None
    if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
        return None
    return secrets


class _MappingConfig:
    """The ``pulumi.Config(NAMESPACE).get`` slice over a plain mapping of full keys."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = values

    def get(self, key: str) -> str | None:
        return self._values.get(f"{NAMESPACE}:{key}")


def load(config: Any, resolver: RoleResolver) -> tuple[StackConfig, dict[str, Any]]:
    """Read, validate and cross-check the stack config; fetch each declared secret value.

    ``config`` is a ``pulumi.Config(NAMESPACE)``. Returns the config and the secret
    values as secret Outputs: each Key Vault secret's by its name, each seeded blob's
    content under ``blob:<account key>/<container>/<path>``. Raises :class:`ConfigError`
    before anything is registered.
    """
    cfg, _ = validate(all_config(), resolver)
    values: dict[str, Any] = {}
    for account_key, account in cfg.storage_accounts.items():
        for blob in account.blobs:
            key = blob_value_key(account_key, blob.container, blob.name)
            value = config.get_secret(key)
            if value is None:
                raise ConfigError(
                    f"{NAMESPACE}:{key}",
                    NOT_SET,
                    f"is not set, so blob {blob_key(account_key, blob.container, blob.name)!r} "
                    "has no content",
                    f"run: {config_set_command(f'{NAMESPACE}:{key}', '<content>', secret=True)}",
                )
            values[BLOB_VALUE_PREFIX + blob_key(account_key, blob.container, blob.name)] = value
    for name in cfg.secrets:
        key = secret_value_key(name)
        value = config.get_secret(key)
        if value is None:
            raise ConfigError(
                f"{NAMESPACE}:{key}",
                NOT_SET,
                f"is not set, so secret {name!r} has no value",
                f"run: {config_set_command(f'{NAMESPACE}:{key}', secret=True)}",
            )
        values[name] = value
    return cfg, values
