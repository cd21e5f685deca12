"""api-versions (issue 11, "Protocol fidelity"): ARM and Key Vault accept only the versions
the real service offers, and every version the installed clients send by default.

Reproduced: ARM and Key Vault accepted ``1999-01-01`` and ``0.1-bogus``."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import azure.mgmt.compute as compute_pkg
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
    DATA,
    arm_resource_type,
    arm_versions,
    check_arm,
    keyvault_versions,
)
from verify.sandbox.data import sdk_api_versions
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
        "are '2015-08-31-preview, 2018-11-30, 2021-09-30-preview, "
    )
    assert message.endswith(f"2026-05-31'. The supported locations are '{sb.state.location}'.")


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
        ("Microsoft.Authorization/roleDefinitions", "2022-05-01-preview"),
        ("Microsoft.KeyVault/deletedVaults", "2026-02-01"),
        ("Microsoft.Storage/storageAccounts/blobServices", "2025-08-01"),
        ("Microsoft.Storage/storageAccounts/blobServices/containers", "2025-08-01"),
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


ALL_TYPES = sorted(json.loads(DATA.read_text())["arm"])


def _next_unlisted(versions: tuple[str, ...]) -> str:
    """A well-formed version one day after the newest listed date that is itself unlisted."""
    newest = max(v for v in versions if re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", v))
    day, suffix = date.fromisoformat(newest[:10]), newest[10:]
    for _ in range(400):  # bounded: some day within a year after the newest is unlisted
        day += timedelta(days=1)
        if f"{day.isoformat()}{suffix}" not in versions:
            return f"{day.isoformat()}{suffix}"
    raise AssertionError(f"no unlisted day after {newest}")


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_every_listed_version_is_accepted(type_: str) -> None:
    known = arm_versions(type_)
    assert known is not None and len(known.versions) == len(set(known.versions)) >= 4
    for version in known.versions:
        check_arm(type_, version, "westeurope")


@pytest.mark.parametrize("type_", ALL_TYPES)
def test_an_unlisted_well_formed_version_is_refused_in_arms_words(type_: str) -> None:
    """No date-range fallback: a day after a listed version is not a version (issue 11)."""
    known = arm_versions(type_)
    assert known is not None
    version = _next_unlisted(known.versions)
    with pytest.raises(SandboxError) as refused:
        check_arm(type_, version, "westeurope")
    assert refused.value.status == 400
    if type_.startswith("Microsoft.Resources/"):
        assert refused.value.code == "InvalidApiVersionParameter"
        assert refused.value.message == (
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{','.join(known.versions)}'."
        )
    else:
        assert refused.value.code == "NoRegisteredProviderFound"
        assert refused.value.message == (
            f"No registered resource provider found for location 'westeurope' and API version "
            f"'{version}' for type '{type_.partition('/')[2]}'. The supported api-versions are "
            f"'{', '.join(sorted(known.versions))}'. The supported locations are 'westeurope'."
        )


@pytest.mark.parametrize(
    ("type_", "version"),
    [  # each accepted by the old "any date since the earliest" fallback; Azure never shipped it
        ("Microsoft.Compute/virtualMachines", "2022-01-01"),
        ("Microsoft.KeyVault/vaults", "2022-01-01"),
        ("Microsoft.Resources/resourceGroups", "2023-01-01"),
    ],
)
def test_the_sandbox_refuses_a_version_the_old_date_range_accepted(
    sb: Sandbox, world: World, type_: str, version: str
) -> None:
    response = arm_get(sb, served_paths(sb, world)[type_], version)
    assert response.status_code == 400, response.text
    own = type_.startswith("Microsoft.Resources/")
    expected = "InvalidApiVersionParameter" if own else "NoRegisteredProviderFound"
    assert response.json()["error"]["code"] == expected


def test_arms_own_list_keeps_its_non_date_entry() -> None:
    """ARM lists ``2014-04`` for its own types: accepted as listed, though not a date."""
    check_arm("Microsoft.Resources/resourceGroups", "2014-04", "westeurope")
    with pytest.raises(SandboxError) as refused:
        check_arm("Microsoft.Compute/virtualMachines", "2014-04", "westeurope")
    assert refused.value.code == "InvalidApiVersionParameter"


def test_every_version_the_installed_mgmt_clients_send_is_listed() -> None:
    """The installed azure-mgmt-* packages' operations (every api-version they can send, not
    only the default) are all in the data, read the way the refresh script reads them."""
    site = Path(compute_pkg.__file__).parents[3]
    found = sdk_api_versions.read_texts(sdk_api_versions.installed_texts(site))
    assert {
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
    } <= set(found)
    for type_, versions in found.items():
        known = arm_versions(type_)
        assert known is not None, type_
        assert versions and versions <= set(known.versions), (type_, versions - set(known.versions))


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
