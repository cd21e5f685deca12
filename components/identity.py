"""Managed identities: the AVM-style ``ManagedIdentities`` block and ``UserAssignedIdentity``.

The ARM identity ``type`` is *computed* from what the caller asks for, never set on its
own: setting it independently is how VMs keep identities users removed, or fail with
"identityIds should not be provided if the type is SystemAssigned".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pulumi
import pulumi_azure_native as azure_native

from components import armid, validation
from components.arm.rules import MAX_FEDERATED_CREDENTIALS
from components.errors import ConfigError
from components.grants import Grantable
from components.identity_type import identity_type

# The audience Entra ID expects in federated tokens (GitHub Actions OIDC and others).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # noqa: S105 (an audience)


@dataclass(frozen=True)
class ManagedIdentities:
    """Which identities a resource holds (AVM ``managedIdentities``).

    ``user_assigned_ids`` are ARM IDs of :class:`UserAssignedIdentity` resources (or
    their ``id`` outputs); azure-native 3.x takes them as a list and returns a map
    ``id -> {principalId, clientId}``.
    """

    system_assigned: bool = False
    user_assigned_ids: Sequence[pulumi.Input[str]] = ()

    @classmethod
    def user_assigned(
        cls, *ids: pulumi.Input[str], system_assigned: bool = False
    ) -> ManagedIdentities:
        """At least one user-assigned identity, as a resource that needs one requires."""
        if not ids:
            raise ConfigError(
                "user_assigned_ids",
                [],
                "is empty but a user-assigned identity is required",
                "pass the id of at least one UserAssignedIdentity (e.g. identity.id)",
            )
        return cls(system_assigned=system_assigned, user_assigned_ids=tuple(ids))

    def __post_init__(self) -> None:
        if isinstance(self.user_assigned_ids, str):
            raise ConfigError(
                "user_assigned_ids",
                self.user_assigned_ids,
                "is a single string, not a list",
                "wrap it in a list: user_assigned_ids=[identity.id]",
            )
        seen: set[str] = set()
        for i, value in enumerate(self.user_assigned_ids):
            if isinstance(value, str):
                if value.lower() in seen:
                    raise ConfigError(
                        f"user_assigned_ids[{i}]",
                        value,
                        "is listed twice",
                        "list each user-assigned identity once",
                    )
                seen.add(value.lower())
                parsed = armid.parse(value, f"user_assigned_ids[{i}]")
                if (parsed.resource_type or "").lower() != (
                    "microsoft.managedidentity/userassignedidentities"
                ):
                    raise ConfigError(
                        f"user_assigned_ids[{i}]",
                        value,
                        "is not a user-assigned identity ID",
                        "pass the id of a UserAssignedIdentity "
                        "(.../Microsoft.ManagedIdentity/userAssignedIdentities/<name>)",
                    )

    @property
    def type(self) -> str:
        """``None``, ``SystemAssigned``, ``UserAssigned`` or ``SystemAssigned, UserAssigned``."""
        return identity_type(self.system_assigned, bool(self.user_assigned_ids))

    def vm_identity_args(self) -> azure_native.compute.VirtualMachineIdentityArgs:
        """The VM ``identity`` input; always sent, so removing identities removes them."""
        return azure_native.compute.VirtualMachineIdentityArgs(
            type=self.type,  # type: ignore[arg-type]
            user_assigned_identities=list(self.user_assigned_ids) or None,
        )

    def scale_set_identity_args(self) -> azure_native.compute.VirtualMachineScaleSetIdentityArgs:
        """The scale set ``identity`` input: the whole block on every update, because a
        PATCH of ``identity`` that leaves out user-assigned IDs the set holds drops them."""
        return azure_native.compute.VirtualMachineScaleSetIdentityArgs(
            type=self.type,  # type: ignore[arg-type]
            user_assigned_identities=list(self.user_assigned_ids) or None,
        )


@dataclass(frozen=True)
class FederatedCredential:
    """Trust an external OIDC issuer (e.g. GitHub Actions) to act as this identity."""

    name: str
    issuer: pulumi.Input[str]
    """Compared by Entra ID character for character (a trailing slash counts): for a
    cluster, pass its issuer output rather than a typed copy of it."""
    subject: str
    audiences: Sequence[str] = (TOKEN_EXCHANGE_AUDIENCE,)


@dataclass(frozen=True)
class UserAssignedIdentityArgs:
    name: str
    resource_group_name: pulumi.Input[str]
    location: pulumi.Input[str] | None = None
    federated_credentials: Sequence[FederatedCredential] = ()
    lock: bool = False
    """Add a ``CanNotDelete`` lock: deleting a shared identity breaks every user of it."""
    tags: Mapping[str, str] = field(default_factory=dict)


def check_federated_credentials(
    creds: Sequence[FederatedCredential], field: str = "federated_credentials"
) -> None:
    """At most 20, names unique and well-formed, an https issuer, a subject and audiences."""
    if len(creds) > MAX_FEDERATED_CREDENTIALS:
        raise too_many_federated_credentials(field, len(creds))
    seen: set[str] = set()
    for i, cred in enumerate(creds):
        check_federated_credential(cred, f"{field}[{i}]", seen)


def too_many_federated_credentials(field: str, count: int) -> ConfigError:
    return ConfigError(
        field,
        f"{count} credentials",
        f"is more than the {MAX_FEDERATED_CREDENTIALS} federated credentials Entra ID "
        "allows on one identity",
        "drop some subjects (e.g. federate on GitHub environments instead of branches) "
        "or split them over a second identity",
    )


def check_federated_credential(cred: FederatedCredential, where: str, seen: set[str]) -> None:
    """One credential: a well-formed name not in ``seen`` (lower-cased names, updated),
    an https issuer with a host (when known before deployment), a subject and audiences."""
    if not cred.name or len(cred.name) > 120 or not cred.name[0].isalnum():
        raise ConfigError(
            f"{where}.name",
            cred.name,
            "is not a valid credential name",
            "use 3-120 letters, digits, '-' and '_', starting with a letter or digit",
        )
    if cred.name.lower() in seen:
        raise ConfigError(f"{where}.name", cred.name, "is used twice", "give each a new name")
    seen.add(cred.name.lower())
    if not isinstance(cred.issuer, pulumi.Output):
        issuer = urlsplit(cred.issuer) if isinstance(cred.issuer, str) else None
        if issuer is None or issuer.scheme != "https" or not issuer.hostname:
            raise ConfigError(
                f"{where}.issuer",
                cred.issuer,
                "is not an https URL with a host",
                "use the OIDC issuer, e.g. https://token.actions.githubusercontent.com",
            )
    if not cred.subject:
        raise ConfigError(
            f"{where}.subject",
            cred.subject,
            "is empty",
            "use the token subject, e.g. repo:<org>/<repo>:ref:refs/heads/main",
        )
    if not cred.audiences or isinstance(cred.audiences, str):
        raise ConfigError(
            f"{where}.audiences",
            cred.audiences,
            "is not a non-empty list",
            f"use [{TOKEN_EXCHANGE_AUDIENCE!r}]",
        )


class UserAssignedIdentity(pulumi.ComponentResource, Grantable):
    """A standalone, shareable user-assigned identity.

    Outputs: ``id``, ``name``, ``client_id``, ``principal_id``, ``tenant_id``.
    ``grant(role, scope)`` assigns it a role.
    """

    def __init__(
        self,
        resource_name: str,
        args: UserAssignedIdentityArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        validation.identity_name(args.name, "name")
        check_federated_credentials(args.federated_credentials)
        super().__init__("mikit:identity:UserAssignedIdentity", resource_name, None, opts)
        self._grant_name = resource_name
        child = pulumi.ResourceOptions(parent=self)
        uai = azure_native.managedidentity.UserAssignedIdentity(
            resource_name,
            resource_name_=args.name,
            resource_group_name=args.resource_group_name,
            location=args.location,
            tags=dict(args.tags) or None,
            opts=child,
        )
        self.id: pulumi.Output[str] = uai.id
        self.name: pulumi.Output[str] = uai.name
        self.client_id: pulumi.Output[str] = uai.client_id
        self.principal_id: pulumi.Output[str] = uai.principal_id
        self.tenant_id: pulumi.Output[str] = uai.tenant_id
        self._uai = uai
        self._resource_group_name = args.resource_group_name
        self._resource_name = resource_name
        self.lock: azure_native.authorization.ManagementLockByScope | None = None
        self._credential_names: set[str] = set()
        self.federated_credentials: list[
            azure_native.managedidentity.FederatedIdentityCredential
        ] = []
        for cred in args.federated_credentials:
            self.federate(cred)
        # The lock waits for every credential, so Pulumi creates it last and deletes it
        # first: `pulumi destroy` lifts the lock before it deletes the credentials (a
        # CanNotDelete lock on the identity refuses their deletion: 409 ScopeLocked).
        self.lock = (
            azure_native.authorization.ManagementLockByScope(
                f"{resource_name}-lock",
                scope=uai.id,
                lock_name=f"{args.name}-cannot-delete",
                level="CanNotDelete",
                notes="Shared identity: deleting it breaks every resource that uses it.",
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=list(self.federated_credentials)
                ),
            )
            if args.lock
            else None
        )
        self.register_outputs(
            {
                "id": self.id,
                "name": self.name,
                "client_id": self.client_id,
                "principal_id": self.principal_id,
                "tenant_id": self.tenant_id,
            }
        )

    def federate(
        self, cred: FederatedCredential, *, opts: pulumi.ResourceOptions | None = None
    ) -> azure_native.managedidentity.FederatedIdentityCredential:
        """Trust one more issuer/subject on this identity, after the ones it already has.

        One at a time: the Managed Identity RP refuses concurrent credential writes on one
        identity (409 ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity)
        and Pulumi writes resources with no dependency between them in parallel, so each
        credential waits for the previous one. The 21st on one identity is a ConfigError
        (Entra ID allows 20). ``opts.parent`` places it under another component (e.g. the
        workload it serves).

        On an identity with a ``CanNotDelete`` lock, a credential added after construction
        waits for the lock and is deleted with the identity (``deleted_with``), so
        ``pulumi destroy`` skips it instead of failing with 409 ScopeLocked; removing it
        alone still needs the lock lifted first, as on Azure.
        """
        where = f"{self._resource_name}.federated_credentials[{len(self.federated_credentials)}]"
        if len(self.federated_credentials) >= MAX_FEDERATED_CREDENTIALS:
            raise too_many_federated_credentials(
                f"{self._resource_name}.federated_credentials",
                len(self.federated_credentials) + 1,
            )
        check_federated_credential(cred, where, self._credential_names)
        depends: list[pulumi.Resource] = list(self.federated_credentials[-1:])
        extra = pulumi.ResourceOptions()
        if self.lock is not None:
            depends.append(self.lock)
            extra = pulumi.ResourceOptions(deleted_with=self._uai)
        child = pulumi.ResourceOptions.merge(
            pulumi.ResourceOptions(parent=self, depends_on=depends), extra
        )
        fic = azure_native.managedidentity.FederatedIdentityCredential(
            f"{self._resource_name}-{cred.name}",
            federated_identity_credential_resource_name=cred.name,
            resource_name_=self._uai.name,
            resource_group_name=self._resource_group_name,
            issuer=cred.issuer,
            subject=cred.subject,
            audiences=list(cred.audiences),
            opts=pulumi.ResourceOptions.merge(child, opts),
        )
        self.federated_credentials.append(fic)
        return fic

    def _grant_principal(self) -> pulumi.Output[str]:
        return self.principal_id
