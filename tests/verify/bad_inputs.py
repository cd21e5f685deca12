"""The bad-input corpus: each entry is one thing a user can get wrong, run through the CLI.

``stack`` entries change one key of a valid stack file (``None`` removes it); ``file``
entries replace the stack file's text; ``argv`` entries are command-line arguments. The
expected messages live in test_bad_input_corpus.py, next to the cases' names.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJLVFMIXrgzADPBSTYezYSlnCLrMmPku+3yCgAiifuvd me"
UNKNOWN_GUID = "9f0c8a55-0d2e-4b7c-9a51-0f1e2d3c4b5a"
ISSUER = "https://token.actions.githubusercontent.com"

VALID: dict[str, Any] = {
    "config": {
        "mikit:location": "westeurope",
        "mikit:resourceGroup": "rg-bad",
        "mikit:sshPublicKey": SSH_KEY,
        "mikit:vault": {"name": "kv-bad-inputs", "softDeleteRetentionDays": 7},
        "mikit:secrets": ["db"],
        "mikit:secret-db": "value",
        "mikit:identities": {
            "app": {
                "name": "id-app",
                "federatedCredentials": [{"name": "gh", "issuer": ISSUER, "subject": "repo:o/r"}],
            }
        },
        "mikit:vms": {"web": {"name": "vm-web", "userAssigned": ["app"], "systemIdentity": True}},
        "mikit:grants": [
            {"principal": "identity:app", "role": "Key Vault Secrets User", "target": "secret:db"}
        ],
    }
}


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, and the command that meets it."""

    name: str
    stack: dict[str, Any] | None = None
    file: str | None = None
    argv: tuple[str, ...] = ()
    command: str = "check"
    extra: dict[str, str] = field(default_factory=dict)


def _set(path: str, value: Any) -> dict[str, Any]:
    return {path: value}


def mutate(changes: dict[str, Any]) -> dict[str, Any]:
    """``VALID`` with each ``a/b/0/c`` path set (``None``: removed)."""
    doc = copy.deepcopy(VALID)
    for path, value in changes.items():
        parts = path.split("/")
        node: Any = doc["config"]
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        last: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
        if value is None:
            del node[last]
        else:
            node[last] = value
    return doc


def argv_for(case: Case, directory: Path) -> list[str]:
    """The full command line of ``case``, with a valid stack file unless it is the point."""
    stack = write_stack(case, directory)
    for name, text in case.extra.items():
        (directory / name).write_text(text)
    argv = [a.replace("{dir}", str(directory)) for a in case.argv]
    if not {"--stack", "--stack-file"} & set(case.argv):
        argv += ["--stack-file", str(stack)]
    if "--report-dir" not in case.argv:
        argv += ["--report-dir", str(directory / "reports")]
    return [case.command, *argv, "--quiet"]


def write_stack(case: Case, directory: Path) -> Path:
    path = directory / "Pulumi.bad.yaml"
    if case.file is not None:
        path.write_text(case.file)
    else:
        path.write_text(yaml.safe_dump(mutate(case.stack or {}), sort_keys=False))
    return path


FC = "mikit:identities/app/federatedCredentials/0"
AKS_ISSUER = "https://westeurope.oic.prod-aks.azure.com/00000000-0000-0000-0000-000000000001/1a2b"
SCALE_SET: dict[str, Any] = {"name": "vmss-web", "instances": 2, "userAssigned": ["app"]}
WORKLOADS: dict[str, Any] = {
    "api": {"namespace": "shop", "serviceAccount": "api", "identity": "app"},
    "batch": {"namespace": "shop", "serviceAccount": "batch"},
}


def _scale_set(**fields: Any) -> dict[str, Any]:
    """A ``mikit:scaleSets`` with one set ``web`` (``None`` removes a field)."""
    entry = {k: v for k, v in {**SCALE_SET, **fields}.items() if v is not None}
    return {"mikit:scaleSets": {"web": entry}}


def _cluster(workloads: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A ``mikit:clusters`` with one cluster ``aks`` holding ``workloads``."""
    return {
        "mikit:clusters": {
            "aks": {
                "name": "aks-bad",
                "workloads": WORKLOADS if workloads is None else workloads,
                **fields,
            }
        }
    }


def _workload(**fields: Any) -> dict[str, Any]:
    """``_cluster`` with workload ``api`` changed."""
    return _cluster({**WORKLOADS, "api": {**WORKLOADS["api"], **fields}})


def _aks_credential(issuer: str, subject: str, **more: Any) -> dict[str, Any]:
    """The identity's credential made a hand-written one for an AKS service account."""
    return _set(FC, {"name": "k8s", "issuer": issuer, "subject": subject, **more})


G0 = "mikit:grants/0"
VM = "mikit:vms/web"
APPS = "mikit:apps"
#: A valid app of each kind: the app cases change one thing of one of them.
WEBAPP = {"kind": "webapp", "name": "app-bad-inputs", "systemIdentity": True}
CONTAINERAPP = {"kind": "containerapp", "name": "ca-bad-inputs", "userAssigned": ["app"]}
FUNCTIONAPP = {"kind": "functionapp", "name": "func-bad-inputs", "systemIdentity": True}


def _app(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``mikit:apps`` holding one app ``site``: ``base`` with ``changes`` (None: removed)."""
    app = {**base, **changes}
    return {APPS: {"site": {k: v for k, v in app.items() if v is not None}}}


CASES: tuple[Case, ...] = (
    # ---- unknown keys, at every level
    Case("unknown top-level key", _set("mikit:vmSzie", "Standard_B2s")),
    Case("unknown key, wrong case", _set("mikit:adminUserName", "root")),
    Case("key without namespace", _set("vmSize", "Standard_B2s")),
    Case("unknown vault key", _set("mikit:vault/nmae", "kv-x")),
    Case("unknown vm key", _set(f"{VM}/systemIdentiy", True)),
    Case("unknown grant key", _set(f"{G0}/rol", "Owner")),
    Case("unknown identity key", _set("mikit:identities/app/lokc", True)),
    Case("unknown network key", _set("mikit:network", {"adressSpace": "10.0.0.0/16"})),
    Case("unknown federated credential key", _set(f"{FC}/audience", ["x"])),
    # ---- required keys
    Case("missing location", _set("mikit:location", None)),
    Case("missing sshPublicKey", _set("mikit:sshPublicKey", None)),
    Case("missing vault", _set("mikit:vault", None)),
    Case("missing vault name", _set("mikit:vault/name", None)),
    Case("missing vm name", _set(f"{VM}/name", None)),
    Case("missing grant role", _set(f"{G0}/role", None)),
    Case("missing secret value", _set("mikit:secret-db", None)),
    # ---- types and ranges
    Case("retention below range", _set("mikit:vault/softDeleteRetentionDays", 3)),
    Case("retention above range", _set("mikit:vault/softDeleteRetentionDays", 100)),
    Case("retention not a number", _set("mikit:vault/softDeleteRetentionDays", "a week")),
    Case("purgeProtection not a bool", _set("mikit:vault/purgeProtection", "maybe")),
    Case("createResourceGroup not a bool", _set("mikit:createResourceGroup", "perhaps")),
    Case("tags not a mapping", _set("mikit:tags", ["a", "b"])),
    Case("secrets not a list", _set("mikit:secrets", "db")),
    Case("identities not a mapping", _set("mikit:identities", ["app"])),
    Case("grants not a list", _set("mikit:grants", {"principal": "vm:web"})),
    Case("vm not a mapping", _set(VM, "vm-web")),
    Case("empty userAssigned", _set(f"{VM}/userAssigned", [])),
    # ---- values Azure refuses
    Case("location not a region", _set("mikit:location", "mars")),
    Case("location misspelt", _set("mikit:location", "westeurpoe")),
    Case("resource group ends with a dot", _set("mikit:resourceGroup", "rg-bad.")),
    Case("ssh key not a key", _set("mikit:sshPublicKey", "hunter2")),
    Case("reserved admin user", _set("mikit:adminUsername", "root")),
    Case("vault name too short", _set("mikit:vault/name", "kv")),
    Case("vault name with double hyphen", _set("mikit:vault/name", "kv--bad")),
    Case(
        "secret name with underscore",
        _set("mikit:secrets", ["db_password"])
        | _set("mikit:secret-db", None)
        | _set("mikit:secret-db_password", "x")
        | _set(f"{G0}/target", "vault"),
    ),
    Case("secret declared twice", _set("mikit:secrets", ["db", "DB"])),
    Case("identity name too short", _set("mikit:identities/app/name", "id")),
    Case("vm name invalid", _set(f"{VM}/name", "vm_web!")),
    Case("address space not a CIDR", _set("mikit:network", {"addressSpace": "10.0.0.0/33"})),
    Case("subnet outside address space", _set("mikit:network", {"subnetPrefix": "10.9.1.0/24"})),
    # ---- secrets
    Case("empty secret value", _set("mikit:secret-db", "")),
    Case("blank secret value", _set("mikit:secret-db", "   ")),
    Case("undeclared secret value", _set("mikit:secret-dbx", "x")),
    # ---- federated credentials
    Case("issuer without host", _set(f"{FC}/issuer", "https://")),
    Case("issuer with empty host and a path", _set(f"{FC}/issuer", "https:///token")),
    Case("issuer over http", _set(f"{FC}/issuer", "http://token.actions.githubusercontent.com")),
    Case("empty subject", _set(f"{FC}/subject", "")),
    Case("empty audiences", _set(f"{FC}/audiences", [])),
    # ---- references
    Case("vm names an unknown identity", _set(f"{VM}/userAssigned", ["ap"])),
    Case(
        "vm without identity",
        _set(f"{VM}/userAssigned", None) | _set(f"{VM}/systemIdentity", False),
    ),
    Case("grant to an unknown vm", _set(f"{G0}/principal", "vm:wbe")),
    Case(
        "grant to a vm without system identity",
        _set(f"{VM}/systemIdentity", False) | _set(f"{G0}/principal", "vm:web"),
    ),
    Case("grant principal without prefix", _set(f"{G0}/principal", "app")),
    Case("grant to an undeclared secret", _set(f"{G0}/target", "secret:dbx")),
    Case("grant target not a reference", _set(f"{G0}/target", "everything")),
    Case(
        "grant repeated",
        _set(
            "mikit:grants",
            [VALID["config"]["mikit:grants"][0], VALID["config"]["mikit:grants"][0]],
        ),
    ),
    # ---- apps (App Service, Functions, Container Apps)
    Case("app kind unknown", _app(WEBAPP, kind="website")),
    Case("app kind missing", _app(WEBAPP, kind=None)),
    Case("unknown app key", _app(WEBAPP, systemIdentiy=True)),
    Case("apps not a mapping", _set(APPS, ["site"])),
    Case("app key not a name", {APPS: {"my site": WEBAPP}}),
    Case("web app name too long", _app(WEBAPP, name="a" * 61)),
    Case("web app name starts with a hyphen", _app(WEBAPP, name="-app")),
    Case("container app name with capitals", _app(CONTAINERAPP, name="CA-bad")),
    Case("container app name too long", _app(CONTAINERAPP, name="c" * 33)),
    Case("container app name with --", _app(CONTAINERAPP, name="ca--bad")),
    Case("container app environment name", _app(CONTAINERAPP, environment="Env_1")),
    Case("app plan name", _app(WEBAPP, plan="plan one")),
    Case("plan on a container app", _app(CONTAINERAPP, plan="plan-one")),
    Case("identity lifecycles on a web app", _app(WEBAPP, identityLifecycles={"system": "None"})),
    Case("ingress port not a number", _app(CONTAINERAPP, ingressPort="http")),
    Case("public ingress without a port", _app(CONTAINERAPP, externalIngress=True)),
    Case("app names an unknown identity", _app(WEBAPP, userAssigned=["ap"])),
    Case("app userAssigned empty", _app(WEBAPP, userAssigned=[])),
    Case("app without identity", _app(WEBAPP, systemIdentity=False)),
    Case("reference to an undeclared secret", _app(WEBAPP, keyVaultReferences={"DB": "dbx"})),
    Case("reference setting name", _app(WEBAPP, keyVaultReferences={"DB-PASSWORD": "db"})),
    Case(
        "reference shadows a setting",
        _app(WEBAPP, keyVaultReferences={"DB": "db"}, settings={"DB": "plain"}),
    ),
    Case("app sets AZURE_CLIENT_ID", _app(WEBAPP, settings={"AZURE_CLIENT_ID": "x"})),
    Case(
        "reference identity not held",
        _app(WEBAPP, keyVaultReferences={"DB": "db"}, keyVaultReferenceIdentity="app"),
    ),
    Case(
        "reference identity system but off",
        _app(CONTAINERAPP, keyVaultReferences={"DB": "db"}, keyVaultReferenceIdentity="system"),
    ),
    Case(
        "references with no identity to resolve them",
        _app(CONTAINERAPP, keyVaultReferences={"DB": "db"}),
    ),
    Case("default identity not held", _app(WEBAPP, defaultIdentity="app")),
    Case("default identity system", _app(WEBAPP, defaultIdentity="system")),
    Case(
        "several identities and no default",
        _app(CONTAINERAPP, userAssigned=["app", "other"])
        | _set("mikit:identities/other", {"name": "id-other"}),
    ),
    Case("identity lifecycle unknown", _app(CONTAINERAPP, identityLifecycles={"app": "Sometimes"})),
    Case(
        "identity lifecycle hides the code's identity",
        _app(CONTAINERAPP, identityLifecycles={"app": "None"}),
    ),
    Case(
        "identity lifecycle of an identity not held",
        _app(CONTAINERAPP, identityLifecycles={"system": "All"}),
    ),
    Case("grant to an unknown app", _app(WEBAPP) | _set(f"{G0}/principal", "app:sit")),
    Case(
        "grant to an app without system identity",
        _app(CONTAINERAPP) | _set(f"{G0}/principal", "app:site"),
    ),
    Case(
        "two apps with one name",
        {APPS: {"one": WEBAPP, "two": {**WEBAPP, "name": WEBAPP["name"].upper()}}},
    ),
    # ---- a Function app's host storage (hostStorage)
    Case("host storage on a web app", _app(WEBAPP, hostStorage={"identity": "system"})),
    Case("unknown host storage key", _app(FUNCTIONAPP, hostStorage={"acount": "data"})),
    Case("host storage account undeclared", _app(FUNCTIONAPP, hostStorage={"account": "data"})),
    Case(
        "host storage account with containers",
        _app(FUNCTIONAPP, hostStorage={"account": "data"})
        | _set("mikit:storageAccounts", {"data": {"name": "stbad4821", "containers": ["c1"]}}),
    ),
    Case(
        "host storage identity not held",
        _app(FUNCTIONAPP, hostStorage={"identity": "app"}),
    ),
    Case(
        "host storage identity system but off",
        _app(
            FUNCTIONAPP,
            systemIdentity=None,
            userAssigned=["app"],
            hostStorage={"identity": "system"},
        ),
    ),
    Case(
        "host storage with several identities and no choice",
        _app(FUNCTIONAPP, systemIdentity=None, userAssigned=["app", "other"], defaultIdentity="app")
        | _set("mikit:identities/other", {"name": "id-other"}),
    ),
    Case(
        "function app sets a host storage connection string",
        _app(FUNCTIONAPP, settings={"AzureWebJobsStorage": "DefaultEndpointsProtocol=https"}),
    ),
    # ---- roles
    Case("role name misspelt", _set(f"{G0}/role", "Key Vault Secret Usr")),
    Case("role GUID not in the catalog", _set(f"{G0}/role", UNKNOWN_GUID)),
    Case(
        "role definition ID not in the catalog",
        _set(
            f"{G0}/role",
            "/subscriptions/00000000-0000-0000-0000-000000000000/providers/"
            f"Microsoft.Authorization/roleDefinitions/{UNKNOWN_GUID}",
        ),
    ),
    Case("Owner at vault scope", _set(f"{G0}/role", "Owner") | _set(f"{G0}/target", "vault")),
    Case("Key Vault Administrator at secret scope", _set(f"{G0}/role", "Key Vault Administrator")),
    Case(
        "User Access Administrator at secret scope", _set(f"{G0}/role", "User Access Administrator")
    ),
    # ---- scale sets
    Case("scale set with 101 instances", _scale_set(instances=101)),
    Case("scale set with -1 instances", _scale_set(instances=-1)),
    Case("scale set instances not a number", _scale_set(instances="two")),
    Case("scale set without identity", _scale_set(userAssigned=None)),
    Case("scale set naming an unknown identity", _scale_set(userAssigned=["nope"])),
    Case("scale set name starts with a hyphen", _scale_set(name="-vmss")),
    Case("unknown scale set key", _scale_set(instance=2)),
    Case(
        "grant to a scale set whose system identity is off",
        _scale_set() | _set(f"{G0}/principal", "scaleset:web"),
    ),
    Case(
        "grant to an undeclared scale set", _scale_set() | _set(f"{G0}/principal", "scaleset:api")
    ),
    # ---- clusters and workloads
    Case("cluster name starts with a hyphen", _cluster(name="-aks")),
    Case("cluster with no nodes", _cluster(nodeCount=0)),
    Case("workloads not a mapping", _cluster(["api"])),  # type: ignore[arg-type]
    Case("unknown workload key", _workload(serviceAcount="api")),
    Case("workload namespace in upper case", _workload(namespace="Shop")),
    Case("workload service account with an underscore", _workload(serviceAccount="api_sa")),
    Case("workload naming an unknown identity", _workload(identity="nope")),
    Case("two workloads on one service account", _workload(serviceAccount="batch")),
    Case(
        "one workload key in two clusters",
        {
            "mikit:clusters": {
                "aks": {"name": "aks-one", "workloads": WORKLOADS},
                "aks2": {"name": "aks-two", "workloads": {"api": WORKLOADS["batch"]}},
            }
        },
    ),
    Case(
        "grant to a workload without identity",
        _cluster() | _set(f"{G0}/principal", "workload:batch"),
    ),
    Case("grant to an undeclared workload", _cluster() | _set(f"{G0}/principal", "workload:web")),
    Case(
        "the 21st federated credential on one identity",
        _cluster()
        | _set(
            "mikit:identities/app/federatedCredentials",
            [
                {"name": f"gh{i}", "issuer": ISSUER, "subject": f"repo:o/r:environment:e{i}"}
                for i in range(20)
            ],
        ),
    ),
    Case(
        "cluster issuer without its trailing slash",
        _aks_credential(AKS_ISSUER, "system:serviceaccount:shop:other"),
    ),
    Case(
        "cluster issuer typed in for a workload of the stack",
        _cluster() | _aks_credential(AKS_ISSUER + "/", "system:serviceaccount:shop:api"),
    ),
    Case(
        "service account subject with 'serviceaccounts'",
        _aks_credential(AKS_ISSUER + "/", "system:serviceaccounts:shop:api"),
    ),
    Case(
        "service account subject without its name",
        _aks_credential(AKS_ISSUER + "/", "system:serviceaccount:shop"),
    ),
    Case(
        "service account subject with an upper-case namespace",
        _aks_credential(AKS_ISSUER + "/", "system:serviceaccount:Shop:api"),
    ),
    Case(
        "cluster credential with the wrong audience",
        _aks_credential(
            AKS_ISSUER + "/",
            "system:serviceaccount:shop:api",
            audiences=["api://AzureADTokenExchange/"],
        ),
    ),
    # ---- the file itself
    Case("document is a list", file="- mikit:location: westeurope\n"),
    Case("document is a scalar", file="westeurope\n"),
    Case("config is a list", file="config:\n  - mikit:location: westeurope\n"),
    Case("not YAML", file="config: {mikit:location: [westeurope\n"),
    # ---- command-line arguments
    Case("--parallel 0", argv=("--parallel", "0")),
    Case("--parallel -1", argv=("--parallel", "-1")),
    Case("--parallel not a number", argv=("--parallel", "many")),
    Case("--parallel too many", argv=("--parallel", "1000")),
    Case("--propagation-wait -5", argv=("--propagation-wait", "-5"), command="lifecycle"),
    Case("--propagation-wait nan", argv=("--propagation-wait", "nan"), command="lifecycle"),
    Case("--propagation-wait too long", argv=("--propagation-wait", "86400"), command="lifecycle"),
    Case("--propagation-wait on check", argv=("--propagation-wait", "soon")),
    Case("--outputs on the sandbox", argv=("--outputs", "{dir}/outputs.json")),
    Case("--outputs missing", argv=("--target", "azure", "--outputs", "{dir}/missing.json")),
    Case(
        "--outputs not JSON",
        argv=("--target", "azure", "--outputs", "{dir}/outputs.json"),
        extra={"outputs.json": "not json {"},
    ),
    Case(
        "--outputs a JSON list",
        argv=("--target", "azure", "--outputs", "{dir}/outputs.json"),
        extra={"outputs.json": "[1, 2]"},
    ),
    Case(
        "--report-dir is a file",
        argv=("--report-dir", "{dir}/taken"),
        extra={"taken": "a file"},
    ),
    Case("--stack unknown", argv=("--stack", "doesnotexist")),
    Case("--stack empty", argv=("--stack", "")),
    Case("--stack-file missing", argv=("--stack-file", "{dir}/Pulumi.missing.yaml")),
    Case("--stack-file a directory", argv=("--stack-file", "{dir}")),
    Case("--sandbox-faults missing", argv=("--sandbox-faults", "{dir}/faults.toml")),
    Case(
        "--sandbox-faults on azure",
        argv=("--target", "azure", "--sandbox-faults", "{dir}/faults.toml"),
        extra={"faults.toml": ""},
    ),
)
