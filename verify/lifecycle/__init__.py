"""The deletion lifecycle: what happens, measured, when identities and VMs go away.

Five scenarios, each a list of named steps that say what they expected and what they
observed. They run one after another on ONE deployment (a throw-away stack on Azure, a
fresh sandbox locally), each choosing its subjects from what is still standing, so the
same code serves both targets:

* ``delete-vm``: delete a VM with a system identity (again preferring a system-only
  one, so the reference topology has two of them); its principal is gone, its role
  assignments stay, orphaned, and are found with ``principalId eq``;
* ``disable-system-identity``: turn the system identity off on a running VM (one whose
  only identity it is, when the stack has one); a fresh probe gets IMDS 400 "Identity not
  found" (on a VM with one user-assigned identity left, that identity's token, reported);
  a token obtained before is replayed and the outcome reported with its remaining
  lifetime (accepted or refused: observed, not assumed);
* ``delete-one-sharing-vm``: delete one of the VMs sharing a user-assigned identity; the
  identity and the other VMs keep working;
* ``delete-shared-identity``: delete that identity; every VM that used it fails fresh
  probes; its assignments are orphaned;
* ``recreate-identity``: same name, new principal and client ID; the old grants do not
  apply until made again; then reads work.

Orphan cleanup (``cleanup=True``) follows :mod:`verify.orphans`: only principals a step
of this run removed successfully, proven gone by Microsoft Graph (404), listed at the
stack's resource group, scoped inside it, and unchanged when re-read right before the
delete.

Layout: :mod:`.context` (the :class:`Lifecycle` carried from scenario to scenario and its
probing helpers), :mod:`.scenarios` (one module per scenario, and the runner),
:mod:`.cleanup` (orphan cleanup), :mod:`.verdicts` (judging single observations),
:mod:`.steps` (step constructors), :mod:`.locks` (a management lock that would refuse a
scenario lifted for it and put back, or why it cannot be).
"""

from verify.lifecycle.cleanup import cleanup_step
from verify.lifecycle.context import (
    PROBE_BUDGET,
    PROPAGATION_WAIT,
    Lifecycle,
    Progress,
    ScenarioSkippedError,
    StepLog,
)
from verify.lifecycle.scenarios import SCENARIO_NAMES, SCENARIOS, Scenario, run_scenarios
from verify.lifecycle.verdicts import (
    IDENTITY_NOT_FOUND,
    Verdict,
    judge_system_request,
    replay_step,
    system_token_gone_step,
)

__all__ = [
    "IDENTITY_NOT_FOUND",
    "PROBE_BUDGET",
    "PROPAGATION_WAIT",
    "SCENARIOS",
    "SCENARIO_NAMES",
    "Lifecycle",
    "Progress",
    "Scenario",
    "ScenarioSkippedError",
    "StepLog",
    "Verdict",
    "cleanup_step",
    "judge_system_request",
    "replay_step",
    "run_scenarios",
    "system_token_gone_step",
]
