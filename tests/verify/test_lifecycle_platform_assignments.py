"""A Function app's host-storage assignment is one of its identity's assignments, though not
a grant: the lifecycle's "its assignments" steps expect it with the grants (a deletion
leaves it orphaned too), and it adds no access-matrix cell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.stack_config import secret_config_keys
from components.testing import AzureMocks, InMemoryArm, load_stack_config, run_program
from verify.lifecycle import Lifecycle
from verify.model import StackOutputs, derive_matrix, load_outputs
from verify.stacks import PROGRAM
from verify.targets.base import Assignment

DEV = Path(__file__).resolve().parents[2] / "stacks" / "Pulumi.dev.yaml"


class ListingTarget:
    """Lists role assignments from the deployed ARM documents, as ARM lists them."""

    name = "fake"

    def __init__(self, outputs: StackOutputs, backend: InMemoryArm) -> None:
        self._outputs = outputs
        self._backend = backend

    def outputs(self) -> StackOutputs:
        return self._outputs

    def list_assignments(self, principal_id: str) -> list[Assignment]:
        docs: list[dict[str, Any]] = self._backend.of_type(
            "Microsoft.Authorization/roleAssignments"
        )
        return [
            Assignment(
                id=d["id"],
                name=d["name"],
                principal_id=d["properties"]["principalId"],
                principal_type=d["properties"].get("principalType"),
                role_definition_id=d["properties"]["roleDefinitionId"],
                scope=d["properties"]["scope"],
            )
            for d in docs
            if d["properties"]["principalId"].lower() == principal_id.lower()
        ]


@pytest.fixture(scope="module")
def deployed() -> tuple[StackOutputs, InMemoryArm]:
    config = dict(load_stack_config(DEV))
    config.update({key: "v" for key in secret_config_keys(config)})
    backend = InMemoryArm()
    raw = run_program(PROGRAM, config, mocks=AzureMocks(backend), stack="dev")
    return load_outputs(dict(raw), "test"), backend


def test_the_shared_identitys_assignments_are_its_grants_and_the_host_storage_one(
    deployed: tuple[StackOutputs, InMemoryArm],
) -> None:
    outputs, backend = deployed
    host = outputs.apps["func"].host_storage
    assert host is not None and host.identity == "shared"
    shared = outputs.identities["shared"].principal_id
    lc = Lifecycle(ListingTarget(outputs, backend))  # type: ignore[arg-type]
    grants = {g.id for g in lc.granted(shared)}
    assert grants and host.assignment_id not in grants
    step = lc.assignments_step("its assignments", shared, grants)
    assert step.passed, step.details
    assert step.observed.startswith(f"{len(grants) + 1} listed")
    # Another principal's expectations are its grants alone.
    web = outputs.apps["web"].system_principal_id
    assert web is not None
    web_step = lc.assignments_step("web's", web, {g.id for g in lc.granted(web)})
    assert web_step.passed, web_step.details


def test_the_host_storage_assignment_adds_no_matrix_cell(
    deployed: tuple[StackOutputs, InMemoryArm],
) -> None:
    outputs, _ = deployed
    host = outputs.apps["func"].host_storage
    assert host is not None
    assert all(g.id != host.assignment_id for g in outputs.grants)
    # Re-derived from the grants, the matrix is the one the stack exported, and no cell is
    # about the host's account.
    derived = sorted(repr(c) for c in derive_matrix(outputs))
    assert derived == sorted(repr(c) for c in outputs.access_matrix)
    assert not any(host.account_name in repr(c) for c in outputs.access_matrix)
