"""The stack program with the dev stack file, in the mock runtime: what ARM would receive
and what the verifier would read."""

from __future__ import annotations

import base64
import json
import re

import yaml

from components import armid
from components.arm.tokens import PULUMI_SEEDED_BLOB
from components.cloud_init import PROBE_REQUIREMENTS, PROBE_VENV
from components.testing import is_secret_envelope
from tests.unit.conftest import DEV_SECRET_VALUES, Deployment

GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ROLE_DEF_ID = re.compile(
    rf"^/subscriptions/{GUID}/providers/Microsoft\.Authorization/roleDefinitions/{GUID}$"
)
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"  # Microsoft's built-in role GUID
RA = "azure-native:authorization:RoleAssignment"
VM = "azure-native:compute:VirtualMachine"

CONTRACT_KEYS = {
    "tenant_id", "subscription_id", "location", "resource_group_id", "vault", "secrets",
    "secret_fingerprints", "identities", "vms", "apps", "grants", "access_matrix",
    "storage_accounts", "containers", "blobs", "blob_fingerprints", "scale_sets", "clusters",
}  # fmt: skip


def test_exports_exactly_the_contract_schema(dev: Deployment) -> None:
    out = dev.outputs
    assert set(out) == CONTRACT_KEYS
    assert out["tenant_id"] == dev.backend.tenant_id
    assert out["subscription_id"] == dev.backend.subscription_id
    assert out["location"] == "westeurope"
    assert (
        out["resource_group_id"]
        == f"/subscriptions/{dev.backend.subscription_id}/resourceGroups/rg-mikit-dev"
    )
    assert set(out["vault"]) == {"name", "id", "uri"}
    assert out["vault"]["uri"] == "https://kv-mikit-dev-4821.vault.azure.net/"
    assert set(out["secrets"]) == {"app-db-password", "api-key", "reports-token", "break-glass"}
    for name, secret in out["secrets"].items():
        assert secret == {
            "scope": f"{out['vault']['id']}/secrets/{name}",
            "uri": f"{out['vault']['uri']}secrets/{name}",
        }
    shared = out["identities"]["shared"]
    assert set(shared) == {"name", "id", "client_id", "principal_id", "tenant_id", "locked"}
    assert shared["tenant_id"] == dev.backend.tenant_id
    assert shared["locked"] is False  # the dev stack's shared identity has no lock
    for vm in out["vms"].values():
        assert set(vm) == {"name", "id", "system_principal_id", "user_assigned"}
    for app in out["apps"].values():
        assert set(app) == {
            "kind", "name", "id", "system_principal_id", "user_assigned", "host_name",
            "default_identity", "key_vault_references", "key_vault_reference_identity",
            "identity_lifecycles", "host_storage",
        }  # fmt: skip
        if app["kind"] == "functionapp":  # identity-based AzureWebJobsStorage
            assert set(app["host_storage"]) == {
                "account_name", "account_id", "identity", "principal_id", "role_name",
                "assignment_id",
            }  # fmt: skip
            assert app["host_storage"]["role_name"] == "Storage Blob Data Owner"
        else:
            assert app["host_storage"] is None
    for grant in out["grants"]:
        assert set(grant) == {
            "name", "id", "principal", "principal_id", "principal_type", "role_name",
            "role_definition_id", "scope", "condition", "condition_version",
        }  # fmt: skip
    for row in out["access_matrix"]:
        keys = {"identity", "principal_id", "client_id", "expected", "kind"}
        keys |= {"vm"} if "vm" in row else {"host", "host_kind"}  # a scale set or a workload
        assert set(row) == keys | ({"secret"} if row["kind"] == "secret" else {"blob"})


def test_ids_are_arm_ids_on_the_real_resource_group_path(dev: Deployment) -> None:
    sub = dev.backend.subscription_id
    for reg in dev.mocks.custom_registrations():
        if reg.type == RA:  # an extension resource below its scope
            assert reg.id.startswith(reg.inputs["scope"] + "/providers/Microsoft.Authorization/")
            continue
        if reg.type.startswith(("kubernetes:", "pulumi:providers:kubernetes")):
            continue  # objects inside the stack's cluster, through its provider: not ARM
        if reg.type == PULUMI_SEEDED_BLOB:  # a data-plane object: <container id>/blobs/<path>
            container = reg.id.split("/blobs/", 1)[0]
            assert armid.parse(container, reg.name).resource_group == "rg-mikit-dev"
            continue
        parsed = armid.parse(reg.id, reg.name)
        assert parsed.subscription_id == sub
        assert parsed.resource_group == "rg-mikit-dev", reg.id
    vm = dev.outputs["vms"]["solo"]
    assert vm["id"] == (
        f"/subscriptions/{sub}/resourceGroups/rg-mikit-dev/providers/Microsoft.Compute"
        "/virtualMachines/vm-mikit-dev-solo"
    )
    shared = dev.outputs["identities"]["shared"]
    assert shared["id"].endswith(
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mikit-dev-shared"
    )
    assert re.fullmatch(GUID, shared["client_id"]) and re.fullmatch(GUID, shared["principal_id"])
    assert shared["client_id"] != shared["principal_id"]


def test_vm_identity_type_is_computed_and_outputs_a_map(dev: Deployment) -> None:
    vms = {r.inputs["vmName"]: r for r in dev.mocks.of_type(VM)}
    shared_id = dev.outputs["identities"]["shared"]["id"]
    expected = {
        "vm-mikit-dev-solo": ("SystemAssigned", None),
        "vm-mikit-dev-batch": ("SystemAssigned", None),
        "vm-mikit-dev-worker1": ("UserAssigned", [shared_id]),
        "vm-mikit-dev-worker2": ("UserAssigned", [shared_id]),
        "vm-mikit-dev-hybrid": ("SystemAssigned, UserAssigned", [shared_id]),
    }
    for name, (kind, uais) in expected.items():
        sent = vms[name].inputs["identity"]
        assert sent["type"] == kind
        assert sent.get("userAssignedIdentities") == uais
        got = vms[name].outputs["identity"]
        assert got["type"] == kind
        assert ("principalId" in got) == ("SystemAssigned" in kind)
        if uais:
            assert got["userAssignedIdentities"] == {
                shared_id: {
                    "principalId": dev.outputs["identities"]["shared"]["principal_id"],
                    "clientId": dev.outputs["identities"]["shared"]["client_id"],
                }
            }
        else:
            assert "userAssignedIdentities" not in got
    out = dev.outputs["vms"]
    assert (
        out["solo"]["system_principal_id"]
        == vms["vm-mikit-dev-solo"].outputs["identity"]["principalId"]
    )
    assert out["worker1"]["system_principal_id"] is None
    assert out["hybrid"]["user_assigned"] == ["shared"]
    assert out["solo"]["user_assigned"] == []


def test_vms_have_no_public_ip_and_no_password(dev: Deployment) -> None:
    for reg in dev.mocks.of_type(VM):
        os_profile = reg.inputs["osProfile"]
        assert "adminPassword" not in os_profile
        linux = os_profile["linuxConfiguration"]
        assert linux["disablePasswordAuthentication"] is True
        (key,) = linux["ssh"]["publicKeys"]
        assert key["keyData"].startswith("ssh-ed25519 ")
        assert key["path"] == "/home/azureuser/.ssh/authorized_keys"
    nics = dev.mocks.of_type("azure-native:network:NetworkInterface")
    assert len(nics) == len(dev.mocks.of_type(VM)) == 5
    for nic in nics:
        for config in nic.inputs["ipConfigurations"]:
            assert "publicIPAddress" not in config
    # The one public IP is the NAT gateway's egress address; no NIC references it.
    (egress,) = dev.mocks.of_type("azure-native:network:PublicIPAddress")
    (nat,) = dev.mocks.of_type("azure-native:network:NatGateway")
    assert nat.inputs["publicIpAddresses"] == [{"id": egress.id}]
    assert egress.id not in json.dumps([n.inputs for n in nics])


def test_subnet_nsg_denies_all_inbound(dev: Deployment) -> None:
    (nsg,) = dev.mocks.of_type("azure-native:network:NetworkSecurityGroup")
    (subnet,) = dev.mocks.of_type("azure-native:network:Subnet")
    assert subnet.inputs["networkSecurityGroup"] == {"id": nsg.id}
    inbound = [r for r in nsg.inputs["securityRules"] if r["direction"] == "Inbound"]
    assert inbound == [
        {
            "name": "deny-all-inbound",
            "priority": 4096,
            "direction": "Inbound",
            "access": "Deny",
            "protocol": "*",
            "sourceAddressPrefix": "*",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "*",
            "destinationPortRange": "*",
            "description": "Nothing may connect in; operate the VMs through Run Command.",
        }
    ]


def test_cloud_init_installs_the_probe_requirements_in_a_venv(dev: Deployment) -> None:
    for reg in dev.mocks.of_type(VM):
        text = base64.b64decode(reg.inputs["osProfile"]["customData"]).decode()
        assert text.startswith("#cloud-config\n")
        doc = yaml.safe_load(text)
        assert "python3-venv" in doc["packages"]
        assert ["python3", "-m", "venv", PROBE_VENV] in doc["runcmd"]
        installs = [c for c in doc["runcmd"] if c[:2] == [f"{PROBE_VENV}/bin/pip", "install"]]
        assert installs[-1][-len(PROBE_REQUIREMENTS) :] == list(PROBE_REQUIREMENTS)


def test_role_assignments_are_complete_and_at_the_asked_scope(dev: Deployment) -> None:
    out = dev.outputs
    by_principal = {(g["principal"], g["role_name"]): g for g in out["grants"]}
    assert set(by_principal) == {
        ("vm:solo", "Key Vault Secrets User"),
        ("identity:shared", "Key Vault Secrets User"),
        ("vm:hybrid", "Key Vault Secrets User"),
        ("vm:batch", "Key Vault Secrets User"),
        ("vm:hybrid", "Key Vault Reader"),
        ("vm:solo", "Storage Blob Data Reader"),
        ("identity:shared", "Storage Blob Data Reader"),
        ("scaleset:web", "Key Vault Secrets User"),
        ("app:web", "Key Vault Secrets User"),
        ("app:jobs", "Key Vault Secrets User"),
    }
    for app, secret in (("web", "app-db-password"), ("jobs", "reports-token")):
        grant = by_principal[f"app:{app}", "Key Vault Secrets User"]
        assert grant["scope"] == out["secrets"][secret]["scope"]
        assert grant["principal_id"] == out["apps"][app]["system_principal_id"]
    assert (
        by_principal["vm:solo", "Storage Blob Data Reader"]["scope"]
        == out["containers"]["data/reports"]["scope"]
    )
    shared_blobs = by_principal["identity:shared", "Storage Blob Data Reader"]
    assert shared_blobs["scope"] == out["storage_accounts"]["data"]["id"]
    assert shared_blobs["condition"] and shared_blobs["condition_version"] == "2.0"
    secrets = out["secrets"]
    assert (
        by_principal["vm:solo", "Key Vault Secrets User"]["scope"]
        == secrets["app-db-password"]["scope"]
    )
    assert (
        by_principal["identity:shared", "Key Vault Secrets User"]["scope"]
        == secrets["api-key"]["scope"]
    )
    assert (
        by_principal["vm:hybrid", "Key Vault Secrets User"]["scope"]
        == secrets["reports-token"]["scope"]
    )
    assert (
        by_principal["vm:batch", "Key Vault Secrets User"]["scope"]
        == secrets["reports-token"]["scope"]
    )
    assert by_principal["vm:hybrid", "Key Vault Reader"]["scope"] == out["vault"]["id"]
    assert (
        by_principal["scaleset:web", "Key Vault Secrets User"]["principal_id"]
        == out["scale_sets"]["web"]["system_principal_id"]
    )
    assert (
        by_principal["vm:solo", "Key Vault Secrets User"]["principal_id"]
        == out["vms"]["solo"]["system_principal_id"]
    )
    assert (
        by_principal["identity:shared", "Key Vault Secrets User"]["principal_id"]
        == out["identities"]["shared"]["principal_id"]
    )
    for grant in out["grants"]:
        assert grant["principal_type"] == "ServicePrincipal"
        assert ROLE_DEF_ID.match(grant["role_definition_id"]), grant["role_definition_id"]
        assert grant["role_definition_id"].startswith(f"/subscriptions/{out['subscription_id']}/")
        assert re.fullmatch(GUID, grant["name"])
        assert (
            grant["id"]
            == f"{grant['scope']}/providers/Microsoft.Authorization/roleAssignments/{grant['name']}"
        )
    sent = dev.mocks.of_type(RA)
    # the ten grants, and each Function app's host-storage assignment (not a grant)
    hosts = [a["host_storage"] for a in out["apps"].values() if a["host_storage"]]
    assert len(hosts) == 1
    assert len(sent) == 10 + len(hosts)
    for host in hosts:
        (reg,) = [r for r in sent if r.inputs["scope"] == host["account_id"]]
        assert reg.inputs["principalId"] == host["principal_id"]
        assert reg.inputs["roleDefinitionId"].endswith(BLOB_DATA_OWNER)
    for reg in sent:
        assert reg.inputs["principalType"] == "ServicePrincipal"
        assert ROLE_DEF_ID.match(reg.inputs["roleDefinitionId"])
        if reg.inputs["scope"] == out["storage_accounts"]["data"]["id"]:  # the one ABAC grant
            assert reg.inputs["condition"] == shared_blobs["condition"]
            assert reg.inputs["conditionVersion"] == "2.0"
        else:
            assert "condition" not in reg.inputs and "conditionVersion" not in reg.inputs
    reader = next(g for g in out["grants"] if g["role_name"] == "Key Vault Secrets User")
    assert reader["role_definition_id"].endswith(SECRETS_USER)


def test_assignment_names_are_stable_across_runs_and_distinct(
    dev: Deployment, dev_again: Deployment
) -> None:
    first = [g["name"] for g in dev.outputs["grants"]]
    second = [g["name"] for g in dev_again.outputs["grants"]]
    assert first == second
    assert len(set(first)) == len(first)
    # The second run found every assignment already there under the same name: no 409.
    hosts = [a["host_storage"] for a in dev.outputs["apps"].values() if a["host_storage"]]
    again = [a["host_storage"] for a in dev_again.outputs["apps"].values() if a["host_storage"]]
    assert [h["assignment_id"] for h in hosts] == [h["assignment_id"] for h in again]
    held = dev.backend.of_type("Microsoft.Authorization/roleAssignments")
    assert len(held) == len(first) + len(hosts)
    assert dev_again.outputs["access_matrix"] == dev.outputs["access_matrix"]


def test_access_matrix_follows_the_grants(dev: Deployment) -> None:
    out = dev.outputs
    rows = [r for r in out["access_matrix"] if "vm" in r]  # other hosts: the test below
    holders = {
        ("solo", "system"),
        ("batch", "system"),
        ("worker1", "shared"),
        ("worker2", "shared"),
        ("hybrid", "system"),
        ("hybrid", "shared"),
    }
    assert {(r["vm"], r["identity"]) for r in rows} == holders
    assert len(rows) == len(holders) * (4 + 4)  # four secrets, four blobs
    blobs = {
        (r["vm"], r["identity"], r["blob"])
        for r in rows
        if r["kind"] == "blob" and r["expected"] == "allowed"
    }
    assert blobs == {
        ("solo", "system", "data/reports/q1/summary.csv"),  # container scope: both reports blobs
        ("solo", "system", "data/reports/private/payroll.csv"),
        *(  # account scope, condition: class=public blobs in either container
            (vm, "shared", blob)
            for vm in ("worker1", "worker2", "hybrid")
            for blob in ("data/reports/q1/summary.csv", "data/archive/2025/ledger.csv")
        ),
    }
    assert all(
        r["expected"] == "denied"
        for r in rows
        if r.get("blob") == "data/archive/keys/break-glass.txt"
    )
    rows = [r for r in rows if r["kind"] == "secret"]
    allowed = {(r["vm"], r["identity"], r["secret"]) for r in rows if r["expected"] == "allowed"}
    assert allowed == {
        ("solo", "system", "app-db-password"),
        ("worker1", "shared", "api-key"),
        ("worker2", "shared", "api-key"),
        ("hybrid", "shared", "api-key"),
        ("hybrid", "system", "reports-token"),  # Key Vault Reader on the vault adds nothing
        ("batch", "system", "reports-token"),
    }
    assert all(r["expected"] == "denied" for r in rows if r["secret"] == "break-glass")
    for r in rows:
        if r["identity"] == "system":
            assert r["principal_id"] == out["vms"][r["vm"]]["system_principal_id"]
            assert r["client_id"] is None
        else:
            assert r["principal_id"] == out["identities"][r["identity"]]["principal_id"]
            assert r["client_id"] == out["identities"][r["identity"]]["client_id"]


def test_access_matrix_covers_the_scale_set_and_both_workloads(dev: Deployment) -> None:
    out = dev.outputs
    rows = [r for r in out["access_matrix"] if "host" in r and r["host_kind"] != "app"]
    holders = {(r["host"], r["host_kind"], r["identity"]) for r in rows}
    assert holders == {
        ("scaleset:web", "scaleset", "system"),
        ("scaleset:web", "scaleset", "shared"),
        ("workload:api", "workload", "shared"),
        ("workload:batch", "workload_without_identity", "kubelet"),
    }
    allowed = {
        (r["host"], r["identity"], r["secret"])
        for r in rows
        if r["kind"] == "secret" and r["expected"] == "allowed"
    }
    assert allowed == {
        ("scaleset:web", "system", "reports-token"),  # one grant covers every instance
        ("scaleset:web", "shared", "api-key"),
        ("workload:api", "shared", "api-key"),  # the identity's grant, through federation
    }
    kubelet = out["clusters"]["aks"]["kubelet_identity"]
    for r in rows:
        if r["identity"] == "kubelet":  # no workload identity: the node's, granted nothing
            assert (r["principal_id"], r["expected"]) == (kubelet["object_id"], "denied")
        elif r["identity"] == "system":
            assert r["principal_id"] == out["scale_sets"]["web"]["system_principal_id"]


def test_no_secret_value_in_any_plain_output_or_arm_document(dev: Deployment) -> None:
    plain = {k: v for k, v in dev.outputs.items() if k != "secret_fingerprints"}
    arm_docs = json.dumps(list(dev.backend.resources.values()))
    outputs = json.dumps([r.outputs for r in dev.mocks.registrations], default=str)
    for value in DEV_SECRET_VALUES.values():
        assert value not in json.dumps(plain)
        assert value not in arm_docs
        assert value not in outputs
    # The values reached the management plane, and only as Pulumi secrets.
    secrets = dev.mocks.of_type("azure-native:keyvault:Secret")
    assert len(secrets) == 4
    for reg in secrets:
        assert is_secret_envelope(reg.raw_inputs["properties"])
        assert (
            reg.inputs["properties"]["value"]
            == DEV_SECRET_VALUES[f"mikit:secret-{reg.inputs['secretName']}"]
        )
    fingerprints = dev.outputs["secret_fingerprints"]
    assert set(fingerprints) == set(dev.outputs["secrets"])
    assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", f) for f in fingerprints.values())


def test_vault_is_rbac_only_with_soft_delete(dev: Deployment) -> None:
    (vault,) = dev.mocks.of_type("azure-native:keyvault:Vault")
    props = vault.inputs["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["accessPolicies"] == []
    assert props["enableSoftDelete"] is True
    assert props["softDeleteRetentionInDays"] == 7
    assert "enablePurgeProtection" not in props  # dev: off (ARM refuses an explicit false)
    assert props["publicNetworkAccess"] == "Enabled"
    assert props["tenantId"] == dev.backend.tenant_id


def test_components_use_their_type_tokens_and_parent_children(dev: Deployment) -> None:
    types = {r.type for r in dev.mocks.registrations if not r.custom}
    assert types == {
        "mikit:network:Network",
        "mikit:keyvault:KeyVault",
        "mikit:identity:UserAssignedIdentity",
        "mikit:compute:LinuxVirtualMachine",
        "mikit:authorization:RoleAssignment",
        "mikit:storage:StorageAccount",
        "mikit:compute:LinuxScaleSet",
        "mikit:containerservice:AksCluster",
        "mikit:containerservice:WorkloadIdentityBinding",
        "mikit:web:AppServicePlan",
        "mikit:web:WebApp",
        "mikit:web:FunctionApp",
        "mikit:app:ContainerAppsEnvironment",
        "mikit:app:ContainerApp",
    }
    assert dev.mocks.invocations[0].token == "azure-native:authorization:getClientConfig"
