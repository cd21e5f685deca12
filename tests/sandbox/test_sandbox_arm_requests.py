"""ARM refuses what it does not understand (it fails closed): unknown or malformed
``$filter`` expressions and bodies of the wrong shape are 400 with ARM's code, never 500,
never ignored."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from sandbox_world import World

from verify.sandbox import Sandbox

ARM = "https://management.azure.com"
AUTHZ = "2022-04-01"


def authz(sb: Sandbox) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )


def call(sb: Sandbox, method: str, path: str, api: str, body: Any = None) -> requests.Response:
    return requests.request(
        method,
        f"{sb.arm_url}{path}?api-version={api}",
        headers={"Authorization": f"Bearer {sb.issue_token(sb.operator, ARM)}"},
        data=body if isinstance(body, bytes) else None,
        json=None if isinstance(body, bytes) or body is None else body,
        verify=sb.ca_cert_path,
        timeout=10,
    )


@pytest.mark.parametrize(
    "flt",
    [
        "principalId eq ''",  # reproduced: returned every assignment
        "principalId eq 'not-a-guid'",
        "roleDefinitionId eq '4633458b-17de-408a-b874-0445c86b69e6'",  # reproduced: ignored
        "principalId eq '{p}' and atScope()",
        "principalId eq '{p}' and roleDefinitionId eq 'x'",
        "assignedTo('{p}') or atScope()",
        "atScope",
        "nonsense",
    ],
)
def test_unsupported_assignment_filters_are_400_unsupported_query(
    sb: Sandbox, world: World, flt: str
) -> None:
    flt = flt.replace("{p}", world.id_a.principal_id)
    with pytest.raises(HttpResponseError) as refused:
        list(authz(sb).role_assignments.list_for_scope(world.vault.id, filter=flt))
    assert refused.value.status_code == 400
    assert refused.value.error.code == "UnsupportedQuery"  # type: ignore[union-attr]
    assert refused.value.error.message == (  # type: ignore[union-attr]
        f"The filter '{flt}' is not supported. Supported filters are either 'atScope()' or "
        "'principalId eq '{value}' or assignedTo('{value}')'."
    )


def test_the_documented_filters_still_work(sb: Sandbox, world: World) -> None:
    client = authz(sb).role_assignments
    pid = world.id_a.principal_id
    for flt in (
        f"principalId eq '{pid}'",
        f"assignedTo('{pid}')",
        f"atScope() and assignedTo('{pid}')",
        f"assignedTo('{pid.upper()}') and atScope()",
    ):
        found = list(client.list_for_scope(world.vault.id, filter=flt))
        assert [a.principal_id for a in found] == [pid], flt
    at_scope = list(client.list_for_scope(world.vault.id, filter="atScope()"))
    assert {a.principal_id for a in at_scope} >= {pid, world.id_b.principal_id}
    assert list(client.list_for_scope(world.vault.id))  # no filter: everything that applies


def test_role_definition_filters(sb: Sandbox) -> None:
    client = authz(sb).role_definitions
    scope = f"/subscriptions/{sb.subscription_id}"
    assert [r.role_name for r in client.list(scope, filter="roleName eq 'Reader'")] == ["Reader"]
    assert len(list(client.list(scope, filter="type eq 'BuiltInRole'"))) > 100
    assert list(client.list(scope, filter="type eq 'CustomRole'")) == []
    with pytest.raises(HttpResponseError) as refused:
        list(client.list(scope, filter="roleName like 'Read%'"))
    assert (refused.value.status_code, refused.value.error.code) == (400, "UnsupportedQuery")  # type: ignore[union-attr]


def _assignment_path(sb: Sandbox) -> str:
    return (
        f"/subscriptions/{sb.subscription_id}/providers/Microsoft.Authorization/roleAssignments/"
        "0e6f8c6a-2222-4333-8444-955556666777"
    )


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        {"properties": ["roleDefinitionId"]},
        {"properties": "x"},
        {"properties": {"roleDefinitionId": 5, "principalId": "p"}},
        {"properties": {"roleDefinitionId": "r", "principalId": ["p"]}},
        {"properties": {"roleDefinitionId": "r", "principalId": "p", "description": {"x": 1}}},
    ],
    ids=lambda b: repr(b)[:40],
)
def test_malformed_role_assignment_bodies_are_400_invalid_request_content(
    sb: Sandbox, body: Any
) -> None:
    before = len(sb.state.role_assignments())
    response = call(sb, "PUT", _assignment_path(sb), AUTHZ, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "InvalidRequestContent"
    assert len(sb.state.role_assignments()) == before


@pytest.mark.parametrize(
    "body",
    [{"location": "westeurope", "tags": ["a"]}, {"location": 5}, {"tags": {"k": 1}}],
    ids=lambda b: repr(b)[:40],
)
def test_malformed_identity_bodies_are_400(sb: Sandbox, world: World, body: Any) -> None:
    path = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}"
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-shape"
    )
    response = call(sb, "PUT", path, "2023-01-31", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "InvalidRequestContent"
    assert sb.state.identity(path) is None


@pytest.mark.parametrize(
    "body",
    [
        {"identity": "SystemAssigned"},
        {"identity": {"type": 1}},
        {"identity": {"type": "UserAssigned", "userAssignedIdentities": ["x"]}},
        {"identity": {"type": "UserAssigned", "userAssignedIdentities": {"x": "y"}}},
        {"tags": "prod"},
        {"tags": {"k": 1}},
    ],
    ids=lambda b: repr(b)[:40],
)
def test_malformed_vm_patches_are_400(sb: Sandbox, world: World, body: Any) -> None:
    """Reproduced: an ``identity`` that is not an object gave 500."""
    before = sb.state.vm(world.vm_both.id)
    response = call(sb, "PATCH", world.vm_both.id, "2024-07-01", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "InvalidRequestContent"
    assert sb.state.vm(world.vm_both.id) == before
