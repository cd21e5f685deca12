"""The commands Microsoft's managed-identity docs teach, run verbatim with the real Azure CLI
against the sandbox after ``az cloud register`` and ``az login --identity`` (docs/sandbox.md)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from azcli_env import Az

from verify.sandbox import Sandbox, VirtualMachine

pytestmark = pytest.mark.azcli


def test_cloud_register_takes_every_endpoint_from_arm_metadata(az: Az, sb: Sandbox) -> None:
    cloud = az("cloud", "show", "--name", "MikitSandbox").check().json()
    endpoints = cloud["endpoints"]
    assert endpoints["resourceManager"] == sb.arm_url  # as given on the command line
    assert endpoints["activeDirectory"] == sb.authority_url
    assert endpoints["activeDirectoryResourceId"] == "https://management.core.windows.net/"
    assert endpoints["microsoftGraphResourceId"] == sb.graph_url + "/"
    assert cloud["suffixes"]["keyvaultDns"] == ".vault.azure.net"
    # the metadata was read without a token: ARM logged the request with no principal
    (record,) = [
        r for r in sb.request_log.records(service="arm") if r.path == "/metadata/endpoints"
    ]
    assert (record.status, record.principal_id) == (200, None)


def test_login_identity_finds_the_subscription(
    az: Az, sb: Sandbox, admin_vm: VirtualMachine
) -> None:
    account = az("account", "show").check().json()
    assert account["id"] == sb.subscription_id
    assert account["tenantId"] == sb.tenant_id
    assert account["user"] == {
        "assignedIdentityInfo": "MSI",
        "name": "systemAssignedIdentity",
        "type": "servicePrincipal",
    }
    listed = [r for r in sb.request_log.records(service="arm") if r.path == "/subscriptions"]
    assert listed and listed[0].principal_id == admin_vm.system_principal_id


def test_login_identity_without_any_role_finds_no_subscription(
    sb: Sandbox, az: Az, registered: Callable[[Path], Path], tmp_path: Path
) -> None:
    lonely = sb.state.create_vm("rg-cli", f"vm-lonely-{uuid.uuid4().hex[:6]}", system_assigned=True)
    cli = Az(az.executable, registered(tmp_path / "cfg"), sb.ca_cert_path, sb.imds_url(lonely))
    result = cli("login", "--identity")
    assert result.returncode != 0
    assert "No access was configured for the managed identity" in result.stderr


def test_identity_create(az: Az, sb: Sandbox) -> None:
    created = az("identity", "create", "-g", "rg-cli", "-n", "id-cli-app").check().json()
    uai = sb.state.identity(created["id"])
    assert uai is not None
    assert (created["principalId"], created["clientId"]) == (uai.principal_id, uai.client_id)


def test_vm_identity_assign_system_then_user_assigned(az: Az, sb: Sandbox) -> None:
    vm = sb.state.create_vm("rg-cli", "vm-cli-app")
    uai = sb.state.create_identity("rg-cli", "id-cli-shared")
    system = az("vm", "identity", "assign", "-g", "rg-cli", "-n", vm.name).check().json()
    after = sb.state.vm(vm.id)
    assert after is not None and after.system_principal_id is not None
    assert system["systemAssignedIdentity"] == after.system_principal_id
    both = (
        az("vm", "identity", "assign", "-g", "rg-cli", "-n", vm.name, "--identities", uai.id)
        .check()
        .json()
    )
    after = sb.state.vm(vm.id)
    assert after is not None and after.user_assigned == (uai.id,)
    assert both["userAssignedIdentities"][uai.id]["principalId"] == uai.principal_id
    assert after.system_principal_id == system["systemAssignedIdentity"]  # kept


def test_role_assignment_create_list_delete(az: Az, sb: Sandbox) -> None:
    vault = sb.state.create_vault("rg-cli", f"kv-cli-{uuid.uuid4().hex[:6]}")
    uai = sb.state.create_identity("rg-cli", "id-cli-reader")
    role = ["--role", "Key Vault Secrets User", "--scope", vault.id]
    created = az("role", "assignment", "create", "--assignee", uai.principal_id, *role)
    created = created.check().json()
    assert created["principalType"] == "ServicePrincipal"  # resolved through Graph
    assert created["scope"] == vault.id
    assert sb.state.role_assignment(created["id"]) is not None
    everywhere = az("role", "assignment", "list", "--assignee", uai.principal_id, "--all")
    # an identity that owns only the group cannot list at subscription scope (the known
    # "403 listing role assignments" failure): list at the scope it can read instead
    assert everywhere.returncode != 0 and "AuthorizationFailed" in everywhere.stderr
    listed = az("role", "assignment", "list", "--assignee", uai.principal_id, "--scope", vault.id)
    listed = listed.check().json()
    assert [(a["roleDefinitionName"], a["principalName"]) for a in listed] == [
        ("Key Vault Secrets User", uai.client_id)  # az shows servicePrincipalNames[0]
    ]
    az("role", "assignment", "delete", "--assignee", uai.principal_id, "--scope", vault.id).check()
    assert sb.state.role_assignment(created["id"]) is None
    graph_calls = [r for r in sb.request_log.records(service="graph")]
    assert {r.path for r in graph_calls} >= {
        "/v1.0/servicePrincipals",
        "/v1.0/directoryObjects/getByIds",
    }


def test_role_assignment_create_by_client_id_resolves_the_object_id(az: Az, sb: Sandbox) -> None:
    uai = sb.state.create_identity("rg-cli", "id-cli-by-app-id")
    scope = f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-cli"
    created = (
        az(
            "role",
            "assignment",
            "create",
            "--assignee",
            uai.client_id,
            "--role",
            "Reader",
            "--scope",
            scope,
        )
        .check()
        .json()
    )
    assert created["principalId"] == uai.principal_id


def test_without_directory_read_az_falls_back_to_the_object_id(az: Az, sb: Sandbox) -> None:
    """Graph's 403 is what az meets as an identity without Directory.Read: it warns and
    assumes the GUID is an object ID (no principalType), which ARM still accepts for a
    principal that exists."""
    uai = sb.state.create_identity("rg-cli", "id-cli-no-graph")
    scope = f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-cli"
    sb.graph_directory_read = False
    try:
        role = ["--role", "Reader", "--scope", scope]
        result = az("role", "assignment", "create", "--assignee", uai.principal_id, *role)
        result.check()
    finally:
        sb.graph_directory_read = True
    assert "Failed to query" in result.stderr
    assert f"Assuming {uai.principal_id} as an object ID" in result.stderr
    denied = [r for r in sb.request_log.records(service="graph") if r.status == 403]
    assert denied
    assert result.json()["principalId"] == uai.principal_id


def test_vm_show_d_reports_the_power_state(az: Az, sb: Sandbox) -> None:
    vm = sb.state.create_vm("rg-cli", "vm-cli-show", system_assigned=True)
    shown = az("vm", "show", "-d", "-g", "rg-cli", "-n", vm.name).check().json()
    assert shown["powerState"] == "VM running"
    assert shown["identity"]["principalId"] == vm.system_principal_id
