"""Orphan cleanup: the one place the verifier deletes something it did not create.

An orphan is a role assignment whose principal no longer exists. Deleting a live one
cuts someone's access, so every rule below needs its proving signal, and anything short
of proof deletes nothing (:data:`CLEANUP_RULES` is also printed by ``--help``):

1. Candidates: only the assignments of a principal THIS run removed in a step that
   succeeded (the lifecycle records it), or of a principal the user names
   (``verify cleanup --principal <object id>``). Nothing else is ever looked at.
2. Gone means the directory says so: Microsoft Graph ``GET /v1.0/servicePrincipals/{id}``
   answers 404 ``Request_ResourceNotFound``. 200 refuses (the principal is live, wherever
   it is held). 403 (no directory read permission) deletes nothing and prints, per
   assignment, its ID, role, scope and the exact ``az role assignment delete --ids ...``
   command for a human. Any other answer refuses.
3. Listed with ``list_for_scope(<stack resource group ID>, filter="principalId eq '...'")``,
   never ``list_for_subscription`` (a deployer scoped to its group cannot read there).
4. Only the stack's own scopes: the resource group and what lies below it. An assignment
   at subscription or management-group scope (listing a group also returns what applies
   to it from above) or in another group is never deleted.
5. Immediately before each delete the assignment is read again by ID; a different
   principal, role or scope (the name was reused) refuses that one.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from components import armid
from components.errors import ConfigError
from verify.targets.base import Assignment
from verify.targets.directory import DirectoryAnswer, DirectoryClient

CLEANUP_RULES = """\
Orphan cleanup deletes a role assignment only when all of these hold:
  1. its principal was removed by THIS run in a step that succeeded, or you named it
     (verify cleanup --principal <object id>);
  2. Microsoft Graph GET /v1.0/servicePrincipals/{id} answers 404 Request_ResourceNotFound
     (200: live, refused; 403 no directory read: nothing deleted, each assignment's ID, role,
     scope and `az role assignment delete --ids ...` printed for a human; else refused);
  3. it was listed at the stack's resource group (list_for_scope, principalId eq '...');
  4. its scope is the stack's resource group or below (never subscription or management
     group, never another group);
  5. read again by ID right before the delete, its principal, role and scope are unchanged."""

Decision = Literal["deleted", "refused", "manual", "outside", "vanished"]


class CleanupTarget(Protocol):
    """What cleanup needs of a target (verify.targets.arm.ArmOperations provides it)."""

    @property
    def stack_scope(self) -> str: ...

    @property
    def directory(self) -> DirectoryClient | None: ...

    def list_assignments(self, principal_id: str) -> list[Assignment]: ...

    def get_assignment(self, assignment_id: str) -> Assignment | None: ...

    def delete_assignment(self, assignment_id: str) -> None: ...


@dataclass(frozen=True)
class Candidate:
    """A principal whose assignments may be orphans, and why it is one (rule 1)."""

    principal_id: str
    reason: str


@dataclass(frozen=True)
class AssignmentDecision:
    """What cleanup did with one listed assignment, and why."""

    assignment: Assignment
    decision: Decision
    reason: str

    @property
    def command(self) -> str:
        """The command a human runs once they have confirmed the principal is gone."""
        return f"az role assignment delete --ids {shlex.quote(self.assignment.id)}"

    def line(self) -> str:
        a = self.assignment
        text = (
            f"{self.decision}: {a.id} (principal {a.principal_id}, role "
            f"{a.role_definition_id}, scope {a.scope}): {self.reason}"
        )
        return text + (f"; run: {self.command}" if self.decision == "manual" else "")


@dataclass
class CleanupResult:
    decisions: list[AssignmentDecision] = field(default_factory=list)
    answers: dict[str, DirectoryAnswer] = field(default_factory=dict)

    def of(self, decision: Decision) -> list[AssignmentDecision]:
        return [d for d in self.decisions if d.decision == decision]

    @property
    def complete(self) -> bool:
        """Every candidate assignment in the stack's scopes was deleted (or had gone)."""
        return not self.of("refused") and not self.of("manual")


def az_delete_command(assignment: Assignment) -> str:
    return AssignmentDecision(assignment, "manual", "").command


def within_stack(scope: str, stack_scope: str) -> bool:
    """Rule 4: at or below the stack's resource group, never subscription or MG scope."""
    try:  # a management-group or tenant scope ("/", "/providers/...") does not parse
        parsed = armid.parse(scope, "scope")
        stack = armid.parse(stack_scope, "resource_group_id")
    except ConfigError:
        return False
    if parsed.level == "subscription" or stack.level == "subscription":
        return False
    return armid.is_within(stack_scope, scope)


def _same(listed: Assignment, now: Assignment) -> bool:
    return (
        listed.principal_id.lower() == now.principal_id.lower()
        and listed.role_definition_id.lower() == now.role_definition_id.lower()
        and listed.scope.rstrip("/").lower() == now.scope.rstrip("/").lower()
    )


def clean_orphans(target: CleanupTarget, candidates: Sequence[Candidate]) -> CleanupResult:
    """Apply the rules to each candidate principal's assignments; delete only the proven."""
    result = CleanupResult()
    stack_scope = target.stack_scope
    for candidate in candidates:
        pid = candidate.principal_id
        listed = target.list_assignments(pid)
        if not listed:
            continue
        answer = _ask_directory(target.directory, pid)
        result.answers[pid.lower()] = answer
        for assignment in listed:
            result.decisions.append(_decide(target, stack_scope, pid, answer, assignment))
    return result


def _ask_directory(directory: DirectoryClient | None, pid: str) -> DirectoryAnswer:
    if directory is None:
        return DirectoryAnswer(pid, "unknown", None, None, "no directory client to ask")
    return directory.service_principal(pid)


def _decide(
    target: CleanupTarget,
    stack_scope: str,
    pid: str,
    answer: DirectoryAnswer,
    assignment: Assignment,
) -> AssignmentDecision:
    """Rules 2, 4 and 5 for one listed assignment; the delete happens only at the end."""
    refusal = _refusal(stack_scope, pid, answer, assignment)
    if refusal is not None:
        return refusal
    now = target.get_assignment(assignment.id)
    if now is None:
        return AssignmentDecision(assignment, "vanished", "gone when read again by ID")
    if not _same(assignment, now):
        return AssignmentDecision(
            assignment,
            "refused",
            f"changed since it was listed (now principal {now.principal_id}, role "
            f"{now.role_definition_id}, scope {now.scope})",
        )
    target.delete_assignment(assignment.id)
    return AssignmentDecision(assignment, "deleted", f"{answer.summary}: the principal is gone")


def _refusal(
    stack_scope: str, pid: str, answer: DirectoryAnswer, assignment: Assignment
) -> AssignmentDecision | None:
    """Why this assignment must not be deleted, judged before touching it; None if none."""
    reason: tuple[Decision, str] | None = None
    if assignment.principal_id.lower() != pid.lower():
        reason = ("refused", f"listed for principal {pid} but held by another")
    elif not within_stack(assignment.scope, stack_scope):
        reason = ("outside", f"scope is outside the stack's resource group {stack_scope}")
    elif answer.status == "refused":
        reason = (
            "manual",
            f"{answer.summary}: this caller may not read the directory, so the principal is "
            "not proven gone; nothing deleted",
        )
    elif answer.status == "exists":
        reason = ("refused", f"{answer.summary}: the principal is live")
    elif answer.status != "gone":
        why = f" ({answer.message})" if answer.message else ""
        reason = ("refused", f"{answer.summary}{why}: not proof the principal is gone")
    return None if reason is None else AssignmentDecision(assignment, *reason)
