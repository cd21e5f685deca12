"""``mikit:createResourceGroup: false`` end to end on the sandbox, which answers like ARM.

The mode CI stacks use: the group is made beforehand (by the bootstrap on Azure, here
directly in the sandbox state) and the stack program deploys into it without registering
it. (Without the group, the sandbox answers the first resource with ARM's 404
ResourceGroupNotFound, as Azure does; not tested here because a deployment that fails
half-way leaves the mock runtime's pending tasks to be reported at interpreter exit.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from verify.runner import check_report
from verify.sandbox import Sandbox, SandboxConfig
from verify.targets.sandbox import SandboxTarget

EXISTING = {"mikit:createResourceGroup": False}
GROUP = "rg-mikit-sandbox"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as sb:
        yield sb


def test_the_stack_deploys_into_an_existing_group_and_verifies(sandbox: Sandbox) -> None:
    made = sandbox.state.create_resource_group(GROUP)
    with SandboxTarget(sandbox=sandbox, config_overrides=EXISTING) as target:
        outputs = target.outputs()
        assert outputs.resource_group_id.lower() == made.id.lower()
        assert {vm.id.lower().startswith(made.id.lower()) for vm in outputs.vms.values()} == {True}
        run = check_report(target, "sandbox")
    assert run.check is not None and run.check.passed, run.check.failures
    # every VM x identity x (secret or blob)
    # six VM holders, then the scale set's two, workload api's and workload batch's
    # (kubelet), then the apps' five (web: system + shared, func: shared, jobs: system +
    # shared hidden from its code)
    assert len(run.check.cells) == (6 + 4 + 5) * (len(outputs.secrets) + len(outputs.blobs))
