"""Print the exact commands that take a fresh bootstrap to a first CI deployment.

``python -m bootstrap.next_steps`` (right after ``pulumi up`` in ``bootstrap/``, while the
CLI still points at the bootstrap's own state) reads the bootstrap's stack outputs and the
workload stack files, and prints steps 2-6 of :mod:`bootstrap.sequence` with every value
filled in: the state account, the backend URL, the secrets-provider key, one ``config set
--secret`` per ``mikit:secrets`` entry, the repository variables. Generated rather than
written in the docs so a value can never be copied wrong; docs/deploy-from-ci.md shows the same
sequence and a test keeps the two in step.

Secret values never appear in a command: ``pulumi config set --secret <key>`` without a
value prompts for it (or reads it from stdin), so it stays out of shell history.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bootstrap.sequence import COMMIT, ENABLE, LOGIN, SECRETS, STACK_INIT, SequenceStep
from components.errors import ConfigError
from components.mockruntime import load_stack_config
from components.stack_config import secret_config_keys, secret_value_key

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ("pull-request.yml", "deploy.yml", "lifecycle.yml")
#: Outputs of the bootstrap stack this generator needs (see bootstrap/program.py: export).
REQUIRED_OUTPUTS = ("github_variables", "github_repository", "github_environments")
#: Keys of ``github_variables`` the commands use.
REQUIRED_VARIABLES = (
    "PULUMI_BACKEND_URL",
    "PULUMI_STATE_STORAGE_ACCOUNT",
    "PULUMI_SECRETS_PROVIDER",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_SUBSCRIPTION_ID",
)


@dataclass(frozen=True)
class Step:
    """One step of the sequence with the commands that perform it."""

    step: SequenceStep
    commands: tuple[str, ...]
    notes: tuple[str, ...] = ()


def _q(value: str) -> str:
    return shlex.quote(value)


def _secret_key(name: str) -> str:
    """A full key (``mikit:...``, from :func:`stack_secrets`) as it is; a bare secret name
    as its ``mikit:secret-<name>`` key."""
    return name if name.startswith("mikit:") else f"mikit:{secret_value_key(name)}"


def ci_stacks(root: Path = ROOT) -> list[str]:
    """The stacks the deploy workflow's matrix deploys: the ones that need steps 2-5."""
    doc = yaml.safe_load((root / ".github" / "workflows" / "deploy.yml").read_text())
    return [str(s) for s in doc["jobs"]["deploy"]["strategy"]["matrix"]["stack"]]


def _checked_outputs(outputs: Mapping[str, Any]) -> dict[str, str]:
    missing = [k for k in REQUIRED_OUTPUTS if k not in outputs]
    if missing:
        raise ConfigError(
            "bootstrap outputs",
            sorted(outputs),
            f"lack {', '.join(missing)}",
            "run `pulumi up` in bootstrap/ with this version of the bootstrap first",
        )
    variables = outputs["github_variables"]
    if not isinstance(variables, Mapping):
        raise ConfigError("github_variables", variables, "is not an object", "re-run the bootstrap")
    absent = [k for k in REQUIRED_VARIABLES if not variables.get(k)]
    if absent:
        raise ConfigError(
            "github_variables",
            sorted(variables),
            f"lack {', '.join(absent)}",
            "re-run `pulumi up` in bootstrap/",
        )
    return {str(k): str(v) for k, v in variables.items()}


def stack_secrets(stack: str, root: Path = ROOT) -> list[str]:
    """The secret-config keys of ``stacks/Pulumi.<stack>.yaml`` (``mikit:secret-<name>`` per
    ``mikit:secrets`` entry, ``mikit:blob-...`` per seeded blob): each needs a value."""
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise ConfigError(
            "--stack",
            stack,
            f"has no stack file {path.relative_to(root)}",
            "add stacks/Pulumi.<stack>.yaml first (docs/deploy-from-ci.md: Adding a stack)",
        )
    return secret_config_keys(load_stack_config(path))


def generate(outputs: Mapping[str, Any], stacks: Mapping[str, Sequence[str]]) -> list[Step]:
    """Steps 2-6 for ``stacks`` (stack name -> its secret names), from the bootstrap outputs."""
    variables = _checked_outputs(outputs)
    repo = str(outputs["github_repository"])
    account = variables["PULUMI_STATE_STORAGE_ACCOUNT"]
    backend = variables["PULUMI_BACKEND_URL"]
    provider = variables["PULUMI_SECRETS_PROVIDER"]
    steps = [
        Step(
            LOGIN,
            (
                f"export AZURE_STORAGE_ACCOUNT={_q(account)}",
                "export AZURE_KEYVAULT_AUTH_VIA_CLI=true",
                f"pulumi login {_q(backend)}",
            ),
            (
                "signed in with `az login` as the administrator (or a member of the group)",
                "a 403 AuthorizationPermissionMismatch right after step 1: role assignments "
                "take a few minutes to apply; wait and run it again",
            ),
        ),
        Step(
            STACK_INIT,
            tuple(
                f"pulumi stack init {_q(stack)} --secrets-provider {_q(provider)}"
                for stack in stacks
            ),
            ("from the repository root (where Pulumi.yaml is)",),
        ),
        Step(
            SECRETS,
            tuple(
                f"pulumi config set --stack {_q(stack)} --secret {_q(_secret_key(name))}"
                for stack, names in stacks.items()
                for name in names
            ),
            ("each prompts for its value (or reads it from stdin); no value on the command line",),
        ),
        Step(
            COMMIT,
            (
                *(f"python -m bootstrap.preflight --stack {_q(stack)}" for stack in stacks),
                "git add " + " ".join(_q(f"stacks/Pulumi.{stack}.yaml") for stack in stacks),
                "git commit -m " + _q("stacks: Key Vault secrets provider and encrypted secrets"),
            ),
            ("preflight checks offline what the workflows check first",),
        ),
        Step(
            ENABLE,
            (
                *(
                    f"gh variable set {_q(name)} --repo {_q(repo)} --body {_q(value)}"
                    for name, value in sorted(variables.items())
                ),
                *(
                    f"gh api --method PUT repos/{repo}/environments/{_q(env)}"
                    for env in outputs["github_environments"]
                ),
                *(f"gh workflow enable {name} --repo {_q(repo)}" for name in WORKFLOWS),
                "git push",
            ),
            (
                "then add required reviewers to each environment (Settings -> Environments)",
                "the push to main starts deploy.yml: pulumi up + verify check",
                "back to the bootstrap's own state later: `pulumi login --local`",
            ),
        ),
    ]
    return steps


def render(steps: Sequence[Step]) -> str:
    """The steps as a commented shell transcript, in order."""
    lines = ["# step 1 (run the bootstrap): done; these are steps 2-6, run them in order."]
    for item in steps:
        lines.append("")
        lines.append(f"# {item.step.label()} -- {item.step.who}")
        lines.extend(f"#   {note}" for note in item.notes)
        lines.extend(item.commands)
    return "\n".join(lines) + "\n"


def read_bootstrap_outputs(stack: str = "ci", cwd: Path = ROOT / "bootstrap") -> dict[str, Any]:
    """``pulumi stack output --json`` of the bootstrap stack (nothing in it is secret)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise ConfigError(
            "pulumi", None, "is not on PATH", "install the Pulumi CLI, or pass --outputs <file>"
        )
    done = subprocess.run(  # noqa: S603 -- fixed argv, no shell
        [pulumi, "stack", "output", "--json", "--stack", stack],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise ConfigError(
            "--bootstrap-stack",
            stack,
            f"outputs could not be read: {done.stderr.strip()[:300]}",
            "run this right after `pulumi up` in bootstrap/, before `pulumi login azblob://` "
            "(or `pulumi login --local` first), or pass --outputs <file>",
        )
    data = json.loads(done.stdout)
    if not isinstance(data, dict):
        raise ConfigError("--bootstrap-stack", stack, "printed outputs that are not an object", "")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bootstrap.next_steps",
        description="Print steps 2-6 of the first deployment, filled in from the bootstrap.",
    )
    parser.add_argument(
        "--stack",
        action="append",
        help="workload stack to prepare (repeatable; default: deploy.yml's matrix)",
    )
    parser.add_argument("--outputs", type=Path, help="saved `pulumi stack output --json`")
    parser.add_argument("--bootstrap-stack", default="ci")
    args = parser.parse_args(argv)
    try:
        outputs = (
            json.loads(args.outputs.read_text(encoding="utf-8"))
            if args.outputs
            else read_bootstrap_outputs(args.bootstrap_stack)
        )
        stacks = {s: stack_secrets(s) for s in (args.stack or ci_stacks())}
        sys.stdout.write(render(generate(outputs, stacks)))
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
