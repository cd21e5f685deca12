"""The first-deployment sequence: the commands generated from the bootstrap's outputs, and
the preflight the workflows run first to say which step is missing.

The generator is fed the outputs of the real bootstrap program run in Pulumi's mock
runtime, so a renamed output or a changed scope breaks these tests, not a new
administrator's first afternoon. The preflight runs on stack-file fixtures that each miss
one step, and on the repository's own dev stack file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from bootstrap import next_steps, preflight
from bootstrap.sequence import SEQUENCE
from components.roles import RoleCatalog
from components.testing import InMemoryArm, load_stack_config, run_program
from tests.unit.test_bootstrap_program import (
    ADMIN,
    CONTAINER,
    KEY,
    PROGRAM,
    PROJECT,
    ROLE_ASSIGNMENT,
    STACK_FILE,
    BootstrapMocks,
)

ROOT = Path(__file__).resolve().parents[2]
DEV_SECRETS = ["app-db-password", "api-key", "reports-token", "break-glass"]
# The dev topology's seeded blobs: their contents are secret config too.
DEV_BLOB_KEYS = [
    "mikit:blob-data-reports-q1-summary-csv",
    "mikit:blob-data-reports-private-payroll-csv",
    "mikit:blob-data-archive-2025-ledger-csv",
    "mikit:blob-data-archive-keys-break-glass-txt",
]


@pytest.fixture(scope="module")
def bootstrap() -> tuple[dict[str, Any], BootstrapMocks]:
    mocks = BootstrapMocks(InMemoryArm())
    outputs = run_program(
        PROGRAM, load_stack_config(STACK_FILE), mocks=mocks, project=PROJECT, stack="ci"
    )
    # What `pulumi stack output --json` prints: plain JSON.
    return json.loads(json.dumps(dict(outputs))), mocks


def _commands(steps: list[next_steps.Step]) -> list[str]:
    return [c for s in steps for c in s.commands]


def test_the_generated_sequence_is_steps_2_to_6_in_order_with_every_value_filled_in(
    bootstrap: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    outputs, _ = bootstrap
    steps = next_steps.generate(outputs, {"dev": next_steps.stack_secrets("dev")})
    assert [s.step.number for s in steps] == [2, 3, 4, 5, 6]
    provider = "azurekeyvault://kv-mikit-cicd-0000.vault.azure.net/keys/pulumi-secrets"
    assert steps[0].commands == (
        "export AZURE_STORAGE_ACCOUNT=mikitstate0000",
        "export AZURE_KEYVAULT_AUTH_VIA_CLI=true",
        "pulumi login azblob://pulumi-state",
    )
    assert steps[1].commands == (f"pulumi stack init dev --secrets-provider {provider}",)
    assert steps[2].commands == tuple(
        f"pulumi config set --stack dev --secret mikit:secret-{name}" for name in DEV_SECRETS
    ) + tuple(f"pulumi config set --stack dev --secret {key}" for key in DEV_BLOB_KEYS)
    assert steps[3].commands == (
        "python -m bootstrap.preflight --stack dev",
        "git add stacks/Pulumi.dev.yaml",
        "git commit -m 'stacks: Key Vault secrets provider and encrypted secrets'",
    )
    enable = steps[4].commands
    variables = outputs["github_variables"]
    repo = "your-org/managed-identity-kit"
    for name, value in variables.items():
        assert f"gh variable set {name} --repo {repo} --body {value}" in enable
    assert f"gh api --method PUT repos/{repo}/environments/lifecycle" in enable
    assert [c for c in enable if c.startswith("gh workflow enable")] == [
        f"gh workflow enable {w} --repo {repo}" for w in next_steps.WORKFLOWS
    ]
    assert enable[-1] == "git push"  # the push that starts deploy.yml comes last
    # No secret value is ever on a command line: config set prompts for it.
    assert not any("test-value" in c or "'" in c.split("--secret")[-1] for c in steps[2].commands)


def test_no_generated_step_needs_a_permission_nobody_has(
    bootstrap: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    """The account the administrator logs in to, and the key its stack wraps with, are
    exactly the container and key the bootstrap granted the administrator roles on."""
    outputs, mocks = bootstrap
    steps = next_steps.generate(outputs, {"dev": DEV_SECRETS})
    catalog = RoleCatalog.builtin()
    admin = {
        catalog.get(r.inputs["roleDefinitionId"]).name: r.inputs["scope"]
        for r in mocks.of_type(ROLE_ASSIGNMENT)
        if r.inputs["principalId"] == ADMIN
    }
    container = mocks.of_type(CONTAINER)[0].id
    key = mocks.of_type(KEY)[0].id
    assert admin == {"Storage Blob Data Contributor": container, "Key Vault Crypto User": key}
    account = re.search(
        r"storageAccounts/([^/]+)/blobServices/default/containers/([^/]+)$", container
    )
    assert account
    assert f"export AZURE_STORAGE_ACCOUNT={account[1]}" in steps[0].commands
    assert f"pulumi login azblob://{account[2]}" in steps[0].commands
    vault, key_name = re.search(r"vaults/([^/]+)/keys/([^/]+)$", key).groups()  # type: ignore[union-attr]
    assert steps[1].commands[0].endswith(f"azurekeyvault://{vault}.vault.azure.net/keys/{key_name}")
    # Each step says who runs it with which permission, from the one sequence definition.
    assert [s.step for s in steps] == list(SEQUENCE[1:])
    assert all(s.step.who for s in steps)


def test_the_cli_prints_the_transcript_from_saved_outputs(
    bootstrap: tuple[dict[str, Any], BootstrapMocks],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outputs, _ = bootstrap
    saved = tmp_path / "bootstrap-outputs.json"
    saved.write_text(json.dumps(outputs))
    assert next_steps.main(["--outputs", str(saved)]) == 0  # stacks from deploy.yml's matrix
    text = capsys.readouterr().out
    labels = [line for line in text.splitlines() if line.startswith("# step ")]
    assert [label.split(" (")[0] for label in labels[1:]] == [
        "# step 2",
        "# step 3",
        "# step 4",
        "# step 5",
        "# step 6",
    ]
    assert (
        text.index("pulumi login")
        < text.index("pulumi stack init dev")
        < text.index("pulumi config set --stack dev --secret mikit:secret-app-db-password")
        < text.index("git commit")
        < text.index("gh variable set")
        < text.index("git push")
    )


def test_outputs_of_an_older_bootstrap_are_refused_by_name(
    bootstrap: tuple[dict[str, Any], BootstrapMocks],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outputs, _ = bootstrap
    old = {k: v for k, v in outputs.items() if k != "github_repository"}
    saved = tmp_path / "old.json"
    saved.write_text(json.dumps(old))
    assert next_steps.main(["--outputs", str(saved), "--stack", "dev"]) == 2
    err = capsys.readouterr().err
    assert "github_repository" in err
    assert "Traceback" not in err
    assert next_steps.main(["--outputs", str(saved), "--stack", "nope"]) == 2
    assert "stacks/Pulumi.nope.yaml" in capsys.readouterr().err


DEPLOY_FROM_CI = ROOT / "docs" / "deploy-from-ci.md"


def _deploy_from_ci_section() -> str:
    page = DEPLOY_FROM_CI.read_text()
    return page.split("<!-- section:ci -->", 1)[1].split("<!-- /section:ci -->", 1)[0]


def test_the_documented_deploy_from_ci_is_the_same_sequence_in_the_same_order(
    bootstrap: tuple[dict[str, Any], BootstrapMocks],
) -> None:
    """docs/deploy-from-ci.md's numbered steps are the sequence's titles, in order; its
    command blocks hold the commands the generator prints for the example config, verbatim
    and in order."""
    section = _deploy_from_ci_section()
    headings = re.findall(r"^### (\d)\. (.+)$", section, re.MULTILINE)
    assert [(int(n), t.strip()) for n, t in headings] == [
        (s.number, s.title[0].upper() + s.title[1:]) for s in SEQUENCE
    ]
    steps_text = section[section.index("### 1. ") : section.index("## What each workflow does")]
    outputs, _ = bootstrap
    generated = next_steps.generate(outputs, {"dev": next_steps.stack_secrets("dev")})
    expected = [
        *(c for s in generated[:4] for c in s.commands),  # steps 2-5 verbatim
        *(c for c in generated[4].commands if not c.startswith("gh variable set")),
    ]
    positions = []
    for command in expected:
        assert command in steps_text, f"the docs lack the generated command {command!r}"
        positions.append(steps_text.index(command))
    assert positions == sorted(positions), "the docs list the sequence out of order"
    # Step 1 comes first: the bootstrap's `pulumi up`, then the generator.
    assert steps_text.index("pulumi up") < steps_text.index("python -m bootstrap.next_steps")
    assert steps_text.index("python -m bootstrap.next_steps") < positions[0]


# --- preflight ----------------------------------------------------------------------------

VARIABLES = {
    "AZURE_CLIENT_ID": "c",
    "AZURE_TENANT_ID": "t",
    "AZURE_SUBSCRIPTION_ID": "s",
    "PULUMI_BACKEND_URL": "azblob://pulumi-state",
    "PULUMI_STATE_STORAGE_ACCOUNT": "mikitstate0000",
    "PULUMI_SECRETS_PROVIDER": "azurekeyvault://kv-mikit-cicd-0000.vault.azure.net/keys/pulumi-secrets",
}
GOOD_FILE: dict[str, Any] = {
    "secretsprovider": VARIABLES["PULUMI_SECRETS_PROVIDER"],
    "encryptedkey": "ZXhhbXBsZS13cmFwcGVkLWtleQ==",
    "config": {
        "mikit:resourceGroup": "rg-mikit-dev",
        "mikit:secrets": ["app-db-password", "api-key"],
        "mikit:secret-app-db-password": {"secure": "v1:AAAA"},
        "mikit:secret-api-key": {"secure": "v1:BBBB"},
    },
}


def _root(tmp_path: Path, doc: Mapping[str, Any] | None, stack: str = "dev") -> Path:
    (tmp_path / "stacks").mkdir(exist_ok=True)
    if doc is not None:
        (tmp_path / "stacks" / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(dict(doc)))
    return tmp_path


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD_FILE))
    node = doc
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return doc


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD_FILE))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return doc


def test_a_completed_sequence_passes(tmp_path: Path) -> None:
    root = _root(tmp_path, GOOD_FILE)
    assert (
        preflight.run("dev", root=root, variables=VARIABLES, backend=True, lister=lambda _: ["dev"])
        == []
    )


@pytest.mark.parametrize(
    ("doc", "step", "words"),
    [
        (None, 5, "stacks/Pulumi.dev.yaml is not in the repository"),
        (_without(("secretsprovider",)), 3, "has no secretsprovider"),
        (_with(("secretsprovider",), "passphrase"), 3, "not the bootstrap's Key Vault key"),
        (
            _with(("secretsprovider",), "azurekeyvault://other.vault.azure.net/keys/k"),
            3,
            "the deployer may use only",
        ),
        (_without(("encryptedkey",)), 3, "has no encryptedkey"),
        (_without(("config", "mikit:secret-api-key")), 4, "has no value for mikit:secret-api-key"),
        (_with(("config", "mikit:secret-api-key"), "hunter2"), 4, "in clear text"),
        (_with(("config", "mikit:secret-api-key"), {"secure": ""}), 4, "in clear text"),
    ],
    ids=[
        "no stack file",
        "no secretsprovider",
        "passphrase provider",
        "another key",
        "no encryptedkey",
        "secret unset",
        "secret in clear",
        "empty ciphertext",
    ],
)
def test_each_missing_step_is_named_with_its_fix(
    tmp_path: Path, doc: dict[str, Any] | None, step: int, words: str
) -> None:
    root = _root(tmp_path, doc)
    findings = preflight.run("dev", root=root, variables=VARIABLES)
    assert [f.step.number for f in findings] == [step]
    assert words in findings[0].problem
    assert findings[0].fix
    assert "hunter2" not in str(findings[0])  # a clear-text secret is never echoed


def test_missing_repository_variables_point_at_step_6(tmp_path: Path) -> None:
    root = _root(tmp_path, GOOD_FILE)
    variables = {**VARIABLES, "AZURE_CLIENT_ID": "", "PULUMI_BACKEND_URL": None}
    findings = preflight.run(
        "dev",
        root=root,
        variables=variables,
        required_variables=(*preflight.JOB_VARIABLES, "LIFECYCLE_RESOURCE_GROUP"),
    )
    assert [(f.step.number, f.problem) for f in findings] == [
        (6, "repository variable AZURE_CLIENT_ID is not set"),
        (6, "repository variable PULUMI_BACKEND_URL is not set"),
        (6, "repository variable LIFECYCLE_RESOURCE_GROUP is not set"),
    ]


def test_a_stack_that_was_never_initialised_in_the_backend_points_at_step_3(tmp_path: Path) -> None:
    root = _root(tmp_path, GOOD_FILE)
    findings = preflight.run(
        "dev", root=root, backend=True, lister=lambda _: ["prod", "lifecycle-1-1"]
    )
    assert [f.step.number for f in findings] == [3]
    assert "does not exist in the state backend" in findings[0].problem
    assert "pulumi stack init dev --secrets-provider" in findings[0].fix
    # Fully qualified names (organization/<project>/<stack>) count as the stack too.
    assert (
        preflight.run(
            "dev",
            root=root,
            backend=True,
            lister=lambda _: ["organization/managed-identity-kit/dev"],
        )
        == []
    )


def test_a_backend_that_cannot_be_listed_points_at_the_login(tmp_path: Path) -> None:
    def refuse(_: Path) -> list[str]:
        raise RuntimeError("AuthorizationPermissionMismatch")

    findings = preflight.run("dev", root=_root(tmp_path, GOOD_FILE), backend=True, lister=refuse)
    assert [f.step.number for f in findings] == [2]
    assert "AuthorizationPermissionMismatch" in findings[0].problem


def test_findings_come_in_sequence_order(tmp_path: Path) -> None:
    doc = _without(("encryptedkey",))
    doc["config"].pop("mikit:secret-app-db-password")
    findings = preflight.run(
        "dev",
        root=_root(tmp_path, doc),
        variables={**VARIABLES, "AZURE_TENANT_ID": ""},
        backend=True,
        lister=lambda _: [],
    )
    assert [f.step.number for f in findings] == [3, 3, 4, 6]


def test_the_repositorys_dev_stack_file_is_not_initialised_yet_and_preflight_says_so() -> None:
    """Until an administrator runs steps 3-5, the first deploy run stops at the preflight
    with these findings instead of failing inside pulumi/actions."""
    findings = preflight.run("dev", variables=VARIABLES)
    assert {(f.step.number, f.problem.split(" (")[0]) for f in findings} == {
        (3, "stacks/Pulumi.dev.yaml has no secretsprovider"),
        (3, "stacks/Pulumi.dev.yaml has no encryptedkey"),
        *{(4, f"stacks/Pulumi.dev.yaml has no value for mikit:secret-{n}") for n in DEV_SECRETS},
        *{(4, f"stacks/Pulumi.dev.yaml has no value for {key}") for key in DEV_BLOB_KEYS},
    }


def test_the_cli_exit_codes_and_github_annotations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(preflight, "ROOT", _root(tmp_path, _without(("encryptedkey",))))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    code = preflight.main(["--stack", "dev", "--variables-json", json.dumps(VARIABLES)])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith(
        "::error title=preflight dev: step 3 (create the stack with the Key Vault "
        "secrets provider)::"
    )
    assert preflight.main(["--stack", "dev", "--variables-json", "not json"]) == 2
    assert "toJSON(vars)" in capsys.readouterr().err
