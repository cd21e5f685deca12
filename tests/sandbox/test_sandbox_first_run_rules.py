"""First-run failures the sandbox's ARM answers the way Azure does, through azure-mgmt-*.

The rules are the shared ones (``components.arm.rules``) the mock runtime uses too.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from sandbox_world import World

from components.arm import rules
from components.roles import role_definition_id
from verify.sandbox import Sandbox, SandboxError

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


def authz(sb: Sandbox, principal: object | None = None) -> AuthorizationManagementClient:
    credential = sb.credential(principal)  # type: ignore[arg-type]
    return AuthorizationManagementClient(
        credential, sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )


def test_a_deployer_scoped_to_its_group_is_refused_at_subscription_scope(
    sb: Sandbox, world: World
) -> None:
    """The CI deployer holds Contributor and RBAC Administrator on its resource group
    only: listing at the group works, listing for the subscription is ARM's 403."""
    deployer = sb.state.create_principal("ci-deployer")
    rg_scope = f"/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}"
    for role in (CONTRIBUTOR, RBAC_ADMIN):
        sb.state.create_role_assignment(rg_scope, role, deployer.object_id)
    client = authz(sb, deployer)
    at_group = list(client.role_assignments.list_for_scope(rg_scope))
    assert deployer.object_id in {a.principal_id for a in at_group}
    assert list(client.role_assignments.list_for_resource_group(world.rg))
    with pytest.raises(HttpResponseError) as refused:
        list(client.role_assignments.list_for_subscription())
    error = refused.value.error
    assert (refused.value.status_code, error.code) == (403, "AuthorizationFailed")  # type: ignore[union-attr]
    oid = deployer.object_id
    assert error.message == (  # type: ignore[union-attr]
        f"The client '{oid}' with object id '{oid}' does not have authorization to perform "
        "action 'Microsoft.Authorization/roleAssignments/read' over scope "
        f"'/subscriptions/{sb.subscription_id}' or the scope is invalid. If access was "
        "recently granted, please refresh your credentials."
    )
    with pytest.raises(HttpResponseError) as by_filter:  # a filter does not widen the reach
        list(client.role_assignments.list_for_subscription(filter=f"principalId eq '{oid}'"))
    assert by_filter.value.status_code == 403


def test_assignment_ids_that_are_not_guids_are_refused(sb: Sandbox, world: World) -> None:
    client = authz(sb)
    definition = role_definition_id(sb.subscription_id, SECRETS_USER)
    params = {
        "properties": {
            "roleDefinitionId": definition,
            "principalId": world.id_lone.principal_id,
            "principalType": "ServicePrincipal",
        }
    }
    with pytest.raises(HttpResponseError) as bad_name:
        client.role_assignments.create(world.vault.id, "grant-db", params)  # type: ignore[arg-type]
    assert (bad_name.value.status_code, bad_name.value.error.code) == (  # type: ignore[union-attr]
        400,
        "InvalidRoleAssignmentId",
    )
    params["properties"]["principalId"] = "/servicePrincipals/" + world.id_lone.principal_id
    with pytest.raises(HttpResponseError) as bad_principal:
        client.role_assignments.create(
            world.vault.id,
            "9f1c2d3e-0000-4000-8000-000000000001",
            params,  # type: ignore[arg-type]
        )
    assert (bad_principal.value.status_code, bad_principal.value.error.code) == (  # type: ignore[union-attr]
        400,
        "InvalidPrincipalId",
    )


def test_the_subscription_stops_taking_assignments_at_4000(
    sb: Sandbox, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bounded: the limit is read from the shared rule, lowered to what is already there.
    held = len(sb.state.role_assignments())
    monkeypatch.setattr(rules, "MAX_ROLE_ASSIGNMENTS_PER_SUBSCRIPTION", held + 1)
    sb.state.create_role_assignment(world.vault.id, SECRETS_USER, world.id_lone.principal_id)
    with pytest.raises(SandboxError) as caught:
        sb.state.create_role_assignment(world.vault.id, "Reader", world.id_lone.principal_id)
    assert (caught.value.status, caught.value.code) == (400, "RoleAssignmentLimitExceeded")
