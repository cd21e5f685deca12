"""api-versions, as a matter of protocol fidelity: ARM and Key Vault accept only the versions
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
    blob_versions,
    check_arm,
    keyvault_versions,
)
from verify.sandbox.data import api_versions_from_specs as gen_module
from verify.sandbox.data import sdk_api_versions
from verify.sandbox.state.records import SandboxError

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
    """No date-range fallback: a day after a listed version is not a version."""
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
    """Every version the installed SecretClient speaks is listed; the rest are the versions
    the data-plane specification publishes (previews included), nothing else."""
    listed = set(keyvault_versions().versions)
    client = {v.value for v in ApiVersion}
    assert client <= listed
    data = json.loads(DATA.read_text())["keyvault"]
    assert any("Azure/azure-rest-api-specs" in source for source in data["sources"])
    assert data["spec_commits"], "the Key Vault list names the spec commits it came from"
    published = {"7.5", "7.6", "2025-07-01", "7.6-preview.2", "2026-07-01-preview"}
    assert published <= listed, published - listed


# ---------------------------------------------------------------- from the specifications

COMPUTE_2026_03_01 = "2026-03-01"  # stable/2026-03-01/ComputeRP.json, what the JS client sends


def test_compute_2026_03_01_is_accepted_for_every_vm_operation(sb: Sandbox, world: World) -> None:
    """Reproduced: the JavaScript Compute client sends api-version=2026-03-01 (published in
    specification/compute/resource-manager/Microsoft.Compute/Compute/stable/2026-03-01/
    ComputeRP.json); the sandbox answered 400 NoRegisteredProviderFound to VM get, list,
    update and delete."""
    headers = {"Authorization": f"Bearer {sb.issue_token(sb.operator, ARM)}"}
    base = f"{sb.arm_url}{world.vm_sys.id}"
    listing = f"{sb.arm_url}/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}"
    query = f"?api-version={COMPUTE_2026_03_01}"
    calls = [
        ("GET", base, None, 200),
        ("GET", f"{listing}/providers/Microsoft.Compute/virtualMachines", None, 200),
        ("PATCH", base, {"tags": {"owner": "spec"}}, 200),
        ("DELETE", base, None, 204),
    ]
    for method, url, body, status in calls:
        response = requests.request(
            method, url + query, json=body, headers=headers, verify=sb.ca_cert_path, timeout=10
        )
        assert response.status_code == status, (method, url, response.text)


def test_api_versions_json_is_what_the_spec_listing_generates() -> None:
    """The committed data is exactly the generator's output over the vendored listing: no
    hand edits, and the listing (paths + commits) is the record of where it came from."""
    gen = gen_module
    listing = json.loads(gen.LISTING.read_text())
    assert gen.render(gen.generate(listing)) == DATA.read_text(), (
        "api_versions.json is not what the listing generates (a hand edit, or a new "
        "pulumi-azure-native / azure-storage-blob / azure-keyvault-secrets in uv.lock): run "
        "`python -m uv run python -m verify.sandbox.data.api_versions_from_specs`"
    )
    assert listing["repo"] == "Azure/azure-rest-api-specs"
    for path, commit in gen.spec_files(listing):
        assert path.startswith("specification/"), path
        assert re.fullmatch(r"[0-9a-f]{40}", commit), (path, commit)


def test_every_served_type_records_its_spec_commits() -> None:
    data = json.loads(DATA.read_text())["arm"]
    from_specs = [t for t, rules in gen_module.RULES.items() if rules]
    assert len(from_specs) >= 16
    for type_ in from_specs:
        assert data[type_]["spec_commits"], type_


def _newest(type_: str) -> str:
    """The newest version the specification listing publishes for ``type_``."""
    gen = gen_module
    listing = json.loads(gen.LISTING.read_text())
    versions, _ = gen._versions_by_rules(gen.RULES[type_], gen.spec_files(listing))
    return max(versions, key=gen._order)


SPEC_TYPES = sorted(t for t, rules in gen_module.RULES.items() if rules)


@pytest.mark.parametrize("type_", SPEC_TYPES)
def test_the_specs_newest_version_of_each_type_is_accepted(type_: str) -> None:
    check_arm(type_, _newest(type_), "westeurope")


def test_the_installed_clients_and_the_specs_newest_versions_reach_the_sandbox(
    sb: Sandbox, world: World
) -> None:
    """Over HTTP, for each type the sandbox serves: every version the installed azure-mgmt-*
    clients can send, and the newest the specification publishes, get a real answer."""
    site = Path(compute_pkg.__file__).parents[3]
    sent = sdk_api_versions.read_texts(sdk_api_versions.installed_texts(site))
    sub = f"/subscriptions/{sb.subscription_id}"
    paths = {
        **served_paths(sb, world),
        "Microsoft.Resources/subscriptions": sub,
        "Microsoft.KeyVault/deletedVaults": f"{sub}/providers/Microsoft.KeyVault/deletedVaults",
    }
    for type_, path in paths.items():
        versions = set(sent.get(type_, set()))
        if type_ in SPEC_TYPES:
            versions.add(_newest(type_))
        if type_.startswith("Microsoft.Resources/"):  # ARM's own: its recorded list, newest first
            known = arm_versions(type_)
            assert known is not None
            versions.add(known.versions[0])
        assert versions, type_
        for version in sorted(versions):
            response = arm_get(sb, path, version)
            assert response.status_code == 200, (type_, version, response.text)


@pytest.mark.parametrize(
    ("type_", "version", "other_type"),
    [  # a version folder of a namespace that does not publish every type of it
        # Microsoft.App 2025-05-01-preview holds only SupportedModels.json
        ("Microsoft.App/containerApps", "2025-05-01-preview", None),
        # ManagedIdentity.json has federatedIdentityCredentials from 2022-01-31-preview on
        (
            "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
            "2021-09-30-preview",
            "Microsoft.ManagedIdentity/userAssignedIdentities",
        ),
        # keyvault.json 2015-06-01 predates soft delete (no deletedVaults)
        ("Microsoft.KeyVault/deletedVaults", "2015-06-01", "Microsoft.KeyVault/vaults"),
        # Compute 2025-01-02 is a disks-only folder (DiskRP.json)
        ("Microsoft.Compute/virtualMachines", "2025-01-02", None),
    ],
)
def test_a_version_is_refused_for_a_type_its_folder_does_not_publish(
    type_: str, version: str, other_type: str | None
) -> None:
    with pytest.raises(SandboxError) as refused:
        check_arm(type_, version, "westeurope")
    assert refused.value.code == "NoRegisteredProviderFound"
    if other_type is not None:
        check_arm(other_type, version, "westeurope")


def test_blob_versions_are_the_specs_and_the_clients() -> None:
    """Blob's x-ms-version list: every blob.json version folder published (up to 2027-03-07,
    newer than the installed client's default) and every version the client can send."""
    from azure.storage.blob._serialize import _SUPPORTED_API_VERSIONS  # noqa: PLC0415

    listed = set(blob_versions().versions)
    assert set(_SUPPORTED_API_VERSIONS) <= listed
    assert {"2027-03-07", "2026-12-06", "2021-10-04"} <= listed
    assert "0000-00-00" not in listed and "2027-03-08" not in listed
    assert json.loads(DATA.read_text())["blob"]["spec_commits"]


def test_a_child_resource_is_governed_by_its_parents_list() -> None:
    """``.../sites/{app}/config/configreferences/appsettings`` is served by the sites
    provider: its versions, and an unpublished one refused in ARM's words."""
    type_ = arm_resource_type(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/app/config/"
        "configreferences/appsettings"
    )
    assert type_ == "Microsoft.Web/sites/config/appsettings"
    check_arm(type_, "2024-04-01", "westeurope")
    with pytest.raises(SandboxError) as refused:
        check_arm(type_, "2024-04-02", "westeurope")
    assert refused.value.code == "NoRegisteredProviderFound"
