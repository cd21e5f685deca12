"""The security rules our GitHub Actions workflows must keep, as code that can fail.

actionlint proves a workflow is well formed; it does not know what this project promises:
no long-lived secret anywhere, an OIDC token only for the jobs that reach Azure, write
scopes only where a job needs them, one deployment of a stack at a time, a fresh Azure
login before every long step, and a throw-away stack destroyed even when the run fails
(after clearing the lock a killed run left). Each rule is a small function that returns the
violations it found, so a test can show that it fires on a bad example and stays quiet on
the real workflows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Full 40-hex commit SHA after the @; tags and branches can be moved, a SHA cannot.
_PINNED = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
_SECRETS_CONTEXT = re.compile(r"\$\{\{[^}]*\bsecrets\.", re.IGNORECASE)

# Names that carry long-lived credentials for Azure, Pulumi or storage. None may appear as an
# env var, an action input or a step script variable in a workflow that practises OIDC.
LONG_LIVED_CREDENTIALS = frozenset(
    {
        "AZURE_CLIENT_SECRET",
        "AZURE_CLIENT_CERTIFICATE_PATH",
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
        "AZURE_CREDENTIALS",
        "AZURE_STORAGE_KEY",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_SAS_TOKEN",
        "ARM_CLIENT_SECRET",
        "ARM_CLIENT_CERTIFICATE_PASSWORD",
        "ARM_ACCESS_KEY",
        "ARM_SAS_TOKEN",
        "PULUMI_ACCESS_TOKEN",
        "PULUMI_CONFIG_PASSPHRASE",
    }
)
# azure/login inputs that mean a service-principal secret instead of OIDC.
_AZURE_LOGIN_SECRET_INPUTS = frozenset({"creds", "client-secret"})

# Triggers that run with the base repository's privileges on untrusted code.
PRIVILEGED_TRIGGERS = frozenset({"pull_request_target", "workflow_run"})

# Which write scopes a job may hold, and what in the job justifies each one.
AZURE_LOGIN = "azure/login"
PULUMI_ACTION = "pulumi/actions"
JUNIT_PUBLISHER = "EnricoMi/publish-unit-test-result-action"


@dataclass(frozen=True)
class Violation:
    """One broken rule: which rule, where, and what is wrong."""

    rule: str
    where: str
    problem: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.where}: {self.problem}"


@dataclass(frozen=True)
class Workflow:
    """A parsed workflow or composite action, with the name it is reported under."""

    name: str
    doc: Mapping[str, Any]

    @property
    def is_action(self) -> bool:
        return "runs" in self.doc

    @property
    def triggers(self) -> set[str]:
        # YAML 1.1 reads a bare `on:` key as the boolean True.
        on = self.doc.get("on", self.doc.get(True))
        if isinstance(on, str):
            return {on}
        if isinstance(on, list):
            return {str(t) for t in on}
        if isinstance(on, Mapping):
            return {str(t) for t in on}
        return set()

    def jobs(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        jobs = self.doc.get("jobs") or {}
        yield from jobs.items()

    def steps(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """Every step with a readable location, in jobs and in a composite action."""
        if self.is_action:
            for i, step in enumerate(self.doc["runs"].get("steps") or []):
                yield f"{self.name} step {i + 1}", step
        for job_id, job in self.jobs():
            for i, step in enumerate(job.get("steps") or []):
                yield f"{self.name} job {job_id} step {step.get('name', i + 1)}", step


def load(path: Path) -> Workflow:
    return Workflow(
        path.name if path.name != "action.yml" else str(path), yaml.safe_load(path.read_text())
    )


def parse(name: str, text: str) -> Workflow:
    return Workflow(name, yaml.safe_load(text))


def _uses(step: Mapping[str, Any]) -> str:
    return str(step.get("uses", ""))


def _action(step: Mapping[str, Any]) -> str:
    """`owner/repo` of a step's action, without path or ref; '' for run steps."""
    uses = _uses(step)
    if not uses or uses.startswith(("./", "docker://")):
        return ""
    return "/".join(uses.split("@")[0].split("/")[:2])


def _job_steps(job: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(job.get("steps") or [])


def _job_uses(job: Mapping[str, Any], action: str) -> bool:
    return any(_action(s).lower() == action.lower() for s in _job_steps(job))


def _pulumi_commands(job: Mapping[str, Any]) -> set[str]:
    """The Pulumi commands a job runs, through pulumi/actions or a `pulumi ...` script."""
    commands: set[str] = set()
    for step in _job_steps(job):
        if _action(step) == PULUMI_ACTION and (step.get("with") or {}).get("command"):
            commands.add(str(step["with"]["command"]))
        for match in re.finditer(
            r"\bpulumi\s+(up|update|destroy|preview|refresh)\b", str(step.get("run", ""))
        ):
            commands.add(match.group(1))
    return {"up" if c == "update" else c for c in commands}


def _walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield str(key)
            yield from _walk_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_strings(item)


# --- the rules -------------------------------------------------------------------------------


def no_long_lived_secrets(wf: Workflow) -> list[Violation]:
    """No `secrets.*` expression, no credential-named variable, no azure/login secret input."""
    found: list[Violation] = []
    for text in _walk_strings(wf.doc):
        if _SECRETS_CONTEXT.search(text):
            found.append(Violation("no-secrets", wf.name, f"references a stored secret: {text!r}"))
        for name in LONG_LIVED_CREDENTIALS:
            if re.search(rf"\b{name}\b", text):
                found.append(Violation("no-secrets", wf.name, f"mentions credential {name}"))
    for where, step in wf.steps():
        if _action(step).lower() == AZURE_LOGIN:
            bad = _AZURE_LOGIN_SECRET_INPUTS & set(step.get("with") or {})
            if bad:
                found.append(
                    Violation("no-secrets", where, f"azure/login with {sorted(bad)}; use OIDC")
                )
    return found


def _permission_map(value: Any) -> dict[str, str] | str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return {str(k): str(v) for k, v in dict(value).items()}


def least_privilege(wf: Workflow) -> list[Violation]:
    """Workflow default `{}`; every job declares its own scopes; each write scope is earned.

    - `id-token: write` only in a job that logs in to Azure (and every such job has it);
    - `pull-requests: write` only in a job that comments a Pulumi plan on the PR;
    - `checks: write` only in the job that publishes JUnit results;
    - no other write scope, no `write-all` / `read-all`.
    """
    if wf.is_action:
        return []
    found: list[Violation] = []
    top = _permission_map(wf.doc.get("permissions"))
    if top != {}:
        found.append(
            Violation("least-privilege", wf.name, f"workflow permissions must be {{}}, got {top!r}")
        )
    for job_id, job in wf.jobs():
        where = f"{wf.name} job {job_id}"
        perms = _permission_map(job.get("permissions"))
        if perms is None:
            found.append(Violation("least-privilege", where, "declares no permissions"))
            continue
        if isinstance(perms, str):
            found.append(Violation("least-privilege", where, f"uses blanket permissions {perms!r}"))
            continue
        logs_in = _job_uses(job, AZURE_LOGIN)
        comments = any(
            _action(s) == PULUMI_ACTION
            and str((s.get("with") or {}).get("comment-on-pr")) == "true"
            for s in _job_steps(job)
        )
        publishes = _job_uses(job, JUNIT_PUBLISHER)
        earned = {"id-token": logs_in, "pull-requests": comments, "checks": publishes}
        for scope, level in perms.items():
            if level != "write":
                continue
            if scope not in earned:
                found.append(Violation("least-privilege", where, f"{scope}: write is never needed"))
            elif not earned[scope]:
                found.append(
                    Violation(
                        "least-privilege", where, f"{scope}: write without a step that needs it"
                    )
                )
        if logs_in and perms.get("id-token") != "write":
            found.append(Violation("least-privilege", where, "azure/login without id-token: write"))
    return found


def pinned_actions(wf: Workflow) -> list[Violation]:
    """Every remote action is pinned to a full commit SHA."""
    found: list[Violation] = []
    for where, step in wf.steps():
        uses = _uses(step)
        if not uses or uses.startswith("./"):
            continue
        if uses.startswith("docker://"):
            if "@sha256:" not in uses:
                found.append(Violation("pinned", where, f"{uses} is not pinned to a digest"))
        elif not _PINNED.match(uses):
            found.append(Violation("pinned", where, f"{uses} is not pinned to a full commit SHA"))
    return found


def checkout_without_credentials(wf: Workflow) -> list[Violation]:
    """actions/checkout never leaves the job token in .git/config for later steps to read."""
    found: list[Violation] = []
    for where, step in wf.steps():
        persist = str((step.get("with") or {}).get("persist-credentials")).lower()
        if _action(step) == "actions/checkout" and persist != "false":
            found.append(Violation("checkout", where, "persist-credentials is not false"))
    return found


def no_privileged_triggers(wf: Workflow) -> list[Violation]:
    bad = wf.triggers & PRIVILEGED_TRIGGERS
    return [Violation("triggers", wf.name, f"uses privileged trigger {t}") for t in sorted(bad)]


def timeouts(wf: Workflow) -> list[Violation]:
    """Every job has timeout-minutes (a hung deploy otherwise holds its stack for 6 hours)."""
    return [
        Violation("timeouts", f"{wf.name} job {job_id}", "has no timeout-minutes")
        for job_id, job in wf.jobs()
        if "timeout-minutes" not in job
    ]


def concurrency(wf: Workflow) -> list[Violation]:
    """A job that changes a stack runs in a concurrency group and is never cancelled mid-run."""
    found: list[Violation] = []
    for job_id, job in wf.jobs():
        commands = _pulumi_commands(job)
        if not commands:
            continue
        where = f"{wf.name} job {job_id}"
        group = job.get("concurrency", wf.doc.get("concurrency"))
        if isinstance(group, str):
            group = {"group": group}
        if not group or not group.get("group"):
            found.append(
                Violation("concurrency", where, f"runs pulumi {sorted(commands)} with no group")
            )
            continue
        if commands & {"up", "destroy", "refresh"} and group.get("cancel-in-progress") is not False:
            found.append(
                Violation(
                    "concurrency", where, "changes a stack but cancel-in-progress is not false"
                )
            )
    return found


def azure_oidc_for_pulumi(wf: Workflow) -> list[Violation]:
    """A job that runs Pulumi against Azure tells the provider to use OIDC (ARM_USE_OIDC)."""
    found: list[Violation] = []
    for job_id, job in wf.jobs():
        if _pulumi_commands(job) and _job_uses(job, AZURE_LOGIN):
            env = {**(wf.doc.get("env") or {}), **(job.get("env") or {})}
            if str(env.get("ARM_USE_OIDC")).lower() != "true":
                found.append(
                    Violation("oidc", f"{wf.name} job {job_id}", "ARM_USE_OIDC is not true")
                )
    return found


def _is_destroy(step: Mapping[str, Any]) -> bool:
    if _action(step) == PULUMI_ACTION:
        return str((step.get("with") or {}).get("command")) == "destroy"
    return bool(re.search(r"\bpulumi\s+destroy\b", str(step.get("run", ""))))


def throwaway_destroyed_always(wf: Workflow) -> list[Violation]:
    """A job that creates a run-scoped (throw-away) stack destroys it in an always() step.

    A stack is throw-away when its name is built from ``github.run_id``. The destroy step
    must come after every other step that touches the stack and run under ``always()`` so a
    failed or cancelled run does not leave paid resources behind.
    """
    found: list[Violation] = []
    for job_id, job in wf.jobs():
        where = f"{wf.name} job {job_id}"
        text = " ".join(_walk_strings({"env": job.get("env"), "steps": job.get("steps")}))
        if "up" not in _pulumi_commands(job) or "github.run_id" not in text:
            continue
        steps = _job_steps(job)
        destroys = [i for i, s in enumerate(steps) if _is_destroy(s)]
        if not destroys:
            found.append(
                Violation("destroy-always", where, "creates a throw-away stack, never destroys it")
            )
            continue
        last = destroys[-1]
        condition = str(steps[last].get("if", ""))
        if "always()" not in condition:
            found.append(
                Violation(
                    "destroy-always", where, f"destroy runs only if {condition or 'success()'}"
                )
            )
        if steps[last].get("continue-on-error"):
            found.append(Violation("destroy-always", where, "destroy failures are ignored"))
        later_pulumi = [
            s
            for s in steps[last + 1 :]
            if _action(s) == PULUMI_ACTION or "pulumi" in str(s.get("run", ""))
        ]
        if later_pulumi:
            found.append(Violation("destroy-always", where, "a Pulumi step runs after the destroy"))
    return found


# A step that can outlive the GitHub OIDC assertion behind the last az login: a Pulumi
# operation (the azblob backend and the azurekeyvault secrets provider sign in through the
# az CLI, which cannot renew the assertion) or a verifier run.
_LONG_RUN = re.compile(
    r"\bpulumi\s+(up|update|destroy|preview|refresh)\b|\bverify\s+(check|lifecycle)\b"
)


def _is_long_azure_step(step: Mapping[str, Any]) -> bool:
    if _action(step) == PULUMI_ACTION and (step.get("with") or {}).get("command"):
        return True
    return bool(_LONG_RUN.search(str(step.get("run", ""))))


def fresh_login_before_long_steps(wf: Workflow) -> list[Violation]:
    """In a job that logs in to Azure, each long step gets its own azure/login.

    The az CLI keeps the GitHub OIDC assertion it logged in with, which expires within
    minutes, and cannot fetch a new one: a long job then loses state access, verification
    or, worst, the destroy. So between two long steps there is always a fresh azure/login,
    and that login runs under the same condition as the step it serves (a destroy under
    ``always()`` gets a login under ``always()``).
    """
    found: list[Violation] = []
    for job_id, job in wf.jobs():
        if not _job_uses(job, AZURE_LOGIN):
            continue
        login: Mapping[str, Any] | None = None
        for i, step in enumerate(_job_steps(job)):
            if _action(step).lower() == AZURE_LOGIN:
                login = step
                continue
            if not _is_long_azure_step(step):
                continue
            where = f"{wf.name} job {job_id} step {step.get('name', i + 1)}"
            if login is None:
                found.append(Violation("fresh-login", where, "runs before any azure/login"))
            elif str(login.get("if", "")) != str(step.get("if", "")):
                found.append(
                    Violation(
                        "fresh-login",
                        where,
                        f"runs if {step.get('if') or 'success()'} but its login runs if "
                        f"{login.get('if') or 'success()'}",
                    )
                )
            login = None
    return found


def _destroy_script(steps: list[Mapping[str, Any]], last: int) -> str:
    """The destroy step's script plus the contiguous run steps before it under its condition."""
    condition = str(steps[last].get("if", ""))
    parts = [str(steps[last].get("run", ""))]
    for step in reversed(steps[:last]):
        if str(step.get("if", "")) != condition or "run" not in step:
            break
        parts.insert(0, str(step["run"]))
    return "\n".join(parts)


def stale_lock_cleared_before_destroy(wf: Workflow) -> list[Violation]:
    """The always() destroy of a throw-away stack first clears what a killed ``up`` left.

    A cancelled or timed-out ``up`` leaves the state lock ("the stack is currently locked")
    and pending creates: ``pulumi cancel --yes`` removes the lock, then ``pulumi refresh
    --clear-pending-creates`` drops the pending operations, then ``pulumi destroy``.
    """
    found: list[Violation] = []
    for job_id, job in wf.jobs():
        steps = _job_steps(job)
        destroys = [i for i, s in enumerate(steps) if _is_destroy(s)]
        text = " ".join(_walk_strings({"env": job.get("env"), "steps": job.get("steps")}))
        if not destroys or "github.run_id" not in text:
            continue
        where = f"{wf.name} job {job_id}"
        script = _destroy_script(steps, destroys[-1])
        cancel = re.search(r"\bpulumi\s+cancel\b[^\n]*--yes", script)
        refresh = re.search(r"\bpulumi\s+refresh\b[^\n]*--clear-pending-creates", script)
        destroy = re.search(r"\bpulumi\s+destroy\b", script)
        if cancel is None:
            found.append(Violation("stale-lock", where, "no `pulumi cancel --yes` before destroy"))
        if refresh is None:
            found.append(
                Violation(
                    "stale-lock",
                    where,
                    "no `pulumi refresh --clear-pending-creates` before destroy",
                )
            )
        if (
            destroy
            and cancel
            and refresh
            and not cancel.start() < refresh.start() < destroy.start()
        ):
            found.append(
                Violation("stale-lock", where, "cancel, refresh and destroy are out of order")
            )
    return found


RULES: tuple[Callable[[Workflow], list[Violation]], ...] = (
    no_long_lived_secrets,
    least_privilege,
    pinned_actions,
    checkout_without_credentials,
    no_privileged_triggers,
    timeouts,
    concurrency,
    azure_oidc_for_pulumi,
    throwaway_destroyed_always,
    fresh_login_before_long_steps,
    stale_lock_cleared_before_destroy,
)


def check(wf: Workflow) -> list[Violation]:
    """All violations of all rules in one workflow or composite action."""
    return [v for rule in RULES for v in rule(wf)]
