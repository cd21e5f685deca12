"""The ARM endpoints the Azure CLI needs: cloud metadata, subscriptions, VM instance view.

Exercised here with plain HTTP and the real azure-mgmt clients (always run); the ``az``
commands themselves are in tests/azcli (run where ``az`` is installed).
"""

from __future__ import annotations

import uuid

import pytest
import requests
from azure.mgmt.compute import ComputeManagementClient
from sandbox_world import World

from verify.sandbox import Sandbox


def test_metadata_endpoints_answer_without_a_token(sb: Sandbox) -> None:
    response = requests.get(
        f"{sb.arm_url}/metadata/endpoints",
        params={"api-version": "2022-09-01"},
        verify=sb.ca_cert_path,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["resourceManager"] == sb.arm_url + "/"
    assert doc["authentication"]["loginEndpoint"] == sb.authority_url
    assert doc["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert doc["microsoftGraphResourceId"] == sb.graph_url + "/"
    assert doc["suffixes"]["keyVaultDns"] == "vault.azure.net"
    assert doc["suffixes"]["storage"] == "core.windows.net"
    assert doc["name"] == "MikitSandbox"


def test_older_metadata_versions_answer_a_list(sb: Sandbox) -> None:
    response = requests.get(
        f"{sb.arm_url}/metadata/endpoints?api-version=2019-05-01",
        verify=sb.ca_cert_path,
        timeout=10,
    )
    body = response.json()
    assert isinstance(body, list) and body[0]["resourceManager"] == sb.arm_url + "/"


@pytest.mark.parametrize(
    ("query", "code"),
    [("?api-version=1999-01-01", "InvalidApiVersionParameter"), ("", "MissingApiVersionParameter")],
)
def test_metadata_refuses_unknown_versions(sb: Sandbox, query: str, code: str) -> None:
    response = requests.get(
        f"{sb.arm_url}/metadata/endpoints{query}", verify=sb.ca_cert_path, timeout=10
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def arm_get(sb: Sandbox, path: str, principal: str | None = None) -> requests.Response:
    """What azure-mgmt-resource's SubscriptionClient sends (api-version 2022-12-01, as az)."""
    who = sb.state.principal(principal) if principal else sb.operator
    assert who is not None
    token = sb.issue_token(who, "https://management.core.windows.net/")
    return requests.get(
        f"{sb.arm_url}{path}",
        params={"api-version": "2022-12-01"},
        headers={"Authorization": f"Bearer {token}"},
        verify=sb.ca_cert_path,
        timeout=10,
    )


def test_subscriptions_are_listed_to_a_caller_with_a_role_in_them(sb: Sandbox) -> None:
    body = arm_get(sb, "/subscriptions").json()
    (sub,) = body["value"]
    assert sub["subscriptionId"] == sb.subscription_id
    assert sub["tenantId"] == sb.tenant_id
    assert sub["state"] == "Enabled"
    assert body["count"] == {"type": "Total", "value": 1}
    got = arm_get(sb, f"/subscriptions/{sb.subscription_id}").json()
    assert got["id"] == f"/subscriptions/{sb.subscription_id}"


def test_a_role_below_the_subscription_makes_it_visible(sb: Sandbox, world: World) -> None:
    # id_a holds Key Vault Secrets User on the vault only
    listed = arm_get(sb, "/subscriptions", world.id_a.principal_id).json()["value"]
    assert [s["subscriptionId"] for s in listed] == [sb.subscription_id]


def test_a_caller_without_any_role_sees_no_subscription(sb: Sandbox) -> None:
    lonely = sb.state.create_principal(f"app-{uuid.uuid4().hex[:6]}")
    assert arm_get(sb, "/subscriptions", lonely.object_id).json()["value"] == []
    response = arm_get(sb, f"/subscriptions/{sb.subscription_id}", lonely.object_id)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "SubscriptionNotFound"


def test_subscriptions_need_a_token(sb: Sandbox) -> None:
    response = requests.get(
        f"{sb.arm_url}/subscriptions?api-version=2022-12-01", verify=sb.ca_cert_path, timeout=10
    )
    assert response.status_code == 401


def test_vm_instance_view_carries_the_power_state(sb: Sandbox, world: World) -> None:
    client = ComputeManagementClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )
    vm = client.virtual_machines.get(world.rg, world.vm_sys.name, expand="instanceView")
    assert vm.instance_view is not None
    codes = [s.code for s in vm.instance_view.statuses or []]
    assert "PowerState/running" in codes
    assert "ProvisioningState/succeeded" in codes
    plain = client.virtual_machines.get(world.rg, world.vm_sys.name)
    assert plain.instance_view is None


def test_unknown_expand_is_refused(sb: Sandbox, world: World) -> None:
    token = sb.issue_token(sb.operator, "https://management.azure.com")
    url = (
        f"{sb.arm_url}/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}/providers/"
        f"Microsoft.Compute/virtualMachines/{world.vm_sys.name}"
    )
    response = requests.get(
        url,
        params={"api-version": "2024-11-01", "$expand": "everything"},
        headers={"Authorization": f"Bearer {token}"},
        verify=sb.ca_cert_path,
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidParameter"
