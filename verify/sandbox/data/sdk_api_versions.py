"""Read the api-versions per ARM resource type out of downloaded Azure SDK for Python wheels.

Why: Microsoft generates the azure-mgmt-* packages from its REST API specifications, one
sub-package per api-version in the multi-api releases (``azure/mgmt/<pkg>/v2016_10_01/``)
and one version per single-api release (its ``_configuration.py`` default). Reading every
release of a package therefore recovers the versions the specifications define, as a
check on (and refresh of) ``api_versions.json``. Not run in CI: it needs the wheels, which
are downloaded by hand into a scratch folder (never a project dependency), e.g.::

    pip download --no-deps -d /tmp/sdk azure-mgmt-compute==30.6.0 azure-mgmt-keyvault==10.3.1
    python verify/sandbox/data/sdk_api_versions.py /tmp/sdk [SITE_PACKAGES ...] [--merge]

(``SITE_PACKAGES``: installed environments to read as well, such as
``.venv/lib/python3.11/site-packages`` or azure-cli's.)

It prints, per resource type, the versions found and the wheels they came from; with
``--merge`` it adds the versions found to ``api_versions.json`` (it never removes one: a
version the specifications list but no SDK release carried stays) and the wheels to its
``sources``. See ``README.md`` beside this file.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

#: resource type -> (package folder under azure/mgmt, operations class the type is served by,
#: a path fragment the operations must contain). The class decides which api-version
#: sub-packages serve the type: a multi-api release has compute versions without VMs.
TYPES: dict[str, tuple[str, str, str]] = {
    "Microsoft.Compute/virtualMachines": (
        "compute",
        "VirtualMachinesOperations",
        "/virtualMachines/{vmName}",
    ),
    "Microsoft.KeyVault/vaults": ("keyvault", "VaultsOperations", "/vaults/{vaultName}"),
    "Microsoft.KeyVault/deletedVaults": (
        "keyvault",
        "VaultsOperations",
        "/deletedVaults/{vaultName}",
    ),
    "Microsoft.Storage/storageAccounts": (
        "storage",
        "StorageAccountsOperations",
        "/storageAccounts/{accountName}",
    ),
    "Microsoft.Storage/storageAccounts/blobServices": (
        "storage",
        "BlobServicesOperations",
        "/blobServices/",
    ),
    "Microsoft.Storage/storageAccounts/blobServices/containers": (
        "storage",
        "BlobContainersOperations",
        "/containers/{containerName}",
    ),
    "Microsoft.Resources/resourceGroups": (
        "resource",
        "ResourceGroupsOperations",
        "/resourcegroups/{resourceGroupName}",
    ),
    "Microsoft.Resources/subscriptions": (
        "resource",
        "SubscriptionsOperations",
        "/subscriptions/{subscriptionId}",
    ),
    "Microsoft.Authorization/locks": ("resource", "ManagementLocksOperations", "/locks/"),
    "Microsoft.ManagedIdentity/userAssignedIdentities": (
        "msi",
        "UserAssignedIdentitiesOperations",
        "/userAssignedIdentities/{resourceName}",
    ),
    "Microsoft.Authorization/roleAssignments": (
        "authorization",
        "RoleAssignmentsOperations",
        "/roleAssignments/",
    ),
    "Microsoft.Authorization/roleDefinitions": (
        "authorization",
        "RoleDefinitionsOperations",
        "/roleDefinitions/",
    ),
}
_FOLDER = re.compile(r"^v(\d{4})_(\d{2})_(\d{2})(_preview)?$")
_LITERAL = re.compile(r'pop\(\s*"api-version",\s*"([^"]+)"\s*\)')
_DEFAULT = re.compile(r'api_version[^=\n]*=\s*kwargs\.pop\(\s*"api_version",\s*"([^"]+)"\s*\)')


def _version_of(folder: str) -> str | None:
    m = _FOLDER.match(folder)
    if not m:
        return None
    return f"{m[1]}-{m[2]}-{m[3]}" + ("-preview" if m[4] else "")


def _operations(texts: dict[str, str], prefix: str, class_: str, fragment: str) -> bool:
    """Whether the operations under ``prefix`` define ``class_`` serving ``fragment``."""
    for name, text in texts.items():
        if name.startswith(prefix) and f"class {class_}" in text and fragment in text:
            return True
    return False


def _wanted(name: str) -> bool:
    return (
        name.endswith(".py")
        and "/aio/" not in name
        and ("operations" in name or "_configuration" in name)
    )


def wheel_texts(path: Path) -> dict[str, str]:
    """The operations and configuration modules of one wheel, by path inside it."""
    with zipfile.ZipFile(path) as wheel:
        return {n: wheel.read(n).decode("utf-8", "replace") for n in wheel.namelist() if _wanted(n)}


def installed_texts(site_packages: Path) -> dict[str, str]:
    """The same for an installed environment (``.venv``'s or azure-cli's site-packages)."""
    texts: dict[str, str] = {}
    for file in (site_packages / "azure" / "mgmt").rglob("*.py"):
        name = file.relative_to(site_packages).as_posix()
        if _wanted(name):
            texts[name] = file.read_text(errors="replace")
    return texts


def _snake(class_: str) -> str:
    name = class_.removesuffix("Operations")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _builder_versions(texts: dict[str, str], prefix: str, class_: str, fragment: str) -> set[str]:
    """Versions named by the request builders of ``class_`` whose URL holds ``fragment``.

    Single-api releases pin each builder's version (TypeSpec-generated ones pin it per
    operation, older ones defer to the configuration's default, ``None`` here).
    """
    found: set[str] = set()
    prefixed = re.compile(rf"\ndef build_{_snake(class_)}_\w+\(")
    for name, text in texts.items():
        if not name.startswith(prefix) or f"class {class_}" not in text:
            continue
        # One operations group per module (older generators): its builders carry no prefix.
        alone = len(re.findall(r"\nclass \w+Operations\b", text)) == 1
        start = re.compile(r"\ndef build_\w+\(") if alone else prefixed
        for match in start.finditer(text):
            end = min(
                (
                    i
                    for i in (text.find("\ndef ", match.end()), text.find("\nclass ", match.end()))
                    if i >= 0
                ),
                default=len(text),
            )
            body = text[match.start() : end]
            if fragment not in body:
                continue
            literal = _LITERAL.search(body)
            found.add(literal.group(1) if literal else "")
    return found


def read_texts(texts: dict[str, str]) -> dict[str, set[str]]:
    """{resource type: versions} that one package set carries."""
    found: dict[str, set[str]] = defaultdict(set)
    for type_, (pkg, class_, fragment) in TYPES.items():
        roots = {n.split("/operations/")[0] for n in texts if n.startswith(f"azure/mgmt/{pkg}/")}
        for root in sorted(roots):
            ops = root + "/operations/"
            if not _operations(texts, ops, class_, fragment):
                continue
            version = _version_of(root.rsplit("/", 1)[-1])
            if version is not None:  # a multi-api release's sub-package
                found[type_].add(version)
                continue
            versions = _builder_versions(texts, ops, class_, fragment)
            if "" in versions:  # builders that take the client's configured default
                versions.discard("")
                match = _DEFAULT.search(texts.get(f"{root}/_configuration.py", ""))
                if match is not None:
                    versions.add(match.group(1))
            found[type_] |= versions
    return found


def main(argv: list[str]) -> int:
    if not argv or not Path(argv[0]).is_dir():
        print(__doc__)
        return 2
    merged: dict[str, set[str]] = defaultdict(set)
    origin: dict[str, set[str]] = defaultdict(set)
    sets = [(w.name.split("-py3")[0], wheel_texts(w)) for w in sorted(Path(argv[0]).rglob("*.whl"))]
    for extra in argv[1:]:  # installed environments: their site-packages folders
        if not extra.startswith("--"):
            sets.append((f"installed {extra}", installed_texts(Path(extra))))
    for label, texts in sets:
        for type_, versions in read_texts(texts).items():
            merged[type_] |= versions
            origin[type_].add(label)
    for type_ in sorted(merged):
        print(f"{type_}: {len(merged[type_])} {sorted(merged[type_])}")
        print(f"  from {', '.join(sorted(origin[type_]))}")
    if "--merge" in argv:
        data_path = Path(__file__).with_name("api_versions.json")
        data = json.loads(data_path.read_text())
        for type_, versions in merged.items():
            entry = data["arm"].setdefault(type_, {"versions": [], "sources": []})
            entry["versions"] = sorted(set(entry["versions"]) | versions)
            note = "azure-sdk-for-python wheels: " + ", ".join(sorted(origin[type_]))
            if note not in entry["sources"]:
                entry["sources"].append(note)
        data_path.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
