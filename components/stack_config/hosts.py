"""Host kinds: each kind of identity-bearing host is one module and one registration.

A host kind (VMs today; apps, scale sets and cluster workloads beside them) is

* a :class:`HostConfig` subclass in its own module: the schema of one entry of its map
  (``mikit:<map>.<key>``), the Azure rules for that entry (:meth:`HostConfig.check`) and
  the grant principals the entry offers (:meth:`HostConfig.grant_principals`, by default
  ``<PRINCIPAL_PREFIX>:<key>`` for its system identity);
* one field on :class:`~components.stack_config.schema.StackConfig`, typed
  ``dict[str, <that subclass>]``: the registration.

:func:`host_kinds` finds the registered kinds from those fields, so the key list, the
cross-reference checks and the principal table (``vm:``, ``app:``, ``scaleset:``,
``workload:`` ...) grow with no other edit.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel

from components.errors import ConfigError
from components.stack_config.base import ConfigModel, choices
from components.stack_config.keys import IDENTITY_PREFIX, NAMESPACE

if TYPE_CHECKING:
    from components.stack_config.schema import StackConfig


@dataclass(frozen=True)
class GrantPrincipal:
    """What a grant's ``principal: <prefix>:<key>`` stands for.

    ``identity`` None: the host's own system identity; otherwise the key of the
    ``mikit:identities`` entry whose principal receives the grant (a workload's federated
    identity, say). ``unavailable`` is ``(problem, fix)`` when the reference exists but
    cannot hold a grant (a system identity that is off).
    """

    reference: str
    where: str
    identity: str | None = None
    unavailable: tuple[str, str] | None = None


def _not_empty(value: list[str] | None) -> list[str] | None:
    if value is not None and not value:
        raise ValueError("is an empty list; a user-assigned identity is required here")
    return value


#: A host's ``userAssigned``: keys of ``mikit:identities``; left out, or at least one.
UserAssignedKeys = Annotated[list[str] | None, AfterValidator(_not_empty)]


class HostConfig(ConfigModel):
    """One entry of a host map. Subclasses set the class variables and may override
    :meth:`check` and :meth:`grant_principals`."""

    #: Grants name this kind's principals ``<PRINCIPAL_PREFIX>:<key>``.
    PRINCIPAL_PREFIX: ClassVar[str]
    #: ``a VM``, ``an app``: how messages name one entry.
    NOUN: ClassVar[str]
    #: How "not a principal reference" explains this kind's references.
    PRINCIPAL_HINT: ClassVar[str]

    name: str

    def check(self, key: str, where: str, cfg: StackConfig) -> None:
        """Azure's rules for this entry and its references (raise :class:`ConfigError`)."""

    def has_system_identity(self) -> bool:
        return bool(getattr(self, "system_identity", False))

    def grant_principals(self, key: str, where: str) -> Iterator[GrantPrincipal]:
        """The references grants may name; by default the entry's system identity."""
        reference = f"{self.PRINCIPAL_PREFIX}:{key}"
        if self.has_system_identity():
            yield GrantPrincipal(reference, where)
            return
        yield GrantPrincipal(
            reference,
            where,
            unavailable=(
                f"names {self.NOUN} whose system identity is off",
                f"set {where}.systemIdentity: true, or grant a user-assigned identity",
            ),
        )


@dataclass(frozen=True)
class HostKind:
    """A registered host map: the ``StackConfig`` attribute, its config key, its model."""

    attribute: str
    key: str
    model: type[HostConfig]

    @property
    def prefix(self) -> str:
        return self.model.PRINCIPAL_PREFIX

    def entries(self, cfg: StackConfig) -> Mapping[str, HostConfig]:
        return typing.cast("Mapping[str, HostConfig]", getattr(cfg, self.attribute))

    def where(self, key: str) -> str:
        return f"{NAMESPACE}:{self.key}.{key}"


def host_kinds_of(model: type[BaseModel]) -> tuple[HostKind, ...]:
    """Every ``dict[str, <HostConfig subclass>]`` field of ``model``, in field order."""
    kinds = []
    for name, field in model.model_fields.items():
        args = typing.get_args(field.annotation)
        if (
            typing.get_origin(field.annotation) is dict
            and len(args) == 2
            and isinstance(args[1], type)
            and issubclass(args[1], HostConfig)
        ):
            kinds.append(HostKind(name, field.alias or name, args[1]))
    prefixes = [k.prefix for k in kinds]
    if len(set(prefixes)) != len(prefixes) or IDENTITY_PREFIX.rstrip(":") in prefixes:
        raise TypeError(f"host kinds share a principal prefix: {prefixes}")
    return tuple(kinds)


def check_identity_refs(refs: list[str] | None, where: str, cfg: StackConfig) -> None:
    """Each ``userAssigned[j]`` names a ``mikit:identities`` key."""
    for j, ref in enumerate(refs or []):
        if ref not in cfg.identities:
            raise ConfigError(
                f"{where}.userAssigned[{j}]",
                ref,
                "is not a key of mikit:identities",
                choices("use one of", cfg.identities),
            )


def require_some_identity(host: Any, where: str) -> None:
    """A host with neither a system nor a user-assigned identity has nothing to prove."""
    if not host.system_identity and not host.user_assigned:
        raise ConfigError(
            where,
            {"systemIdentity": False, "userAssigned": None},
            "has no identity at all",
            "set systemIdentity: true and/or userAssigned: [<identity key>]",
        )
