"""The ARM rules hold in both emulations: the mock runtime's model (``InMemoryArm``) and the
sandbox's ARM over HTTP, driven by the real azure-mgmt-authorization and azure-mgmt-msi
clients. The rules are written once (``components.arm.rules``); the sandbox's ARM front
used to answer 201 to a role assignment at a resource group or secret that did not exist
and 200 to deleting an identity under a ``CanNotDelete`` lock, where the model refused.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute.models import (
    Sku,
    VirtualMachineIdentity,
    VirtualMachineScaleSetUpdate,
    VirtualMachineUpdate,
)
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity
from azure.storage.blob import BlobServiceClient

from components import armid
from components.arm.errors import ArmError
from components.arm.memory import InMemoryArm
from components.arm.tokens import (
    PULUMI_APP_SERVICE_PLAN,
    PULUMI_BLOB_CONTAINER,
    PULUMI_FEDERATED_CREDENTIAL,
    PULUMI_KEY_VAULT,
    PULUMI_MANAGED_CLUSTER,
    PULUMI_MANAGED_ENVIRONMENT,
    PULUMI_MANAGEMENT_LOCK,
    PULUMI_RESOURCE_GROUP,
    PULUMI_ROLE_ASSIGNMENT,
    PULUMI_STORAGE_ACCOUNT,
    PULUMI_USER_ASSIGNED_IDENTITY,
    PULUMI_VIRTUAL_MACHINE_SCALE_SET,
    PULUMI_VIRTUAL_NETWORK,
)
from components.errors import ConfigError
from verify.sandbox import Sandbox, SandboxConfig
from verify.sandbox.api_versions import DATA
from verify.sandbox.arm.inflight import WritesInFlight
from verify.sandbox.faults import FaultPlan

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class Refusal:
    status: int
    code: str
    message: str


class Emulation(Protocol):
    subscription_id: str

    def make_group_vault_identity(self, rg: str) -> tuple[str, str]:
        """A resource group with a vault and a user-assigned identity: (vault ID, identity ID)."""
        ...

    def assign(self, scope: str, principal_id: str) -> Refusal | None: ...

    def lock(self, scope: str) -> None: ...

    def delete_identity(self, identity_id: str) -> Refusal | None: ...

    def add_credential(self, identity_id: str, name: str) -> Refusal | None: ...

    def delete_credential(self, identity_id: str, name: str) -> Refusal | None: ...

    def unlock(self, scope: str) -> None: ...


class MockRuntimeModel:
    """The model the mock runtime deploys into (what ``AzureMocks`` calls)."""

    def __init__(self) -> None:
        self.arm = InMemoryArm()
        self.subscription_id = self.arm.subscription_id

    def make_group_vault_identity(self, rg: str) -> tuple[str, str]:
        rg_id = str(armid.resource_group(self.subscription_id, rg))
        self.arm.create_or_update(PULUMI_RESOURCE_GROUP, rg_id, {"resourceGroupName": rg})
        vault = f"{rg_id}/providers/Microsoft.KeyVault/vaults/kv{uuid.uuid4().hex[:8]}"
        self.arm.create_or_update(
            PULUMI_KEY_VAULT, vault, {"resourceGroupName": rg, "properties": {"tenantId": "t"}}
        )
        uai = f"{rg_id}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-shared"
        self.arm.create_or_update(PULUMI_USER_ASSIGNED_IDENTITY, uai, {"resourceGroupName": rg})
        return vault, uai

    def assign(self, scope: str, principal_id: str) -> Refusal | None:
        name = str(uuid.uuid4())
        inputs = {
            "scope": scope,
            "principalId": principal_id,
            "roleDefinitionId": f"/providers/Microsoft.Authorization/roleDefinitions/{READER}",
            "principalType": "ServicePrincipal",
        }
        ra_id = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
        try:
            self.arm.create_or_update(PULUMI_ROLE_ASSIGNMENT, ra_id, inputs)
        except ArmError as refused:
            return Refusal(refused.status, refused.code, refused.message)
        return None

    def lock(self, scope: str) -> None:
        lock_id = f"{scope}/providers/Microsoft.Authorization/locks/keep"
        inputs = {"scope": scope, "lockName": "keep", "level": "CanNotDelete"}
        self.arm.create_or_update(PULUMI_MANAGEMENT_LOCK, lock_id, inputs)

    def delete_identity(self, identity_id: str) -> Refusal | None:
        return self._refused(lambda: self.arm.delete(identity_id))

    def add_credential(self, identity_id: str, name: str) -> Refusal | None:
        inputs = {"issuer": ISSUER, "subject": f"repo:o/r:ref:{name}", "audiences": [AUDIENCE]}
        fic = f"{identity_id}/federatedIdentityCredentials/{name}"
        return self._refused(
            lambda: self.arm.create_or_update(PULUMI_FEDERATED_CREDENTIAL, fic, inputs)
        )

    def delete_credential(self, identity_id: str, name: str) -> Refusal | None:
        fic = f"{identity_id}/federatedIdentityCredentials/{name}"
        return self._refused(lambda: self.arm.delete(fic))

    def unlock(self, scope: str) -> None:
        self.arm.delete(f"{scope}/providers/Microsoft.Authorization/locks/keep")

    @staticmethod
    def _refused(call: Callable[[], object]) -> Refusal | None:
        try:
            call()
        except ArmError as refused:
            return Refusal(refused.status, refused.code, refused.message)
        return None


class SandboxOverHttp:
    """The sandbox's ARM front, through the real management clients; the lock is made the
    way a stack deploy makes it (the sandbox's deploy backend)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.subscription_id = sb.subscription_id
        kwargs = {"retry_total": 0, **sb.arm_client_kwargs()}
        self.authorization = AuthorizationManagementClient(
            sb.credential(), sb.subscription_id, **kwargs
        )
        self.msi = ManagedServiceIdentityClient(sb.credential(), sb.subscription_id, **kwargs)

    def make_group_vault_identity(self, rg: str) -> tuple[str, str]:
        self.sb.state.create_resource_group(rg)
        vault = self.sb.state.create_vault(rg, f"kv{uuid.uuid4().hex[:8]}")
        uai = self.sb.state.create_identity(rg, "id-shared")
        return vault.id, uai.id

    def assign(self, scope: str, principal_id: str) -> Refusal | None:
        parameters = RoleAssignmentCreateParameters(
            role_definition_id=(
                f"/subscriptions/{self.subscription_id}/providers/"
                f"Microsoft.Authorization/roleDefinitions/{READER}"
            ),
            principal_id=principal_id,
            principal_type="ServicePrincipal",
        )
        try:
            self.authorization.role_assignments.create(scope, str(uuid.uuid4()), parameters)
        except HttpResponseError as refused:
            assert refused.error is not None
            return Refusal(refused.status_code or 0, refused.error.code, refused.error.message)
        return None

    def lock(self, scope: str) -> None:
        lock_id = f"{scope}/providers/Microsoft.Authorization/locks/keep"
        inputs = {"scope": scope, "lockName": "keep", "level": "CanNotDelete"}
        self.sb.arm.create_or_update(PULUMI_MANAGEMENT_LOCK, lock_id, inputs)

    def delete_identity(self, identity_id: str) -> Refusal | None:
        rg, name = _rg_and_name(identity_id)
        return _http_refused(lambda: self.msi.user_assigned_identities.delete(rg, name))

    def add_credential(self, identity_id: str, name: str) -> Refusal | None:
        rg, identity = _rg_and_name(identity_id)
        fic = FederatedIdentityCredential(
            issuer=ISSUER, subject=f"repo:o/r:ref:{name}", audiences=[AUDIENCE]
        )
        ops = self.msi.federated_identity_credentials
        return _http_refused(lambda: ops.create_or_update(rg, identity, name, fic))

    def delete_credential(self, identity_id: str, name: str) -> Refusal | None:
        rg, identity = _rg_and_name(identity_id)
        ops = self.msi.federated_identity_credentials
        return _http_refused(lambda: ops.delete(rg, identity, name))

    def unlock(self, scope: str) -> None:
        """``az lock delete`` / ManagementLocks_DeleteByScope, over the sandbox's ARM."""
        token = self.sb.credential().get_token("https://management.azure.com/.default").token
        url = (
            f"{self.sb.arm_url}{scope}/providers/Microsoft.Authorization/locks/keep"
            "?api-version=2020-05-01"
        )
        answer = requests.delete(
            url,
            headers={"Authorization": f"Bearer {token}"},
            verify=self.sb.ca_cert_path,
            timeout=10,
        )
        assert answer.status_code == 200, answer.text


def _rg_and_name(arm_id: str) -> tuple[str, str]:
    parsed = armid.parse(arm_id, "identity")
    return str(parsed.resource_group), parsed.names[-1]


def _http_refused(call: Callable[[], object]) -> Refusal | None:
    try:
        call()
    except HttpResponseError as refused:
        assert refused.error is not None
        return Refusal(refused.status_code or 0, refused.error.code, refused.error.message)
    return None


@pytest.fixture(params=["mock-runtime", "sandbox-http"])
def emulation(request: pytest.FixtureRequest, sb: Sandbox) -> Iterator[Emulation]:
    yield MockRuntimeModel() if request.param == "mock-runtime" else SandboxOverHttp(sb)


def _rg() -> str:
    return f"rg-model-{uuid.uuid4().hex[:8]}"


def test_a_role_assignment_at_a_missing_resource_group_is_refused(emulation: Emulation) -> None:
    missing = f"/subscriptions/{emulation.subscription_id}/resourceGroups/{_rg()}"
    refusal = emulation.assign(missing, str(uuid.uuid4()))
    assert refusal is not None
    assert (refusal.status, refusal.code) == (404, "ResourceGroupNotFound")


def test_a_role_assignment_at_a_missing_secret_is_refused(emulation: Emulation) -> None:
    vault, _ = emulation.make_group_vault_identity(_rg())
    refusal = emulation.assign(f"{vault}/secrets/never-created", str(uuid.uuid4()))
    assert refusal is not None
    assert (refusal.status, refusal.code) == (404, "ResourceNotFound")
    assert "Microsoft.KeyVault/vaults/" in refusal.message
    assert emulation.assign(vault, str(uuid.uuid4())) is None  # the vault itself exists


def test_deleting_a_locked_identity_is_scope_locked(emulation: Emulation) -> None:
    _, identity = emulation.make_group_vault_identity(_rg())
    emulation.lock(identity)
    refusal = emulation.delete_identity(identity)
    assert refusal is not None
    assert (refusal.status, refusal.code) == (409, "ScopeLocked")
    # Azure's wording ("Resource Manager locks"; what az and Terraform report).
    assert refusal.message.startswith("The scope '")
    assert "' cannot perform delete operation because following scope(s) are locked: '" in (
        refusal.message
    )
    assert refusal.message.endswith("'. Please remove the lock and try again.")
    assert identity.lower() in refusal.message.lower()
    assert emulation.unlock(identity) is None  # lifted (Microsoft.Authorization/locks/delete)
    assert emulation.delete_identity(identity) is None


def test_the_21st_federated_credential_on_one_identity_is_refused(emulation: Emulation) -> None:
    _, identity = emulation.make_group_vault_identity(_rg())
    for n in range(20):
        assert emulation.add_credential(identity, f"fic-{n}") is None
    refusal = emulation.add_credential(identity, "fic-20")
    assert refusal is not None
    assert (refusal.status, refusal.code) == (400, "BadRequest")
    assert "20 federated identity credentials" in refusal.message
    assert emulation.add_credential(identity, "fic-3") is None  # a rewrite is not a new one


def test_a_credential_under_a_locked_identity_cannot_be_deleted(emulation: Emulation) -> None:
    _, identity = emulation.make_group_vault_identity(_rg())
    assert emulation.add_credential(identity, "ci") is None
    emulation.lock(identity)
    refusal = emulation.delete_credential(identity, "ci")
    assert refusal is not None
    assert (refusal.status, refusal.code) == (409, "ScopeLocked")
    emulation.unlock(identity)
    assert emulation.delete_credential(identity, "ci") is None


def test_a_deployed_resource_the_state_does_not_model_is_a_scope_until_deleted(
    sb: Sandbox,
) -> None:
    """A VNet made by a deploy is a valid scope for the ARM front; once deleted it is not."""
    http = SandboxOverHttp(sb)
    rg = _rg()
    sb.state.create_resource_group(rg)
    group = f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}"
    vnet = f"{group}/providers/Microsoft.Network/virtualNetworks/vnet"
    sb.arm.create_or_update(
        PULUMI_VIRTUAL_NETWORK,
        vnet,
        {"resourceGroupName": rg, "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
    )
    assert sb.state.exists(vnet)
    assert http.assign(vnet, str(uuid.uuid4())) is None
    sb.state.forget_resource(vnet)
    refusal = http.assign(vnet, str(uuid.uuid4()))
    assert refusal is not None and (refusal.status, refusal.code) == (404, "ResourceNotFound")


def _arm(
    sb: Sandbox, method: str, path: str, api_version: str, body: Any = None
) -> requests.Response:
    token = sb.credential().get_token("https://management.azure.com/.default").token
    return requests.request(
        method,
        f"{sb.arm_url}{path}",
        params={"api-version": api_version},
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=sb.ca_cert_path,
        timeout=10,
    )


def test_the_front_serves_what_a_deploy_wrote_into_the_model(sb: Sandbox) -> None:
    """One store: a plan, an environment, a cluster, a storage account and a container that
    a deploy writes into ``sb.arm`` are the documents the ARM front answers with (before,
    they lived in a backend discarded after each deploy, and the front answered 400)."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    base = f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}/providers"
    account = f"st{uuid.uuid4().hex[:10]}"
    written: dict[str, tuple[str, dict[str, Any]]] = {
        f"{base}/Microsoft.Web/serverfarms/plan": (PULUMI_APP_SERVICE_PLAN, {"kind": "linux"}),
        f"{base}/Microsoft.App/managedEnvironments/cae": (PULUMI_MANAGED_ENVIRONMENT, {}),
        f"{base}/Microsoft.ContainerService/managedClusters/aks": (
            PULUMI_MANAGED_CLUSTER,
            {"oidcIssuerProfile": {"enabled": True}, "agentPoolProfiles": [{"count": 1}]},
        ),
        f"{base}/Microsoft.Storage/storageAccounts/{account}": (
            PULUMI_STORAGE_ACCOUNT,
            {"accountName": account},
        ),
        f"{base}/Microsoft.Storage/storageAccounts/{account}/blobServices/default/containers/c": (
            PULUMI_BLOB_CONTAINER,
            {"accountName": account, "containerName": "c"},
        ),
    }
    versions = {
        "Microsoft.Web": "2024-11-01",
        "Microsoft.App": "2025-07-01",
        "Microsoft.ContainerService": "2025-09-01",
        "Microsoft.Storage": "2025-01-01",
    }
    for arm_id, (token, inputs) in written.items():
        doc = sb.arm.create_or_update(token, arm_id, {"resourceGroupName": rg, **inputs})
        version = versions[arm_id.split("/providers/", 1)[1].split("/", 1)[0]]
        answer = _arm(sb, "GET", arm_id, version)
        assert answer.status_code == 200, answer.text
        assert answer.json() == sb.arm.get(arm_id) == doc
    # the behaviour made alongside the document is the same resource
    assert sb.state.storage_account(account) is not None
    assert sb.state.cluster(f"{base}/Microsoft.ContainerService/managedClusters/aks") is not None
    missing = _arm(sb, "GET", f"{base}/Microsoft.Web/serverfarms/nope", "2024-11-01")
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["code"] == "ResourceNotFound"


def test_overlapping_federated_credential_writes_get_azures_409(sb: Sandbox) -> None:
    """Two PUTs of credentials on one identity, the second sent while the first is in flight
    (held by the ``federated_credential_write_seconds`` knob, as the Managed Identity RP
    takes its time): the second gets Azure's 409, as the mock runtime gives it to two
    credentials Pulumi writes in parallel. Over HTTP both used to be accepted.

    The hold is a bound, not a wait: the first write leaves flight as soon as the second
    has been answered, so the overlap is certain however loaded the machine, and the test
    takes no longer than its requests."""
    http = SandboxOverHttp(sb)
    _, identity = http.make_group_vault_identity(_rg())
    first_id = f"{identity}/federatedIdentityCredentials/ci-main"
    bound = 60.0  # never reached: the second write's answer releases the first
    sb.faults.federated_credential_write_seconds = bound
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(http.add_credential, identity, "ci-main")
            deadline = time.monotonic() + 10
            while sb.arm.get(first_id) is None:  # accepted and written, held in flight
                assert time.monotonic() < deadline, "the first write never arrived"
                time.sleep(0.001)
            assert not first.done(), "the first write left flight before the second was sent"
            second = http.add_credential(identity, "ci-release")
            assert first.result(timeout=bound / 2) is None
    finally:
        sb.faults.federated_credential_write_seconds = 0.0
    assert time.monotonic() - started < bound / 2, "the first write waited out its bound"
    assert second == Refusal(
        409,
        "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
        "Too many Federated Identity Credentials are written concurrently for the managed "
        f"identity '{identity.lower()}'. Concurrent Federated Identity Credentials writes "
        "under the same managed identity are not supported.",
    )
    # once the first is done the second is accepted; both are the records Entra reads
    assert http.add_credential(identity, "ci-release") is None
    names = {f.name for f in sb.state.federated_credentials(identity)}
    assert names == {"ci-main", "ci-release"}


def test_a_credential_written_over_http_is_the_model_document_entra_reads(sb: Sandbox) -> None:
    """One record: the document the real msi client writes is the model's, the one the
    token endpoint reads, and the one the front lists; a delete removes all three at once."""
    http = SandboxOverHttp(sb)
    rg = _rg()
    _, identity = http.make_group_vault_identity(rg)
    assert http.add_credential(identity, "deploy") is None
    fic_id = f"{identity}/federatedIdentityCredentials/deploy"
    doc = sb.arm.get(fic_id)
    assert doc is not None and doc["properties"]["subject"] == "repo:o/r:ref:deploy"
    record = sb.state.federated_credential(fic_id)
    assert record is not None and record.subject == doc["properties"]["subject"]
    listed = http.msi.federated_identity_credentials.list(rg, "id-shared")
    assert [f.subject for f in listed] == ["repo:o/r:ref:deploy"]
    assert http.delete_credential(identity, "deploy") is None
    assert sb.arm.get(fic_id) is None and sb.state.federated_credential(fic_id) is None


def test_a_lock_made_by_a_deploy_is_the_one_the_front_lists_and_enforces(sb: Sandbox) -> None:
    """Locks are the model's documents: no second copy in the state to drift."""
    http = SandboxOverHttp(sb)
    _, identity = http.make_group_vault_identity(_rg())
    http.lock(identity)  # written by the deploy path (sb.arm)
    lock_id = f"{identity}/providers/Microsoft.Authorization/locks/keep"
    assert sb.state.lock(lock_id) is not None
    assert sb.arm.locks() == sb.state.lock_levels()
    listed = _arm(sb, "GET", f"{identity}/providers/Microsoft.Authorization/locks", "2020-05-01")
    assert [lock["id"] for lock in listed.json()["value"]] == [sb.arm.get(lock_id)["id"]]
    http.unlock(identity)  # over HTTP
    assert sb.arm.get(lock_id) is None and sb.state.lock(lock_id) is None
    assert http.delete_identity(identity) is None


def test_an_identity_is_one_record_for_arm_imds_and_entra(sb: Sandbox) -> None:
    """An identity created with the real msi client is the model's document; the principal
    Entra issues tokens for and IMDS serves is the one the document names; deleting it over
    HTTP removes the document, the identity and the principal together."""
    http = SandboxOverHttp(sb)
    rg = _rg()
    sb.state.create_resource_group(rg)
    made = http.msi.user_assigned_identities.create_or_update(
        rg, "id-one", Identity(location=sb.state.location, tags={"team": "a"})
    )
    assert made.id is not None
    doc = sb.arm.get(made.id)
    assert doc is not None and doc["properties"]["principalId"] == made.principal_id
    record = sb.state.identity(made.id)
    assert record is not None and (record.principal_id, record.client_id, record.tags) == (
        made.principal_id,
        made.client_id,
        {"team": "a"},
    )
    assert sb.state.principal(str(made.principal_id)) is not None  # Entra's
    vm = sb.state.create_vm(rg, "vm-one", system_assigned=False, user_assigned=[made.id])
    imds = requests.get(
        sb.imds_url(vm) + "/metadata/identity/oauth2/token",
        params={
            "api-version": "2018-02-01",
            "resource": "https://vault.azure.net",
            "client_id": made.client_id,
        },
        headers={"Metadata": "true"},
        timeout=10,
    )
    assert imds.status_code == 200, imds.text
    http.msi.user_assigned_identities.delete(rg, "id-one")
    assert sb.arm.get(made.id) is None and sb.state.identity(made.id) is None
    assert sb.state.principal(str(made.principal_id)) is None


def test_writes_of_model_types_over_http_keep_the_models_rules(sb: Sandbox) -> None:
    """A container PUT over HTTP runs the deploy's handler (public access refused on an
    account that forbids it, 409 PublicAccessNotPermitted), a lock refuses deleting the
    account (409 ScopeLocked), and a delete takes the account's Blob plane with it."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    account = f"st{uuid.uuid4().hex[:10]}"
    account_id = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}"
        f"/providers/Microsoft.Storage/storageAccounts/{account}"
    )
    sb.arm.create_or_update(
        PULUMI_STORAGE_ACCOUNT, account_id, {"accountName": account, "resourceGroupName": rg}
    )
    containers = f"{account_id}/blobServices/default/containers"
    public = _arm(
        sb,
        "PUT",
        f"{containers}/open",
        "2025-01-01",
        {"properties": {"publicAccess": "Container"}},
    )
    assert public.status_code == 409, public.text
    assert public.json()["error"]["code"] == "PublicAccessNotPermitted"
    private = _arm(sb, "PUT", f"{containers}/closed", "2025-01-01", {"properties": {}})
    assert private.status_code == 201, private.text
    assert private.json() == sb.arm.get(f"{containers}/closed")
    assert sb.state.container(account, "closed") is not None  # the Blob plane has it too
    listed = _arm(sb, "GET", containers, "2025-01-01").json()["value"]
    assert [c["name"] for c in listed] == ["closed"]
    SandboxOverHttp(sb).lock(account_id)
    refused = _arm(sb, "DELETE", account_id, "2025-01-01")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "ScopeLocked"
    SandboxOverHttp(sb).unlock(account_id)
    gone = _arm(sb, "DELETE", account_id, "2025-01-01")
    assert gone.status_code == 200, gone.text
    assert sb.arm.get(account_id) is None and sb.state.storage_account(account) is None
    assert sb.arm.get(f"{containers}/closed") is None  # ARM deletes the children


def test_a_storage_account_patched_over_http_changes_the_model_and_its_blob_plane(
    sb: Sandbox,
) -> None:
    """A storage account PATCH (StorageAccounts_Update) runs the deploy's handler over the
    document: the answer is the model's document, and turning shared-key access off reaches
    the account the Blob plane serves; a lock still refuses the account's delete."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    account = f"st{uuid.uuid4().hex[:10]}"
    account_id = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}"
        f"/providers/Microsoft.Storage/storageAccounts/{account}"
    )
    sb.arm.create_or_update(
        PULUMI_STORAGE_ACCOUNT,
        account_id,
        {"accountName": account, "resourceGroupName": rg, "allowSharedKeyAccess": True},
    )
    assert sb.state.storage_account(account).allow_shared_key_access  # type: ignore[union-attr]
    body = {"properties": {"allowSharedKeyAccess": False}, "tags": {"team": "data"}}
    patched = _arm(sb, "PATCH", account_id, "2025-01-01", body)
    assert patched.status_code == 200, patched.text
    doc = sb.arm.get(account_id)
    assert patched.json() == doc
    assert doc is not None and doc["properties"]["allowSharedKeyAccess"] is False
    assert doc["tags"] == {"team": "data"}
    behaviour = sb.state.storage_account(account)
    assert behaviour is not None and behaviour.allow_shared_key_access is False
    assert behaviour.tags == {"team": "data"}
    SandboxOverHttp(sb).lock(account_id)
    refused = _arm(sb, "DELETE", account_id, "2025-01-01")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "ScopeLocked"


def test_plans_clusters_and_accounts_are_listed_from_the_model(sb: Sandbox) -> None:
    """A resource group's and the subscription's lists of plans, clusters, environments and
    storage accounts (Azure answers each) are the model's documents."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    suffix = uuid.uuid4().hex[:8]
    base = f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}/providers"
    plan = f"{base}/Microsoft.Web/serverfarms/plan-{suffix}"
    sb.arm.create_or_update(PULUMI_APP_SERVICE_PLAN, plan, {"sku": {"name": "B1"}})
    cluster = f"{base}/Microsoft.ContainerService/managedClusters/aks-{suffix}"
    sb.arm.create_or_update(
        PULUMI_MANAGED_CLUSTER,
        cluster,
        {
            "dnsPrefix": f"aks-{suffix}",
            "identity": {"type": "SystemAssigned"},
            "agentPoolProfiles": [{"name": "system", "count": 1, "vmSize": "Standard_B2s"}],
            "oidcIssuerProfile": {"enabled": True},
            "securityProfile": {"workloadIdentity": {"enabled": True}},
        },
    )
    environment = f"{base}/Microsoft.App/managedEnvironments/cae-{suffix}"
    sb.arm.create_or_update(PULUMI_MANAGED_ENVIRONMENT, environment, {})
    account = f"{base}/Microsoft.Storage/storageAccounts/st{suffix}"
    sb.arm.create_or_update(
        PULUMI_STORAGE_ACCOUNT, account, {"accountName": f"st{suffix}", "resourceGroupName": rg}
    )
    sub = f"/subscriptions/{sb.subscription_id}/providers"
    for arm_id, version in (
        (plan, "2025-05-01"),
        (cluster, "2025-09-01"),
        (environment, "2025-07-01"),
        (account, "2025-01-01"),
    ):
        collection = arm_id.rsplit("/", 1)[0]
        in_group = _arm(sb, "GET", collection, version)
        assert in_group.status_code == 200, in_group.text
        assert in_group.json()["value"] == [sb.arm.get(arm_id)]
        namespace_type = collection.split("/providers/", 1)[1]
        everywhere = _arm(sb, "GET", f"{sub}/{namespace_type}", version)
        assert everywhere.status_code == 200, everywhere.text
        assert sb.arm.get(arm_id) in everywhere.json()["value"]
        assert {d["id"] for d in everywhere.json()["value"]} == {
            d["id"]
            for d in sb.arm.of_type(sb.arm.get(arm_id)["type"])  # type: ignore[index]
        }


def test_a_role_assignment_is_one_record_for_arm_and_rbac(sb: Sandbox) -> None:
    """An assignment made with the real authorization client is the model's document, the
    one RBAC evaluates; deleted over HTTP, the document and the access go together."""
    http = SandboxOverHttp(sb)
    vault, _ = http.make_group_vault_identity(_rg())
    reader = sb.state.create_principal(f"reader-{uuid.uuid4().hex[:6]}")
    action = "Microsoft.KeyVault/vaults/read"
    assert not sb.rbac.check_action(reader.object_id, action, vault).allowed
    assert http.assign(vault, reader.object_id) is None
    made = sb.state.role_assignments(principal_id=reader.object_id)
    assert len(made) == 1
    doc = sb.arm.get(made[0].id)
    assert doc is not None and doc["properties"]["principalId"] == reader.object_id
    assert doc["properties"]["scope"].lower() == vault.lower()
    assert sb.rbac.check_action(reader.object_id, action, vault).allowed
    name = made[0].name
    http.authorization.role_assignments.delete(vault, name)
    assert sb.arm.get(made[0].id) is None
    assert sb.state.role_assignments(principal_id=reader.object_id) == []
    assert not sb.rbac.check_action(reader.object_id, action, vault).allowed


#: ARM types whose answers over HTTP are the model's documents themselves.
SERVED_AS_DOCUMENTS = {
    "Microsoft.ManagedIdentity/userAssignedIdentities",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
    "Microsoft.Compute/virtualMachines",
    "Microsoft.Authorization/locks",
    "Microsoft.Authorization/roleAssignments",
    "Microsoft.Web/serverfarms",
    "Microsoft.App/managedEnvironments",
    "Microsoft.ContainerService/managedClusters",
    "Microsoft.Storage/storageAccounts",
    "Microsoft.Storage/storageAccounts/blobServices/containers",
}


def test_after_a_stack_deploy_the_front_answers_with_the_models_documents() -> None:
    """The sandbox stack deployed with the real program (into ``sb.arm``): every document
    of a type served from the model is what ARM answers over HTTP, byte for byte; and every
    other deployed resource the front serves (scale sets, vaults, apps) is found, with
    the principals the deploy's documents name."""
    from verify.targets.sandbox import deploy  # noqa: PLC0415 -- loads Pulumi

    versions = json.loads(DATA.read_text())["arm"]
    with Sandbox(SandboxConfig()) as sb:
        deploy(sb)
        checked: dict[str, int] = {}
        for doc in list(sb.arm.resources.values()):
            arm_type = doc["type"]
            served = next((t for t in versions if t.lower() == arm_type.lower()), None)
            if served is None or arm_type.startswith("Microsoft.Resources"):
                continue
            answer = _arm(sb, "GET", doc["id"], versions[served]["versions"][-1])
            assert answer.status_code == 200, (doc["id"], answer.text)
            got = answer.json()
            if arm_type in SERVED_AS_DOCUMENTS:
                assert got == sb.arm.get(doc["id"]), doc["id"]
            else:
                assert got["id"].lower() == doc["id"].lower()
                principal = (doc.get("identity") or {}).get("principalId")
                assert (got.get("identity") or {}).get("principalId") == principal, doc["id"]
            checked[arm_type] = checked.get(arm_type, 0) + 1
    assert {
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Authorization/roleAssignments",
        "Microsoft.Compute/virtualMachines",
        "Microsoft.KeyVault/vaults",
    } <= set(checked), checked


def test_a_vm_is_one_record_for_arm_and_imds(sb: Sandbox) -> None:
    """A VM's identity changed with the real compute client is the model's document; IMDS
    serves the principals that document names, and a detached identity gets no token."""
    http = SandboxOverHttp(sb)
    rg = _rg()
    _, identity = http.make_group_vault_identity(rg)
    vm = sb.state.create_vm(rg, "vm-doc", system_assigned=True, user_assigned=[identity])
    uai = sb.state.identity(identity)
    assert uai is not None
    doc = sb.arm.get(vm.id)
    assert doc is not None and doc["identity"]["principalId"] == vm.system_principal_id
    compute = ComputeManagementClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )
    compute.virtual_machines.begin_update(
        rg,
        "vm-doc",
        VirtualMachineUpdate(identity=VirtualMachineIdentity(type="SystemAssigned")),
    ).result()
    doc = sb.arm.get(vm.id)
    assert doc is not None and "userAssignedIdentities" not in doc["identity"]
    assert sb.state.vm(vm.id).user_assigned == ()  # type: ignore[union-attr]
    got = compute.virtual_machines.get(rg, "vm-doc").identity
    assert got is not None and (got.type, got.principal_id, got.user_assigned_identities) == (
        "SystemAssigned",
        doc["identity"]["principalId"],
        None,
    )

    def imds(client_id: str | None) -> int:
        params = {"api-version": "2018-02-01", "resource": "https://vault.azure.net"}
        if client_id:
            params["client_id"] = client_id
        return requests.get(
            sb.imds_url(vm.id) + "/metadata/identity/oauth2/token",
            params=params,
            headers={"Metadata": "true"},
            timeout=10,
        ).status_code

    assert imds(None) == 200  # the system identity the document names
    assert imds(uai.client_id) == 400  # detached: IMDS no longer has it


def test_a_scale_set_patched_over_http_is_patched_in_the_model(sb: Sandbox) -> None:
    """Scaling a deployed set with the real compute client: the model's document (what a
    later deploy or a snapshot sees) has the new capacity and identity, as the front."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    _, identity = SandboxOverHttp(sb).make_group_vault_identity(rg)
    set_id = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}"
        "/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-doc"
    )
    sb.arm.create_or_update(
        PULUMI_VIRTUAL_MACHINE_SCALE_SET,
        set_id,
        {
            "resourceGroupName": rg,
            "sku": {"name": "Standard_B2ls_v2", "capacity": 2},
            "identity": {"type": "UserAssigned", "userAssignedIdentities": [identity]},
        },
    )
    compute = ComputeManagementClient(
        sb.credential(), sb.subscription_id, retry_total=0, **sb.arm_client_kwargs()
    )
    compute.virtual_machine_scale_sets.begin_update(
        rg, "vmss-doc", VirtualMachineScaleSetUpdate(sku=Sku(capacity=3))
    ).result()
    doc = sb.arm.get(set_id)
    assert doc is not None and doc["sku"]["capacity"] == 3
    assert list(doc["identity"]["userAssignedIdentities"]) == [identity]
    assert len(sb.state.instances(set_id)) == 3


def test_an_app_is_one_record_for_arm_and_its_identity_endpoint(sb: Sandbox) -> None:
    """Turning an app's system identity off (as the lifecycle does) changes its one ARM
    document: the model, the front and the identity endpoint agree it has none."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    app_id = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}"
        "/providers/Microsoft.Web/sites/app-doc"
    )
    sb.state.create_or_update_app(
        app_id,
        kind="webapp",
        system_assigned=True,
        user_assigned=[],
        document={"id": app_id, "name": "app-doc", "type": "Microsoft.Web/sites"},
    )
    doc = sb.arm.get(app_id)
    assert doc is not None and doc["identity"]["type"] == "SystemAssigned"
    sb.state.set_app_system_identity(app_id, False)
    doc = sb.arm.get(app_id)
    assert doc is not None and "identity" not in doc
    answer = _arm(sb, "GET", app_id, "2024-11-01")
    assert answer.status_code == 200 and answer.json() == doc
    sb.state.delete_app(app_id)
    assert sb.arm.get(app_id) is None


def test_a_container_made_on_the_blob_plane_is_the_arm_document(sb: Sandbox) -> None:
    """Create Container on the data plane makes the container ARM lists (one record), and
    Delete Container on the data plane removes it from ARM too; before, ARM never saw a
    container the data plane made."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    account = f"st{uuid.uuid4().hex[:10]}"
    account_id = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}"
        f"/providers/Microsoft.Storage/storageAccounts/{account}"
    )
    sb.arm.create_or_update(
        PULUMI_STORAGE_ACCOUNT, account_id, {"accountName": account, "resourceGroupName": rg}
    )
    sb.state.create_role_assignment(
        account_id, "Storage Blob Data Contributor", sb.operator.object_id, created_on=0.0
    )
    container_id = f"{account_id}/blobServices/default/containers/fresh"
    with BlobServiceClient(
        sb.blob_url(account), sb.credential(), retry_total=0, **sb.blob_client_kwargs()
    ) as blobs:
        blobs.create_container("fresh")
        answer = _arm(sb, "GET", container_id, "2025-01-01")
        assert answer.status_code == 200, answer.text
        assert answer.json() == sb.arm.get(container_id)
        blobs.delete_container("fresh")
    assert _arm(sb, "GET", container_id, "2025-01-01").status_code == 404
    assert sb.arm.get(container_id) is None and sb.state.container(account, "fresh") is None


def test_a_scale_set_deleted_in_the_sandbox_leaves_no_document(sb: Sandbox) -> None:
    """The lifecycle deletes a set through the state as well as over HTTP: either way the
    model no longer answers with it."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    set_id = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}"
        "/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-gone"
    )
    sb.arm.create_or_update(
        PULUMI_VIRTUAL_MACHINE_SCALE_SET,
        set_id,
        {"resourceGroupName": rg, "sku": {"capacity": 1}, "identity": {"type": "SystemAssigned"}},
    )
    assert sb.arm.get(set_id) is not None
    sb.state.delete_scale_set(set_id)
    assert sb.arm.get(set_id) is None


def test_the_credential_write_knob_is_read_from_a_fault_file() -> None:
    plan = FaultPlan()
    plan.apply({"federated_credential_write_seconds": 2})
    assert plan.federated_credential_write_seconds == 2.0
    with pytest.raises(ConfigError, match="federated_credential_write_seconds"):
        plan.apply({"federated_credential_write_seconds": -1})
    plan.clear()
    assert plan.federated_credential_write_seconds == 0.0


def test_a_held_credential_write_is_released_by_its_identitys_next_answer_only() -> None:
    """The hold ends when another credential write of the same identity has been answered;
    the write's own answer, or one for another identity, leaves it held to its bound."""
    identity = (
        "/subscriptions/s/resourceGroups/rg/providers"
        "/Microsoft.ManagedIdentity/userAssignedIdentities/a"
    )
    other = identity[:-1] + "b"
    segment = "/federatedIdentityCredentials/"
    writes = WritesInFlight()

    async def held(answers: list[str], bound: float) -> float:
        with writes.writing(identity + segment + "one") as ordering:
            for arm_id in answers:
                writes.answered(arm_id)
            started = time.monotonic()
            await writes.hold(ordering, bound)
            return time.monotonic() - started

    assert asyncio.run(held([identity + segment + "one", other + segment + "x"], 0.2)) >= 0.2
    assert asyncio.run(held([identity.upper() + segment + "two"], 30.0)) < 1.0


def test_a_resource_group_is_one_record_for_arm_and_the_state(sb: Sandbox) -> None:
    """A group made over HTTP (az group create) is the model's document and the group
    the state's resources go into; tags written over HTTP are on that one document; a
    group the state made is the document the front answers with."""
    name = _rg()
    group_id = f"/subscriptions/{sb.subscription_id}/resourceGroups/{name}"
    made = _arm(sb, "PUT", group_id, "2022-09-01", {"location": "northeurope"})
    assert made.status_code == 201, made.text
    doc = sb.arm.get(group_id)
    assert made.json() == doc and doc is not None and doc["location"] == "northeurope"
    group = sb.state.resource_group(name)
    assert group is not None and group.location == "northeurope"
    assert sb.state.create_identity(name, "id-in-group").location == "northeurope"
    tagged = _arm(sb, "PATCH", group_id, "2022-09-01", {"tags": {"owner": "ci"}})
    assert tagged.status_code == 200, tagged.text
    assert sb.arm.get(group_id)["tags"] == {"owner": "ci"}  # type: ignore[index]
    assert _arm(sb, "GET", group_id, "2022-09-01").json() == sb.arm.get(group_id)
    assert _arm(sb, "PUT", group_id, "2022-09-01", {"location": "northeurope"}).status_code == 200
    moved = _arm(sb, "PUT", group_id, "2022-09-01", {"location": "westus"})
    assert moved.status_code == 409, moved.text
    assert moved.json()["error"]["code"] == "InvalidResourceGroupLocation"
    assert sb.state.resource_group(name).location == "northeurope"  # type: ignore[union-attr]
    other = _rg()
    sb.state.create_resource_group(other, "westus")
    answered = _arm(
        sb, "GET", f"/subscriptions/{sb.subscription_id}/resourceGroups/{other}", "2022-09-01"
    )
    assert answered.json() == sb.arm.get(
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{other}"
    )
    assert answered.json()["location"] == "westus"


def test_a_cluster_is_one_record_for_arm_and_its_nodes(sb: Sandbox) -> None:
    """A cluster the sandbox made is the model's document, the one the front answers with
    and the one its behaviour (issuer, kubelet identity, node pool) is read from; tags
    patched over HTTP are on it, and a delete over HTTP takes the document, the node pool
    and the workloads together."""
    st = sb.state
    rg = _rg()
    st.create_resource_group(rg)
    node_rg = f"MC_{rg}_aks_{st.location}"
    st.create_resource_group(node_rg)
    kubelet = st.create_identity(node_rg, "aks-agentpool")
    made = st.create_cluster(
        rg,
        "aks",
        issuer_url=sb.clusters.issuer_url(st.location, st.tenant_id, "issuer-one"),
        kubelet_identity_id=kubelet.id,
        node_resource_group=node_rg,
        node_count=2,
    )
    doc = sb.arm.get(made.id)
    assert doc is not None
    assert doc["properties"]["oidcIssuerProfile"]["issuerURL"] == made.issuer_url
    assert doc["properties"]["identityProfile"]["kubeletidentity"]["resourceId"] == kubelet.id
    assert st.cluster(made.id) == made
    assert len(st.instances(made.node_scale_set_id)) == 2
    answered = _arm(sb, "GET", made.id, "2025-09-01")
    assert answered.status_code == 200 and answered.json() == sb.arm.get(made.id)
    tagged = _arm(sb, "PATCH", made.id, "2025-09-01", {"tags": {"team": "platform"}})
    assert tagged.status_code == 200, tagged.text
    assert sb.arm.get(made.id)["tags"] == {"team": "platform"}  # type: ignore[index]
    assert st.cluster(made.id) == made  # the same cluster for the sandbox's behaviour
    st.add_workload(made.id, "app", "default", "app")
    gone = _arm(sb, "DELETE", made.id, "2025-09-01")
    assert gone.status_code == 200, gone.text
    assert sb.arm.get(made.id) is None and st.cluster(made.id) is None
    assert st.scale_set(made.node_scale_set_id) is None
    assert not [w for w in st.workloads() if w.cluster_id == made.id]


def test_a_cluster_put_over_http_is_the_models_cluster_with_its_nodes(sb: Sandbox) -> None:
    """ManagedClusters_CreateOrUpdate over HTTP runs the deploy's handler: the document is
    the model's, the sandbox's cluster is read from it, and its node pool has the count the
    body asked for (AKS's kubelet identity in the node resource group)."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    cluster_id = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}"
        "/providers/Microsoft.ContainerService/managedClusters/aks-put"
    )
    body = {
        "location": sb.state.location,
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "dnsPrefix": "aks-put",
            "agentPoolProfiles": [{"name": "system", "count": 3, "vmSize": "Standard_B2s"}],
            "oidcIssuerProfile": {"enabled": True},
            "securityProfile": {"workloadIdentity": {"enabled": True}},
        },
    }
    made = _arm(sb, "PUT", cluster_id, "2025-09-01", body)
    assert made.status_code == 201, made.text
    assert made.json() == sb.arm.get(cluster_id)
    cluster = sb.state.cluster(cluster_id)
    assert cluster is not None
    assert cluster.issuer_url == made.json()["properties"]["oidcIssuerProfile"]["issuerURL"]
    assert len(sb.state.instances(cluster.node_scale_set_id)) == 3
    again = _arm(sb, "PUT", cluster_id, "2025-09-01", body)
    assert again.status_code == 200, again.text
    assert sb.state.cluster(cluster_id) == cluster


def test_a_scale_set_patch_of_tags_reaches_the_model_and_the_set(sb: Sandbox) -> None:
    """VirtualMachineScaleSets_Update with ``tags`` replaces the set's tags: the front's
    answer, the model's document and the sandbox's set agree (the PATCH ignored them)."""
    rg = _rg()
    sb.state.create_resource_group(rg)
    set_id = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}"
        "/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-tags"
    )
    sb.arm.create_or_update(
        PULUMI_VIRTUAL_MACHINE_SCALE_SET,
        set_id,
        {"resourceGroupName": rg, "sku": {"name": "Standard_B2ls_v2", "capacity": 1}},
    )
    patched = _arm(sb, "PATCH", set_id, "2024-11-01", {"tags": {"env": "test"}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["tags"] == {"env": "test"}
    assert sb.arm.get(set_id)["tags"] == {"env": "test"}  # type: ignore[index]
    assert sb.state.scale_set(set_id).tags == {"env": "test"}  # type: ignore[union-attr]
    refused = _arm(sb, "PATCH", set_id, "2024-11-01", {"tags": {"env": 1}})
    assert refused.status_code == 400, refused.text
    # ARM's own answer to content it cannot deserialize, as for every other tags field
    assert refused.json()["error"]["code"] == "InvalidRequestContent"
    assert "Path 'tags.env'" in refused.json()["error"]["message"]


def test_a_scale_set_is_one_record_for_arm_and_its_instances(sb: Sandbox) -> None:
    """A set the sandbox made is the model's document (the state kept its own record, and
    a set it made had no document): its capacity, principals and unique ID are read from
    the document, and a capacity patched over HTTP is the document's and the instances'."""
    st = sb.state
    rg = _rg()
    st.create_resource_group(rg)
    ss = st.create_scale_set(rg, "vmss-one", capacity=1, system_assigned=True)
    doc = sb.arm.get(ss.id)
    assert doc is not None and doc["sku"]["capacity"] == 1
    assert doc["identity"]["principalId"] == ss.system_principal_id
    assert doc["properties"]["uniqueId"] == ss.unique_id
    assert st.scale_set(ss.id) == ss
    patched = _arm(sb, "PATCH", ss.id, "2024-11-01", {"sku": {"capacity": 2}})
    assert patched.status_code == 200, patched.text
    assert sb.arm.get(ss.id)["sku"]["capacity"] == 2  # type: ignore[index]
    now = st.scale_set(ss.id)
    assert now is not None and now.capacity == 2 and now.unique_id == ss.unique_id
    assert len(st.instances(ss.id)) == 2
    assert {i.system_principal_id for i in st.instances(ss.id)} == {ss.system_principal_id}
    st.delete_scale_set(ss.id)
    assert sb.arm.get(ss.id) is None and st.scale_set(ss.id) is None
