"""Updates and destroys in the mock runtime: the deletes Pulumi would send, in its order.

Pulumi's mock monitor only ever creates: a resource dropped from the program, renamed or
replaced is simply not registered again, and nothing is deleted. The failures that bite
on a second ``pulumi up`` or on ``pulumi destroy`` are deletes ARM refuses (a
``CanNotDelete`` lock above a federated credential: 409 ``ScopeLocked``), so this module
plays the engine's part: it compares the previous run's registrations with the new ones
and deletes what is gone, dependents before what they depend on, through the backend's
``delete`` (which applies ARM's lock rule).

Deletes with no dependency between them run in parallel on a real engine, so a lock that
does not depend on the resource below it may or may not be gone when that resource's
delete arrives. Here such a lock is always deleted last: the outcome is the worst one a
real run can have, and it never depends on timing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from components.arm.tokens import PULUMI_MANAGEMENT_LOCK
from components.mockruntime.mocks import AzureMocks, Registration
from components.mockruntime.runner import StackOutputs, run_program


class DeletingBackend(Protocol):
    def delete(self, arm_id: str) -> object:
        """Delete ``arm_id``; raise ``ArmError`` when ARM refuses."""
        ...


def deletion_order(gone: Sequence[Registration], graph: Sequence[Registration]) -> list[str]:
    """ARM IDs of ``gone`` in the order the engine deletes them.

    ``graph`` is the run the resources were created in (its recorded dependencies). A
    resource is deleted only after everything that depends on it; among the ready ones,
    locks go last.
    """
    by_urn = {r.urn: r for r in graph if r.urn}
    targets = {r.urn for r in gone if r.custom and r.id}
    dependents: dict[str, set[str]] = {u: set() for u in targets}
    for reg in graph:
        for dep in _custom_ancestors(reg.urn, by_urn):
            if dep in targets and reg.urn in targets and dep != reg.urn:
                dependents[dep].add(reg.urn)
    order: list[str] = []
    done: set[str] = set()
    while len(done) < len(targets):
        ready = [u for u in targets - done if dependents[u] <= done]
        if not ready:  # a cycle cannot come out of Pulumi; refuse to loop on bad input
            raise ValueError("dependency cycle among the resources to delete")
        ready.sort(key=lambda u: (by_urn[u].type == PULUMI_MANAGEMENT_LOCK, u))
        step = ready[0]
        done.add(step)
        order.append(by_urn[step].id)
    return order


def _custom_ancestors(urn: str, by_urn: Mapping[str, Registration]) -> set[str]:
    """What ``urn`` waits for, transitively (components pass their waits through)."""
    seen: set[str] = set()
    todo = list(by_urn[urn].dependencies) if urn in by_urn else []
    while todo:
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            if dep in by_urn:
                todo.extend(by_urn[dep].dependencies)
    return seen


def removed(before: Sequence[Registration], after: Sequence[Registration]) -> list[Registration]:
    """Resources of ``before`` that ``after`` no longer has under the same ARM ID
    (dropped, or replaced by a resource with another ID)."""
    kept = {r.id.lower() for r in after if r.custom and r.id}
    return [r for r in before if r.custom and r.id and r.id.lower() not in kept]


def apply_deletes(backend: DeletingBackend, order: Sequence[str]) -> None:
    """Send the deletes one by one; the first refusal propagates (ARM's error)."""
    for arm_id in order:
        backend.delete(arm_id)


def up(
    program: Any,
    config: Mapping[str, Any],
    *,
    previous: AzureMocks | None,
    mocks: AzureMocks,
    **run_kwargs: Any,
) -> StackOutputs:
    """``pulumi up`` against the state ``previous`` left: run the program (creates and
    updates), then delete what it no longer declares, as the engine does at the end."""
    outputs = run_program(program, config, mocks=mocks, **run_kwargs)
    if previous is not None:
        gone = removed(previous.registrations, mocks.registrations)
        apply_deletes(_deleting(mocks), deletion_order(gone, previous.registrations))
    return outputs


def destroy(mocks: AzureMocks) -> None:
    """``pulumi destroy`` of the run ``mocks`` recorded."""
    apply_deletes(_deleting(mocks), deletion_order(mocks.registrations, mocks.registrations))


def _deleting(mocks: AzureMocks) -> DeletingBackend:
    backend = mocks.backend
    if not hasattr(backend, "delete"):
        raise TypeError(f"{type(backend).__name__} cannot delete resources")
    return backend  # type: ignore[return-value]
