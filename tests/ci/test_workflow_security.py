"""The workflows keep the pipeline's security promises, and the checker really checks them.

First the real workflows (and the composite action) must pass every rule in
``workflow_policy``. Then a minimal good workflow passes too, and each of a set of small,
realistic mistakes made to it is caught by the rule meant for it: a checker that never
fires would pass the first half by doing nothing.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from workflow_policy import Workflow, check, load

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTION_FILES = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))
SHA = "8e8c483db84b4bee98b60c0593521ed34d9990e8"
AKS_SERVER_APP = "6dae42f8-4368-4678-94ff-3960e28e3630"  # the AKS Entra server application


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("Run the tests", 1)[1]
    match = re.search(r"```bash\n(.+?)\n```", section, re.DOTALL)
    assert match, "README lost its test command block"
    return match.group(1).strip()


@pytest.mark.parametrize("path", WORKFLOW_FILES + ACTION_FILES, ids=lambda p: p.name)
def test_real_workflows_pass_every_rule(path: Path) -> None:
    violations = check(load(path))
    assert violations == [], "\n".join(map(str, violations))


def _job(path: str, job: str) -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / ".github" / "workflows" / path).read_text())
    return dict(doc["jobs"][job])


def test_the_test_jobs_run_exactly_the_readme_command() -> None:
    command = _readme_test_command()
    assert command == "python -m pip install uv && python -m uv run --locked pytest"
    for workflow in ("pull-request.yml", "deploy.yml"):
        runs = [s.get("run", "").strip() for s in _job(workflow, "test")["steps"]]
        assert command in runs, f"{workflow} test job does not run the README's command"


def test_id_token_is_granted_to_exactly_the_jobs_that_reach_azure() -> None:
    holders = set()
    for path in WORKFLOW_FILES:
        doc = yaml.safe_load(path.read_text())
        for job_id, job in doc["jobs"].items():
            if (job.get("permissions") or {}).get("id-token") == "write":
                holders.add(f"{path.name}:{job_id}")
    assert holders == {"pull-request.yml:preview", "deploy.yml:deploy", "lifecycle.yml:lifecycle"}


def test_each_azure_job_uses_the_subject_its_federated_credential_expects() -> None:
    """PR preview: no environment (subject pull_request); main: no environment (subject
    ref:refs/heads/main); lifecycle: environment `lifecycle` (subject environment:lifecycle)."""
    assert "environment" not in _job("pull-request.yml", "preview")
    assert "environment" not in _job("deploy.yml", "deploy")
    assert _job("lifecycle.yml", "lifecycle")["environment"] == "lifecycle"
    deploy_on = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())[True]
    assert deploy_on == {"push": {"branches": ["main"]}}


def test_the_pulumi_cli_matches_the_locked_sdk() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    sdk = next(p["version"] for p in lock["package"] if p["name"] == "pulumi")
    action = yaml.safe_load((ROOT / ".github/actions/setup-toolchain/action.yml").read_text())
    installs = [s for s in action["runs"]["steps"] if str(s.get("uses", "")).startswith("pulumi/")]
    assert [s["with"]["pulumi-version"] for s in installs] == [sdk]


def test_every_job_running_pulumi_on_a_stack_with_a_cluster_installs_kubelogin_first() -> None:
    """The dev stack (which CI deploys, previews and copies for the lifecycle) makes an AKS
    cluster whose kubeconfig runs `kubelogin get-token`; a runner without kubelogin fails
    the first `pulumi up` that reaches the cluster. The composite action installs a fixed
    kubelogin release through a pinned action, and every Pulumi job asks for it before
    its first Pulumi step."""
    dev = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    assert dev["config"].get("mikit:clusters"), "dev has no cluster: this test has no subject"
    action = yaml.safe_load((ROOT / ".github/actions/setup-toolchain/action.yml").read_text())
    installs = [
        s
        for s in action["runs"]["steps"]
        if str(s.get("uses", "")).startswith("azure/use-kubelogin@")
    ]
    assert len(installs) == 1
    assert re.fullmatch(r"v\d+\.\d+\.\d+", str(installs[0]["with"]["kubelogin-version"]))
    assert installs[0]["if"] == "inputs.kubelogin == 'true'"
    jobs = 0
    for path in WORKFLOW_FILES:
        doc = yaml.safe_load(path.read_text())
        for job_id, job in doc["jobs"].items():
            steps = job.get("steps") or []
            pulumi = [
                i
                for i, s in enumerate(steps)
                if str(s.get("uses", "")).startswith("pulumi/actions@")
                or re.search(r"\bpulumi\s+(up|preview|destroy|refresh)\b", str(s.get("run", "")))
            ]
            if not pulumi:
                continue
            jobs += 1
            setup = [
                i
                for i, s in enumerate(steps)
                if s.get("uses") == "./.github/actions/setup-toolchain"
                and (s.get("with") or {}).get("kubelogin") == "true"
            ]
            assert setup and setup[0] < pulumi[0], (
                f"{path.name}:{job_id} runs Pulumi without kubelogin"
            )
            # kubelogin's azurecli mode reads the az CLI's token for the AKS Entra server
            # application; the CLI cannot renew its OIDC assertion mid-`up`, so it is cached
            # before the first Pulumi step.
            cached = [
                i
                for i, s in enumerate(steps)
                if "az account get-access-token --resource " + AKS_SERVER_APP in str(s.get("run"))
            ]
            assert cached and cached[0] < pulumi[0], f"{path.name}:{job_id} caches no AKS token"
    assert jobs == 3  # preview, deploy, lifecycle


def test_lifecycle_destroys_last_keeps_the_bootstrap_group_and_removes_the_stack() -> None:
    job = _job("lifecycle.yml", "lifecycle")
    destroy = job["steps"][-1]
    script = destroy["run"]
    assert destroy["if"].startswith("always()")
    assert "steps.init.outcome == 'success'" in destroy["if"]
    assert script.index("pulumi destroy") < script.index("pulumi stack rm")
    # A killed `up` leaves its lock and pending creates: cancel, then a
    # refresh that drops pending creates (and forgets what the scenarios deleted behind
    # Pulumi's back), then destroy.
    assert (
        script.index("pulumi cancel")
        < script.index("--clear-pending-creates")
        < script.index("pulumi destroy")
    )
    assert 'pulumi cancel --stack "$STACK" --yes' in script
    assert 'pulumi refresh --stack "$STACK" --yes --skip-preview --clear-pending-creates' in script
    # A pending create Pulumi dropped may have left a resource behind: say what is left,
    # listed at the group (the deployer holds no role on the subscription).
    assert script.index("pulumi stack rm") < script.index(
        'az resource list --resource-group "$LIFECYCLE_RESOURCE_GROUP"'
    )
    # The bootstrap's group is kept because the stack never registers it: it deploys into
    # the group as it is (mikit:createResourceGroup false), set before `pulumi up`. No
    # import/protect/forget dance around the destroy.
    steps = job["steps"]
    up = next(i for i, s in enumerate(steps) if s.get("id") == "up")
    config = "\n".join(str(s.get("run", "")) for s in steps[:up])
    assert 'mikit:resourceGroup "$LIFECYCLE_RESOURCE_GROUP"' in config
    assert "mikit:createResourceGroup false" in config
    whole = yaml.safe_dump(job)
    for dance in ("pulumi import", "pulumi state", "--exclude-protected"):
        assert dance not in whole
    assert "github.run_id" in job["env"]["STACK"]
    init = next(s for s in job["steps"] if s.get("id") == "init")
    assert "--secrets-provider" in init["run"]


def _steps_named(job: dict[str, Any]) -> list[str]:
    return [str(s.get("name") or s.get("uses") or s.get("run")) for s in job["steps"]]


def test_lifecycle_destroy_runs_always_right_after_its_own_fresh_login() -> None:
    """The az login's OIDC assertion expires within minutes and the CLI
    cannot renew it; 150 minutes in, the destroy would run without state access and the
    throw-away stack would leak. The destroy gets a login of its own, under the same
    always() condition, immediately before it; verify gets one after `up`."""
    job = _job("lifecycle.yml", "lifecycle")
    steps = job["steps"]
    destroy, login = steps[-1], steps[-2]
    assert "pulumi destroy" in destroy["run"]
    assert str(login["uses"]).startswith("azure/login@")
    assert login["if"] == destroy["if"] == "always() && steps.init.outcome == 'success'"
    logins = [i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("azure/login@")]
    up = next(i for i, s in enumerate(steps) if s.get("id") == "up")
    verify = next(i for i, s in enumerate(steps) if "verify lifecycle" in str(s.get("run", "")))
    assert any(up < i < verify for i in logins), "verify runs on the login `up` used"
    assert any(i < up for i in logins)
    # The login cannot be skipped by a failed or cancelled step before it.
    assert "always()" in login["if"]


def test_deploy_logs_in_again_before_verify_and_every_job_preflights_first() -> None:
    """Item 6 for deploy.yml; item 3: in each Azure job the first thing after the toolchain
    is the preflight, and a backend preflight runs right after the login, before Pulumi."""
    deploy = _job("deploy.yml", "deploy")["steps"]
    up = next(i for i, s in enumerate(deploy) if (s.get("with") or {}).get("command") == "up")
    verify = next(i for i, s in enumerate(deploy) if "verify check" in str(s.get("run", "")))
    assert str(deploy[verify - 1].get("uses", "")).startswith("azure/login@")
    assert up < verify - 1
    for workflow, job_id in (
        ("deploy.yml", "deploy"),
        ("pull-request.yml", "preview"),
        ("lifecycle.yml", "lifecycle"),
    ):
        steps = _job(workflow, job_id)["steps"]
        runs = [str(s.get("run", "")) for s in steps]
        first_login = next(
            i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("azure/login@")
        )
        offline = [
            i for i, r in enumerate(runs) if "bootstrap.preflight" in r and "--backend" not in r
        ]
        backend = [i for i, r in enumerate(runs) if "bootstrap.preflight" in r and "--backend" in r]
        first_pulumi = min(
            i
            for i, s in enumerate(steps)
            if "pulumi " in runs[i] or (s.get("with") or {}).get("command")
        )
        assert offline == [first_login - 1], f"{workflow}: preflight is not the step before login"
        assert backend == [first_login + 1], f"{workflow}: no backend preflight after login"
        assert backend[0] < first_pulumi
        assert "toJSON(vars)" in str(steps[offline[0]]["env"]["REPOSITORY_VARIABLES"])


# --- the checker against small bad examples ---------------------------------------------------

GOOD: dict[str, Any] = {
    "name": "example",
    "on": {"workflow_dispatch": {}},
    "permissions": {},
    "jobs": {
        "lifecycle": {
            "runs-on": "ubuntu-24.04",
            "timeout-minutes": 60,
            "permissions": {"contents": "read", "id-token": "write"},
            "concurrency": {"group": "pulumi-lifecycle", "cancel-in-progress": False},
            "env": {"STACK": "lc-${{ github.run_id }}", "ARM_USE_OIDC": "true"},
            "steps": [
                {"uses": f"actions/checkout@{SHA}", "with": {"persist-credentials": False}},
                {
                    "uses": f"azure/login@{SHA}",
                    "with": {"client-id": "${{ vars.AZURE_CLIENT_ID }}", "tenant-id": "t"},
                },
                {"id": "up", "run": 'pulumi up --yes --stack "$STACK"'},
                {"uses": f"azure/login@{SHA}", "with": {"client-id": "c"}},
                {"run": "python -m verify lifecycle --target azure"},
                {
                    "uses": f"azure/login@{SHA}",
                    "if": "always() && steps.up.outcome != 'skipped'",
                    "with": {"client-id": "c"},
                },
                {
                    "name": "destroy",
                    "if": "always() && steps.up.outcome != 'skipped'",
                    "run": 'pulumi cancel --yes --stack "$STACK" || true\n'
                    'pulumi refresh --yes --clear-pending-creates --stack "$STACK"\n'
                    'pulumi destroy --yes --remove --stack "$STACK"',
                },
            ],
        },
        "preview": {
            "runs-on": "ubuntu-24.04",
            "timeout-minutes": 30,
            "permissions": {"contents": "read", "id-token": "write", "pull-requests": "write"},
            "concurrency": {"group": "preview-dev", "cancel-in-progress": True},
            "env": {"ARM_USE_OIDC": "true"},
            "steps": [
                {"uses": f"azure/login@{SHA}", "with": {"client-id": "c"}},
                {
                    "uses": f"pulumi/actions@{SHA}",
                    "with": {"command": "preview", "stack-name": "dev", "comment-on-pr": "true"},
                },
            ],
        },
        "publish": {
            "runs-on": "ubuntu-24.04",
            "timeout-minutes": 10,
            "permissions": {"contents": "read", "checks": "write"},
            "steps": [{"uses": f"EnricoMi/publish-unit-test-result-action@{SHA}"}],
        },
    },
}

Mutation = Callable[[dict[str, Any]], None]


def _lc(doc: dict[str, Any]) -> dict[str, Any]:
    job: dict[str, Any] = doc["jobs"]["lifecycle"]
    return job


def _set(path: tuple[Any, ...], value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: tuple[Any, ...]) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _add_step(job: str, step: dict[str, Any], at: int = 1) -> Mutation:
    return lambda doc: doc["jobs"][job]["steps"].insert(at, step)


BAD: list[tuple[str, Mutation, str]] = [
    (
        "client secret from a stored secret",
        _set(("jobs", "lifecycle", "env", "ARM_CLIENT_SECRET"), "${{ secrets.SP_SECRET }}"),
        "no-secrets",
    ),
    (
        "azure/login with creds JSON",
        _set(("jobs", "lifecycle", "steps", 1, "with"), {"creds": "${{ vars.X }}"}),
        "no-secrets",
    ),
    (
        "storage key for the state backend",
        _add_step("lifecycle", {"run": "export AZURE_STORAGE_KEY=abc"}),
        "no-secrets",
    ),
    ("Pulumi Cloud token", _set(("env",), {"PULUMI_ACCESS_TOKEN": "x"}), "no-secrets"),
    ("workflow-wide write-all", _set(("permissions",), "write-all"), "least-privilege"),
    ("workflow without permissions", _delete(("permissions",)), "least-privilege"),
    ("job without permissions", _delete(("jobs", "publish", "permissions")), "least-privilege"),
    (
        "id-token in a job that never logs in",
        _set(("jobs", "publish", "permissions", "id-token"), "write"),
        "least-privilege",
    ),
    (
        "azure/login without id-token",
        _delete(("jobs", "lifecycle", "permissions", "id-token")),
        "least-privilege",
    ),
    (
        "contents: write nobody needs",
        _set(("jobs", "lifecycle", "permissions", "contents"), "write"),
        "least-privilege",
    ),
    (
        "pull-requests: write without a PR comment",
        _set(("jobs", "lifecycle", "permissions", "pull-requests"), "write"),
        "least-privilege",
    ),
    (
        "checks: write outside the publishing job",
        _set(("jobs", "preview", "permissions", "checks"), "write"),
        "least-privilege",
    ),
    ("action on a tag", _set(("jobs", "publish", "steps", 0, "uses"), "x/y@v2"), "pinned"),
    (
        "action on a short SHA",
        _set(("jobs", "publish", "steps", 0, "uses"), "x/y@8e8c483"),
        "pinned",
    ),
    ("action on a branch", _set(("jobs", "publish", "steps", 0, "uses"), "x/y@main"), "pinned"),
    (
        "checkout keeps the token",
        _delete(("jobs", "lifecycle", "steps", 0, "with", "persist-credentials")),
        "checkout",
    ),
    ("pull_request_target", _set(("on",), {"pull_request_target": {}}), "triggers"),
    ("no job timeout", _delete(("jobs", "lifecycle", "timeout-minutes")), "timeouts"),
    ("deploy without concurrency", _delete(("jobs", "lifecycle", "concurrency")), "concurrency"),
    (
        "deploy cancelled mid-run",
        _set(("jobs", "lifecycle", "concurrency", "cancel-in-progress"), True),
        "concurrency",
    ),
    ("preview without concurrency", _delete(("jobs", "preview", "concurrency")), "concurrency"),
    ("provider without OIDC", _delete(("jobs", "lifecycle", "env", "ARM_USE_OIDC")), "oidc"),
    (
        "destroy only on success",
        _delete(("jobs", "lifecycle", "steps", 6, "if")),
        "destroy-always",
    ),
    (
        "destroy only on failure",
        _set(("jobs", "lifecycle", "steps", 6, "if"), "failure()"),
        "destroy-always",
    ),
    ("no destroy at all", lambda doc: _lc(doc)["steps"].pop(6), "destroy-always"),
    (
        "destroy errors ignored",
        _set(("jobs", "lifecycle", "steps", 6, "continue-on-error"), True),
        "destroy-always",
    ),
    (
        "verify on the login that up used",
        lambda doc: _lc(doc)["steps"].pop(3),
        "fresh-login",
    ),
    (
        "destroy without a login of its own",
        lambda doc: _lc(doc)["steps"].pop(5),
        "fresh-login",
    ),
    (
        "destroy's login skipped when a step failed",
        _delete(("jobs", "lifecycle", "steps", 5, "if")),
        "fresh-login",
    ),
    (
        "pulumi before any login",
        lambda doc: _lc(doc)["steps"].insert(1, {"run": "pulumi preview"}),
        "fresh-login",
    ),
    (
        "destroy on a stale lock",
        _set(
            ("jobs", "lifecycle", "steps", 6, "run"),
            "pulumi refresh --yes --clear-pending-creates\npulumi destroy --yes",
        ),
        "stale-lock",
    ),
    (
        "destroy with pending creates",
        _set(
            ("jobs", "lifecycle", "steps", 6, "run"),
            "pulumi cancel --yes\npulumi refresh --yes\npulumi destroy --yes",
        ),
        "stale-lock",
    ),
    (
        "cancel after the destroy",
        _set(
            ("jobs", "lifecycle", "steps", 6, "run"),
            "pulumi refresh --yes --clear-pending-creates\npulumi destroy --yes\n"
            "pulumi cancel --yes",
        ),
        "stale-lock",
    ),
    (
        "pulumi step after the destroy",
        lambda doc: _lc(doc)["steps"].append({"run": "pulumi stack output"}),
        "destroy-always",
    ),
]


def _rules(doc: dict[str, Any]) -> set[str]:
    # Round-trip through YAML text so the checker sees what it would see in a file
    # (including the `on:` key that YAML 1.1 reads as True).
    text = yaml.safe_dump(doc, sort_keys=False).replace("'on':", "on:")
    return {v.rule for v in check(Workflow("example.yml", yaml.safe_load(text)))}


def test_the_good_example_passes() -> None:
    assert _rules(GOOD) == set()


@pytest.mark.parametrize(("mistake", "mutate", "rule"), BAD, ids=[b[0] for b in BAD])
def test_each_mistake_is_caught_by_its_rule(mistake: str, mutate: Mutation, rule: str) -> None:
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    assert rule in _rules(doc), f"{mistake!r} was not caught by {rule}"
