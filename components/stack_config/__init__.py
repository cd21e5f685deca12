"""The stack config (namespace ``mikit``): typed, validated, cross-checked, up front.

Read once by ``__main__.py``. pydantic checks types and shapes (:mod:`.schema`, worded by
:mod:`.wording`); :mod:`.references` then checks what pydantic cannot (Azure naming rules,
role names, that every principal and every ``secret:`` target exists) and turns every
failure into a :class:`ConfigError` naming the config key, the value and the fix;
:mod:`.pulumi_config` reads the values as Pulumi passes them. Each kind of host is one
module (:mod:`.vms` ...) registered by one field of :class:`StackConfig` (see
:mod:`.hosts`). Nothing is registered until all of it passes, so a typo never leaves
half a topology behind.
"""

from components.stack_config.apps import AppConfig
from components.stack_config.base import ConfigModel
from components.stack_config.hosts import GrantPrincipal, HostConfig, HostKind
from components.stack_config.keys import (
    BLOB_VALUE_PREFIX,
    CONTAINER_PREFIX,
    IDENTITY_PREFIX,
    NAMESPACE,
    SECRET_PREFIX,
    STORAGE_PREFIX,
    VAULT_TARGET,
    blob_key,
    blob_value_key,
    secret_config_keys,
    secret_value_key,
)
from components.stack_config.pulumi_config import (
    all_config,
    check_rules,
    load,
    read_pulumi_config,
    validate,
)
from components.stack_config.references import check, grant_principals
from components.stack_config.schema import (
    HOST_KINDS,
    KEYS,
    BlobConfig,
    FederatedCredentialConfig,
    GrantConfig,
    IdentityConfig,
    NetworkConfig,
    StackConfig,
    StorageAccountConfig,
    VaultConfig,
)
from components.stack_config.vms import VmConfig
from components.stack_config.wording import parse

#: ``vm:``: a grant principal naming a VM's system identity.
VM_PREFIX = f"{VmConfig.PRINCIPAL_PREFIX}:"
#: ``app:``: a grant principal naming an app's system identity.
APP_PREFIX = f"{AppConfig.PRINCIPAL_PREFIX}:"

__all__ = [
    "APP_PREFIX",
    "BLOB_VALUE_PREFIX",
    "CONTAINER_PREFIX",
    "HOST_KINDS",
    "IDENTITY_PREFIX",
    "KEYS",
    "NAMESPACE",
    "SECRET_PREFIX",
    "STORAGE_PREFIX",
    "VAULT_TARGET",
    "VM_PREFIX",
    "AppConfig",
    "BlobConfig",
    "ConfigModel",
    "FederatedCredentialConfig",
    "GrantConfig",
    "GrantPrincipal",
    "HostConfig",
    "HostKind",
    "IdentityConfig",
    "NetworkConfig",
    "StackConfig",
    "StorageAccountConfig",
    "VaultConfig",
    "VmConfig",
    "all_config",
    "blob_key",
    "blob_value_key",
    "check",
    "check_rules",
    "grant_principals",
    "load",
    "parse",
    "read_pulumi_config",
    "secret_config_keys",
    "secret_value_key",
    "validate",
]
