"""Every claim of a token is type-checked by every service, and the refuse mode for deleted
principals applies to ARM as it does to Key Vault: both fail closed.

The real SecretClient and AuthorizationManagementClient send the tokens where a client can;
raw requests show the exact 401 bodies.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.keyvault.secrets import SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from sandbox_world import World

from components.roles import role_definition_id
from verify.sandbox import Sandbox
from verify.sandbox.auth import AuthError
from verify.sandbox.entra.tokens import TokenError, check_claim_types

VAULT = "https://vault.azure.net"
ARM = "https://management.azure.com"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
API = "2022-04-01"


class StaticCredential:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def _kv(sb: Sandbox, world: World, token: str) -> SecretClient:
    return SecretClient(
        sb.vault_url(world.vault),
        StaticCredential(token),
        retry_total=0,
        **sb.keyvault_client_kwargs(),
    )


def _authz(sb: Sandbox, token: str) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(
        StaticCredential(token), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )


def _group_url(sb: Sandbox, world: World) -> str:
    return (
        f"{sb.arm_url}/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}"
        "?api-version=2021-04-01"
    )


#: (claim, malformed value): each one a correctly signed token may still carry.
MALFORMED = [
    ("oid", ""),
    ("oid", ["a", "b"]),
    ("oid", 12345),
    ("oid", "not-a-guid"),
    ("tid", 7),
    ("appid", ""),
    ("appid", {"x": 1}),
    ("sub", ""),
    ("aud", ["https://vault.azure.net", "https://management.azure.com"]),
    ("iss", ""),
    ("xms_mirid", ""),
    ("xms_mirid", "not-an-arm-id"),
    ("iat", "1700000000"),
    ("nbf", 1.5),
    ("exp", "4102444800"),  # 2100-01-01 as a string (a fixed value: the test IDs must not
    # change between collections, which pytest-xdist's workers compare)
    ("exp", True),
]


@pytest.mark.parametrize(("claim", "value"), MALFORMED, ids=[f"{c}={v!r}" for c, v in MALFORMED])
def test_check_claim_types_names_the_claim(claim: str, value: Any) -> None:
    good: dict[str, Any] = {
        "aud": VAULT,
        "iss": "https://sts.windows.net/0b1f0a1e-0000-4000-8000-000000000000/",
        "tid": "0b1f0a1e-0000-4000-8000-000000000000",
        "oid": str(uuid.uuid4()),
        "sub": str(uuid.uuid4()),
        "appid": str(uuid.uuid4()),
        "xms_mirid": "/subscriptions/x/resourcegroups/rg/providers/Microsoft.ManagedIdentity"
        "/userAssignedIdentities/i",
        "iat": 1,
        "nbf": 1,
        "exp": 2,
    }
    check_claim_types(good)  # the well-formed token passes
    with pytest.raises(TokenError, match=f"'{claim}'"):
        check_claim_types({**good, claim: value})


def test_a_missing_appid_and_azp_is_refused() -> None:
    claims = {
        "aud": VAULT,
        "iss": "x",
        "tid": str(uuid.uuid4()),
        "oid": str(uuid.uuid4()),
        "sub": "s",
        "iat": 1,
        "nbf": 1,
        "exp": 2,
    }
    with pytest.raises(TokenError, match="appid"):
        check_claim_types(claims)
    check_claim_types({**claims, "azp": str(uuid.uuid4())})  # a v2.0 token names azp


@pytest.mark.parametrize(("claim", "value"), MALFORMED, ids=[f"{c}={v!r}" for c, v in MALFORMED])
def test_key_vault_refuses_malformed_claims_with_its_401(
    sb: Sandbox, world: World, claim: str, value: Any
) -> None:
    token = sb.issue_token(world.id_a.principal_id, VAULT, **{claim: value})
    with pytest.raises(ClientAuthenticationError):
        _kv(sb, world, token).get_secret("db")
    response = requests.get(
        f"{sb.vault_url(world.vault)}secrets/db/?api-version=2026-04-01",
        headers={"Authorization": f"Bearer {token}"},
        verify=sb.ca_cert_path,
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "Unauthorized"
    assert f"'{claim}'" in response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer authorization=")


@pytest.mark.parametrize(("claim", "value"), MALFORMED, ids=[f"{c}={v!r}" for c, v in MALFORMED])
def test_arm_refuses_malformed_claims_with_invalid_authentication_token(
    sb: Sandbox, world: World, claim: str, value: Any
) -> None:
    token = sb.issue_token(sb.operator, ARM, **{claim: value})
    with pytest.raises(ClientAuthenticationError) as refused:
        list(_authz(sb, token).role_assignments.list_for_subscription())
    assert refused.value.status_code == 401
    url = (
        f"{sb.arm_url}/subscriptions/{sb.subscription_id}"
        f"/providers/Microsoft.Authorization/roleAssignments?api-version={API}"
    )
    response = requests.get(
        url, headers={"Authorization": f"Bearer {token}"}, verify=sb.ca_cert_path, timeout=5
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert response.json()["error"]["message"].startswith("The access token is invalid.")
    assert f"'{claim}'" in response.json()["error"]["message"]


def test_empty_oid_reads_no_secret(sb: Sandbox, world: World) -> None:
    """Reproduced: a signed token with ``oid: ""`` read a secret nobody granted it."""
    stranger = sb.state.create_principal("stranger")
    token = sb.issue_token(stranger, VAULT, oid="")
    with pytest.raises(ClientAuthenticationError):
        _kv(sb, world, token).get_secret("db")
    # the same stranger with a well-formed token is authenticated and refused by RBAC
    with pytest.raises(HttpResponseError) as denied:
        _kv(sb, world, sb.issue_token(stranger, VAULT)).get_secret("db")
    assert denied.value.status_code == 403


def test_empty_oid_cannot_create_an_owner_assignment(sb: Sandbox, world: World) -> None:
    """Reproduced: ``oid: ""`` created an Owner assignment at subscription scope."""
    stranger = sb.state.create_principal("stranger")
    scope = f"/subscriptions/{sb.subscription_id}"
    params = RoleAssignmentCreateParameters(
        role_definition_id=role_definition_id(sb.subscription_id, OWNER),
        principal_id=stranger.object_id,
        principal_type="ServicePrincipal",
    )
    with pytest.raises(ClientAuthenticationError):
        _authz(sb, sb.issue_token(stranger, ARM, oid="")).role_assignments.create(
            scope, str(uuid.uuid4()), params
        )
    assert sb.state.role_assignments(principal_id=stranger.object_id) == []


def test_the_state_matches_no_assignment_for_an_empty_principal(sb: Sandbox, world: World) -> None:
    assert sb.state.role_assignments() != []
    assert sb.state.role_assignments(principal_id="") == []


@pytest.mark.parametrize("oid", [["x"], 42, None], ids=["list", "number", "absent"])
def test_odd_oids_are_401_not_500(sb: Sandbox, world: World, oid: Any) -> None:
    """Reproduced: an ``oid`` that is a list or a number gave 500 with a traceback."""
    for resource, url in (
        (VAULT, f"{sb.vault_url(world.vault)}secrets/db/?api-version=2026-04-01"),
        (
            ARM,
            f"{sb.arm_url}/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}?api-version=2021-04-01",
        ),
    ):
        token = sb.issue_token(sb.operator, resource, oid=oid)
        response = requests.get(
            url, headers={"Authorization": f"Bearer {token}"}, verify=sb.ca_cert_path, timeout=5
        )
        assert response.status_code == 401, (resource, response.text)
        assert "Traceback" not in response.text


def test_arm_codes_per_token_failure(sb: Sandbox, world: World) -> None:
    url = _group_url(sb, world)
    now = int(time.time())
    cases = {
        "ExpiredAuthenticationToken": sb.issue_token(
            sb.operator, ARM, iat=now - 7200, nbf=now - 7200, exp=now - 3600
        ),
        "InvalidAuthenticationTokenAudience": sb.issue_token(sb.operator, VAULT),
        "InvalidAuthenticationTokenTenant": sb.issue_token(
            sb.operator, ARM, tid="11111111-1111-1111-1111-111111111111"
        ),
    }
    for code, token in cases.items():
        response = requests.get(
            url, headers={"Authorization": f"Bearer {token}"}, verify=sb.ca_cert_path, timeout=5
        )
        assert (response.status_code, response.json()["error"]["code"]) == (401, code)
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.parametrize("mode", ["accept", "refuse"])
def test_refuse_mode_applies_to_arm(sb: Sandbox, world: World, mode: str) -> None:
    """Reproduced: in "refuse" mode ARM still accepted a deleted principal's token."""
    sb.faults.deleted_principal_tokens = mode  # type: ignore[assignment]
    sb.state.create_role_assignment(world.vault.id, "Reader", world.id_lone.principal_id)
    token = sb.issue_token(world.id_lone.principal_id, ARM)
    client = _authz(sb, token)
    assert list(client.role_assignments.list_for_scope(world.vault.id, filter="atScope()"))
    sb.state.delete_identity(world.id_lone.id)
    if mode == "accept":  # the orphaned Reader assignment still authorizes the cached token
        assert list(client.role_assignments.list_for_scope(world.vault.id, filter="atScope()"))
        return
    with pytest.raises(ClientAuthenticationError) as refused:
        list(client.role_assignments.list_for_scope(world.vault.id, filter="atScope()"))
    assert refused.value.status_code == 401
    assert refused.value.error.code == "InvalidAuthenticationToken"  # type: ignore[union-attr]
    assert "no longer exists" in refused.value.error.message  # type: ignore[union-attr]


def test_authenticator_is_one_call_for_every_service(sb: Sandbox, world: World) -> None:
    """The check H2's Blob service calls: the same claims, the same refuse mode."""
    storage = "https://storage.azure.com"
    token = sb.issue_token(world.id_lone.principal_id, storage)
    claims = sb.authenticator.authenticate(f"Bearer {token}", [storage])
    assert claims["oid"] == world.id_lone.principal_id
    with pytest.raises(AuthError) as missing:
        sb.authenticator.authenticate(None, [storage])
    assert missing.value.kind == "missing"
    with pytest.raises(AuthError) as malformed:
        sb.authenticator.authenticate(
            f"Bearer {sb.issue_token(world.id_lone.principal_id, storage, oid='')}", [storage]
        )
    assert (malformed.value.kind, malformed.value.reason) == ("invalid", "malformed")
    sb.state.delete_identity(world.id_lone.id)
    assert sb.authenticator.authenticate(f"Bearer {token}", [storage])["oid"]  # accept mode
    sb.faults.deleted_principal_tokens = "refuse"
    with pytest.raises(AuthError) as gone:
        sb.authenticator.authenticate(f"Bearer {token}", [storage])
    assert gone.value.kind == "principal_deleted"
