"""The bootstrap stack in Pulumi's mock runtime, run with its real stack file.

What matters is what would be sent to ARM: the federated subjects the deployer trusts, the
exact role set (role, scope, principal, condition) and nothing more, and a state backend
and key that need no stored secret.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap.conditions import constrain_role_assignments
from components.errors import ConfigError
from components.roles import RoleCatalog
from components.stack_config import blob_value_key
from components.testing import AzureMocks, InMemoryArm, Registration, load_stack_config, run_program

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "bootstrap" / "__main__.py"
STACK_FILE = ROOT / "bootstrap" / "stacks" / "Pulumi.ci.yaml"
PROJECT = "managed-identity-kit-bootstrap"
ISSUER = "https://token.actions.githubusercontent.com"

ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
FEDERATED = "azure-native:managedidentity:FederatedIdentityCredential"
IDENTITY = "azure-native:managedidentity:UserAssignedIdentity"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
BLOB_SERVICE = "azure-native:storage:BlobServiceProperties"
CONTAINER = "azure-native:storage:BlobContainer"
KEY = "azure-native:keyvault:Key"
VAULT = "azure-native:keyvault:Vault"
LOCK = "azure-native:authorization:ManagementLockByScope"

_SA = "/providers/Microsoft.Storage/storageAccounts/{accountName}"
_PATHS = {
    STORAGE_ACCOUNT: _SA,
    BLOB_SERVICE: _SA + "/blobServices/default",
    CONTAINER: _SA + "/blobServices/default/containers/{containerName}",
    KEY: "/providers/Microsoft.KeyVault/vaults/{vaultName}/keys/{keyName}",
}


class BootstrapMocks(AzureMocks):
    """AzureMocks plus the ARM ID layout of the storage and key types the bootstrap uses
    (the shared mocks build a generic ID for types they do not know)."""

    def arm_id(self, token: str, logical_name: str, inputs: Mapping[str, Any]) -> str:
        if token in _PATHS:
            rg = f"/subscriptions/{self.backend.subscription_id}/resourceGroups/"
            return rg + inputs["resourceGroupName"] + _PATHS[token].format(**inputs)
        return super().arm_id(token, logical_name, inputs)


def _run(config: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], BootstrapMocks]:
    mocks = BootstrapMocks(InMemoryArm())
    outputs = run_program(
        PROGRAM,
        dict(config if config is not None else load_stack_config(STACK_FILE)),
        mocks=mocks,
        project=PROJECT,
        stack="ci",
    )
    return outputs, mocks


@pytest.fixture(scope="module")
def deployed() -> tuple[dict[str, Any], BootstrapMocks]:
    return _run()


def _only(mocks: BootstrapMocks, token: str) -> Registration:
    found = mocks.of_type(token)
    assert len(found) == 1, f"expected one {token}, got {len(found)}"
    return found[0]


def _rg_id(mocks: BootstrapMocks, name: str) -> str:
    return f"/subscriptions/{mocks.backend.subscription_id}/resourceGroups/{name}"


def test_federated_credentials_trust_exactly_main_prs_and_the_environment(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    _, mocks = deployed
    identity = _only(mocks, IDENTITY)
    creds = {
        r.inputs["federatedIdentityCredentialResourceName"]: r.inputs
        for r in mocks.of_type(FEDERATED)
    }
    assert {n: c["subject"] for n, c in creds.items()} == {
        "github-main": "repo:your-org/managed-identity-kit:ref:refs/heads/main",
        "github-pull-request": "repo:your-org/managed-identity-kit:pull_request",
        "github-env-lifecycle": "repo:your-org/managed-identity-kit:environment:lifecycle",
    }
    for cred in creds.values():
        assert cred["issuer"] == ISSUER
        assert cred["audiences"] == ["api://AzureADTokenExchange"]
        assert cred["resourceName"] == identity.inputs["resourceName"] == "mikit-github-deployer"


def test_the_deployer_holds_exactly_this_role_set(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    _, mocks = deployed
    catalog = RoleCatalog.builtin()
    deployer = _only(mocks, IDENTITY).outputs["principalId"]
    sub = mocks.backend.subscription_id
    state = _only(mocks, CONTAINER).id
    key = _only(mocks, KEY).id
    got = set()
    for r in mocks.of_type(ROLE_ASSIGNMENT):
        if r.inputs["principalId"] != deployer:
            continue
        assert r.inputs["principalType"] == "ServicePrincipal"
        role = catalog.get(r.inputs["roleDefinitionId"])
        assert r.inputs["roleDefinitionId"] == role.definition_id(sub)
        got.add((role.name, r.inputs["scope"]))
    assert got == {
        ("Contributor", _rg_id(mocks, "rg-mikit-dev")),
        ("Contributor", _rg_id(mocks, "rg-mikit-lifecycle")),
        ("Role Based Access Control Administrator", _rg_id(mocks, "rg-mikit-dev")),
        ("Role Based Access Control Administrator", _rg_id(mocks, "rg-mikit-lifecycle")),
        # SeededBlob writes the stacks' blobs and their index tags over Entra ID.
        ("Storage Blob Data Owner", _rg_id(mocks, "rg-mikit-dev")),
        ("Storage Blob Data Owner", _rg_id(mocks, "rg-mikit-lifecycle")),
        # The stacks' Kubernetes objects (a Namespace needs namespaces/write) on AKS clusters
        # with Azure RBAC authorization and local accounts off.
        ("Azure Kubernetes Service RBAC Cluster Admin", _rg_id(mocks, "rg-mikit-dev")),
        ("Azure Kubernetes Service RBAC Cluster Admin", _rg_id(mocks, "rg-mikit-lifecycle")),
        ("Storage Blob Data Contributor", state),
        ("Key Vault Crypto User", key),
    }
    assert state.endswith(
        "/storageAccounts/mikitstate0000/blobServices/default/containers/pulumi-state"
    )
    assert key.endswith("/vaults/kv-mikit-cicd-0000/keys/pulumi-secrets")


ADMIN = "5f6c1b9e-3a2d-4c7b-8e1f-9a0b2c3d4e5f"  # the stack file's placeholder object ID


def test_the_administrator_gets_exactly_the_deployers_two_data_roles_on_the_same_scopes(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    """Without these two grants nobody can `pulumi login azblob://` or
    `pulumi stack init --secrets-provider azurekeyvault://` (Owner has no data actions, the
    deployer trusts only GitHub, shared keys are off). Exactly these two, nothing else."""
    outputs, mocks = deployed
    catalog = RoleCatalog.builtin()
    deployer = _only(mocks, IDENTITY).outputs["principalId"]
    admin_rows = [
        r.inputs for r in mocks.of_type(ROLE_ASSIGNMENT) if r.inputs["principalId"] == ADMIN
    ]
    assert {
        (catalog.get(r["roleDefinitionId"]).name, r["scope"], r["principalType"])
        for r in admin_rows
    } == {
        ("Storage Blob Data Contributor", _only(mocks, CONTAINER).id, "User"),
        ("Key Vault Crypto User", _only(mocks, KEY).id, "User"),
    }
    assert len(admin_rows) == 2
    assert all("condition" not in r for r in admin_rows)
    # The same scopes the deployer holds those roles on: no wider.
    deployer_data = {
        (r.inputs["roleDefinitionId"], r.inputs["scope"])
        for r in mocks.of_type(ROLE_ASSIGNMENT)
        if r.inputs["principalId"] == deployer
    }
    assert {(r["roleDefinitionId"], r["scope"]) for r in admin_rows} <= deployer_data
    # Every assignment belongs to the deployer or the administrator.
    assert {r.inputs["principalId"] for r in mocks.of_type(ROLE_ASSIGNMENT)} == {deployer, ADMIN}
    assert outputs["administrator"]["principal_id"] == ADMIN
    assert outputs["administrator"]["principal_type"] == "User"
    assert sorted(a["role_name"] for a in outputs["administrator"]["role_assignments"]) == [
        "Key Vault Crypto User",
        "Storage Blob Data Contributor",
    ]
    assert outputs["github_repository"] == "your-org/managed-identity-kit"


def test_a_group_administrator_is_assigned_as_a_group() -> None:
    config = load_stack_config(STACK_FILE)
    group = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    config[f"{PROJECT}:administrator"] = {"principalId": group.upper(), "principalType": "Group"}
    _, mocks = _run(config)
    rows = [r.inputs for r in mocks.of_type(ROLE_ASSIGNMENT) if r.inputs["principalId"] == group]
    assert [r["principalType"] for r in rows] == ["Group", "Group"]


def test_nothing_is_granted_on_the_subscription_or_the_bootstraps_own_group(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    _, mocks = deployed
    sub_scope = f"/subscriptions/{mocks.backend.subscription_id}"
    cicd = _rg_id(mocks, "mikit-cicd").lower()
    broad = [r.inputs for r in mocks.of_type(ROLE_ASSIGNMENT) if r.inputs["scope"] == sub_scope]
    assert broad == []
    # Only data roles on two single child resources reach into mikit-cicd; no control-plane
    # role there, so the deployer cannot edit its own identity, trust or state account.
    inside = [
        RoleCatalog.builtin().get(r.inputs["roleDefinitionId"]).name
        for r in mocks.of_type(ROLE_ASSIGNMENT)
        if r.inputs["scope"].lower().startswith(cicd)
    ]
    # The deployer's pair and the administrator's pair, nothing else.
    assert sorted(inside) == ["Key Vault Crypto User"] * 2 + ["Storage Blob Data Contributor"] * 2


EXPECTED_CONDITION = """\
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
 )
 OR
 (
  @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {21090545-7ca7-4776-b22c-e363652d74d2, 2a2b9908-6ea1-4ae2-8e65-a410df84e7d1, 4633458b-17de-408a-b874-0445c86b69e6, b7e6dc6d-f1e8-4753-8033-0f276bb0955b}
  AND
  @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
 )
 OR
 (
  @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {21090545-7ca7-4776-b22c-e363652d74d2, 2a2b9908-6ea1-4ae2-8e65-a410df84e7d1, 4633458b-17de-408a-b874-0445c86b69e6, b7e6dc6d-f1e8-4753-8033-0f276bb0955b}
  AND
  @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}
 )
)"""  # noqa: E501 (the condition is pinned verbatim)


def test_rbac_admin_carries_the_exact_abac_condition_and_nothing_else_does(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    _, mocks = deployed
    rbac_admin = RoleCatalog.builtin().get("Role Based Access Control Administrator").guid
    for r in mocks.of_type(ROLE_ASSIGNMENT):
        if r.inputs["roleDefinitionId"].endswith(rbac_admin):
            assert r.inputs["condition"] == EXPECTED_CONDITION
            assert r.inputs["conditionVersion"] == "2.0"
        else:
            assert "condition" not in r.inputs
            assert "conditionVersion" not in r.inputs


def test_the_exports_give_github_everything_and_no_secret(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    outputs, mocks = deployed
    identity = _only(mocks, IDENTITY).outputs
    assert outputs["github_variables"] == {
        "LIFECYCLE_RESOURCE_GROUP": "rg-mikit-lifecycle",
        "AZURE_CLIENT_ID": identity["clientId"],
        "AZURE_TENANT_ID": identity["tenantId"],
        "AZURE_SUBSCRIPTION_ID": mocks.backend.subscription_id,
        "PULUMI_BACKEND_URL": "azblob://pulumi-state",
        "PULUMI_STATE_STORAGE_ACCOUNT": "mikitstate0000",
        "PULUMI_SECRETS_PROVIDER": "azurekeyvault://kv-mikit-cicd-0000.vault.azure.net/keys/pulumi-secrets",
    }
    rows = outputs["role_assignments"]
    assert len(rows) == 10  # four per workload group (two groups), state container, key
    assert all(row["why"] for row in rows)
    assert [row["condition"] is not None for row in rows].count(True) == 2
    assert outputs["assignable_roles"] == [
        "Key Vault Secrets User",
        "Key Vault Reader",
        "Storage Blob Data Reader",
        "Storage Blob Data Owner",
    ]
    assert [c["subject"] for c in outputs["federated_credentials"]] == [
        "repo:your-org/managed-identity-kit:ref:refs/heads/main",
        "repo:your-org/managed-identity-kit:pull_request",
        "repo:your-org/managed-identity-kit:environment:lifecycle",
    ]


def test_state_account_takes_no_key_and_no_anonymous_reader(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    _, mocks = deployed
    account = _only(mocks, STORAGE_ACCOUNT).inputs
    assert account["accountName"] == "mikitstate0000"
    assert account["allowSharedKeyAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["allowBlobPublicAccess"] is False
    assert account["enableHttpsTrafficOnly"] is True
    assert account["defaultToOAuthAuthentication"] is True
    blob = _only(mocks, BLOB_SERVICE).inputs
    assert blob["isVersioningEnabled"] is True
    assert blob["deleteRetentionPolicy"] == {"enabled": True, "days": 30}
    assert _only(mocks, CONTAINER).inputs["publicAccess"] == "None"


def test_secrets_provider_key_lives_in_an_rbac_vault_with_purge_protection(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    _, mocks = deployed
    vault = _only(mocks, VAULT).inputs["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["accessPolicies"] == []
    key = _only(mocks, KEY).inputs
    assert key["properties"]["kty"] == "RSA"
    assert key["properties"]["keySize"] == 3072
    assert set(key["properties"]["keyOps"]) == {"encrypt", "decrypt", "wrapKey", "unwrapKey"}


def test_the_deployer_identity_is_locked_against_deletion(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    _, mocks = deployed
    lock = _only(mocks, LOCK).inputs
    assert lock["level"] == "CanNotDelete"
    assert lock["scope"] == _only(mocks, IDENTITY).id


def test_more_assignable_roles_widen_the_condition_and_nothing_else() -> None:
    config = load_stack_config(STACK_FILE)
    config[f"{PROJECT}:assignableRoles"] = ["Key Vault Secrets User", "Key Vault Certificate User"]
    config.pop(f"{PROJECT}:lifecycleResourceGroup")
    outputs, mocks = _run(config)
    catalog = RoleCatalog.builtin()
    expected = constrain_role_assignments(
        [catalog.get("Key Vault Secrets User").guid, catalog.get("Key Vault Certificate User").guid]
    )
    conditions = {r.inputs.get("condition") for r in mocks.of_type(ROLE_ASSIGNMENT)}
    assert conditions == {None, expected}
    assert len(mocks.of_type(ROLE_ASSIGNMENT)) == 10 + 2  # the deployer's and the administrator's
    assert "LIFECYCLE_RESOURCE_GROUP" not in outputs["github_variables"]


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("assignableRoles", ["Owner"], "assignableRoles"),
        ("assignableRoles", ["Key Vault Secret User"], "assignableRoles"),
        ("workloadResourceGroups", ["mikit-cicd"], "workloadResourceGroups"),
        ("lifecycleResourceGroup", "rg-elsewhere", "lifecycleResourceGroup"),
        ("github", {"owner": "your-org", "repo": "bad/repo"}, "github.repo"),
        ("github", {"owner": "o", "repo": "r", "environments": ["prod:x"]}, "github.environments"),
        ("state", {"accountName": "Not_Valid"}, "state.accountName"),
        ("secretsProvider", {"vaultName": "kv--double"}, "secretsProvider.vaultName"),
        ("administrator", None, "administrator"),
        (
            "administrator",
            {"principalId": "me@contoso.com", "principalType": "User"},
            "administrator.principalId",
        ),
        (
            "administrator",
            {"principalId": ADMIN, "principalType": "ServicePrincipal"},
            "administrator.principalType",
        ),
    ],
)
def test_bad_config_fails_before_any_resource_is_registered(
    key: str, value: Any, field: str
) -> None:
    config = load_stack_config(STACK_FILE)
    config[f"{PROJECT}:{key}"] = value
    mocks = BootstrapMocks(InMemoryArm())
    with pytest.raises(ConfigError) as info:
        run_program(PROGRAM, config, mocks=mocks, project=PROJECT, stack="ci")
    assert info.value.field == field
    assert [r for r in mocks.registrations if r.type.startswith("azure-native:")] == []


# --- the bootstrap and the workflows agree --------------------------------------------------

WORKFLOWS = sorted((ROOT / ".github").rglob("*.yml"))


def _workflow(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text()))


def _stack_setting(key: str) -> Any:
    return load_stack_config(STACK_FILE)[f"{PROJECT}:{key}"]


def test_every_repository_variable_the_workflows_read_is_exported(
    deployed: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    outputs, _ = deployed
    used = {m for p in WORKFLOWS for m in re.findall(r"\bvars\.([A-Z_]+)", p.read_text())}
    assert used == set(outputs["github_variables"])


def test_workflow_subjects_are_ones_the_deployer_trusts() -> None:
    github = _stack_setting("github")
    environments = {
        job["environment"]
        for name in ("pull-request.yml", "deploy.yml", "lifecycle.yml")
        for job in _workflow(name)["jobs"].values()
        if "environment" in job
    }
    assert environments <= set(github["environments"])
    assert _workflow("deploy.yml")[True]["push"]["branches"] == [github["branch"]]
    assert github["pullRequests"] is True  # the PR workflow previews with OIDC


def _ci_stacks() -> set[str]:
    stacks = set()
    for name, job in (("pull-request.yml", "preview"), ("deploy.yml", "deploy")):
        stacks |= set(_workflow(name)["jobs"][job]["strategy"]["matrix"]["stack"])
    stacks.add(
        _workflow("lifecycle.yml")[True]["workflow_dispatch"]["inputs"]["base-stack"]["default"]
    )
    return stacks


@pytest.mark.parametrize("stack", sorted(_ci_stacks()))
def test_ci_stacks_deploy_where_and_grant_what_the_deployer_may(stack: str) -> None:
    workload = load_stack_config(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    assert workload["mikit:resourceGroup"] in _stack_setting("workloadResourceGroups")
    granted = {g["role"] for g in workload.get("mikit:grants", [])}
    assert granted, "a CI stack with no grants proves nothing"
    assert granted <= set(_stack_setting("assignableRoles"))


@pytest.mark.parametrize("stack", sorted(_ci_stacks()))
def test_what_ci_stacks_register_stays_within_the_deployers_reach(stack: str) -> None:
    """Run the real stack program with the CI stack's config: every resource lands in its
    (bootstrap-made) group, and every grant passes the deployer's ABAC condition."""
    config = load_stack_config(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    for secret in config.get("mikit:secrets", []):
        config[f"mikit:secret-{secret}"] = f"test-value-of-{secret}"
    for account_key, account in (config.get("mikit:storageAccounts") or {}).items():
        for blob in account.get("blobs", []):
            key = blob_value_key(account_key, blob["container"], blob["name"])
            config[f"mikit:{key}"] = f"test-content-of-{key}"
    # The bootstrap made the group and the deployer cannot create one: the stack must use
    # it as it is (mikit:createResourceGroup: false), registering no ResourceGroup at all.
    assert config.get("mikit:createResourceGroup") is False
    sub = str(uuid.uuid4())
    made_by_bootstrap = f"/subscriptions/{sub}/resourceGroups/{config['mikit:resourceGroup']}"
    mocks = AzureMocks(InMemoryArm(subscription_id=sub, existing=[made_by_bootstrap]))
    outputs = run_program(ROOT / "__main__.py", config, mocks=mocks, stack=stack)
    group = _rg_id(mocks, config["mikit:resourceGroup"]).lower()
    assert mocks.of_type("azure-native:resources:ResourceGroup") == []
    assert outputs["resource_group_id"].lower() == group
    for reg in mocks.custom_registrations():
        if reg.type.startswith(("kubernetes:", "pulumi:providers:kubernetes")):
            continue  # objects inside the stack's own clusters (through their provider), not ARM
        assert reg.id.lower().startswith(group), f"{reg.type} {reg.id} is outside {group}"
    allowed = {RoleCatalog.builtin().get(r).guid for r in _stack_setting("assignableRoles")}
    assignments = mocks.of_type(ROLE_ASSIGNMENT)
    assert assignments
    for reg in assignments:
        assert reg.inputs["roleDefinitionId"].rsplit("/", 1)[-1] in allowed
        assert reg.inputs["principalType"] == "ServicePrincipal"
