"""Role-assignment conditions in the sandbox's ARM, with the real azure-mgmt-authorization.

ARM refuses a condition on a role that cannot carry one and any conditionVersion but 2.0
(400 InvalidRoleAssignmentCondition), and evaluates delegation conditions on
``roleAssignments/write`` (the requested assignment, ``@Request``) and ``/delete`` (the
assignment being removed, ``@Resource``). The bootstrap's constrained Role Based Access
Control Administrator is exercised for real: Owner is refused with 403, Key Vault Secrets
User for a service principal is allowed.
"""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from sandbox_world import World

from bootstrap.conditions import constrain_role_assignments
from components.roles import RoleCatalog, role_definition_id
from verify.sandbox import Sandbox

ROLES = RoleCatalog.builtin()
SECRETS_USER = ROLES.get("Key Vault Secrets User").guid
KV_READER = ROLES.get("Key Vault Reader").guid
OWNER = ROLES.get("Owner").guid
RBAC_ADMIN = ROLES.get("Role Based Access Control Administrator").guid
BLOB_READER = ROLES.get("Storage Blob Data Reader").guid
READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
CONTAINER_CONDITION = (
    f"((!(ActionMatches{{'{READ}'}})) OR "
    "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals 'c1'))"
)


def authz(sb: Sandbox, principal: object | None = None) -> AuthorizationManagementClient:
    credential = sb.credential(principal)  # type: ignore[arg-type]
    return AuthorizationManagementClient(
        credential, sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )


def rg_scope(sb: Sandbox, world: World) -> str:
    return f"/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}"


def params(
    sb: Sandbox,
    role: str,
    principal_id: str,
    principal_type: str | None = "ServicePrincipal",
    condition: str | None = None,
    condition_version: str | None = None,
) -> RoleAssignmentCreateParameters:
    return RoleAssignmentCreateParameters(
        role_definition_id=role_definition_id(sb.subscription_id, role),
        principal_id=principal_id,
        principal_type=principal_type,
        condition=condition,
        condition_version=condition_version,
    )


def refused(call: object) -> tuple[int, str]:
    with pytest.raises(HttpResponseError) as caught:
        call()  # type: ignore[operator]
    return caught.value.status_code, caught.value.error.code  # type: ignore[union-attr,return-value]


@pytest.fixture
def delegate(sb: Sandbox, world: World) -> object:
    """A deployer holding RBAC Administrator on the group with the bootstrap's condition."""
    deployer = sb.state.create_principal(f"deployer-{uuid.uuid4().hex[:6]}")
    created = authz(sb).role_assignments.create(
        rg_scope(sb, world),
        str(uuid.uuid4()),
        params(
            sb,
            RBAC_ADMIN,
            deployer.object_id,
            condition=constrain_role_assignments([KV_READER, SECRETS_USER]),
            condition_version="2.0",
        ),
    )
    assert created.condition_version == "2.0"
    return deployer


def test_constrained_rbac_administrator_cannot_assign_owner(
    sb: Sandbox, world: World, delegate: object
) -> None:
    client = authz(sb, delegate)
    status, code = refused(
        lambda: client.role_assignments.create(
            rg_scope(sb, world), str(uuid.uuid4()), params(sb, OWNER, world.id_b.principal_id)
        )
    )
    assert (status, code) == (403, "AuthorizationFailed")
    # ... not even to itself, the escalation the condition exists to stop.
    status, code = refused(
        lambda: client.role_assignments.create(
            rg_scope(sb, world),
            str(uuid.uuid4()),
            params(sb, OWNER, delegate.object_id),  # type: ignore[attr-defined]
        )
    )
    assert (status, code) == (403, "AuthorizationFailed")
    targets = {world.id_b.principal_id, delegate.object_id}  # type: ignore[attr-defined]
    owners = [
        a
        for a in sb.state.role_assignments()
        if a.principal_id in targets and a.role_definition_id.lower().endswith(OWNER)
    ]
    assert owners == []


def test_constrained_rbac_administrator_assigns_and_removes_key_vault_secrets_user(
    sb: Sandbox, world: World, delegate: object
) -> None:
    client = authz(sb, delegate)
    name = str(uuid.uuid4())
    created = client.role_assignments.create(
        world.vault.id, name, params(sb, SECRETS_USER, world.id_b.principal_id)
    )
    assert created.role_definition_id.lower().endswith(SECRETS_USER)  # type: ignore[union-attr]
    client.role_assignments.delete(world.vault.id, name)
    assert sb.state.role_assignment(created.id) is None  # type: ignore[arg-type]


def test_constrained_rbac_administrator_only_for_service_principals(
    sb: Sandbox, world: World, delegate: object
) -> None:
    client = authz(sb, delegate)
    as_user = params(sb, SECRETS_USER, str(uuid.uuid4()), principal_type="User")
    status, code = refused(
        lambda: client.role_assignments.create(world.vault.id, str(uuid.uuid4()), as_user)
    )
    assert (status, code) == (403, "AuthorizationFailed")


def test_constrained_rbac_administrator_cannot_remove_other_roles(
    sb: Sandbox, world: World, delegate: object
) -> None:
    """The delete clause reads the assignment being removed: the world's Contributor."""
    (contributor,) = [
        a
        for a in sb.state.role_assignments(principal_id=world.id_b.principal_id)
        if a.role_definition_id.lower().endswith(ROLES.get("Contributor").guid)
    ]
    client = authz(sb, delegate)
    status, code = refused(
        lambda: client.role_assignments.delete(contributor.scope, contributor.name)
    )
    assert (status, code) == (403, "AuthorizationFailed")
    assert sb.state.role_assignment(contributor.id) is not None


@pytest.mark.parametrize(
    ("role", "condition", "version"),
    [
        (
            SECRETS_USER,
            "@Resource[Microsoft.KeyVault/vaults/secrets:name] StringEquals 'db'",
            "2.0",
        ),
        (BLOB_READER, CONTAINER_CONDITION, "1.0"),
        (BLOB_READER, "@Resource[x] StringEquals", "2.0"),
    ],
    ids=["key-vault-role", "version-1.0", "unparsable"],
)
def test_arm_refuses_invalid_conditions(
    sb: Sandbox, world: World, role: str, condition: str, version: str
) -> None:
    client = authz(sb)
    status, code = refused(
        lambda: client.role_assignments.create(
            world.vault.id,
            str(uuid.uuid4()),
            params(
                sb, role, world.id_b.principal_id, condition=condition, condition_version=version
            ),
        )
    )
    assert (status, code) == (400, "InvalidRoleAssignmentCondition")


def test_arm_accepts_a_storage_condition_and_defaults_its_version(
    sb: Sandbox, world: World
) -> None:
    client = authz(sb)
    created = client.role_assignments.create(
        rg_scope(sb, world),
        str(uuid.uuid4()),
        params(sb, BLOB_READER, world.id_b.principal_id, condition=CONTAINER_CONDITION),
    )
    assert (created.condition, created.condition_version) == (CONTAINER_CONDITION, "2.0")
