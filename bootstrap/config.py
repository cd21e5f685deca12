"""The bootstrap stack's configuration, read and checked before anything is created.

Every value is validated here (GitHub names that end up inside OIDC subjects, Azure names,
the roles the deployer may hand out) so a typo fails in a second with a ConfigError naming
the key, instead of minutes into a deployment or, worse, as a federated credential whose
subject never matches and a pipeline that cannot log in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi

from bootstrap.administrator import Administrator, parse_administrator
from components import validation
from components.errors import ConfigError
from components.identity import TOKEN_EXCHANGE_AUDIENCE, FederatedCredential
from components.roles import RoleCatalog, RoleDefinition
from components.secrets_provider_key import key_name
from components.state_backend import MAX_RETENTION_DAYS, container_name, storage_account_name

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
# Entra ID accepts at most 20 federated credentials on one identity.
MAX_FEDERATED_CREDENTIALS = 20

_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$")
_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_BRANCH = re.compile(r"^(?!/|.*//|.*\.\.|.*/$|.*\.lock$)[A-Za-z0-9._/-]{1,255}$")
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9._-]{1,255}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,20}[a-z0-9]$")


@dataclass(frozen=True)
class GitHubRepo:
    """Which workflow runs may sign in as the deployer: this repository's main branch,
    its pull requests, and jobs bound to the named environments."""

    owner: str
    repo: str
    branch: str = "main"
    environments: tuple[str, ...] = ("lifecycle",)
    pull_requests: bool = True

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.repo}"

    def subjects(self) -> dict[str, str]:
        """Credential name -> the ``sub`` claim GitHub puts in that run's OIDC token.

        Entra ID compares the subject exactly (case included), so these are built from
        the same strings GitHub uses: ``repo:<owner>/<repo>:ref:refs/heads/<branch>``,
        ``repo:<owner>/<repo>:pull_request``, ``repo:<owner>/<repo>:environment:<name>``.
        """
        base = f"repo:{self.slug}"
        out = {f"github-{_slug(self.branch)}": f"{base}:ref:refs/heads/{self.branch}"}
        if self.pull_requests:
            out["github-pull-request"] = f"{base}:pull_request"
        for env in self.environments:
            out[f"github-env-{_slug(env)}"] = f"{base}:environment:{env}"
        return out

    def federated_credentials(self) -> list[FederatedCredential]:
        return [
            FederatedCredential(name, GITHUB_ISSUER, subject, (TOKEN_EXCHANGE_AUDIENCE,))
            for name, subject in self.subjects().items()
        ]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", text).strip("-").lower() or "x"


@dataclass(frozen=True)
class BootstrapConfig:
    github: GitHubRepo
    workload_resource_groups: tuple[str, ...]
    state_account_name: str
    vault_name: str
    administrator: Administrator
    """Gets the deployer's two data roles, so a human can create stacks and set secrets."""
    location: str = "westeurope"
    name_prefix: str = "mikit"
    assignable_roles: tuple[RoleDefinition, ...] = ()
    state_container_name: str = "pulumi-state"
    state_retention_days: int = 30
    key_name: str = "pulumi-secrets"
    lifecycle_resource_group: str | None = None
    """The workload group the manual lifecycle workflow deploys its throw-away stacks into."""
    lock_deployer: bool = True
    """A ``CanNotDelete`` lock on the deployer identity. It also refuses deleting one of its
    federated credentials (409 ``ScopeLocked``), so removing or renaming a credential is
    one ``pulumi up`` with ``lockDeployer: false`` and the change, then one with it back
    on (docs/deploy-from-ci.md, "The deployer identity's lock")."""
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def cicd_resource_group(self) -> str:
        """Where the deployer, the state account and the vault live: outside every scope
        the deployer holds a role on, so it cannot change its own access."""
        return f"{self.name_prefix}-cicd"

    @property
    def deployer_name(self) -> str:
        return f"{self.name_prefix}-github-deployer"


def _require(raw: Mapping[str, Any], key: str, where: str, example: str) -> Any:
    if raw.get(key) in (None, "", [], {}):
        raise ConfigError(f"{where}{key}", raw.get(key), "is required", f"set it, e.g. {example}")
    return raw[key]


def _str_list(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(key, value, "is not a list", f"write it as a YAML list: {key}: [a, b]")
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(key, value, "has an entry that is not a string", "quote each entry")
    if len(set(value)) != len(value):
        raise ConfigError(key, value, "has duplicates", "list each entry once")
    return tuple(value)


def parse_github(raw: Any) -> GitHubRepo:
    if not isinstance(raw, Mapping):
        raise ConfigError(
            "github", raw, "is not an object", "set github: {owner: <org>, repo: <repository>}"
        )
    owner = _require(raw, "owner", "github.", "owner: my-org")
    if not isinstance(owner, str) or not _OWNER.match(owner):
        raise ConfigError(
            "github.owner",
            owner,
            "is not a GitHub user or organisation name",
            "use 1-39 letters, digits and single hyphens, as in the repository URL",
        )
    repo = _require(raw, "repo", "github.", "repo: managed-identity-kit")
    if not isinstance(repo, str) or not _REPO.match(repo) or repo in (".", ".."):
        raise ConfigError(
            "github.repo",
            repo,
            "is not a GitHub repository name",
            "use the name as in the repository URL (letters, digits, '.', '-', '_')",
        )
    branch = raw.get("branch", "main")
    if not isinstance(branch, str) or not _BRANCH.match(branch):
        raise ConfigError(
            "github.branch",
            branch,
            "is not a branch name",
            "give the deploying branch without refs/heads/, e.g. main",
        )
    envs = _str_list(raw.get("environments", ["lifecycle"]), "github.environments")
    for env in envs:
        if not _ENVIRONMENT.match(env):
            raise ConfigError(
                "github.environments",
                env,
                "is not a usable environment name",
                "use letters, digits, '.', '-' and '_' (it becomes part of the "
                "OIDC subject, which must match exactly)",
            )
    pull_requests = raw.get("pullRequests", True)
    if not isinstance(pull_requests, bool):
        raise ConfigError(
            "github.pullRequests",
            pull_requests,
            "is not true or false",
            "write true to let PR previews sign in, false to refuse them",
        )
    repo_cfg = GitHubRepo(owner, repo, branch, envs, pull_requests)
    if len(repo_cfg.subjects()) > MAX_FEDERATED_CREDENTIALS:
        raise ConfigError(
            "github.environments",
            list(envs),
            "needs more federated credentials "
            f"than Entra ID allows on one identity ({MAX_FEDERATED_CREDENTIALS})",
            "list fewer environments",
        )
    if len(repo_cfg.subjects()) != 1 + int(pull_requests) + len(envs):
        raise ConfigError(
            "github.environments",
            list(envs),
            "has names that differ only in case or punctuation",
            "use environment names that differ in letters",
        )
    return repo_cfg


def parse_assignable_roles(
    raw: Any, catalog: RoleCatalog | None = None
) -> tuple[RoleDefinition, ...]:
    """The data roles the deployer may assign; a privileged role is refused outright,
    since letting the deployer hand it out would undo the whole constraint."""
    catalog = catalog or RoleCatalog.builtin()
    names = _str_list(raw, "assignableRoles")
    if not names:
        raise ConfigError(
            "assignableRoles",
            [],
            "is empty",
            "list the roles the workload stacks grant, e.g. [Key Vault Secrets User]",
        )
    roles = tuple(catalog.get(n, "assignableRoles") for n in names)
    for role in roles:
        if role.privileged:
            raise ConfigError(
                "assignableRoles",
                role.name,
                "is a privileged role",
                "list only data roles such as 'Key Vault Secrets User'; the "
                "deployer must not be able to hand out administrator rights",
            )
    return roles


def parse(raw: Mapping[str, Any]) -> BootstrapConfig:
    """Build the config from the stack's (already JSON-decoded) keys."""
    github = parse_github(raw.get("github"))
    rgs = _str_list(
        _require(raw, "workloadResourceGroups", "", "[mikit-dev, mikit-lifecycle]"),
        "workloadResourceGroups",
    )
    for rg in rgs:
        validation.resource_group_name(rg, "workloadResourceGroups")
    prefix = raw.get("namePrefix", "mikit")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ConfigError(
            "namePrefix",
            prefix,
            "is not a usable name prefix",
            "use 3-22 lower-case letters, digits and hyphens, starting with a letter",
        )
    if f"{prefix}-cicd".lower() in {rg.lower() for rg in rgs}:
        raise ConfigError(
            "workloadResourceGroups",
            f"{prefix}-cicd",
            "is the bootstrap's own resource group",
            "keep the deployer's roles off the group that holds "
            "its identity, state and key; pick another workload group name",
        )
    state = raw.get("state") or {}
    if not isinstance(state, Mapping):
        raise ConfigError("state", state, "is not an object", "set state: {accountName: ...}")
    account = storage_account_name(_require(state, "accountName", "state.", "mikitstate7f3a"))
    container = container_name(state.get("containerName", "pulumi-state"))
    retention = state.get("retentionDays", 30)
    if (
        isinstance(retention, bool)
        or not isinstance(retention, int)
        or not 1 <= retention <= MAX_RETENTION_DAYS
    ):
        raise ConfigError(
            "state.retentionDays",
            retention,
            "is out of range",
            f"give a whole number of days from 1 to {MAX_RETENTION_DAYS}",
        )
    provider = raw.get("secretsProvider") or {}
    if not isinstance(provider, Mapping):
        raise ConfigError(
            "secretsProvider", provider, "is not an object", "set secretsProvider: {vaultName: ...}"
        )
    vault = validation.vault_name(
        _require(provider, "vaultName", "secretsProvider.", "kv-mikit-cicd-7f3a"),
        "secretsProvider.vaultName",
    )
    key = key_name(provider.get("keyName", "pulumi-secrets"))
    location = raw.get("location", "westeurope")
    if not isinstance(location, str) or not re.fullmatch(r"[a-z0-9]{2,40}", location):
        raise ConfigError(
            "location",
            location,
            "is not an Azure region name",
            "use the region's short name, e.g. westeurope",
        )
    lifecycle_rg = raw.get("lifecycleResourceGroup")
    if lifecycle_rg is not None and lifecycle_rg not in rgs:
        raise ConfigError(
            "lifecycleResourceGroup",
            lifecycle_rg,
            "is not one of workloadResourceGroups",
            f"pick one of {list(rgs)} (the deployer has roles only there)",
        )
    lock_deployer = raw.get("lockDeployer", True)
    if not isinstance(lock_deployer, bool):
        raise ConfigError(
            "lockDeployer",
            lock_deployer,
            "is not true or false",
            "write true to keep the deployer identity locked against deletion (the "
            "default), false only while removing or renaming one of its credentials",
        )
    tags = raw.get("tags") or {}
    if not isinstance(tags, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise ConfigError("tags", tags, "is not a map of strings", "write tags: {owner: platform}")
    administrator = parse_administrator(raw.get("administrator"))
    return BootstrapConfig(
        github=github,
        administrator=administrator,
        workload_resource_groups=rgs,
        state_account_name=account,
        vault_name=vault,
        location=location,
        name_prefix=prefix,
        assignable_roles=parse_assignable_roles(
            raw.get("assignableRoles", ["Key Vault Secrets User"])
        ),
        state_container_name=container,
        state_retention_days=retention,
        key_name=key,
        lifecycle_resource_group=lifecycle_rg,
        lock_deployer=lock_deployer,
        tags=dict(tags),
    )


STRUCTURED_KEYS = (
    "github",
    "administrator",
    "workloadResourceGroups",
    "state",
    "secretsProvider",
    "assignableRoles",
    "tags",
    "lockDeployer",  # read as JSON, so `pulumi config set lockDeployer false` is a bool
)
PLAIN_KEYS = ("location", "namePrefix", "lifecycleResourceGroup")


def from_pulumi_config() -> BootstrapConfig:
    """Read the keys from the current stack's config; the region falls back to
    ``azure-native:location`` so one setting serves the provider and this program."""
    cfg = pulumi.Config()
    raw: dict[str, Any] = {}
    for key in STRUCTURED_KEYS:
        value = cfg.get_object(key)
        if value is not None:
            raw[key] = value
    for key in PLAIN_KEYS:
        text = cfg.get(key)
        if text is not None:
            raw[key] = text
    if "location" not in raw:
        provider_location = pulumi.Config("azure-native").get("location")
        if provider_location:
            raw["location"] = provider_location
    return parse(raw)
