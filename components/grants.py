"""``grant(role, scope)`` for every component that holds an identity.

One mixin, so a UserAssignedIdentity and a VM's system identity are granted access the
same way (as AVM modules share one ``role_assignments`` shape).
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

import pulumi

from components.errors import NOT_SET, ConfigError
from components.role_assignment import RoleAssignment, RoleAssignmentArgs
from components.role_lookup import RoleResolver

if TYPE_CHECKING:
    from components.identity import ManagedIdentities


def system_identity_principal(
    identities: ManagedIdentities, principal_id: pulumi.Output[str | None], name: str, host: str
) -> pulumi.Output[str]:
    """The principal ``grant()`` assigns on a host: its system identity, which must be on."""
    if not identities.system_assigned:
        raise ConfigError(
            "grant",
            name,
            f"targets the {host}'s system identity, which is off",
            "turn on system_assigned, or grant the user-assigned identity instead",
        )
    return principal_id.apply(lambda p: p or "")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


class Grantable:
    """Mixin: the host sets ``_grant_principal()`` and is a ComponentResource."""

    _grant_name: str

    def _grant_principal(self) -> pulumi.Output[str]:
        raise NotImplementedError

    def grant(
        self,
        role: str,
        scope: pulumi.Input[str],
        *,
        name: str | None = None,
        description: str | None = None,
        condition: str | None = None,
        condition_version: str | None = None,
        allow_privileged: bool = False,
        role_resolver: RoleResolver | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> RoleAssignment:
        """Assign ``role`` at ``scope`` to this component's identity.

        ``name`` is the Pulumi resource name; it may be left out when ``scope`` is a
        plain string (it is then derived from role and scope, stable across runs). Give
        it when ``scope`` is an Output, so the resource name does not depend on order.
        """
        if name is None:
            if not isinstance(scope, str):
                raise ConfigError(
                    "name",
                    NOT_SET,
                    "is required when scope is an Output",
                    "pass name='<stable key>', e.g. grant(role, vault.secret_scope('x'), "
                    "name='reads-x')",
                )
            digest = hashlib.sha256(scope.lower().encode()).hexdigest()[:8]
            name = f"{_slug(role)}-{digest}"
        parent = opts.parent if opts and opts.parent else self
        return RoleAssignment(
            f"{self._grant_name}-{name}",
            RoleAssignmentArgs(
                role=role,
                principal_id=self._grant_principal(),
                scope=scope,
                principal_type="ServicePrincipal",
                description=description,
                condition=condition,
                condition_version=condition_version,
                allow_privileged=allow_privileged,
                role_resolver=role_resolver,
            ),
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(parent=parent)),  # type: ignore[arg-type]
        )
