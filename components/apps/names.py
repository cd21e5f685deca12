"""Azure's naming rules for the app hosts (Microsoft's "Naming rules and restrictions for
Azure resources": Microsoft.Web and Microsoft.App), checked before any resource exists."""

from __future__ import annotations

import re

from components.errors import ConfigError

# Microsoft.Web/sites: global, 2-60, alphanumerics and hyphens, not starting or ending with
# a hyphen (the name becomes <name>.azurewebsites.net). Punycode-mappable Unicode is
# allowed too; the kit keeps to ASCII so the host name needs no IDN encoding.
_SITE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,58}[A-Za-z0-9])$")
# Microsoft.Web/serverfarms: resource group, 1-60, alphanumerics and hyphens.
_PLAN = re.compile(r"^[A-Za-z0-9-]{1,60}$")
# Microsoft.App/containerApps: resource group, 2-32, lowercase letters, digits and hyphens,
# starts with a letter, ends with a letter or digit, no "--".
_CONTAINER_APP = re.compile(r"^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])$")
# Microsoft.App/managedEnvironments: resource group, 2-60, same alphabet as container apps
# (ARM's ManagedEnvironmentInvalidName names lowercase, a leading letter, no "--").
_ENVIRONMENT = re.compile(r"^[a-z](?:[a-z0-9-]{0,58}[a-z0-9])$")
# App setting / environment variable names: letters, digits, '_' ('.'/'-' are not portable
# to Linux environment variables, where App Service turns them into '_').
_SETTING = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Container Apps secret names: lowercase alphanumerics, '-' and '.', 1-253, start and end
# alphanumeric (ARM: ContainerAppInvalidSecretName).
_CA_SECRET = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")


def site_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _SITE.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid App Service app name",
            "use 2-60 letters, digits and hyphens, not starting or ending with a hyphen "
            "(it becomes <name>.azurewebsites.net, so it must be unique in Azure)",
        )
    return value


def plan_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _PLAN.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid App Service plan name",
            "use 1-60 letters, digits and hyphens",
        )
    return value


def container_app_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _CONTAINER_APP.match(value) or "--" in value:
        raise ConfigError(
            field,
            value,
            "is not a valid container app name",
            "use 2-32 lowercase letters, digits and hyphens, starting with a letter, ending "
            "with a letter or digit, without '--'",
        )
    return value


def environment_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _ENVIRONMENT.match(value) or "--" in value:
        raise ConfigError(
            field,
            value,
            "is not a valid Container Apps environment name",
            "use 2-60 lowercase letters, digits and hyphens, starting with a letter, ending "
            "with a letter or digit, without '--'",
        )
    return value


def setting_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _SETTING.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid app setting name",
            "use letters, digits and '_', not starting with a digit (it becomes an "
            "environment variable)",
        )
    return value


def container_app_secret_name(value: object, field: str) -> str:
    if not isinstance(value, str) or not _CA_SECRET.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid container app secret name",
            "use lowercase letters, digits, '-' and '.', starting and ending with a letter "
            "or digit",
        )
    return value
