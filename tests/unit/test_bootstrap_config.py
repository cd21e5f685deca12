"""Bootstrap config and the ABAC condition builder, without the Pulumi runtime."""

from __future__ import annotations

from typing import Any

import pytest

from bootstrap.conditions import constrain_role_assignments
from bootstrap.config import GITHUB_ISSUER, GitHubRepo, parse, parse_github
from components.errors import ConfigError

SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
CERT_USER = "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"
ADMIN = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def _raw(**over: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "github": {"owner": "contoso", "repo": "infra"},
        "workloadResourceGroups": ["rg-dev"],
        "state": {"accountName": "contosostate01"},
        "secretsProvider": {"vaultName": "kv-contoso-cicd"},
        "administrator": {"principalId": ADMIN, "principalType": "Group"},
    }
    raw.update(over)
    return raw


def test_defaults_give_main_prs_and_the_lifecycle_environment() -> None:
    cfg = parse(_raw())
    assert cfg.github.subjects() == {
        "github-main": "repo:contoso/infra:ref:refs/heads/main",
        "github-pull-request": "repo:contoso/infra:pull_request",
        "github-env-lifecycle": "repo:contoso/infra:environment:lifecycle",
    }
    assert [r.name for r in cfg.assignable_roles] == ["Key Vault Secrets User"]
    assert cfg.cicd_resource_group == "mikit-cicd"
    assert cfg.deployer_name == "mikit-github-deployer"


def test_subjects_follow_branch_environments_and_the_pr_switch() -> None:
    repo = parse_github(
        {
            "owner": "Contoso",
            "repo": "Infra.Live",
            "branch": "release/v1",
            "environments": ["prod", "staging"],
            "pullRequests": False,
        }
    )
    # Entra ID matches subjects exactly, case included: they keep the config's spelling.
    assert repo.subjects() == {
        "github-release-v1": "repo:Contoso/Infra.Live:ref:refs/heads/release/v1",
        "github-env-prod": "repo:Contoso/Infra.Live:environment:prod",
        "github-env-staging": "repo:Contoso/Infra.Live:environment:staging",
    }
    creds = repo.federated_credentials()
    assert {c.issuer for c in creds} == {GITHUB_ISSUER}
    assert {tuple(c.audiences) for c in creds} == {("api://AzureADTokenExchange",)}


@pytest.mark.parametrize(
    ("github", "field"),
    [
        ("contoso/infra", "github"),
        ({"repo": "infra"}, "github.owner"),
        ({"owner": "-contoso", "repo": "infra"}, "github.owner"),
        ({"owner": "contoso", "repo": "in fra"}, "github.repo"),
        ({"owner": "contoso", "repo": ".."}, "github.repo"),
        ({"owner": "contoso", "repo": "infra", "branch": "refs//heads"}, "github.branch"),
        ({"owner": "contoso", "repo": "infra", "environments": "prod"}, "github.environments"),
        ({"owner": "contoso", "repo": "infra", "environments": ["a:b"]}, "github.environments"),
        (
            {"owner": "contoso", "repo": "infra", "environments": ["Prod", "prod"]},
            "github.environments",
        ),
        (
            {"owner": "contoso", "repo": "infra", "environments": [f"e{i}" for i in range(19)]},
            "github.environments",
        ),
        ({"owner": "contoso", "repo": "infra", "pullRequests": "yes"}, "github.pullRequests"),
    ],
)
def test_bad_github_settings_name_their_key(github: Any, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(_raw(github=github))
    assert info.value.field == field
    assert info.value.fix


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"workloadResourceGroups": []}, "workloadResourceGroups"),
        ({"workloadResourceGroups": "rg-dev"}, "workloadResourceGroups"),
        ({"workloadResourceGroups": ["rg-dev", "rg-dev"]}, "workloadResourceGroups"),
        ({"namePrefix": "X"}, "namePrefix"),
        ({"state": {}}, "state.accountName"),
        ({"state": {"accountName": "contosostate01", "retentionDays": 0}}, "state.retentionDays"),
        ({"state": {"accountName": "ab"}}, "state.accountName"),
        (
            {"state": {"accountName": "contosostate01", "containerName": "Pulumi"}},
            "state.containerName",
        ),
        ({"secretsProvider": {"vaultName": "1kv"}}, "secretsProvider.vaultName"),
        (
            {"secretsProvider": {"vaultName": "kv-contoso", "keyName": "a_b"}},
            "secretsProvider.keyName",
        ),
        ({"location": "West Europe"}, "location"),
        ({"tags": {"a": 1}}, "tags"),
        ({"assignableRoles": []}, "assignableRoles"),
        ({"assignableRoles": ["User Access Administrator"]}, "assignableRoles"),
    ],
)
def test_bad_settings_name_their_key(over: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(_raw(**over))
    assert info.value.field == field


def test_an_unknown_role_suggests_the_closest_names() -> None:
    with pytest.raises(ConfigError) as info:
        parse(_raw(assignableRoles=["Key Vault Secret User"]))
    assert "Key Vault Secrets User" in str(info.value)


def test_a_privileged_role_can_never_become_assignable() -> None:
    with pytest.raises(ConfigError) as info:
        parse(_raw(assignableRoles=["Key Vault Secrets User", "Owner"]))
    assert info.value.value == "Owner"
    assert "privileged" in info.value.problem


def test_condition_covers_write_from_the_request_and_delete_from_the_resource() -> None:
    text = constrain_role_assignments([SECRETS_USER])
    write, delete = text.split("\nAND\n(")
    assert "roleAssignments/write" in write and "roleAssignments/delete" not in write
    assert "@Request[" in write and "@Resource[" not in write
    assert "roleAssignments/delete" in delete and "@Resource[" in delete
    assert "@Request[" not in delete


def test_condition_lists_roles_sorted_and_once_whatever_the_input_order() -> None:
    one = constrain_role_assignments([CERT_USER, SECRETS_USER.upper(), SECRETS_USER])
    other = constrain_role_assignments([SECRETS_USER, CERT_USER])
    assert one == other
    # Sorted (4633... before db79...), not in the order given, each GUID once.
    assert f"GuidEquals {{{CERT_USER}, {SECRETS_USER}}}" not in one
    assert one.count(f"GuidEquals {{{SECRETS_USER}, {CERT_USER}}}") == 2


def test_condition_can_admit_more_principal_types() -> None:
    text = constrain_role_assignments([SECRETS_USER], ["ServicePrincipal", "Group"])
    assert text.count("StringEqualsIgnoreCase {'Group', 'ServicePrincipal'}") == 2


@pytest.mark.parametrize(
    ("roles", "types", "field"),
    [
        ([], ["ServicePrincipal"], "assignableRoles"),
        (["Key Vault Secrets User"], ["ServicePrincipal"], "assignableRoles"),
        ([SECRETS_USER], [], "principalTypes"),
        ([SECRETS_USER], ["Robot"], "principalTypes"),
    ],
)
def test_condition_refuses_bad_input(roles: list[str], types: list[str], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        constrain_role_assignments(roles, types)
    assert info.value.field == field


def test_github_repo_slug() -> None:
    assert GitHubRepo("o", "r").slug == "o/r"


def test_the_administrator_is_read_as_given_and_lower_cased() -> None:
    cfg = parse(_raw(administrator={"principalId": ADMIN.upper(), "principalType": "User"}))
    assert (cfg.administrator.principal_id, cfg.administrator.principal_type) == (ADMIN, "User")


@pytest.mark.parametrize(
    ("administrator", "field", "words"),
    [
        (None, "administrator", "nobody can create the first stack"),
        ("me@contoso.com", "administrator", "nobody can create the first stack"),
        ({"principalType": "User"}, "administrator.principalId", "object ID"),
        (
            {"principalId": "me@contoso.com", "principalType": "User"},
            "administrator.principalId",
            "object ID",
        ),
        (
            {"principalId": "00000000-0000-0000-0000-000000000000", "principalType": "User"},
            "administrator.principalId",
            "nil GUID",
        ),
        ({"principalId": ADMIN}, "administrator.principalType", "User or Group"),
        (
            {"principalId": ADMIN, "principalType": "user"},
            "administrator.principalType",
            "User or Group",
        ),
        (
            {"principalId": ADMIN, "principalType": "ServicePrincipal"},
            "administrator.principalType",
            "User or Group",
        ),
        (
            {"principalId": ADMIN, "principalType": "User", "role": "Owner"},
            "administrator",
            "unknown",
        ),
    ],
)
def test_a_bad_administrator_names_the_field_and_how_to_find_the_id(
    administrator: Any, field: str, words: str
) -> None:
    raw = _raw()
    if administrator is None:
        del raw["administrator"]
    else:
        raw["administrator"] = administrator
    with pytest.raises(ConfigError) as info:
        parse(raw)
    assert info.value.field == field
    assert words in str(info.value)
