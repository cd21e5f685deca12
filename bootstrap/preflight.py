"""Preflight: say which step of the first-deployment sequence is missing, before Pulumi runs.

pulumi/actions *selects* a stack; it does not create one. Without this check a job whose
stack was never initialised, whose stack file lacks ``secretsprovider``/``encryptedkey``
(so Pulumi would fall back to a passphrase CI does not have), or that lacks a
``mikit:secret-*`` value fails minutes later with an error that names none of that. Here
each finding names its step of :mod:`bootstrap.sequence` and the command that fixes it.

Offline checks (no credentials, run before the Azure login):

* the repository variables the jobs read are set (``--variables-json``, from the workflow's
  ``${{ toJSON(vars) }}``): step 6;
* ``stacks/Pulumi.<stack>.yaml`` exists: step 5 (commit) or "Adding a stack";
* it has ``secretsprovider: azurekeyvault://...`` (the bootstrap's key when known) and an
  ``encryptedkey``: step 3, then step 5;
* every name in ``mikit:secrets`` has an encrypted ``mikit:secret-<name>``, and every seeded
  blob of ``mikit:storageAccounts`` its ``mikit:blob-...`` content: step 4 (a clear text
  value is refused too: it is in git, so it must be rotated).

With ``--backend`` (after the login): the stack exists in the state backend
(``pulumi stack ls --json``): step 3.

Exit 0 when every check passes, 1 with one line per finding (as GitHub ``::error``
annotations in Actions), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bootstrap.sequence import COMMIT, ENABLE, LOGIN, SECRETS, STACK_INIT, SequenceStep
from components.stack_config import secret_config_keys

ROOT = Path(__file__).resolve().parents[1]
PROVIDER_SCHEME = "azurekeyvault://"

#: Repository variables every Azure job reads (bootstrap output ``github_variables``).
JOB_VARIABLES = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_SUBSCRIPTION_ID",
    "PULUMI_BACKEND_URL",
    "PULUMI_STATE_STORAGE_ACCOUNT",
    "PULUMI_SECRETS_PROVIDER",
)


@dataclass(frozen=True)
class Finding:
    """One missing piece: the step it belongs to, what is wrong, and the fixing command."""

    step: SequenceStep
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.step.label()} is missing: {self.problem}. Fix: {self.fix}"


StackLister = Callable[[Path], list[str]]


def check_variables(variables: Mapping[str, Any], required: Sequence[str]) -> list[Finding]:
    missing = [name for name in required if not str(variables.get(name) or "").strip()]
    return [
        Finding(
            ENABLE,
            f"repository variable {name} is not set",
            "set it from the bootstrap's `pulumi stack output github_variables` "
            f"(`gh variable set {name} --body <value>`; python -m bootstrap.next_steps prints it)",
        )
        for name in missing
    ]


def _read_stack_file(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return doc if isinstance(doc, dict) else {}


def check_stack_file(
    stack: str, root: Path = ROOT, expected_provider: str | None = None
) -> list[Finding]:
    """The committed stack file: secrets provider, wrapped data key, every secret value."""
    rel = f"stacks/Pulumi.{stack}.yaml"
    doc = _read_stack_file(root / rel)
    init = f"pulumi stack init {stack} --secrets-provider <PULUMI_SECRETS_PROVIDER>"
    if doc is None:
        return [
            Finding(
                COMMIT,
                f"{rel} is not in the repository",
                f"add it (docs/deploy-from-ci.md: Adding a stack), run `{init}` and commit it",
            )
        ]
    found: list[Finding] = []
    provider = doc.get("secretsprovider")
    if not provider:
        found.append(
            Finding(
                STACK_INIT,
                f"{rel} has no secretsprovider (without it Pulumi asks CI for a passphrase "
                "it does not have)",
                f"`{init}`, then commit {rel} (step 5)",
            )
        )
    elif not str(provider).startswith(PROVIDER_SCHEME):
        found.append(
            Finding(
                STACK_INIT,
                f"{rel} uses secrets provider {str(provider)[:60]!r}, not the bootstrap's "
                "Key Vault key",
                f"`pulumi stack change-secrets-provider --stack {stack} "
                "<PULUMI_SECRETS_PROVIDER>`, then commit it",
            )
        )
    elif expected_provider and str(provider).rstrip("/") != expected_provider.rstrip("/"):
        found.append(
            Finding(
                STACK_INIT,
                f"{rel} wraps its data key with {provider}, but the deployer may use only "
                f"{expected_provider}",
                f"`pulumi stack change-secrets-provider --stack {stack} {expected_provider}`, "
                "then commit it",
            )
        )
    if not doc.get("encryptedkey"):
        found.append(
            Finding(
                STACK_INIT,
                f"{rel} has no encryptedkey (the stack's data key wrapped by Key Vault)",
                f"`{init}` writes it; commit {rel} afterwards (step 5)",
            )
        )
    config = doc.get("config") or {}
    for key in secret_config_keys(config):
        value = config.get(key)
        command = f"pulumi config set --stack {stack} --secret {key}"
        if value is None:
            found.append(
                Finding(SECRETS, f"{rel} has no value for {key}", f"`{command}`, then commit")
            )
        elif not (isinstance(value, dict) and str(value.get("secure") or "").strip()):
            found.append(
                Finding(
                    SECRETS,
                    f"{rel} holds {key} in clear text (it is in git now: rotate it)",
                    f"remove it, `{command}` with a new value, then commit",
                )
            )
    return found


def pulumi_stack_names(cwd: Path) -> list[str]:
    """``pulumi stack ls --json`` in the project directory: the stacks the backend holds."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise RuntimeError("the pulumi CLI is not on PATH")
    done = subprocess.run(  # noqa: S603 -- fixed argv, no shell
        [pulumi, "stack", "ls", "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[:300] or f"exit code {done.returncode}")
    rows = json.loads(done.stdout or "[]")
    return [str(row.get("name", "")) for row in rows if isinstance(row, dict)]


def check_backend(
    stack: str, root: Path = ROOT, lister: StackLister = pulumi_stack_names
) -> list[Finding]:
    """The stack exists in the state backend (pulumi/actions selects, never creates)."""
    try:
        names = lister(root)
    except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        return [
            Finding(
                LOGIN,
                f"the state backend cannot be listed ({exc})",
                "check PULUMI_BACKEND_URL and PULUMI_STATE_STORAGE_ACCOUNT, and that the "
                "signed-in principal holds Storage Blob Data Contributor on the state container",
            )
        ]
    if any(name == stack or name.endswith(f"/{stack}") for name in names):
        return []
    return [
        Finding(
            STACK_INIT,
            f"stack {stack!r} does not exist in the state backend "
            f"(it holds: {', '.join(sorted(names)) or 'no stacks'})",
            f"as the administrator: `pulumi stack init {stack} --secrets-provider "
            "<PULUMI_SECRETS_PROVIDER>` (python -m bootstrap.next_steps prints it)",
        )
    ]


def run(
    stack: str,
    *,
    root: Path = ROOT,
    variables: Mapping[str, Any] | None = None,
    required_variables: Sequence[str] = JOB_VARIABLES,
    backend: bool = False,
    lister: StackLister = pulumi_stack_names,
) -> list[Finding]:
    """Every finding for ``stack``, in sequence order."""
    found: list[Finding] = []
    expected = None
    if variables is not None:
        found += check_variables(variables, required_variables)
        expected = str(variables.get("PULUMI_SECRETS_PROVIDER") or "") or None
    found += check_stack_file(stack, root, expected)
    if backend:
        found += check_backend(stack, root, lister)
    return sorted(found, key=lambda f: f.step.number)


def report(findings: Sequence[Finding], stack: str, github: bool) -> str:
    if not findings:
        return f"preflight {stack}: every step of the first-deployment sequence is done\n"
    lines = []
    for finding in findings:
        if github:
            lines.append(f"::error title=preflight {stack}: {finding.step.label()}::{finding}")
        else:
            lines.append(f"error: {finding}")
    lines.append(
        f"preflight {stack}: {len(findings)} step(s) of the sequence missing "
        "(docs/deploy-from-ci.md)"
    )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bootstrap.preflight",
        description="Check that the first-deployment sequence was completed for a stack.",
    )
    parser.add_argument("--stack", required=True)
    parser.add_argument(
        "--variables-json",
        help="the repository variables as JSON (in a workflow: ${{ toJSON(vars) }})",
    )
    parser.add_argument(
        "--require-variable",
        action="append",
        help=f"a repository variable this job needs besides {', '.join(JOB_VARIABLES)}",
    )
    parser.add_argument(
        "--backend", action="store_true", help="also check the stack exists in the backend"
    )
    args = parser.parse_args(argv)
    variables = None
    if args.variables_json is not None:
        try:
            variables = json.loads(args.variables_json or "{}")
        except json.JSONDecodeError:
            sys.stderr.write("error: --variables-json is not JSON; pass ${{ toJSON(vars) }}\n")
            return 2
        if not isinstance(variables, dict):
            sys.stderr.write("error: --variables-json is not a JSON object\n")
            return 2
    findings = run(
        args.stack,
        root=ROOT,
        variables=variables,
        required_variables=(*JOB_VARIABLES, *(args.require_variable or ())),
        backend=args.backend,
    )
    sys.stdout.write(report(findings, args.stack, os.environ.get("GITHUB_ACTIONS") == "true"))
    return 1 if findings else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
