"""ARM's write and read rules that break first deployments, written once.

Each function checks one rule Azure enforces and raises :class:`ArmError` with the status,
code and message Azure answers with (sources in ``docs/azure-fidelity.md``, area "ARM
model: first-run failures"). Both places that answer like ARM call them: the in-memory
model behind the Pulumi mock runtime and the sandbox's one ARM model
(:mod:`components.arm.memory`, ``Sandbox.arm``), and the sandbox's ARM front and state
(:mod:`verify.sandbox`). So a program that breaks a rule fails in a unit test, in the
sandbox and on the first real ``pulumi up`` with the same error.

The functions take plain values and callables, never a store, so each caller keeps its
own state (a dict of documents, the sandbox's locked state) and its own locking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from components import armid
from components.arm.errors import ArmError
from components.errors import ConfigError

#: "A maximum of 20 federated identity credentials can be added to an application or
#: user-assigned managed identity." (Entra docs, workload identity federation considerations)
MAX_FEDERATED_CREDENTIALS = 20
#: Azure RBAC: role assignments per subscription (Azure subscription limits; it was 2,000).
MAX_ROLE_ASSIGNMENTS_PER_SUBSCRIPTION = 4000

FEDERATED_CREDENTIALS_SEGMENT = "/federatedIdentityCredentials/"


# -- federated identity credentials ---------------------------------------------------------


class WriteOrdering(Protocol):
    """What the deployment engine knows about the order of the writes it sends.

    ARM sees only requests; whether two of them overlap is decided by whoever sends them.
    The mock runtime answers from Pulumi's dependency graph (two resources with no path
    between them are sent in parallel); an HTTP server answers from the requests it is
    serving at this moment.
    """

    def concurrent_with(self, arm_id: str) -> bool:
        """True when a write of ``arm_id`` may be in flight alongside this write."""
        ...


def federated_credential_parent(fic_id: str) -> str:
    """The identity a federated credential ID belongs to."""
    cut = fic_id.lower().rfind(FEDERATED_CREDENTIALS_SEGMENT.lower())
    if cut < 0:
        raise ValueError(f"{fic_id!r} is not a federated identity credential ID")
    return fic_id[:cut]


def check_federated_credential_write(
    fic_id: str,
    siblings: Iterable[str],
    ordering: WriteOrdering | None,
) -> None:
    """A PUT of ``fic_id``; ``siblings`` are the other credentials' IDs on its identity.

    * another credential on the same identity written concurrently -> 409
      ``ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity`` (the
      Managed Identity RP serialises credential writes per identity; ARM templates need
      ``@batchSize(1)``/``dependsOn``, Pulumi ``depends_on``);
    * a new credential beyond the 20th on one identity -> 400 (see
      :func:`federated_credential_limit`).
    """
    identity = federated_credential_parent(fic_id)
    others = [s for s in siblings if s.lower() != fic_id.lower()]
    if ordering is not None and any(ordering.concurrent_with(s) for s in others):
        raise ArmError(
            409,
            "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
            "Too many Federated Identity Credentials are written concurrently for the "
            f"managed identity '{identity.lower()}'. Concurrent Federated Identity "
            "Credentials writes under the same managed identity are not supported.",
        )
    if len(others) >= MAX_FEDERATED_CREDENTIALS:
        raise federated_credential_limit(identity)


def federated_credential_limit(identity_id: str) -> ArmError:
    """The 21st credential on one identity.

    The limit is documented; the exact code and text Azure answers with are not (no
    source found), so this uses the Managed Identity RP's generic ``BadRequest`` and says
    so in the docs table ("modelled, code not confirmed").
    """
    return ArmError(
        400,
        "BadRequest",
        f"The managed identity '{identity_id}' already has {MAX_FEDERATED_CREDENTIALS} "
        "federated identity credentials, the maximum allowed.",
    )


# -- role assignments --------------------------------------------------------------------------


def check_role_assignment_ids(name: str, principal_id: str) -> None:
    """ARM refuses an assignment name or a ``principalId`` that is not a GUID (400)."""
    if not armid.is_guid(name):
        raise ArmError(
            400,
            "InvalidRoleAssignmentId",
            f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
        )
    if not isinstance(principal_id, str) or not armid.is_guid(principal_id):
        raise ArmError(
            400,
            "InvalidPrincipalId",
            f"The Principal ID '{principal_id}' is not valid. Principal ID must be a GUID.",
        )


def check_scope_exists(scope: str, subscription_id: str, exists: Callable[[str], bool]) -> None:
    """A role assignment (or lock) goes below an existing scope, or ARM answers 404.

    ARM routes ``{scope}/providers/Microsoft.Authorization/...`` through the scope, so a
    missing resource group is ``ResourceGroupNotFound`` and a missing resource is
    ``ResourceNotFound`` naming it, the error ``az vm create --scope <not yet created>``
    reports. ``exists(id)`` answers for resource groups and resources (case-insensitive);
    a resource that exists implies its group does (ARM created it there).
    """
    try:
        parsed = armid.parse(scope, "scope")
    except ConfigError as exc:
        raise ArmError(
            400, "InvalidScope", f"The scope '{scope}' is not a valid ARM scope."
        ) from exc
    if parsed.subscription_id.lower() != subscription_id.lower():
        raise ArmError(
            404,
            "SubscriptionNotFound",
            f"The subscription '{parsed.subscription_id}' could not be found.",
        )
    if parsed.resource_group is None or exists(scope):
        return
    group = str(armid.resource_group(parsed.subscription_id, parsed.resource_group))
    if parsed.provider is None or not exists(group):
        raise ArmError(
            404,
            "ResourceGroupNotFound",
            f"Resource group '{parsed.resource_group}' could not be found.",
        )
    path = "/".join(
        [str(parsed.provider)]
        + [f"{t}/{n}" for t, n in zip(parsed.types, parsed.names, strict=True)]
    )
    raise ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{path}' under resource group '{parsed.resource_group}' was not "
        "found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def check_role_assignment_limit(assignments_in_subscription: int) -> None:
    """A new assignment once the subscription holds 4,000 -> ``RoleAssignmentLimitExceeded``."""
    if assignments_in_subscription >= MAX_ROLE_ASSIGNMENTS_PER_SUBSCRIPTION:
        raise ArmError(
            400,
            "RoleAssignmentLimitExceeded",
            "No more role assignments can be created.",
        )


# -- authorization -------------------------------------------------------------------------------


def authorization_failed(object_id: str, action: str, scope: str) -> ArmError:
    """ARM's 403 for a caller whose roles do not reach ``scope`` (e.g. a read at
    subscription scope by a deployer that holds roles on one resource group only).

    ARM names a service principal or managed identity by its object ID in both places.
    """
    return ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{object_id}' with object id '{object_id}' does not have authorization "
        f"to perform action '{action}' over scope '{scope}' or the scope is invalid. If "
        "access was recently granted, please refresh your credentials.",
    )


# -- management locks ------------------------------------------------------------------------------


def check_not_locked(
    target_id: str, locks: Iterable[tuple[str, str]], operation: str = "delete"
) -> None:
    """A write under a lock: ``locks`` are ``(scope, level)`` pairs of existing locks.

    ``CanNotDelete`` refuses deletes of the locked resource and of everything below it
    (a federated credential under a locked identity); ``ReadOnly`` also refuses writes.
    ARM answers 409 ``ScopeLocked`` naming the target and the locked scopes.
    """
    blocking = sorted(
        {
            scope
            for scope, level in locks
            if armid.is_within(scope, target_id)
            and (level.lower() == "readonly" or operation == "delete")
        }
    )
    if blocking:
        raise ArmError(
            409,
            "ScopeLocked",
            f"The scope '{target_id}' cannot perform {operation} operation because following "
            f"scope(s) are locked: {', '.join(repr(s) for s in blocking)}. Please remove the "
            "lock and try again.",
        )


# -- Key Vault -------------------------------------------------------------------------------------


def deleted_vault_conflict() -> ArmError:
    """Creating a vault whose name a soft-deleted vault holds (without ``createMode: recover``)."""
    return ArmError(
        409,
        "ConflictError",
        "A vault with the same name already exists in deleted state. You need to either "
        "recover or purge existing key vault. Follow this link "
        "https://go.microsoft.com/fwlink/?linkid=2149745 for more information on soft delete.",
    )


def check_vault_create(deleted: bool, create_mode: str | None) -> None:
    """A vault PUT whose name a soft-deleted vault holds: refused unless it recovers it.

    Vault names are global and a deleted vault keeps its name for its retention days
    (7-90); ``createMode: recover`` brings it back with its secrets, a purge frees the name.
    """
    if deleted and (create_mode or "default").lower() != "recover":
        raise deleted_vault_conflict()


def deleted_vault_purge_refused() -> ArmError:
    """Purging a deleted vault that has purge protection: it stays until its retention ends."""
    return ArmError(405, "MethodNotAllowed", "Operation 'DeletedVaultPurge' is not allowed.")


def deleted_vault_not_found(name: str) -> ArmError:
    """``GET .../locations/{location}/deletedVaults/{name}`` when none is held (text not
    confirmed; the status is what the preflight relies on)."""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource 'Microsoft.KeyVault/deletedVaults/{name}' was not found.",
    )
