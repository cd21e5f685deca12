"""LinuxScaleSet, AksCluster and WorkloadIdentityBinding in the mock runtime."""

from __future__ import annotations

import base64
import itertools
import re
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
import yaml

from components.aks import AksCluster, AksClusterArgs, NodePool, kubeconfig_with_login
from components.errors import ConfigError
from components.identity import (
    FederatedCredential,
    ManagedIdentities,
    UserAssignedIdentity,
    UserAssignedIdentityArgs,
)
from components.scale_set import LinuxScaleSet, LinuxScaleSetArgs
from components.testing import AzureMocks, InMemoryArm, run_program
from components.workload_identity import (
    CLIENT_ID_ANNOTATION,
    USE_LABEL,
    WorkloadIdentityBinding,
    WorkloadIdentityBindingArgs,
    service_account_subject,
)
from tests.unit.conftest import SSH_KEY

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
SUBNET = f"{RG}/providers/Microsoft.Network/virtualNetworks/v/subnets/s"
VMSS = "azure-native:compute:VirtualMachineScaleSet"
CLUSTER = "azure-native:containerservice:ManagedCluster"
FIC = "azure-native:managedidentity:FederatedIdentityCredential"
SA = "kubernetes:core/v1:ServiceAccount"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
NAMESPACE = "kubernetes:core/v1:Namespace"
ISSUER = re.compile(r"^https://westeurope\.oic\.prod-aks\.azure\.com/[0-9a-f-]{36}/[0-9a-f-]{36}/$")


def _void(_: object) -> None:
    """For lambdas: run a constructor for its registrations, return None."""


def run(program: Callable[[], None], backend: InMemoryArm | None = None) -> tuple[Any, AzureMocks]:
    mocks = AzureMocks(backend or InMemoryArm(subscription_id=SUB))
    return run_program(program, {}, mocks=mocks), mocks


def arm(mocks: AzureMocks) -> InMemoryArm:
    assert isinstance(mocks.backend, InMemoryArm)
    return mocks.backend


def identity(name: str = "id-a", **kwargs: Any) -> UserAssignedIdentity:
    return UserAssignedIdentity(
        name, UserAssignedIdentityArgs(name=name, resource_group_name="rg", **kwargs)
    )


def scale_set(ids: ManagedIdentities, **kwargs: Any) -> LinuxScaleSet:
    args: dict[str, Any] = {
        "name": "vmss-web",
        "resource_group_name": "rg",
        "subnet_id": SUBNET,
        "admin_username": "opsadmin",
        "ssh_public_key": SSH_KEY,
        "identities": ids,
        **kwargs,
    }
    return LinuxScaleSet("vmss", LinuxScaleSetArgs(**args))


def cluster(**kwargs: Any) -> AksCluster:
    return AksCluster("aks", AksClusterArgs(name="aks-one", resource_group_name="rg", **kwargs))


# -- scale sets -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "with_uai", "kind"),
    [
        (False, False, "None"),
        (True, False, "SystemAssigned"),
        (False, True, "UserAssigned"),
        (True, True, "SystemAssigned, UserAssigned"),
    ],
)
def test_scale_set_sends_the_computed_type_and_one_principal_for_the_set(
    system: bool, with_uai: bool, kind: str
) -> None:
    def program() -> None:
        ids = [identity().id] if with_uai else []
        vmss = scale_set(ManagedIdentities(system, ids), instances=3)
        pulumi.export("principal_id", vmss.principal_id)
        pulumi.export("instances", vmss.instances)
        pulumi.export("id", vmss.id)

    out, mocks = run(program)
    (reg,) = mocks.of_type(VMSS)
    assert reg.inputs["identity"]["type"] == kind
    assert ("userAssignedIdentities" in reg.inputs["identity"]) == with_uai
    assert out["id"].endswith("/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-web")
    assert out["instances"] == 3
    doc = arm(mocks).get(out["id"])
    assert doc is not None
    instances = arm(mocks).scale_set_instances(out["id"])
    assert [i["instanceId"] for i in instances] == ["0", "1", "2"]
    if kind == "None":
        assert "identity" not in doc and out["principal_id"] is None
        return
    assert doc["identity"]["type"] == kind
    assert (out["principal_id"] is not None) == system
    # Every instance answers with the set's identity: one principal for the whole set.
    assert all(i["identity"] == doc["identity"] for i in instances)


def test_scale_set_secure_defaults() -> None:
    _, mocks = run(lambda: _void(scale_set(ManagedIdentities(True), instances=2)))
    (reg,) = mocks.of_type(VMSS)
    profile = reg.inputs["virtualMachineProfile"]
    linux = profile["osProfile"]["linuxConfiguration"]
    assert linux["disablePasswordAuthentication"] is True
    assert linux["ssh"]["publicKeys"][0]["keyData"] == SSH_KEY
    assert "adminPassword" not in profile["osProfile"]
    (nic,) = profile["networkProfile"]["networkInterfaceConfigurations"]
    (ipconfig,) = nic["ipConfigurations"]
    assert "publicIPAddressConfiguration" not in ipconfig
    assert ipconfig["subnet"]["id"] == SUBNET
    cloud = base64.b64decode(profile["osProfile"]["customData"]).decode()
    assert cloud.startswith("#cloud-config") and "azure-identity" in cloud
    assert reg.inputs["orchestrationMode"] == "Uniform"
    assert reg.inputs["sku"]["capacity"] == 2


def test_scale_set_update_keeps_the_system_principal_and_drops_an_omitted_identity() -> None:
    backend = InMemoryArm(subscription_id=SUB)

    def program(keep_uai: bool) -> Callable[[], None]:
        def body() -> None:
            uai = identity()
            vmss = scale_set(ManagedIdentities(True, [uai.id] if keep_uai else []))
            pulumi.export("principal_id", vmss.principal_id)
            pulumi.export("id", vmss.id)

        return body

    first, _ = run(program(True), backend)
    second, _ = run(program(False), backend)
    assert first["principal_id"] == second["principal_id"]
    doc = backend.get(second["id"])
    assert doc is not None and doc["identity"]["type"] == "SystemAssigned"
    assert "userAssignedIdentities" not in doc["identity"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"instances": 101}, "instances"),
        ({"instances": -1}, "instances"),
        ({"instances": True}, "instances"),
        ({"name": "-web-"}, "name"),
        ({"size": "B2ls"}, "size"),
        ({"admin_username": "root"}, "admin_username"),
    ],
)
def test_scale_set_bad_arguments(changes: dict[str, Any], field: str) -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))
    with pytest.raises(ConfigError) as caught:
        run_program(lambda: _void(scale_set(ManagedIdentities(True), **changes)), {}, mocks=mocks)
    assert caught.value.field == field
    assert mocks.registrations == []


def test_scale_set_grant_needs_the_system_identity() -> None:
    def program() -> None:
        scale_set(ManagedIdentities(False, [identity().id])).grant(
            "Key Vault Secrets User", f"{RG}/providers/Microsoft.KeyVault/vaults/kv"
        )

    with pytest.raises(ConfigError, match="scale set's system identity, which is off"):
        run(program)


# -- clusters ---------------------------------------------------------------------------


def test_cluster_turns_on_issuer_and_workload_identity_and_closes_local_accounts() -> None:
    def program() -> None:
        aks = cluster()
        pulumi.export("issuer", aks.oidc_issuer_url)
        pulumi.export("kubelet", aks.kubelet_identity)
        pulumi.export("principal_id", aks.principal_id)
        pulumi.export("kubeconfig", aks.kubeconfig)
        pulumi.export("id", aks.id)
        aks.provider  # noqa: B018 (made on first use)

    out, mocks = run(program)
    (reg,) = mocks.of_type(CLUSTER)
    sent = reg.inputs
    assert sent["oidcIssuerProfile"] == {"enabled": True}
    assert sent["securityProfile"]["workloadIdentity"] == {"enabled": True}
    assert sent["disableLocalAccounts"] is True
    assert sent["enableRBAC"] is True
    assert sent["aadProfile"] == {"managed": True, "enableAzureRBAC": True}
    assert sent["identity"] == {"type": "SystemAssigned"}
    assert sent["agentPoolProfiles"][0]["enableNodePublicIP"] is False
    assert ISSUER.match(out["issuer"]), out["issuer"]
    doc = arm(mocks).get(out["id"])
    assert doc is not None
    assert out["issuer"] == doc["properties"]["oidcIssuerProfile"]["issuerURL"]
    kubelet = doc["properties"]["identityProfile"]["kubeletidentity"]
    assert out["kubelet"] == {
        "object_id": kubelet["objectId"],
        "client_id": kubelet["clientId"],
        "resource_id": kubelet["resourceId"],
    }
    # AKS creates the kubelet identity in the node resource group.
    node_identity = arm(mocks).get(kubelet["resourceId"])
    assert node_identity is not None
    assert node_identity["properties"]["principalId"] == kubelet["objectId"]
    assert "/resourcegroups/MC_rg_aks-one_westeurope/" in kubelet["resourceId"]
    assert out["principal_id"] == doc["identity"]["principalId"]
    assert "kubeconfig" in out.secret_keys
    user = yaml.safe_load(out["kubeconfig"])["users"][0]["user"]["exec"]
    assert user["command"] == "kubelogin"
    assert user["args"][-2:] == ["--login", "azurecli"]
    assert "devicecode" not in user["args"] and "--client-id" not in user["args"]
    (provider,) = mocks.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == out["kubeconfig"]


def test_cluster_issuer_is_stable_across_updates() -> None:
    backend = InMemoryArm(subscription_id=SUB)

    def program() -> None:
        pulumi.export("issuer", cluster().oidc_issuer_url)

    first, _ = run(program, backend)
    second, _ = run(program, backend)
    assert first["issuer"] == second["issuer"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"identities": ManagedIdentities()}, "identities"),
        ({"node_pool": NodePool(name="System")}, "node_pool.name"),
        ({"node_pool": NodePool(name="averylongpoolname")}, "node_pool.name"),
        ({"node_pool": NodePool(count=0)}, "node_pool.count"),
        ({"kubelogin": "browser"}, "kubelogin"),
        ({"dns_prefix": "-x"}, "dns_prefix"),
    ],
)
def test_cluster_bad_arguments(kwargs: dict[str, Any], field: str) -> None:
    mocks = AzureMocks(InMemoryArm(subscription_id=SUB))
    with pytest.raises(ConfigError) as caught:
        run_program(lambda: _void(cluster(**kwargs)), {}, mocks=mocks)
    assert caught.value.field == field
    assert mocks.registrations == []


def test_cluster_control_plane_takes_one_user_assigned_identity() -> None:
    def program() -> None:
        a, b = identity("id-a"), identity("id-b")
        cluster(identities=ManagedIdentities(False, [a.id, b.id]))

    with pytest.raises(ConfigError) as caught:
        run(program)
    assert caught.value.field == "identities"

    def one() -> None:
        aks = cluster(identities=ManagedIdentities(False, [identity("id-a").id]))
        pulumi.export("principal_id", aks.principal_id)

    out, mocks = run(one)
    (reg,) = mocks.of_type(CLUSTER)
    assert reg.inputs["identity"]["type"] == "UserAssigned"
    assert out["principal_id"] is None


def test_arm_refuses_workload_identity_without_the_issuer_and_turning_the_issuer_off() -> None:
    backend = InMemoryArm(subscription_id=SUB)
    cid = f"{RG}/providers/Microsoft.ContainerService/managedClusters/c"
    with pytest.raises(Exception, match="requires enabling OIDC issuer"):
        backend.create_or_update(
            CLUSTER, cid, {"securityProfile": {"workloadIdentity": {"enabled": True}}}
        )
    backend.create_or_update(CLUSTER, cid, {"oidcIssuerProfile": {"enabled": True}})
    with pytest.raises(Exception, match="cannot be disabled"):
        backend.create_or_update(CLUSTER, cid, {"oidcIssuerProfile": {"enabled": False}})


def test_cluster_credentials_for_a_missing_cluster_are_404() -> None:
    backend = InMemoryArm(subscription_id=SUB)
    with pytest.raises(Exception, match="was not found") as caught:
        backend.call(
            "azure-native:containerservice:listManagedClusterUserCredentials",
            {"resourceGroupName": "rg", "resourceName": "nope", "format": "exec"},
        )
    assert getattr(caught.value, "status", None) == 404


def test_kubeconfig_login_conversion_keeps_server_and_tenant() -> None:
    source = """
users:
- name: u
  user:
    exec:
      command: kubelogin
      args: [get-token, --environment, AzurePublicCloud, --server-id, S, --client-id, C,
             --tenant-id, T, --login, devicecode]
"""
    out = yaml.safe_load(kubeconfig_with_login(source, "workloadidentity"))
    assert out["users"][0]["user"]["exec"]["args"] == [
        "get-token",
        "--environment",
        "AzurePublicCloud",
        "--server-id",
        "S",
        "--tenant-id",
        "T",
        "--login",
        "workloadidentity",
    ]


# -- workload identity binding ----------------------------------------------------------


def test_binding_federates_from_the_cluster_issuer_output_and_labels_the_workload() -> None:
    def program() -> None:
        aks = cluster()
        uai = identity()
        binding = WorkloadIdentityBinding(
            "api",
            WorkloadIdentityBindingArgs(
                cluster=aks, namespace="shop", service_account="api-sa", identity=uai
            ),
        )
        pulumi.export("issuer", aks.oidc_issuer_url)
        pulumi.export("client_id", uai.client_id)
        pulumi.export("subject", binding.subject)

    out, mocks = run(program)
    (fic,) = mocks.of_type(FIC)
    assert fic.inputs["issuer"] == out["issuer"]  # character for character, slash included
    assert fic.inputs["issuer"].endswith("/")
    assert fic.inputs["subject"] == "system:serviceaccount:shop:api-sa" == out["subject"]
    assert fic.inputs["audiences"] == ["api://AzureADTokenExchange"]
    (sa,) = mocks.of_type(SA)
    assert sa.inputs["metadata"]["name"] == "api-sa"
    assert sa.inputs["metadata"]["namespace"] == "shop"
    assert sa.inputs["metadata"]["annotations"] == {CLIENT_ID_ANNOTATION: out["client_id"]}
    (deployment,) = mocks.of_type(DEPLOYMENT)
    template = deployment.inputs["spec"]["template"]
    assert template["metadata"]["labels"][USE_LABEL] == "true"
    assert template["spec"]["serviceAccountName"] == "api-sa"
    container = template["spec"]["containers"][0]["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["readOnlyRootFilesystem"] is True
    (ns,) = mocks.of_type(NAMESPACE)
    assert ns.inputs["metadata"]["name"] == "shop"
    # The pods wait for the trust: exchanges before it exists would fail.
    assert fic.urn in deployment.dependencies


def test_binding_without_identity_has_no_credential_annotation_or_label() -> None:
    def program() -> None:
        aks = cluster()
        WorkloadIdentityBinding(
            "batch",
            WorkloadIdentityBindingArgs(cluster=aks, namespace="default", service_account="batch"),
        )

    _, mocks = run(program)
    assert mocks.of_type(FIC) == []
    (sa,) = mocks.of_type(SA)
    assert "annotations" not in sa.inputs["metadata"]
    (deployment,) = mocks.of_type(DEPLOYMENT)
    assert USE_LABEL not in deployment.inputs["spec"]["template"]["metadata"]["labels"]
    assert mocks.of_type(NAMESPACE) == []  # default exists in every cluster


def test_bindings_on_one_identity_are_chained_and_the_21st_is_refused() -> None:
    def program(count: int) -> Callable[[], None]:
        def body() -> None:
            aks = cluster()
            uai = identity(
                federated_credentials=[
                    FederatedCredential("ci", "https://token.actions.githubusercontent.com", "s")
                ]
            )
            for i in range(count):
                WorkloadIdentityBinding(
                    f"w{i}",
                    WorkloadIdentityBindingArgs(
                        cluster=aks, namespace="shop", service_account=f"sa-{i}", identity=uai
                    ),
                )

        return body

    _, mocks = run(program(3))
    fics = mocks.of_type(FIC)
    assert len(fics) == 4
    for previous, current in itertools.pairwise(fics):
        assert previous.urn in current.dependencies
    assert len(mocks.of_type(NAMESPACE)) == 1
    with pytest.raises(ConfigError) as caught:
        run(program(20))
    assert "more than the 20 federated credentials" in str(caught.value)


def test_binding_on_a_locked_identity_waits_for_the_lock_and_goes_with_the_identity() -> None:
    def program() -> None:
        WorkloadIdentityBinding(
            "api",
            WorkloadIdentityBindingArgs(
                cluster=cluster(),
                namespace="shop",
                service_account="api",
                identity=identity(lock=True),
            ),
        )

    _, mocks = run(program)
    (fic,) = mocks.of_type(FIC)
    (lock,) = mocks.of_type("azure-native:authorization:ManagementLockByScope")
    assert lock.urn in fic.dependencies


@pytest.mark.parametrize(
    ("namespace", "service_account", "field"),
    [
        ("Shop", "api", "namespace"),
        ("shop", "API", "serviceAccount"),
        ("shop", "api sa", "serviceAccount"),
        ("shop_1", "api", "namespace"),
        ("shop", "", "serviceAccount"),
        ("x" * 64, "api", "namespace"),
    ],
)
def test_subject_parts_are_kubernetes_names(
    namespace: str, service_account: str, field: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        service_account_subject(namespace, service_account)
    assert caught.value.field == field
