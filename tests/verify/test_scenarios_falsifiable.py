"""Every lifecycle scenario is falsifiable: break any one of its actions and it FAILS.

A scenario that still passes when the deletion it is about never happened proves
nothing. Each case wraps the sandbox target so that one action is skipped (returns as
if it had worked, changing nothing) or fails (raises), runs that scenario alone on a
fresh deployment, and asserts the scenario fails on a step verdict (not a crash). The
unsabotaged run of each scenario passes, so the failure is the sabotage's doing.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import pytest

from verify.lifecycle import Lifecycle, run_scenarios
from verify.results import ScenarioResult
from verify.targets.base import Assignment, IdentityInfo
from verify.targets.sandbox import SandboxTarget

Mode = Literal["skip", "fail"]


class Sabotaged:
    """A target whose one ``action`` is skipped or fails; everything else is the real one."""

    def __init__(self, target: SandboxTarget, action: str, mode: Mode) -> None:
        self._target = target
        self.action = action
        self.mode = mode
        self.calls = 0
        setattr(self, action, self._sabotaged)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def _sabotaged(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.mode == "fail":
            raise RuntimeError(f"sabotaged: {self.action} failed")
        return self._pretend(*args)

    def _pretend(self, *args: Any) -> Any:
        """What a skipped action returns: the shape of success, with nothing done."""
        if self.action == "probe":
            return {}
        if self.action == "create_identity":
            ident = self._target.outputs().identities[args[0]]
            fake = str(uuid.uuid4())
            return IdentityInfo(ident.name, ident.id, fake, str(uuid.uuid4()), "tenant")
        if self.action == "create_assignment":
            principal, role, scope = args
            name = str(uuid.uuid4())
            return Assignment(
                f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
                name,
                principal,
                "ServicePrincipal",
                role,
                scope,
            )
        return None


#: Each scenario's actions: every call that changes the deployment, plus its probes.
ACTIONS: dict[str, tuple[str, ...]] = {
    "scale-in-and-out": ("scale_scale_set", "probe"),
    "delete-scale-set": ("delete_scale_set", "delete_assignment", "probe"),
    "delete-vm": ("delete_vm", "delete_assignment", "probe"),
    "disable-system-identity": ("disable_system_identity", "delete_assignment", "probe"),
    "delete-one-sharing-vm": ("delete_vm", "probe"),
    "delete-shared-identity": ("delete_identity", "delete_assignment", "probe"),
    "recreate-identity": (
        "delete_identity",
        "detach_identity",
        "create_identity",
        "attach_identity",
        "create_assignment",
        "delete_assignment",
        "probe",
    ),
    "delete-app": ("delete_app", "probe"),
    "remove-app-reference-grant": ("delete_assignment",),
    "disable-app-system-identity": ("set_app_system_identity",),
}
CASES = [
    pytest.param(scenario, action, mode, id=f"{scenario}-{action}-{mode}")
    for scenario, actions in ACTIONS.items()
    for action in actions
    for mode in ("skip", "fail")
    # a raise is caught the same way for every action; one probe failure per scenario
    # is enough, a skip is the subtle case and is run for every action
    if mode == "skip" or action == "probe"
]


@pytest.fixture
def target(deployed_target: SandboxTarget) -> SandboxTarget:
    """A fresh deployment (the worker's one, reset)."""
    return deployed_target


def _run(target: Any, scenario: str) -> ScenarioResult:
    (result,) = run_scenarios(Lifecycle(target, cleanup=True, propagation_wait=2.0), [scenario])
    return result


@pytest.mark.parametrize("scenario", list(ACTIONS))
def test_each_scenario_passes_when_nothing_is_sabotaged(
    target: SandboxTarget, scenario: str
) -> None:
    result = _run(target, scenario)
    assert result.passed, [(s.name, s.observed, s.details) for s in result.steps if not s.passed]


@pytest.mark.parametrize(("scenario", "action", "mode"), CASES)
def test_a_skipped_or_failed_action_fails_the_scenario(
    target: SandboxTarget, scenario: str, action: str, mode: Mode
) -> None:
    sabotaged = Sabotaged(target, action, mode)
    result = _run(sabotaged, scenario)
    assert sabotaged.calls > 0, f"{scenario} never called {action}"
    assert not result.passed
    failed = [s for s in result.steps if not s.passed]
    assert failed or result.error, "the scenario failed without saying where"


def test_recreate_identity_fails_when_the_new_identity_is_never_attached(
    target: SandboxTarget,
) -> None:
    """The issue's example, with the failing step named."""
    result = _run(Sabotaged(target, "attach_identity", "skip"), "recreate-identity")
    steps = {s.name: s for s in result.steps}
    assert not result.passed
    assert not steps["after the grants are made again, reads work"].passed
    assert not steps["old grants do not apply to the new principal"].passed
