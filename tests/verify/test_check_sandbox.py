"""``verify check`` on the sandbox: what counts as evidence, and the bounded RBAC wait.

Each test builds the situation with the sandbox's own faults or state, then asserts on
the report a user would read.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components import access
from verify.runner import check_report
from verify.sandbox import Fault
from verify.targets.sandbox import SANDBOX_PROPAGATION_WAIT, SandboxTarget


@pytest.fixture
def target(deployed_target: SandboxTarget) -> Iterator[SandboxTarget]:
    """The worker's deployment, fresh (conftest.py resets it before each test)."""
    yield deployed_target
    deployed_target.sandbox.faults.clear()


def _grant_everything_again(target: SandboxTarget) -> int:
    """Make every grant the deploy made again, as it was (name, scope, role, principal,
    condition), so each is as young as on a stack deployed this instant; the operator's
    access (dated at the epoch: held long before the deploy) stays as it is."""
    st = target.sandbox.state
    again = [a for a in st.role_assignments() if a.created_on > 0]
    for a in again:
        st.delete_role_assignment(a.id)
        st.create_role_assignment(
            a.scope,
            a.role_definition_id,
            a.principal_id,
            principal_type=a.principal_type,
            name=a.name,
            description=a.description,
            condition=a.condition,
            condition_version=a.condition_version,
        )
    return len(again)


def test_check_fails_when_denied_cells_get_401_instead_of_passing(target: SandboxTarget) -> None:
    """The reported failure: every break-glass cell (all expected denied) answered 401 and `check`
    PASSED. A 401 proves nothing about RBAC: each such cell fails, saying so."""
    fault = target.sandbox.faults.add(
        Fault(service="keyvault", status=401, path="/secrets/break-glass")
    )
    run = check_report(target, "sandbox")
    assert fault.hits > 0
    assert run.check is not None and not run.check.passed
    # An identity hidden from an app's code never reaches the vault: its cells stand.
    hidden = [c for c in run.check.cells if c.expected == "no_identity"]
    assert hidden and all(c.passed and c.host_kind == "app" for c in hidden)
    hit = [c for c in run.check.cells if c.target == "break-glass" and c not in hidden]
    assert hit and {c.expected for c in hit} == {"denied"}
    assert all(not c.passed and c.observed == "inconclusive" for c in hit)
    assert all("401" in c.detail and "inconclusive" in c.detail for c in hit)
    assert all(c.passed for c in run.check.cells if c.target != "break-glass")


def test_check_fails_on_a_5xx_or_reset_for_a_denied_cell(target: SandboxTarget) -> None:
    target.sandbox.faults.add(Fault(service="keyvault", status=503, path="/secrets/break-glass"))
    run = check_report(target, "sandbox")
    assert run.check is not None and not run.check.passed
    assert {
        c.observed
        for c in run.check.cells
        if c.target == "break-glass" and c.expected != "no_identity"
    } == {"unreachable"}
    target.sandbox.faults.clear()
    target.sandbox.faults.add(Fault(service="keyvault", kind="reset", path="/secrets/break-glass"))
    run = check_report(target, "sandbox")
    assert run.check is not None and not run.check.passed
    assert not any(
        c.passed
        for c in run.check.cells
        if c.target == "break-glass" and c.expected != "no_identity"
    )


def test_a_denied_cell_that_reads_fails_at_once_without_waiting(target: SandboxTarget) -> None:
    outputs = target.outputs()
    st = target.sandbox.state
    extra = st.create_role_assignment(
        outputs.secrets["break-glass"].scope,
        "Key Vault Secrets User",
        outputs.identities["shared"].principal_id,
    )
    try:
        run = check_report(target, "sandbox")  # default wait: 15 s on the sandbox
    finally:
        st.delete_role_assignment(extra.id)
    assert run.check is not None and not run.check.passed
    bad = [c for c in run.check.cells if not c.passed]
    assert bad and all(c.expected == "denied" and c.observed == "read" for c in bad)
    assert all(c.attempts == 1 and c.waited_ms == 0 for c in bad)


def test_a_fresh_grant_still_propagating_fails_without_a_wait(target: SandboxTarget) -> None:
    """The converse of the test below: the delay is real, only the wait covers it."""
    target.sandbox.faults.propagation_delay_seconds = 5.0
    solo = target.outputs().vms["solo"].system_principal_id or ""
    st = target.sandbox.state
    # solo's Key Vault grant (it also reads a blob container)
    (grant,) = [a for a in st.role_assignments(principal_id=solo) if "/vaults/" in a.scope]
    st.delete_role_assignment(grant.id)
    st.create_role_assignment(grant.scope, grant.role_definition_id, solo, name=grant.name)
    run = check_report(target, "sandbox", propagation_wait=0.0)
    assert run.check is not None and not run.check.passed
    bad = {(c.host, c.target): c for c in run.check.cells if not c.passed}
    # Grants younger than the delay (all of them when this test runs alone) fail too.
    assert ("solo", "app-db-password") in bad
    # Fresh Blob grants fail the same way, with Blob Storage's own proof of a denial.
    assert {(c.expected, c.observed, c.error_code) for c in bad.values()} <= {
        ("allowed", "forbidden", "Forbidden/ForbiddenByRbac"),
        ("allowed", "forbidden", "AuthorizationPermissionMismatch"),
    }


def test_check_with_a_5_second_propagation_delay_passes_with_the_defaults(
    target: SandboxTarget,
) -> None:
    """The sandbox default wait covers a 5 s propagation delay: every grant of the stack
    made just now (as right after its deploy), none in effect for 5 s."""
    assert SANDBOX_PROPAGATION_WAIT > 5.0
    target.sandbox.faults.propagation_delay_seconds = 5.0
    assert _grant_everything_again(target) > 0
    run = check_report(target, "sandbox")
    assert run.check is not None and run.check.passed, run.check.failures
    # The delay was waited out, not missed: reads were refused first, then passed.
    waited = [c for c in run.check.cells if c.expected == "allowed" and c.attempts > 1]
    assert waited and all(c.waited_ms > 0 for c in waited)


def test_one_check_derives_the_access_matrix_once(
    target: SandboxTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The matrix is computed from the grants once per run and passed along (to the
    consistency check with the exported matrix), never re-derived per use."""
    calls: list[int] = []
    derive = access.access_matrix

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return derive(*args, **kwargs)  # type: ignore[arg-type]

    target.outputs()
    monkeypatch.setattr(access, "access_matrix", counted)
    run = check_report(target, "sandbox")
    assert run.check is not None and run.check.passed, run.check.failures if run.check else None
    assert len(calls) == 1
    sources = {(i.host_kind, i.credential_source) for i in run.check.identities}
    # VMs, scale-set instances and the pod without workload identity answer through IMDS;
    # the pod with one exchanges its projected token; apps ask their identity endpoint (the
    # container app's hidden identity gets no token, so it names no source).
    assert sources == {
        ("app", "app_service"),
        ("app", None),
        ("vm", "imds"),
        ("scaleset", "imds"),
        ("workload", "workload_identity"),
        ("workload_without_identity", "imds"),
    }, sources
