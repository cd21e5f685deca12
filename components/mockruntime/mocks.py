"""Pulumi mocks that answer like ARM.

``AzureMocks`` turns each azure-native registration into the ARM ID azure-native would
build (:mod:`components.mockruntime.azure_native`), hands it to an
:class:`~components.arm.backend.ArmBackend` (memory by default, the local sandbox for
end-to-end runs) and flattens the ARM document into the outputs azure-native would
return. :mod:`components.mockruntime.runner` runs whole stack programs against them.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi.runtime import mocks as pulumi_mocks

from components.arm.backend import ArmBackend
from components.arm.memory import InMemoryArm
from components.mockruntime import azure_native
from components.mockruntime.ordering import DependencyGraph


@dataclass
class Registration:
    """One resource the program registered: what it sent and what it got back."""

    type: str
    name: str
    inputs: dict[str, Any]
    id: str
    outputs: dict[str, Any]
    custom: bool
    raw_inputs: dict[str, Any] = field(default_factory=dict)
    """Inputs as the monitor received them, secret envelopes included (to assert secrecy)."""
    urn: str = ""
    dependencies: frozenset[str] = frozenset()
    """URNs this resource waits for (``depends_on`` and every input's resource), as the
    Pulumi engine orders its steps; empty when run by a monitor that does not record them."""


@dataclass
class Invocation:
    token: str
    args: dict[str, Any]
    result: dict[str, Any] = field(default_factory=dict)


class AzureMocks(pulumi_mocks.Mocks):
    """Pulumi mocks answering every azure-native resource and invoke like ARM.

    ``registrations`` records each resource (component or custom) in order, with
    secret-unwrapped inputs, so tests can assert on exactly what would be sent to ARM.
    """

    def __init__(self, backend: ArmBackend | None = None) -> None:
        self.backend: ArmBackend = backend if backend is not None else InMemoryArm()
        self.registrations: list[Registration] = []
        self.invocations: list[Invocation] = []
        self._graph = DependencyGraph()
        self._current = threading.local()

    def begin_registration(self, urn: str, dependencies: Collection[str]) -> None:
        """Called by the monitor just before ``new_resource`` on the same thread."""
        self._current.urn = urn
        self._current.dependencies = frozenset(dependencies)

    # -- pulumi.runtime.Mocks ----------------------------------------------------------

    def new_resource(
        self, args: pulumi_mocks.MockResourceArgs
    ) -> tuple[str | None, dict[Any, Any]]:
        raw = dict(args.inputs)
        inputs = azure_native.unwrap_secrets(raw)
        urn: str = getattr(self._current, "urn", "")
        deps: frozenset[str] = getattr(self._current, "dependencies", frozenset())
        self._current.urn, self._current.dependencies = "", frozenset()
        if not args.typ.startswith("azure-native:") and args.typ not in azure_native.BACKEND_TYPES:
            # Component resources and anything not azure-native: echo the inputs.
            rid = "" if not args.custom else f"{args.name}_id"
            self._graph.add(urn, deps, None)
            self.registrations.append(
                Registration(
                    args.typ, args.name, inputs, rid, inputs, bool(args.custom), raw, urn, deps
                )
            )
            return rid, inputs
        arm_id = self.arm_id(args.typ, args.name, inputs)
        ordering = self._graph.ordering(deps) if urn else None
        arm = self.backend.create_or_update(args.typ, arm_id, inputs, ordering=ordering)
        self._graph.add(urn, deps, arm["id"])
        outputs = azure_native.flatten(args.typ, arm)
        self.registrations.append(
            Registration(args.typ, args.name, inputs, arm["id"], outputs, True, raw, urn, deps)
        )
        return arm["id"], outputs

    def call(
        self, args: pulumi_mocks.MockCallArgs
    ) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        call_args = azure_native.unwrap_secrets(dict(args.args))
        result = self.backend.call(args.token, call_args)
        self.invocations.append(Invocation(args.token, call_args, result))
        return result, []  # an empty failure list: the mock monitor iterates it

    # -- ARM IDs ----------------------------------------------------------------------

    def arm_id(self, token: str, logical_name: str, inputs: Mapping[str, Any]) -> str:
        """The ARM ID azure-native would create for ``token`` with these inputs."""
        return azure_native.arm_id(
            token, logical_name, inputs, subscription_id=self.backend.subscription_id
        )

    # -- conveniences for tests ---------------------------------------------------------

    def of_type(self, token: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == token]

    def custom_registrations(self) -> list[Registration]:
        return [r for r in self.registrations if r.custom]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Pulumi's mock monitor, also handing each resource's URN and dependencies to
    mocks that ask for them (``begin_registration``): the plain monitor drops them."""

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        begin = getattr(self.mocks, "begin_registration", None)
        if begin is not None and request.type != "pulumi:pulumi:Stack":
            urn = self.make_urn(request.parent, request.type, request.name)
            begin(urn, set(request.dependencies))
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]
