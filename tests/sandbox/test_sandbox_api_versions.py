"""api-versions (issue 11, "Protocol fidelity"): ARM and Key Vault accept only the versions
the real service offers, and every version the installed clients send by default.

Reproduced: ARM and Key Vault accepted ``1999-01-01`` and ``0.1-bogus``."""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import ApiVersion, SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient
from sandbox_world import World

from verify.sandbox import Sandbox
from verify.sandbox.api_versions import (
    arm_resource_type,
    arm_versions,
    check_arm,
    keyvault_versions,
)
from verify.sandbox.records import SandboxError

ARM = "https://management.azure.com"
VAULT = "https://vault.azure.net"


def arm_get(sb: Sandbox, path: str, version: str) -> requests.Response:
    return requests.get(
        f"{sb.arm_url}{path}?api-version={version}",
        headers={"Authorization": f"Bearer {sb.issue_token(sb.operator, ARM)}"},
        verify=sb.ca_cert_path,
        timeout=10,
    )


def served_paths(sb: Sandbox, world: World) -> dict[str, str]:
    sub = f"/subscriptions/{sb.subscription_id}"
    rg = f"{sub}/resourceGroups/{world.rg}"
    return {
        "Microsoft.Authorization/roleAssignments": (
            f"{world.vault.id}/providers/Microsoft.Authorization/roleAssignments"
        ),
        "Microsoft.Authorization/roleDefinitions": (
            f"{sub}/providers/Microsoft.Authorization/roleDefinitions"
        ),
        "Microsoft.ManagedIdentity/userAssignedIdentities": world.id_a.id,
        "Microsoft.Compute/virtualMachines": world.vm_sys.id,
        "Microsoft.KeyVault/vaults": world.vault.id,
        "Microsoft.Resources/resourceGroups": rg,
    }


@pytest.mark.parametrize(
    "version", ["1999-01-01", "2099-01-01", "2022-13-45", "0.1-bogus", "latest"]
)
def test_arm_refuses_versions_no_service_offers(sb: Sandbox, world: World, version: str) -> None:
    for type_, path in served_paths(sb, world).items():
        response = arm_get(sb, path, version)
        assert response.status_code == 400, (type_, version, response.text)
        code = response.json()["error"]["code"]
        malformed = version in ("0.1-bogus", "latest", "2022-13-45")
        own = type_.startswith("Microsoft.Resources/")
        expected = "InvalidApiVersionParameter" if malformed or own else "NoRegisteredProviderFound"
        assert code == expected, (type_, version, code)
        assert f"'{version}'" in response.json()["error"]["message"]


def test_no_registered_provider_found_names_the_supported_versions(
    sb: Sandbox, world: World
) -> None:
    response = arm_get(sb, world.id_a.id, "2019-01-01")
    message = response.json()["error"]["message"]
    assert message.startswith(
        f"No registered resource provider found for location '{sb.state.location}' and API "
        "version '2019-01-01' for type 'userAssignedIdentities'. The supported api-versions "
        "are '2026-05-31, "
    )


def test_a_real_client_pinned_to_an_unreleased_version_is_refused(
    sb: Sandbox, world: World
) -> None:
    msi = ManagedServiceIdentityClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )
    with pytest.raises(HttpResponseError) as refused:  # the operation's own api_version
        msi.user_assigned_identities.get(world.rg, world.id_a.name, api_version="2020-01-01")
    assert refused.value.error.code == "NoRegisteredProviderFound"  # type: ignore[union-attr]
    compute = ComputeManagementClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )
    with pytest.raises(HttpResponseError) as old:
        compute.virtual_machines.get(world.rg, world.vm_sys.name, api_version="1999-01-01")
    assert old.value.error.code == "NoRegisteredProviderFound"  # type: ignore[union-attr]


def test_every_installed_clients_default_version_is_accepted(sb: Sandbox, world: World) -> None:
    kwargs = {"retry_total": 0, **sb.arm_client_kwargs()}
    authz = AuthorizationManagementClient(sb.credential(), sb.subscription_id, **kwargs)
    assert list(authz.role_assignments.list_for_scope(world.vault.id, filter="atScope()"))
    scope = f"/subscriptions/{sb.subscription_id}"
    assert list(authz.role_definitions.list(scope, filter="roleName eq 'Reader'"))
    msi = ManagedServiceIdentityClient(sb.credential(), sb.subscription_id, **kwargs)
    assert msi.user_assigned_identities.get(world.rg, world.id_a.name).principal_id
    compute = ComputeManagementClient(sb.credential(), sb.subscription_id, **kwargs)
    assert compute.virtual_machines.get(world.rg, world.vm_sys.name).id
    officer = sb.state.create_principal("reader")
    sb.state.create_role_assignment(world.vault.id, "Key Vault Secrets User", officer.object_id)
    for version in ApiVersion:  # every version the installed SecretClient can speak
        client = SecretClient(
            sb.vault_url(world.vault),
            sb.credential(officer),
            api_version=version,
            retry_total=0,
            **sb.keyvault_client_kwargs(),
        )
        assert client.get_secret("db").value == world.values["db"], version


@pytest.mark.parametrize(
    ("type_", "version"),
    [  # what azure-cli's "latest" profile sends (azure/cli/core/profiles/_shared.py)
        ("Microsoft.Compute/virtualMachines", "2024-11-01"),
        ("Microsoft.Authorization/locks", "2016-09-01"),
        ("Microsoft.Resources/resourceGroups", "2024-11-01"),
        ("Microsoft.Resources/subscriptions", "2022-12-01"),
        ("Microsoft.ManagedIdentity/userAssignedIdentities", "2024-11-30"),
        ("Microsoft.KeyVault/vaults", "2026-02-01"),
        ("Microsoft.Storage/storageAccounts", "2025-08-01"),
        ("Microsoft.Authorization/roleAssignments", "2022-04-01"),
    ],
)
def test_azure_cli_versions_are_accepted(type_: str, version: str) -> None:
    check_arm(type_, version, "westeurope")
    known = arm_versions(type_)
    assert known is not None and version in known.versions


@pytest.mark.parametrize(
    ("path", "type_"),
    [
        ("/subscriptions/s", "Microsoft.Resources/subscriptions"),
        ("/subscriptions/s/resourceGroups/rg", "Microsoft.Resources/resourceGroups"),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/i/federatedIdentityCredentials/f",
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
        ),
        (
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv/secrets/db"
            "/providers/Microsoft.Authorization/roleAssignments/x",
            "Microsoft.Authorization/roleAssignments",
        ),
        ("/metadata/endpoints", None),
    ],
)
def test_arm_resource_type_of_a_path(path: str, type_: str | None) -> None:
    assert arm_resource_type(path) == type_


def test_complete_lists_refuse_unlisted_well_formed_versions() -> None:
    with pytest.raises(SandboxError) as refused:
        check_arm("Microsoft.Authorization/roleAssignments", "2021-01-01", "westeurope")
    assert refused.value.code == "NoRegisteredProviderFound"
    check_arm("Microsoft.Authorization/roleAssignments", "2020-10-01-preview", "westeurope")


@pytest.mark.parametrize("version", ["1999-01-01", "0.1-bogus", "7.7", "2026-04-02", "7.6-preview"])
def test_key_vault_refuses_unknown_versions_with_bad_parameter(
    sb: Sandbox, world: World, version: str
) -> None:
    response = requests.get(
        f"{sb.vault_url(world.vault)}secrets/db?api-version={version}",
        headers={"Authorization": f"Bearer {sb.issue_token(world.id_a.principal_id, VAULT)}"},
        verify=sb.ca_cert_path,
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "BadParameter",
        "message": f"The specified version ({version}) is not recognized. Consider using the "
        "latest supported version (2026-04-01).",
    }


def test_key_vault_list_matches_the_installed_client() -> None:
    assert set(keyvault_versions().versions) == {v.value for v in ApiVersion}
