"""Generate ``api_versions.json`` from Microsoft's REST API specifications, reproducibly.

Why: the sandbox refused ``api-version=2026-03-01`` for virtual machines (400
``NoRegisteredProviderFound``) although Compute publishes it
(``specification/compute/resource-manager/Microsoft.Compute/Compute/stable/2026-03-01/ComputeRP.json``):
the hand-made lists came from the clients installed here, so any other client, or the next
release, broke. Now the lists are computed from what the specifications publish.

Inputs, all in this folder or locked by ``uv.lock``:

1. ``spec_listing.json``: the spec paths read from ``Azure/azure-rest-api-specs`` with the
   search tool (AutoRest readmes with their commit, and folder listings with each file's
   commit). A version folder publishes a resource type only if one of the type's spec files
   (or, for folders known only by their examples, one of its examples) is in it: a folder of a
   namespace need not cover every type (``Microsoft.App`` 2025-05-01-preview holds only
   ``SupportedModels.json``; ``ManagedIdentity.json`` has ``federatedIdentityCredentials`` only
   from 2022-01-31-preview). :data:`RULES` says which files carry which type; each rule was
   checked against the spec's ``paths``.
2. The installed ``pulumi-azure-native`` package: generated from the same specifications, each
   resource's docstring names the api-version it uses and the "Other available API versions"
   (the spec folders whose paths define that resource). It fills version folders newer than
   the stored readmes.
3. ``recorded`` and ``carried`` in the listing (ARM's own recorded answers; the entries of the
   hand-made list whose spec files were not re-listed), and the versions the installed Key Vault
   client can send.

Run (from the repository root)::

    python -m verify.sandbox.data.api_versions_from_specs          # rewrite api_versions.json
    python -m verify.sandbox.data.api_versions_from_specs --check  # exit 1 if it would change

``tests/sandbox/test_sandbox_api_versions.py`` runs the check, so the committed data always
equals what the listing generates.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from typing import Any

from azure.keyvault.secrets import ApiVersion
from azure.storage.blob._serialize import _SUPPORTED_API_VERSIONS

HERE = Path(__file__).parent
LISTING = HERE / "spec_listing.json"
OUTPUT = HERE / "api_versions.json"

#: an api-version as it appears as a folder name: a date with an optional suffix, or Key
#: Vault's ``7.x[-preview[.n]]``.
VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(?:-preview)?|7\.\d(?:-preview(?:\.\d+)?)?")


@dataclass(frozen=True)
class Rule:
    """Spec files (full path, regex with a ``v`` group for the version folder) that publish one
    resource type, and the first version that has it (None: every folder the regex matches)."""

    pattern: str
    since: str | None = None

    def version(self, path: str) -> str | None:
        match = re.fullmatch(self.pattern, path)
        if match is None:
            return None
        found = match.group("v")
        if self.since is not None and found[:10] < self.since[:10]:
            return None
        return found


_V = r"(?:stable|preview)/(?P<v>[^/]+)"
_COMPUTE = "specification/compute/resource-manager/Microsoft.Compute/Compute/"
_MSI = "specification/msi/resource-manager/Microsoft.ManagedIdentity/ManagedIdentity/"
_KV = "specification/keyvault/resource-manager/Microsoft.KeyVault/KeyVault/"
_AUTHZ = "specification/authorization/resource-manager/Microsoft.Authorization/"
_WEB = "specification/web/resource-manager/Microsoft.Web/AppService/"
_APP = "specification/app/resource-manager/Microsoft.App/ContainerApps/"
_AKS = "specification/containerservice/resource-manager/Microsoft.ContainerService/aks/"
_LOCKS = "specification/resources/resource-manager/Microsoft.Authorization/locks/stable/"
_STORAGE = "specification/storage/resource-manager/Microsoft.Storage/Storage/"

#: resource type -> the spec files that publish it. ``compute.json`` (to 2021-11-01) and
#: ``ComputeRP.json`` (from 2024-11-01) hold both VMs and scale sets (with their instances);
#: 2022-03-01 ... 2024-07-01 split them into ``virtualMachine.json`` and
#: ``virtualMachineScaleSet.json``. Key Vault's ``keyvault.json``/``openapi.json`` serve vaults,
#: and ``deletedVaults`` from 2016-10-01 (soft delete). Web's ``WebApps.json`` holds ``sites``
#: and their ``config`` children, ``AppServicePlans.json`` the ``serverfarms``; from 2025-03-01
#: one ``openapi.json`` holds both. Storage: ``storage.json`` the accounts and ``blob.json`` the
#: blob services and containers, until one ``openapi.json`` (2025-06-01) holds all three.
RULES: dict[str, tuple[Rule, ...]] = {
    "Microsoft.Authorization/roleAssignments": (
        Rule(_AUTHZ + _V + r"/authorization-RoleAssignmentsCalls\.json"),
    ),
    "Microsoft.Authorization/roleDefinitions": (
        Rule(_AUTHZ + _V + r"/authorization-RoleDefinitionsCalls\.json"),
    ),
    "Microsoft.Authorization/locks": (Rule(_LOCKS + r"(?P<v>[^/]+)/.+\.json"),),
    "Microsoft.ManagedIdentity/userAssignedIdentities": (
        Rule(_MSI + _V + r"/ManagedIdentity\.json"),
        Rule(_MSI + r"examples/(?P<v>[^/]+)/Identity\w*\.json"),
    ),
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials": (
        Rule(_MSI + _V + r"/ManagedIdentity\.json", since="2022-01-31"),
        Rule(_MSI + r"examples/(?P<v>[^/]+)/FederatedIdentityCredential\w*\.json"),
    ),
    "Microsoft.Compute/virtualMachines": (
        Rule(_COMPUTE + _V + r"/(?:compute|virtualMachine|ComputeRP)\.json"),
    ),
    "Microsoft.Compute/virtualMachineScaleSets": (
        Rule(_COMPUTE + _V + r"/(?:compute|virtualMachineScaleSet|ComputeRP)\.json"),
    ),
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines": (
        Rule(_COMPUTE + _V + r"/(?:compute|virtualMachineScaleSet|ComputeRP)\.json"),
    ),
    "Microsoft.KeyVault/vaults": (Rule(_KV + _V + r"/(?:keyvault|openapi)\.json"),),
    "Microsoft.KeyVault/deletedVaults": (
        Rule(_KV + _V + r"/(?:keyvault|openapi)\.json", since="2016-10-01"),
    ),
    "Microsoft.Web/sites": (Rule(_WEB + _V + r"/(?:WebApps|openapi)\.json"),),
    "Microsoft.Web/sites/config": (Rule(_WEB + _V + r"/(?:WebApps|openapi)\.json"),),
    "Microsoft.Web/serverfarms": (Rule(_WEB + _V + r"/(?:AppServicePlans|openapi)\.json"),),
    "Microsoft.App/containerApps": (Rule(_APP + _V + r"/ContainerApps\.json"),),
    "Microsoft.App/managedEnvironments": (Rule(_APP + _V + r"/ManagedEnvironments\.json"),),
    "Microsoft.ContainerService/managedClusters": (Rule(_AKS + _V + r"/managedClusters\.json"),),
    "Microsoft.Resources/resourceGroups": (),
    "Microsoft.Resources/subscriptions": (),
    "Microsoft.Storage/storageAccounts": (Rule(_STORAGE + _V + r"/(?:storage|openapi)\.json"),),
    "Microsoft.Storage/storageAccounts/blobServices": (
        Rule(_STORAGE + _V + r"/(?:blob|openapi)\.json"),
    ),
    "Microsoft.Storage/storageAccounts/blobServices/containers": (
        Rule(_STORAGE + _V + r"/(?:blob|openapi)\.json"),
    ),
}

#: Key Vault's data plane (secrets): ``secrets.json`` in a version folder, or any file of a
#: version folder of the older layouts (``Microsoft.KeyVault/<v>``, ``Legacy``).
KEYVAULT_RULES = (
    Rule(r"specification/keyvault/data-plane/Secrets/" + _V + r"/secrets\.json"),
    Rule(
        r"specification/keyvault/data-plane/Microsoft\.KeyVault/(?:(?:stable|preview)/)?(?P<v>[^/]+)/.+"
    ),
)

#: Blob Storage's data plane: the ``x-ms-version`` is the version folder of ``blob.json``
#: (Storage versions carry no ``-preview`` suffix even in ``preview/``; ``0000-00-00`` is
#: TypeSpec's placeholder folder, not a version).
BLOB_RULES = (
    Rule(r"specification/storage/data-plane/Microsoft\.BlobStorage/" + _V + r"/blob\.json"),
)

#: resource type -> (pulumi-azure-native module file, relative to the package) whose docstring
#: lists the type's versions. Microsoft.Resources/subscriptions has no pulumi resource.
PULUMI: dict[str, str] = {
    "Microsoft.Authorization/roleAssignments": "authorization/role_assignment.py",
    "Microsoft.Authorization/roleDefinitions": "authorization/role_definition.py",
    "Microsoft.Authorization/locks": "authorization/management_lock_by_scope.py",
    "Microsoft.ManagedIdentity/userAssignedIdentities": "managedidentity/user_assigned_identity.py",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials": (
        "managedidentity/federated_identity_credential.py"
    ),
    "Microsoft.Compute/virtualMachines": "compute/virtual_machine.py",
    "Microsoft.Compute/virtualMachineScaleSets": "compute/virtual_machine_scale_set.py",
    "Microsoft.Compute/virtualMachineScaleSets/virtualMachines": (
        "compute/virtual_machine_scale_set_vm.py"
    ),
    "Microsoft.KeyVault/vaults": "keyvault/vault.py",
    "Microsoft.Resources/resourceGroups": "resources/resource_group.py",
    "Microsoft.Storage/storageAccounts": "storage/storage_account.py",
    "Microsoft.Storage/storageAccounts/blobServices": "storage/blob_service_properties.py",
    "Microsoft.Storage/storageAccounts/blobServices/containers": "storage/blob_container.py",
    "Microsoft.Web/sites": "web/web_app.py",
    "Microsoft.Web/sites/config": "web/web_app_application_settings.py",
    "Microsoft.Web/serverfarms": "web/app_service_plan.py",
    "Microsoft.App/containerApps": "app/container_app.py",
    "Microsoft.App/managedEnvironments": "app/managed_environment.py",
    "Microsoft.ContainerService/managedClusters": "containerservice/managed_cluster.py",
}

_USES = re.compile(r"Uses Azure REST API version (\S+?)\.\s")
_OTHER = re.compile(r"Other available API versions: ([^.]*(?:\.\d[^.]*)*)\.")


def _order(version: str) -> tuple[str, str]:
    """Oldest first: by date (Key Vault's 7.x before dates), a preview before its stable."""
    return (version[:10] if version[:1] == "2" else "0" + version, version)


def spec_files(listing: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (full spec path, commit) the listing names."""
    found: list[tuple[str, str]] = []
    for readme in listing["readmes"]:
        folder = readme["path"].rsplit("/", 1)[0]
        found.extend((f"{folder}/{name}", readme["commit"]) for name in readme["input_files"])
    found.extend((entry["path"], entry["commit"]) for entry in listing["files"])
    return found


def pulumi_versions(module: str) -> list[str]:
    """The versions one pulumi-azure-native resource module names (default first)."""
    spec = util.find_spec("pulumi_azure_native")  # located, not imported (it is large)
    if spec is None or spec.origin is None:
        raise ValueError("pulumi-azure-native is not installed")
    text = (Path(spec.origin).parent / module).read_text()
    uses = _USES.search(text)
    if uses is None:
        raise ValueError(f"{module}: no 'Uses Azure REST API version'")
    other = _OTHER.search(text)
    return [uses.group(1), *(other.group(1).split(", ") if other else [])]


def _versions_by_rules(
    rules: tuple[Rule, ...], files: list[tuple[str, str]]
) -> tuple[set[str], set[str]]:
    versions: set[str] = set()
    commits: set[str] = set()
    for path, commit in files:
        for rule in rules:
            found = rule.version(path)
            if found is not None and VERSION.fullmatch(found):
                versions.add(found)
                commits.add(commit)
    return versions, commits


def generate(listing: dict[str, Any]) -> dict[str, Any]:
    """The content of api_versions.json for ``listing`` (pure but for the installed packages)."""
    files = spec_files(listing)
    pulumi = f"pulumi-azure-native {metadata.version('pulumi-azure-native')}"
    arm: dict[str, Any] = {}
    for type_, rules in RULES.items():
        versions, commits = _versions_by_rules(rules, files)
        sources: list[str] = []
        if versions:
            sources.append(
                f"{listing['repo']}: {len(versions)} version folders whose spec files publish "
                "the type (spec_listing.json, rules in api_versions_from_specs.py)"
            )
        extra = {**listing["recorded"], **listing["carried"]}.get(type_)
        ordered: list[str] = []
        if extra is not None:
            ordered = list(extra["versions"])  # ARM's own list keeps ARM's order
            sources.extend(extra["sources"])
        module = PULUMI.get(type_)
        if module is not None:
            from_pulumi = pulumi_versions(module)
            versions |= set(from_pulumi)
            sources.append(f"{pulumi} {module} ({len(from_pulumi)} versions)")
        new = sorted(versions - set(ordered), key=_order)
        if type_.startswith("Microsoft.Resources/"):
            ordered += new
        else:
            ordered = sorted(set(ordered) | versions, key=_order)
        arm[type_] = {
            "versions": ordered,
            "sources": sources,
            "spec_commits": sorted(commits),
            "read": listing["read"],
        }
    kv_versions, kv_commits = _versions_by_rules(KEYVAULT_RULES, files)
    client = {v.value for v in ApiVersion}
    kv_all = sorted(kv_versions | client, key=_order)
    stable = [v for v in kv_all if "preview" not in v]
    blob_versions, blob_commits = _versions_by_rules(BLOB_RULES, files)
    blob_client = set(_SUPPORTED_API_VERSIONS)
    blob_recorded = set(listing["recorded"]["blob"]["versions"])
    blob_all = sorted(blob_versions | blob_client | blob_recorded)
    return {
        "_about": (
            "api-versions the sandbox accepts, per ARM resource type and data plane: exactly "
            "the listed ones, anything else is refused. GENERATED by "
            "verify/sandbox/data/api_versions_from_specs.py from spec_listing.json (paths and "
            "commits in Azure/azure-rest-api-specs) and the installed pulumi-azure-native and "
            "azure-keyvault-secrets; edit the listing, not this file. Read by "
            "verify/sandbox/api_versions.py."
        ),
        "arm": arm,
        "keyvault": {
            "latest": max(stable, key=_order),
            "versions": kv_all,
            "sources": [
                f"{listing['repo']}: {len(kv_versions)} data-plane version folders with "
                "secrets (spec_listing.json)",
                f"azure-keyvault-secrets {metadata.version('azure-keyvault-secrets')} ApiVersion "
                f"({len(client)} versions)",
            ],
            "spec_commits": sorted(kv_commits),
            "read": listing["read"],
        },
        "blob": {
            "versions": blob_all,
            "sources": [
                f"{listing['repo']}: {len(blob_versions)} blob.json version folders "
                "(spec_listing.json)",
                f"azure-storage-blob {metadata.version('azure-storage-blob')} "
                f"_SUPPORTED_API_VERSIONS ({len(blob_client)} versions)",
                *listing["recorded"]["blob"]["sources"],
            ],
            "spec_commits": sorted(blob_commits),
            "read": listing["read"],
        },
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render(generate(json.loads(LISTING.read_text())))
    if "--check" in argv:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is not what {LISTING.name} generates; run without --check")
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
