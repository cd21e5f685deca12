"""The ArmBackend protocol: where the mock runtime's deployments land.

The Pulumi mocks (:mod:`components.mockruntime`) know how Pulumi talks (type tokens from
:mod:`components.arm.tokens`, camelCase inputs, flattened outputs); a backend knows how
ARM behaves (IDs, generated principals, conflicts). Keeping them apart lets the same
stack program deploy into plain memory for unit tests (:class:`~components.arm.memory.InMemoryArm`)
or into the local sandbox (``verify.sandbox.arm.model.SandboxArm``), answering with the
same ARM documents from :mod:`components.arm.shapes` either way.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from components.arm.rules import WriteOrdering

__all__ = ["ArmBackend"]


@runtime_checkable
class ArmBackend(Protocol):
    """Creates resources from Pulumi inputs and answers invokes, in ARM's shapes."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def subscription_id(self) -> str: ...

    def create_or_update(
        self,
        resource_type: str,
        arm_id: str,
        inputs: dict[str, Any],
        *,
        ordering: WriteOrdering | None = None,
    ) -> dict[str, Any]:
        """Create or update ``arm_id`` from Pulumi ``inputs``; return its ARM JSON.

        ``resource_type`` is the Pulumi type token (``azure-native:compute:VirtualMachine``);
        ``inputs`` are camelCase with secrets already unwrapped. ``ordering`` says which
        other writes of the same deployment may run alongside this one (the mock runtime
        answers from Pulumi's dependency graph); None means "not known", and rules about
        concurrent writes are then not checked.
        """
        ...

    def call(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        """Answer an invoke such as ``azure-native:authorization:getClientConfig``."""
        ...
