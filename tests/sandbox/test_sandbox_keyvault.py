"""Key Vault data plane with the real SecretClient (sync and async) and IMDS tokens."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.identity import ManagedIdentityCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.keyvault.secrets.aio import SecretClient as AsyncSecretClient
from sandbox_world import OnVm, World

from verify.sandbox import Sandbox
from verify.sandbox.rbac import RbacEvaluator


def secret_client(sb: Sandbox, world: World, credential: Any) -> SecretClient:
    return SecretClient(
        sb.vault_url(world.vault), credential, retry_total=0, **sb.keyvault_client_kwargs()
    )


def forbidden(exc: HttpResponseError) -> bool:
    """A 403 in Key Vault's RBAC shape."""
    body = exc.response.json() if exc.response is not None else {}
    return (
        exc.status_code == 403
        and body["error"]["code"] == "Forbidden"
        and body["error"]["innererror"] == {"code": "ForbiddenByRbac"}
        and body["error"]["message"].startswith(
            "Caller is not authorized to perform action on resource."
        )
    )


class StaticCredential:
    """Hands the client a fixed token: the way to send a forged or stale token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


# ------------------------------------------------------------------ reading
def test_read_latest_and_by_version_with_imds_token(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    client = secret_client(sb, world, ManagedIdentityCredential(client_id=world.id_a.client_id))
    first = client.get_secret("db")
    newer = sb.state.set_secret(world.vault.name, "db", "rotated")
    latest = client.get_secret("db")
    assert first.value == world.values["db"]
    assert (latest.value, latest.properties.version) == ("rotated", newer.version)
    assert client.get_secret("db", first.properties.version).value == world.values["db"]
    assert latest.id == f"{sb.vault_url(world.vault)}secrets/db/{newer.version}"
    assert latest.properties.enabled is True
    assert latest.properties.recovery_level == "Recoverable+Purgeable"


def test_list_and_page_secrets_and_versions(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    for i in range(7):
        sb.state.set_secret(world.vault.name, f"extra-{i}", "x")
    for _ in range(4):
        sb.state.set_secret(world.vault.name, "api", "again")
    on_vm(world.vm_multi)
    client = secret_client(sb, world, ManagedIdentityCredential(client_id=world.id_a.client_id))
    pages = list(client.list_properties_of_secrets(max_page_size=3).by_page())
    names = sorted(p.name for page in pages for p in page)
    assert names == sorted(["db", "api", "tls", *[f"extra-{i}" for i in range(7)]])
    assert [len(list(p)) for p in client.list_properties_of_secrets(max_page_size=3).by_page()] == [
        3,
        3,
        3,
        1,
    ]
    versions = list(client.list_properties_of_secret_versions("api", max_page_size=2))
    assert len(versions) == 5
    assert len(pages) == 4
    log = [r for r in sb.request_log.records(target=world.vault.name) if "$skiptoken" in r.query]
    assert log, "pages after the first must come through nextLink"


async def test_async_read_and_list(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    async with (
        AsyncManagedIdentityCredential(client_id=world.id_a.client_id) as credential,
        AsyncSecretClient(
            sb.vault_url(world.vault), credential, retry_total=0, **sb.keyvault_client_kwargs()
        ) as client,
    ):
        secret = await client.get_secret("tls")
        names = sorted([p.name async for p in client.list_properties_of_secrets(max_page_size=2)])
        with pytest.raises(ResourceNotFoundError):
            await client.get_secret("missing")
    assert secret.value == world.values["tls"]
    assert names == ["api", "db", "tls"]


# ------------------------------------------------------------------ authorization
def test_secret_scoped_grant_covers_only_that_secret(
    sb: Sandbox, world: World, on_vm: OnVm
) -> None:
    on_vm(world.vm_sys)
    client = secret_client(sb, world, ManagedIdentityCredential())
    assert client.get_secret("db").value == world.values["db"]
    with pytest.raises(HttpResponseError) as denied:
        client.get_secret("api")
    assert forbidden(denied.value)
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in denied.value.message
    with pytest.raises(HttpResponseError) as listing:  # no readMetadata on the vault
        list(client.list_properties_of_secrets())
    assert forbidden(listing.value)


def test_vault_grant_covers_every_secret(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    client = secret_client(sb, world, ManagedIdentityCredential(client_id=world.id_a.client_id))
    assert {n: client.get_secret(n).value for n in world.values} == world.values


def test_contributor_cannot_read_a_value(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    client = secret_client(sb, world, ManagedIdentityCredential(client_id=world.id_b.client_id))
    with pytest.raises(HttpResponseError) as denied:
        client.get_secret("db")
    assert forbidden(denied.value)


def test_identity_without_grant_is_forbidden(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_both)  # its system identity has no grant
    client = secret_client(sb, world, ManagedIdentityCredential())
    with pytest.raises(HttpResponseError) as denied:
        client.get_secret("db")
    assert forbidden(denied.value)
    with pytest.raises(HttpResponseError) as denied_missing:  # authorization before existence
        client.get_secret("missing")
    assert forbidden(denied_missing.value)


def test_missing_secret_is_404_in_key_vault_shape(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    client = secret_client(sb, world, ManagedIdentityCredential(client_id=world.id_a.client_id))
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret("missing")
    error = missing.value.response.json()["error"]
    assert error["code"] == "SecretNotFound"
    assert error["message"].startswith(
        "A secret with (name/id) missing was not found in this key vault."
    )


def test_other_roles_and_scopes(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    """Owner and Reader carry no data actions; a resource-group grant inherits down."""
    vm = sb.state.create_vm(world.rg, "vm-roles", system_assigned=True)
    principal = vm.system_principal_id
    assert principal is not None
    sb.state.create_role_assignment(world.vault.id, "Owner", principal)
    sb.state.create_role_assignment(world.vault.id, "Reader", principal)
    on_vm(vm)
    client = secret_client(sb, world, ManagedIdentityCredential())
    with pytest.raises(HttpResponseError) as denied:
        client.get_secret("db")
    assert forbidden(denied.value)
    rg_scope = f"/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}"
    sb.state.create_role_assignment(rg_scope, "Key Vault Secrets User", principal)
    assert client.get_secret("db").value == world.values["db"]


def test_officer_sets_deletes_recovers_and_purges(sb: Sandbox, world: World) -> None:
    writer = sb.state.create_principal("writer")
    sb.state.create_role_assignment(world.vault.id, "Key Vault Secrets Officer", writer.object_id)
    client = secret_client(sb, world, sb.credential(writer))
    created = client.set_secret("new", "v1", content_type="text/plain", tags={"k": "v"})
    assert (created.value, created.properties.content_type, created.properties.tags) == (
        "v1",
        "text/plain",
        {"k": "v"},
    )
    client.begin_delete_secret("new").wait()
    assert client.get_deleted_secret("new").name == "new"
    with pytest.raises(ResourceNotFoundError):
        client.get_secret("new")
    with pytest.raises(HttpResponseError) as conflict:
        client.set_secret("new", "v2")
    assert conflict.value.status_code == 409
    client.begin_recover_deleted_secret("new").wait()
    assert client.get_secret("new").value == "v1"
    client.begin_delete_secret("new").wait()
    client.purge_deleted_secret("new")
    assert client.set_secret("new", "v3").value == "v3"


def test_secrets_user_cannot_write(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    client = secret_client(sb, world, ManagedIdentityCredential(client_id=world.id_a.client_id))
    with pytest.raises(HttpResponseError) as denied:
        client.set_secret("db", "overwrite")
    assert forbidden(denied.value)
    assert sb.state.get_secret(world.vault.name, "db").value == world.values["db"]  # type: ignore[union-attr]


def test_propagation_delay(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    """A new assignment is refused while it propagates and applies once it has.

    The delay is an hour while the first read is made, so a slow machine cannot let the
    grant through early; "time passing" is then the delay falling to zero. The clock
    arithmetic itself is held, with a fake clock, by test_propagation_cutoff_uses_the_clock.
    """
    sb.faults.propagation_delay_seconds = 3600
    on_vm(world.vm_both)
    principal = world.vm_both.system_principal_id
    assert principal is not None
    assignment = sb.state.create_role_assignment(
        world.vault.id, "Key Vault Secrets User", principal
    )
    try:
        client = secret_client(sb, world, ManagedIdentityCredential())
        with pytest.raises(HttpResponseError) as early:
            client.get_secret("db")
        assert forbidden(early.value)
        sb.faults.propagation_delay_seconds = 0.0
        assert client.get_secret("db").value == world.values["db"]
    finally:
        sb.faults.propagation_delay_seconds = 0.0
        sb.state.delete_role_assignment(assignment.id)


def test_propagation_cutoff_uses_the_clock(sb: Sandbox, world: World) -> None:
    """Just before created_on + delay the grant is not effective; just after, it is."""
    principal = world.vm_both.system_principal_id
    assert principal is not None
    assignment = sb.state.create_role_assignment(
        world.vault.id, "Key Vault Secrets User", principal
    )
    try:
        now = [assignment.created_on]
        rbac = RbacEvaluator(sb.state, lambda: 10.0, clock=lambda: now[0])
        action = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
        scope = world.vault.secret_scope("db")
        now[0] = assignment.created_on + 9.9
        assert not rbac.check_data_action(principal, action, scope).allowed
        now[0] = assignment.created_on + 10.1
        assert rbac.check_data_action(principal, action, scope).allowed
    finally:
        sb.state.delete_role_assignment(assignment.id)


# ------------------------------------------------------------------ tokens
def test_challenge_401_format(sb: Sandbox, world: World) -> None:
    url = f"{sb.vault_url(world.vault)}secrets/db/?api-version=2026-04-01"
    response = requests.get(url, verify=sb.ca_cert_path, timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.windows.net/{sb.tenant_id}", '
        'resource="https://vault.azure.net"'
    )
    assert response.json()["error"]["code"] == "Unauthorized"


def _granted_token(sb: Sandbox, world: World, **claims: Any) -> str:
    return sb.issue_token(world.id_a.principal_id, "https://vault.azure.net", **claims)


def _tampered(token: str) -> str:
    header, _payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["oid"] = "00000000-0000-0000-0000-000000000000"
    forged = jwt.utils.base64url_encode(
        jwt.utils.force_bytes(jwt.api_jws.json.dumps(claims))
    ).decode()
    return ".".join((header, forged, signature))


@pytest.mark.parametrize(
    ("case", "make", "message"),
    [
        ("tampered", lambda sb, w: _tampered(_granted_token(sb, w)), "Signature validation failed"),
        (
            "expired",
            lambda sb, w: _granted_token(
                sb,
                w,
                iat=int(time.time()) - 7200,
                nbf=int(time.time()) - 7200,
                exp=int(time.time()) - 3600,
            ),
            "expired",
        ),
        (
            "wrong audience",
            lambda sb, w: _granted_token(sb, w, aud="https://management.azure.com"),
            "AKV10022: Invalid audience",
        ),
        (
            "wrong tenant",
            lambda sb, w: _granted_token(
                sb,
                w,
                tid="11111111-1111-1111-1111-111111111111",
                iss="https://sts.windows.net/11111111-1111-1111-1111-111111111111/",
            ),
            "AKV10032: Invalid issuer",
        ),
        (
            "wrong tid only",
            lambda sb, w: _granted_token(sb, w, tid="11111111-1111-1111-1111-111111111111"),
            "Invalid tenant",
        ),
        (
            "foreign key",
            lambda sb, w: jwt.encode(
                {"aud": "https://vault.azure.net"}, "k" * 32, algorithm="HS256"
            ),
            "not signed",
        ),
    ],
)
def test_bad_tokens_are_refused(
    sb: Sandbox, world: World, case: str, make: Any, message: str
) -> None:
    token = make(sb, world)
    client = secret_client(sb, world, StaticCredential(token))
    with pytest.raises(ClientAuthenticationError):
        client.get_secret("db")
    response = requests.get(
        f"{sb.vault_url(world.vault)}secrets/db/?api-version=2026-04-01",
        headers={"Authorization": f"Bearer {token}"},
        verify=sb.ca_cert_path,
        timeout=5,
    )
    assert response.status_code == 401, case
    assert response.json()["error"]["code"] == "Unauthorized"
    assert message in response.json()["error"]["message"], case
    # the same principal with a good token is allowed: the refusal is the token's fault
    assert (
        secret_client(sb, world, StaticCredential(_granted_token(sb, world))).get_secret("db").value
    )


@pytest.mark.parametrize("mode", ["accept", "refuse"])
def test_token_of_deleted_principal(sb: Sandbox, world: World, on_vm: OnVm, mode: str) -> None:
    sb.faults.deleted_principal_tokens = mode  # type: ignore[assignment]
    on_vm(world.vm_multi)
    credential = ManagedIdentityCredential(client_id=world.id_a.client_id)
    client = secret_client(sb, world, credential)
    assert client.get_secret("db").value == world.values["db"]
    sb.state.delete_identity(world.id_a.id)
    # the credential still holds its unexpired token; the assignment is orphaned, not gone
    assert sb.state.is_orphaned(sb.state.role_assignments(principal_id=world.id_a.principal_id)[0])
    if mode == "accept":
        assert client.get_secret("db").value == world.values["db"]
    else:
        with pytest.raises(ClientAuthenticationError) as refused:
            client.get_secret("db")
        assert "no longer exists" in str(refused.value)
    # a fresh credential cannot get a new token at all
    with pytest.raises(Exception, match="Identity not found"):
        ManagedIdentityCredential(client_id=world.id_a.client_id, retry_total=0).get_token(
            "https://vault.azure.net/.default"
        )
