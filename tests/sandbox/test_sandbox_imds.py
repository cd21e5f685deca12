"""IMDS with the real azure-identity / msal clients, sync and async, and on the wire."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CredentialUnavailableError,
    DefaultAzureCredential,
    ManagedIdentityCredential,
)
from azure.identity.aio import DefaultAzureCredential as AsyncDefaultAzureCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential
from sandbox_world import VAULT_SCOPE, OnVm, World

from verify.sandbox import Sandbox, VirtualMachine
from verify.sandbox.imds.service import MULTIPLE_IDENTITIES, TOKEN_PATH


def claims_of(sb: Sandbox, token: str, audience: str = "https://vault.azure.net") -> dict[str, Any]:
    """Claims of a token, after checking its signature against the sandbox issuer."""
    return sb.issuer_service.verify(token, [audience])


def imds_get(
    sb: Sandbox, vm: VirtualMachine, headers: dict[str, str] | None = None, **params: str
) -> requests.Response:
    query = {"api-version": "2018-02-01", "resource": "https://vault.azure.net", **params}
    return requests.get(
        sb.imds_url(vm) + TOKEN_PATH,
        params=query,
        headers={"Metadata": "true"} if headers is None else headers,
        timeout=5,
    )


# ---------------------------------------------------------------- real clients, sync
def test_system_identity_by_default_sync(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_sys)
    for credential in (ManagedIdentityCredential(), DefaultAzureCredential()):
        token = credential.get_token(VAULT_SCOPE)
        claims = claims_of(sb, token.token)
        assert claims["oid"] == world.vm_sys.system_principal_id
        assert claims["xms_mirid"] == world.vm_sys.id
        assert claims["iss"] == f"https://sts.windows.net/{sb.tenant_id}/"
        assert claims["tid"] == sb.tenant_id
        assert claims["ver"] == "1.0"
        principal = sb.state.principal(claims["oid"])
        assert principal is not None and claims["appid"] == principal.client_id


@pytest.mark.parametrize("which", ["id_a", "id_b"])
def test_each_user_assigned_identity_by_client_id_sync(
    sb: Sandbox, world: World, on_vm: OnVm, which: str
) -> None:
    uai = getattr(world, which)
    on_vm(world.vm_multi)
    for credential in (
        ManagedIdentityCredential(client_id=uai.client_id),
        DefaultAzureCredential(managed_identity_client_id=uai.client_id),
    ):
        claims = claims_of(sb, credential.get_token(VAULT_SCOPE).token)
        assert (claims["oid"], claims["appid"], claims["xms_mirid"]) == (
            uai.principal_id,
            uai.client_id,
            uai.id,
        )


def test_user_assigned_by_object_id_and_resource_id(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    by_oid = ManagedIdentityCredential(identity_config={"object_id": world.id_b.principal_id})
    by_rid = ManagedIdentityCredential(identity_config={"resource_id": world.id_b.id})
    for credential in (by_oid, by_rid):
        assert (
            claims_of(sb, credential.get_token(VAULT_SCOPE).token)["oid"] == world.id_b.principal_id
        )


def test_multiple_identities_error_surfaces_sync(world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    with pytest.raises(CredentialUnavailableError, match="Multiple user assigned identities exist"):
        ManagedIdentityCredential(retry_total=0).get_token(VAULT_SCOPE)
    with pytest.raises(ClientAuthenticationError, match="Multiple user assigned identities exist"):
        DefaultAzureCredential(exclude_cli_credential=True).get_token(VAULT_SCOPE)


def test_identity_not_found_sync(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    with pytest.raises(CredentialUnavailableError, match="Identity not found"):
        ManagedIdentityCredential(client_id=world.id_lone.client_id, retry_total=0).get_token(
            VAULT_SCOPE
        )
    sb.state.delete_identity(world.id_b.id)  # attached but deleted
    with pytest.raises(CredentialUnavailableError, match="Identity not found"):
        ManagedIdentityCredential(client_id=world.id_b.client_id, retry_total=0).get_token(
            VAULT_SCOPE
        )


# --------------------------------------------------------------- real clients, async
async def test_system_and_user_assigned_async(sb: Sandbox, world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_both)
    async with AsyncManagedIdentityCredential() as credential:
        system = claims_of(sb, (await credential.get_token(VAULT_SCOPE)).token)
    async with AsyncManagedIdentityCredential(client_id=world.id_a.client_id) as credential:
        user = claims_of(sb, (await credential.get_token(VAULT_SCOPE)).token)
    async with AsyncDefaultAzureCredential(managed_identity_client_id=world.id_a.client_id) as dac:
        via_dac = claims_of(sb, (await dac.get_token(VAULT_SCOPE)).token)
    assert system["oid"] == world.vm_both.system_principal_id
    assert user["oid"] == via_dac["oid"] == world.id_a.principal_id


async def test_multiple_and_not_found_errors_async(world: World, on_vm: OnVm) -> None:
    on_vm(world.vm_multi)
    async with AsyncManagedIdentityCredential(retry_total=0) as credential:
        with pytest.raises(
            CredentialUnavailableError, match="Multiple user assigned identities exist"
        ):
            await credential.get_token(VAULT_SCOPE)
    async with AsyncManagedIdentityCredential(
        client_id=world.id_lone.client_id, retry_total=0
    ) as credential:
        with pytest.raises(CredentialUnavailableError, match="Identity not found"):
            await credential.get_token(VAULT_SCOPE)


# ----------------------------------------------------------------------- on the wire
def test_success_body_has_string_expiry_fields(sb: Sandbox, world: World) -> None:
    response = imds_get(sb, world.vm_sys)
    body = response.json()
    assert response.status_code == 200
    assert {
        "access_token",
        "expires_in",
        "expires_on",
        "not_before",
        "resource",
        "token_type",
    } <= set(body)
    assert isinstance(body["expires_in"], str) and int(body["expires_in"]) > 86000
    assert isinstance(body["expires_on"], str)
    assert body["token_type"] == "Bearer" and body["refresh_token"] == ""
    assert body["resource"] == "https://vault.azure.net"
    assert claims_of(sb, body["access_token"])["exp"] == int(body["expires_on"])


def test_metadata_header_required(sb: Sandbox, world: World) -> None:
    response = imds_get(sb, world.vm_sys, headers={})
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request_102",
        "error_description": "Required metadata header not specified",
    }


def test_x_forwarded_for_refused(sb: Sandbox, world: World) -> None:
    response = imds_get(
        sb, world.vm_sys, headers={"Metadata": "true", "X-Forwarded-For": "10.0.0.9"}
    )
    assert response.status_code == 400
    assert "X-Forwarded-For" in response.json()["error_description"]


def test_exact_multiple_identities_and_not_found_bodies(sb: Sandbox, world: World) -> None:
    multiple = imds_get(sb, world.vm_multi)
    assert (multiple.status_code, multiple.json()) == (
        400,
        {"error": "invalid_request", "error_description": MULTIPLE_IDENTITIES},
    )
    assert MULTIPLE_IDENTITIES == (
        "Multiple user assigned identities exist, please specify the clientId / resourceId "
        "of the identity in the token request"
    )
    missing = imds_get(sb, world.vm_sys, client_id=world.id_a.client_id)  # not on vm_sys
    assert (missing.status_code, missing.json()["error_description"]) == (400, "Identity not found")


def test_single_user_assigned_identity_is_the_default(sb: Sandbox, world: World) -> None:
    vm = sb.state.create_vm(world.rg, "vm-one-uai", user_assigned=[world.id_b.id])
    assert claims_of(sb, imds_get(sb, vm).json()["access_token"])["oid"] == world.id_b.principal_id


def test_unknown_resource_and_missing_parameters(sb: Sandbox, world: World) -> None:
    unknown = imds_get(sb, world.vm_sys, resource="https://nothing.example")
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_resource"
    no_version = requests.get(
        sb.imds_url(world.vm_sys) + TOKEN_PATH,
        params={"resource": "https://vault.azure.net"},
        headers={"Metadata": "true"},
        timeout=5,
    )
    assert no_version.status_code == 400 and "api-version" in no_version.json()["error_description"]


def test_platform_caches_the_token(sb: Sandbox, world: World) -> None:
    first = imds_get(sb, world.vm_sys).json()["access_token"]
    second = imds_get(sb, world.vm_sys).json()["access_token"]
    management = imds_get(sb, world.vm_sys, resource="https://management.azure.com").json()
    assert first == second
    assert management["access_token"] != first
    assert claims_of(sb, management["access_token"], "https://management.azure.com")["aud"] == (
        "https://management.azure.com"
    )


def test_each_vm_has_its_own_listener(sb: Sandbox, world: World) -> None:
    urls = {sb.imds_url(vm) for vm in (world.vm_sys, world.vm_multi, world.vm_both)}
    assert len(urls) == 3
    assert all(url.startswith("http://127.0.0.1:") for url in urls)


# ------------------------------------------------------------------ lifecycle
def test_disabling_system_identity_fails_new_requests(
    sb: Sandbox, world: World, on_vm: OnVm
) -> None:
    on_vm(world.vm_both)
    before = ManagedIdentityCredential().get_token(VAULT_SCOPE)
    old_principal = world.vm_both.system_principal_id
    assert old_principal is not None
    sb.state.update_vm_identity(
        world.vm_both.id, system_assigned=False, user_assigned=[world.id_a.id]
    )
    assert sb.state.principal(old_principal) is None
    # The only remaining identity is id_a, which IMDS now returns by default (as Azure
    # does); asking for the old system principal by object ID fails.
    default = ManagedIdentityCredential().get_token(VAULT_SCOPE)
    assert claims_of(sb, default.token)["oid"] == world.id_a.principal_id
    with pytest.raises(CredentialUnavailableError, match="Identity not found"):
        ManagedIdentityCredential(
            identity_config={"object_id": old_principal}, retry_total=0
        ).get_token(VAULT_SCOPE)
    assert claims_of(sb, before.token)["oid"] == old_principal  # the old token is still well-formed


def test_deleting_a_vm_removes_its_principal_and_its_imds(sb: Sandbox, world: World) -> None:
    url = sb.imds_url(world.vm_sys)
    principal = world.vm_sys.system_principal_id
    assert principal is not None
    sb.state.delete_vm(world.vm_sys.id)
    assert sb.state.principal(principal) is None
    orphans = sb.state.role_assignments(principal_id=principal)
    assert len(orphans) == 1 and sb.state.is_orphaned(orphans[0])
    with pytest.raises(requests.ConnectionError):
        requests.get(url + TOKEN_PATH, headers={"Metadata": "true"}, timeout=2)


def test_authority_host_is_read_at_request_time(
    sb: Sandbox, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """msal (sync) and azure-identity's async client read AZURE_POD_IDENTITY_AUTHORITY_HOST
    per request; a credential made on one VM asks the VM the variable names now."""
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", sb.imds_url(world.vm_sys))
    credential = ManagedIdentityCredential()
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", sb.imds_url(world.vm_both))
    claims = claims_of(sb, credential.get_token(VAULT_SCOPE).token)
    assert claims["oid"] == world.vm_both.system_principal_id


async def test_authority_host_is_read_at_request_time_async(
    sb: Sandbox, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", sb.imds_url(world.vm_sys))
    async with AsyncManagedIdentityCredential() as credential:
        monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", sb.imds_url(world.vm_both))
        claims = claims_of(sb, (await credential.get_token(VAULT_SCOPE)).token)
    assert claims["oid"] == world.vm_both.system_principal_id
