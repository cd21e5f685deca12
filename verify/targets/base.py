"""The one interface the check and the lifecycle scenarios use to act on a deployment.

A scenario says *what* happens (delete this VM, recreate that identity, probe those
VMs); a target knows *how* on its platform: Run Command and Azure Resource Manager for
real Azure, child processes and the sandbox's loopback ARM for the local sandbox. Keeping
the scenario code target-agnostic is what makes a green sandbox run meaningful for Azure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from verify.model import ProbeResult, StackOutputs
from verify.targets.directory import DirectoryClient


@dataclass(frozen=True)
class ProbeRequest:
    """Run the probe on one host (a VM: ``host_kind`` ``vm``) for these identities and
    targets.

    ``stash_token`` keeps each token on the VM for a later ``replay`` run; ``replay``
    presents the stashed tokens instead of asking IMDS (the "token obtained before the
    deletion" check). ``propagation_wait`` lets the probe retry a 403 for that long,
    for use right after a grant; with ``expect`` (selector -> secret -> allowed/denied)
    only cells expected to be allowed are retried, and the probe's own exit code says
    whether the expectations held.
    """

    host: str
    selectors: tuple[str, ...]
    secrets: tuple[str, ...]
    propagation_wait: float = 0.0
    #: Blob keys (``<account>/<container>/<path>``) to read too; ``expect`` names them
    #: like secrets (a blob key always has a ``/``, a secret name never).
    blobs: tuple[str, ...] = ()
    stash_token: bool = False
    replay: bool = False
    budget: float = 30.0
    expect: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Which kind of host ``host`` names, so a target knows where to run the probe.
    host_kind: str = "vm"
    #: For a scale set: the instance IDs to probe (ARM's ``instanceId``), each proving the
    #: same cells; empty: the target's default (every instance on Azure).
    instances: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assignment:
    """A role assignment as ARM lists it (azure-mgmt-authorization ``RoleAssignment``)."""

    id: str
    name: str
    principal_id: str
    principal_type: str | None
    role_definition_id: str
    scope: str


@dataclass(frozen=True)
class IdentityInfo:
    """A user-assigned identity as ARM returns it after a create."""

    name: str
    id: str
    client_id: str
    principal_id: str
    tenant_id: str


ProbeOutcome = ProbeResult | Exception


@dataclass(frozen=True)
class FederationInfo:
    """A federated identity credential of a user-assigned identity, as ARM lists it."""

    name: str
    issuer: str
    subject: str
    audiences: tuple[str, ...]


@dataclass(frozen=True)
class LockInfo:
    """A management lock as ARM lists it: at ``scope`` (any ARM scope), ``level``
    ``CanNotDelete`` (refuses deletes at and below the scope) or ``ReadOnly`` (refuses
    every write there), with its ``notes`` and owner application IDs."""

    scope: str
    name: str
    level: str
    notes: str | None = None
    owners: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.scope.rstrip('/')}/providers/Microsoft.Authorization/locks/{self.name}"

    def describe(self) -> str:
        return f"lock {self.name} ({self.level}) at {self.scope}"


@runtime_checkable
class Target(Protocol):
    """A deployment the verifier can observe and change."""

    name: str

    def outputs(self) -> StackOutputs:
        """The stack outputs as deployed (docs/contracts.md)."""
        ...

    def probe(self, requests: Sequence[ProbeRequest]) -> Mapping[str, ProbeOutcome]:
        """Run the probe on each VM (bounded parallelism); a VM that could not be probed
        maps to the exception that says why, so one bad VM does not hide the others."""
        ...

    def vm_exists(self, vm: str) -> bool: ...

    def identity_exists(self, identity: str) -> bool: ...

    def delete_vm(self, vm: str) -> None:
        """Delete the VM (its system-assigned identity goes with it)."""
        ...

    def disable_system_identity(self, vm: str) -> None:
        """Turn the system-assigned identity off on a running VM; keep user-assigned ones."""
        ...

    def delete_identity(self, identity: str) -> None: ...

    def scale_set_exists(self, scale_set: str) -> bool:
        """Whether the stack's scale set ``scale_set`` (its key) exists now (ARM GET)."""
        ...

    def scale_set_instances(self, scale_set: str) -> list[str]:
        """The instance IDs of the scale set now, in ARM's order (numeric)."""
        ...

    def scale_scale_set(self, scale_set: str, capacity: int) -> None:
        """Scale the set to ``capacity`` instances (PATCH ``sku.capacity``)."""
        ...

    def delete_scale_set(self, scale_set: str) -> None:
        """Delete the scale set (its instances and system-assigned identity go with it)."""
        ...

    def create_identity(self, identity: str) -> IdentityInfo:
        """Create a user-assigned identity with the same name as the stack's ``identity``."""
        ...

    def federated_credentials(self, identity: str) -> list[FederationInfo]:
        """The federated credentials of the stack's user-assigned ``identity``."""
        ...

    def delete_federated_credential(self, identity: str, name: str) -> None: ...

    def create_federated_credential(self, identity: str, credential: FederationInfo) -> None:
        """(Re)create a federated credential on ``identity`` (a PUT)."""
        ...

    def attach_identity(self, vm: str, identity: str) -> None:
        """(Re)attach a user-assigned identity to a VM, e.g. after it was recreated."""
        ...

    def vm_identity_ids(self, vm: str) -> list[str]:
        """The user-assigned identity IDs the VM lists now (ARM, not the outputs)."""
        ...

    def detach_identity(self, vm: str, identity: str) -> None:
        """Remove a user-assigned identity (also a deleted one) from a VM's list."""
        ...

    def create_assignment(
        self,
        principal_id: str,
        role_definition_id: str,
        scope: str,
        condition: str | None = None,
    ) -> Assignment:
        """A role assignment; ``condition`` (ABAC, version 2.0) is kept as the stack's grant
        had it: re-granting without it would widen what the grant allows."""
        ...

    @property
    def stack_scope(self) -> str:
        """The stack's resource group ID: what the verifier lists at and may clean below."""
        ...

    @property
    def directory(self) -> DirectoryClient | None:
        """Microsoft Graph, to prove a principal gone (None: nothing is ever deleted)."""
        ...

    def list_assignments(self, principal_id: str) -> list[Assignment]:
        """Every role assignment of ``principal_id`` that applies at or below the stack's
        resource group (``list_for_scope``, ``principalId eq '...'``), including those of a
        principal that no longer exists."""
        ...

    def get_assignment(self, assignment_id: str) -> Assignment | None:
        """The assignment as it is now, read by ID (None when it no longer exists)."""
        ...

    def delete_assignment(self, assignment_id: str) -> None: ...

    def management_locks(self, scope: str) -> list[LockInfo]:
        """Every management lock at ``scope`` or above it (its group, its subscription):
        the locks ARM checks a delete or write at ``scope`` against."""
        ...

    def management_locks_over(self, scopes: Sequence[str]) -> dict[str, list[LockInfo]]:
        """:meth:`management_locks` for each of ``scopes`` (a scenario's touched IDs), each
        resource, group and subscription listed once for all of them."""
        ...

    def delete_lock(self, lock: LockInfo) -> None:
        """Delete the lock (lift it); a 403 raises ``MissingPermissionError`` naming
        ``Microsoft.Authorization/locks/delete``."""
        ...

    def create_lock(self, lock: LockInfo) -> LockInfo:
        """Create the lock with its name, level, notes and owners (restore it, or re-write
        it unchanged); a 403 names ``Microsoft.Authorization/locks/write``."""
        ...

    def live_principals(self) -> dict[str, str]:
        """Lower-cased principal ID -> holder, for every identity that exists now."""
        ...

    def close(self) -> None: ...
