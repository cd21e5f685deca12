"""The ARM endpoints the Azure CLI needs beyond the SDK slice: cloud metadata, subscriptions,
and a VM's instance view.

``az cloud register --endpoint-resource-manager <arm>`` reads
``GET <arm>/metadata/endpoints?api-version=2022-09-01`` *unauthenticated* (it has no token
yet) and takes every other endpoint from it; ``az login --identity`` lists
``GET /subscriptions`` with the managed identity's token and keeps the ones it sees;
``az vm show -d`` reads ``$expand=instanceView`` for the power state. Real ARM answers each;
the sandbox answers them from its own listeners and state:

- metadata (2022-09-01: one object; 2019-05-01/2020-06-01: a one-element array, as older
  clients expect): ``authentication.loginEndpoint`` the sandbox's issuer, ``audiences`` ARM's
  (``https://management.core.windows.net/`` first: the audience az asks tokens for),
  ``resourceManager`` the sandbox ARM, ``microsoftGraphResourceId`` the sandbox's Graph (a
  custom cloud's Graph resource is its URL, as in sovereign clouds), Key Vault and Storage
  DNS suffixes (the sandbox's vaults answer on loopback ports named by ARM's ``vaultUri``);
- subscriptions: the sandbox's one subscription, listed to a caller with any role
  assignment in it (ARM lists the subscriptions the caller has access to; none is an empty
  list, which az reports as "No subscriptions found");
- instance view: provisioning and power state (``PowerState/running``: sandbox VMs run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from components.armid import is_within
from verify.sandbox.state.store import SandboxState, VirtualMachine

#: Versions of ``/metadata/endpoints`` and the shape each answers in.
METADATA_API_VERSIONS = {"2019-05-01": "list", "2020-06-01": "list", "2022-09-01": "object"}
SANDBOX_CLOUD_NAME = "MikitSandbox"


def cloud_metadata(
    *, name: str, login: str, arm: str, graph: str, keyvault_dns: str, storage: str
) -> dict[str, Any]:
    """The ``/metadata/endpoints`` document (2022-09-01 shape) for a cloud at these URLs."""
    return {
        "portal": arm,
        "authentication": {
            "loginEndpoint": login,
            "audiences": ["https://management.core.windows.net/", "https://management.azure.com/"],
            "tenant": "common",
            "identityProvider": "AAD",
        },
        "media": arm,
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        "name": name,
        "suffixes": {
            "keyVaultDns": keyvault_dns,
            "storage": storage,
            "acrLoginServer": "azurecr.io",
            "sqlServerHostname": "database.windows.net",
            "mhsmDns": "managedhsm.azure.net",
        },
        "batch": "https://batch.core.windows.net/",
        "resourceManager": arm.rstrip("/") + "/",
        "vmImageAliasDoc": "",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "microsoftGraphResourceId": graph.rstrip("/") + "/",
    }


def metadata_response(
    api_version: str | None, document: dict[str, Any]
) -> tuple[int, dict[str, Any] | list[dict[str, Any]]]:
    """(status, body) of ``GET /metadata/endpoints``: the shape depends on the version."""
    shape = METADATA_API_VERSIONS.get(api_version or "")
    if shape is None:
        supported = ", ".join(METADATA_API_VERSIONS)
        return 400, {
            "error": {
                "code": "InvalidApiVersionParameter"
                if api_version
                else "MissingApiVersionParameter",
                "message": f"The api-version '{api_version or ''}' is invalid. The supported "
                f"versions are '{supported}'.",
            }
        }
    return 200, (document if shape == "object" else [document])


def subscription_json(state: SandboxState, display_name: str = "mikit-sandbox") -> dict[str, Any]:
    """The sandbox subscription as ``GET /subscriptions/{id}`` returns it."""
    sub = state.subscription_id
    return {
        "id": f"/subscriptions/{sub}",
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "tags": {},
        "subscriptionId": sub,
        "tenantId": state.tenant_id,
        "displayName": display_name,
        "state": "Enabled",
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def can_see_subscription(state: SandboxState, principal_id: str) -> bool:
    """Whether ARM lists the subscription to ``principal_id``: any assignment within it."""
    scope = f"/subscriptions/{state.subscription_id}"
    return any(
        is_within(a.scope, scope) or is_within(scope, a.scope)
        for a in state.role_assignments(principal_id=principal_id)
    )


def subscriptions_response(
    state: SandboxState, principal_id: str, path: str
) -> tuple[int, dict[str, Any]]:
    """``GET /subscriptions`` (the visible ones) or ``GET /subscriptions/{id}``."""
    visible = can_see_subscription(state, principal_id)
    parts = [p for p in path.split("/") if p]
    if len(parts) == 1:
        value = [subscription_json(state)] if visible else []
        return 200, {"value": value, "count": {"type": "Total", "value": len(value)}}
    wanted = parts[1]
    if wanted.lower() != state.subscription_id or not visible:
        return 404, {
            "error": {
                "code": "SubscriptionNotFound",
                "message": f"The subscription '{wanted}' could not be found.",
            }
        }
    return 200, subscription_json(state)


def instance_view(vm: VirtualMachine, stamp: Callable[[float], str]) -> dict[str, Any]:
    """A running VM's ``properties.instanceView`` (what ``az vm show -d`` reads)."""
    return {
        "computerName": vm.name,
        "osName": "ubuntu",
        "osVersion": "22.04",
        "vmAgent": {
            "vmAgentVersion": "2.9.1.1",
            "statuses": [
                {
                    "code": "ProvisioningState/succeeded",
                    "level": "Info",
                    "displayStatus": "Ready",
                    "message": "Guest Agent is running",
                    "time": stamp(vm.created_on),
                }
            ],
        },
        "statuses": [
            {
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
                "time": stamp(vm.created_on),
            },
            {"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"},
        ],
    }
