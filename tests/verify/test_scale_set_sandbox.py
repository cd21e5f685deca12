"""A scale set is checked on every instance, and an instance added later proves the same
cells at once: its identities are the set's (one system principal, the shared identity)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from verify.runner import check_report
from verify.targets.sandbox import SandboxTarget

ONLY_THE_SCALE_SET = {
    "mikit:vms": {},
    "mikit:clusters": {},
    "mikit:apps": {},
    "mikit:grants": [
        {
            "principal": "scaleset:web",
            "role": "Key Vault Secrets User",
            "target": "secret:reports-token",
        },
        {
            "principal": "identity:shared",
            "role": "Key Vault Secrets User",
            "target": "secret:api-key",
        },
    ],
}


@pytest.fixture(scope="module")
def target() -> Iterator[SandboxTarget]:
    with SandboxTarget(config_overrides=ONLY_THE_SCALE_SET) as t:
        yield t


def test_every_instance_is_probed_and_a_new_one_reads_at_once(target: SandboxTarget) -> None:
    sb = target.sandbox
    (scale_set,) = target.outputs().scale_sets.values()
    sb.state.scale_scale_set(scale_set.id, 3)
    instances = sb.state.instances(scale_set.id)
    assert len(instances) == 3
    since = sb.request_log.now()
    run = check_report(target, "sandbox")
    assert run.check is not None
    assert run.check.passed, run.check.failures
    assert {c.host for c in run.check.cells} == {"scaleset:web"}
    asked = {r.target for r in sb.request_log.records(since=since) if r.service == "imds"}
    assert asked == {i.name for i in instances}  # all three, the newest included
