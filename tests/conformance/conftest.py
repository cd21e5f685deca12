"""One sandbox for the conformance replays, and fresh resources for each replay.

Each replay may delete what it addresses (a VM, an identity, a secret), so every test binds
the placeholders of ``operations.json`` to resources made for it alone; the sandbox itself
is shared (starting one costs ~0.1 s, stopping ~0.3 s).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from conformance_replay import Bindings

from components.arm import app_shapes
from components.arm.tokens import (
    PULUMI_APP_SERVICE_PLAN,
    PULUMI_BLOB_CONTAINER,
    PULUMI_MANAGED_CLUSTER,
    PULUMI_MANAGED_ENVIRONMENT,
    PULUMI_STORAGE_ACCOUNT,
)
from verify.sandbox import Sandbox, SandboxConfig

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"  # built-in Reader's role definition GUID


@pytest.fixture(scope="session")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as sandbox:
        yield sandbox


@pytest.fixture
def bindings(sb: Sandbox) -> Bindings:
    """Every placeholder of operations.json, bound to resources made for this test."""
    return make_bindings(sb)


@pytest.fixture(scope="module")
def shared_bindings(sb: Sandbox) -> Bindings:
    """The same, shared by the replays that change nothing (GET)."""
    return make_bindings(sb)


@pytest.fixture
def own_bindings() -> Iterator[Bindings]:
    """The same, in a sandbox of its own (a subscription-wide list sees only these)."""
    with Sandbox(SandboxConfig()) as sandbox:
        yield make_bindings(sandbox)


def make_bindings(sb: Sandbox) -> Bindings:
    st = sb.state
    suffix = uuid.uuid4().hex[:8]
    rg = st.create_resource_group(f"rg-conf-{suffix}")
    vault = st.create_vault(rg.name, f"kv-conf-{suffix}")
    version = st.set_secret(vault.name, "db", f"value-{suffix}", content_type="text/plain")
    st.set_secret(vault.name, "gone", "soon deleted")
    st.delete_secret(vault.name, "gone")
    gone = st.create_vault(rg.name, f"kv-gone-{suffix}")
    st.delete_vault(gone.name)
    identity = st.create_identity(rg.name, f"id-conf-{suffix}")
    vm = st.create_vm(
        rg.name, f"vm-conf-{suffix}", system_assigned=True, user_assigned=[identity.id]
    )
    reader = st.create_principal(f"reader-{suffix}")
    assignment = st.create_role_assignment(rg.id, READER, reader.object_id)
    officer = st.create_principal(f"kv-admin-{suffix}")
    st.create_role_assignment(vault.id, "Key Vault Administrator", officer.object_id)
    newcomer = st.create_principal(f"newcomer-{suffix}")
    st.create_federated_credential(
        identity.id, "fic-conf", "https://token.actions.githubusercontent.com", "repo:o/r:ref:x"
    )
    # Locks live on an identity of their own: a lock on ``identity`` would refuse its delete.
    locked = st.create_identity(rg.name, f"id-locked-{suffix}")
    st.create_lock(locked.id, "lock-conf", "CanNotDelete")
    site, container_app = _apps(sb, rg.id, vault.name, identity.id, suffix)
    scale_set = st.create_scale_set(
        rg.name,
        f"vmss-conf-{suffix}",
        capacity=2,
        system_assigned=True,
        user_assigned=[identity.id],
    )
    hosts = _model_hosts(sb, rg.name, suffix)
    return Bindings(
        sb=sb,
        values={
            "sub": sb.subscription_id,
            "rg": rg.name,
            "location": st.location,
            "scope": rg.id,
            "assignment": assignment.name,
            "role": READER,
            "principal": newcomer.object_id,
            "new_guid": str(uuid.uuid4()),
            "new_name": f"new-{suffix}",
            "identity": identity.name,
            "identity_id": locked.id,
            "fic": "fic-conf",
            "lock": "lock-conf",
            "vm": vm.name,
            "vault": vault.name,
            "deleted_vault": gone.name,
            "secret": "db",
            "version": version.version,
            "deleted_secret": "gone",
            "site": site,
            "container_app": container_app,
            "scale_set": scale_set.name,
            "instance": sb.state.instances(scale_set.id)[0].id.rsplit("/", 1)[-1],
            **hosts,
        },
        vault=vault.name,
        keyvault_principal=officer,
    )


def _model_hosts(sb: Sandbox, rg: str, suffix: str) -> dict[str, str]:
    """A plan, a managed environment, a cluster, a storage account and a container, written
    into the sandbox's ARM model as a deploy writes them (the model's own handlers)."""
    base = f"/subscriptions/{sb.subscription_id}/resourceGroups/{rg}/providers"
    arm = sb.arm
    arm.create_or_update(
        PULUMI_APP_SERVICE_PLAN,
        f"{base}/Microsoft.Web/serverfarms/plan-{suffix}",
        {"kind": "linux", "reserved": True, "sku": {"name": "B1", "tier": "Basic"}},
    )
    arm.create_or_update(
        PULUMI_MANAGED_ENVIRONMENT, f"{base}/Microsoft.App/managedEnvironments/cae-{suffix}", {}
    )
    arm.create_or_update(
        PULUMI_MANAGED_CLUSTER,
        f"{base}/Microsoft.ContainerService/managedClusters/aks-{suffix}",
        {
            "dnsPrefix": f"aks-{suffix}",
            "identity": {"type": "SystemAssigned"},
            "agentPoolProfiles": [{"name": "system", "count": 1, "vmSize": "Standard_B2s"}],
            "oidcIssuerProfile": {"enabled": True},
            "securityProfile": {"workloadIdentity": {"enabled": True}},
        },
    )
    account = f"st{suffix}"
    arm.create_or_update(
        PULUMI_STORAGE_ACCOUNT,
        f"{base}/Microsoft.Storage/storageAccounts/{account}",
        {
            "accountName": account,
            "resourceGroupName": rg,
            "sku": {"name": "Standard_LRS"},
            "allowBlobPublicAccess": True,  # the container example makes one public
        },
    )
    arm.create_or_update(
        PULUMI_BLOB_CONTAINER,
        f"{base}/Microsoft.Storage/storageAccounts/{account}/blobServices/default/containers/data",
        {"accountName": account, "containerName": "data", "resourceGroupName": rg},
    )
    return {
        "plan": f"plan-{suffix}",
        "environment": f"cae-{suffix}",
        "cluster": f"aks-{suffix}",
        "account": account,
        "container": "data",
        "blob_service": "default",  # an account's one blob service is always named default
        "new_account": f"stn{suffix}",  # account names: 3-24 lower-case letters and digits
    }


def _apps(sb: Sandbox, group_id: str, vault: str, identity_id: str, suffix: str) -> tuple[str, str]:
    """A web app with a Key Vault reference it may resolve, and a container app, as the deploy
    backend writes them (their ARM documents from the shared shapes)."""
    st = sb.state
    site_id = f"{group_id}/providers/Microsoft.Web/sites/app-conf-{suffix}"
    site = st.create_or_update_app(site_id, kind="webapp", system_assigned=True, user_assigned=[])
    assert site.system_principal_id is not None
    st.create_role_assignment(
        st.vault(vault).secret_scope("db"), "Key Vault Secrets User", site.system_principal_id
    )
    document = app_shapes.site(
        arm_id=site_id,
        location=st.location,
        kind="app,linux",
        identity_block=None,
        server_farm_id=f"{group_id}/providers/Microsoft.Web/serverfarms/plan-conf-{suffix}",
        https_only=True,
        key_vault_reference_identity="SystemAssigned",
        public_network_access="Disabled",
        site_config={"ftpsState": "Disabled", "minTlsVersion": "1.2"},
        tags={},
    )
    reference = f"@Microsoft.KeyVault(SecretUri={sb.vault_url(vault)}secrets/db)"
    st.create_or_update_app(
        site_id,
        kind="webapp",
        system_assigned=True,
        user_assigned=[],
        document=document,
        settings={"DB_PASSWORD": reference},
    )
    env_id = f"{group_id}/providers/Microsoft.App/managedEnvironments/cae-conf-{suffix}"
    app_id = f"{group_id}/providers/Microsoft.App/containerApps/ca-conf-{suffix}"
    configuration = {
        "activeRevisionsMode": "Single",
        "ingress": {"external": True, "targetPort": 80},
    }
    st.create_or_update_app(
        app_id,
        kind="containerapp",
        system_assigned=True,
        user_assigned=[identity_id],
        document=app_shapes.container_app(
            arm_id=app_id,
            location=st.location,
            identity_block=None,
            environment_id=env_id,
            default_domain=f"cae-conf-{suffix}.{st.location}.azurecontainerapps.io",
            configuration=configuration,
            template={
                "containers": [{"name": "app", "image": "mcr.microsoft.com/k8se/quickstart"}]
            },
            latest_revision="abc1234",
            tags={},
        ),
    )
    return f"app-conf-{suffix}", f"ca-conf-{suffix}"
