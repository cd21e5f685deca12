"""App hosts: App Service web apps and Function apps (``web``), Container Apps
(``container``), with the same ``ManagedIdentities`` and ``grant()`` as the VM."""

from components.apps.container import (
    ContainerApp,
    ContainerAppArgs,
    ContainerAppSecret,
    ContainerAppsEnvironment,
    IdentitySetting,
)
from components.apps.identities import CLIENT_ID_SETTING, SYSTEM
from components.apps.web import (
    AppServicePlan,
    AppServicePlanArgs,
    FunctionApp,
    FunctionAppArgs,
    KeyVaultReference,
    WebApp,
    WebAppArgs,
)

__all__ = [
    "CLIENT_ID_SETTING",
    "SYSTEM",
    "AppServicePlan",
    "AppServicePlanArgs",
    "ContainerApp",
    "ContainerAppArgs",
    "ContainerAppSecret",
    "ContainerAppsEnvironment",
    "FunctionApp",
    "FunctionAppArgs",
    "IdentitySetting",
    "KeyVaultReference",
    "WebApp",
    "WebAppArgs",
]
