"""The matrix check: both directions, the token's identity, fingerprints, the matrix itself."""

from __future__ import annotations

import copy

import pytest
from verify_world import probe_result_for, sample_outputs

from components import access
from components.errors import ConfigError
from verify.check import expectations_from, matrix_consistency
from verify.evidence.judge import judge
from verify.lifecycle.context import Lifecycle
from verify.model import HOST_OUTPUTS, AccessCell, ProbeResult, derive_matrix, load_outputs


def _run(raw: dict, overrides: dict[str, dict] | None = None, mutate=None):
    outputs = load_outputs(raw)
    probes = {}
    for vm in raw["vms"]:
        data = probe_result_for(raw, vm, (overrides or {}).get(vm))
        if mutate:
            mutate(vm, data)
        probes[vm] = ProbeResult.model_validate(data)
    return judge(outputs, expectations_from(outputs), probes)


def test_correct_deployment_passes_every_cell() -> None:
    result = _run(sample_outputs())
    assert result.passed
    assert len(result.cells) == 6
    assert {c.observed for c in result.cells} == {"read", "forbidden"}
    assert all(c.fingerprint_match for c in result.cells if c.observed == "read")
    assert [i.passed for i in result.identities] == [True, True, True]


def test_a_grant_that_does_not_work_fails_naming_the_cell() -> None:
    result = _run(sample_outputs(), {"web": {("system", "db-password"): "forbidden"}})
    assert not result.passed
    (failure,) = result.failures
    assert "vm 'web'" in failure and "identity 'system'" in failure
    assert "secret 'db-password'" in failure
    assert "expected allowed, observed forbidden" in failure
    assert "the grant does not work" in failure


def test_access_nobody_granted_fails() -> None:
    result = _run(sample_outputs(), {"web": {("system", "api-key"): "read"}})
    assert not result.passed
    (failure,) = result.failures
    assert "expected denied, observed read" in failure
    assert "access nobody granted" in failure


def test_token_of_another_principal_fails_even_when_reads_match() -> None:
    raw = sample_outputs()

    def swap_oid(vm, data):
        if vm == "batch":
            data["identities"][0]["claims"]["oid"] = "dddddddd-0000-0000-0000-000000000009"

    result = _run(raw, mutate=swap_oid)
    assert all(c.passed for c in result.cells)
    assert not result.passed
    assert any("token oid dddddddd" in f and "vm 'batch'" in f for f in result.failures)


def test_a_different_value_fails_on_fingerprint() -> None:
    def other_value(vm, data):
        for ident in data["identities"]:
            for s in ident["secrets"].values():
                if s["outcome"] == "read":
                    s["fingerprint"] = "sha256:ff"

    result = _run(sample_outputs(), mutate=other_value)
    assert not result.passed
    assert all(c.fingerprint_match is False for c in result.cells if c.observed == "read")
    assert "fingerprint differs" in result.failures[0]


def test_vm_that_could_not_be_probed_fails_every_cell() -> None:
    raw = sample_outputs()
    outputs = load_outputs(raw)
    probes = {
        "web": ProbeResult.model_validate(probe_result_for(raw, "web")),
        "batch": RuntimeError("Run Command timed out"),
    }
    result = judge(outputs, expectations_from(outputs), probes)
    batch = [c for c in result.cells if c.host == "batch"]
    assert batch and all(not c.passed and c.observed == "not_probed" for c in batch)
    assert "Run Command timed out" in batch[0].detail


def test_reader_on_the_vault_reads_nothing_in_the_derived_matrix() -> None:
    outputs = load_outputs(sample_outputs())
    cells = {(c.vm, c.identity, c.secret): c.expected for c in derive_matrix(outputs)}
    assert cells[("web", "system", "api-key")] == "denied"  # Reader has no data actions
    assert cells[("web", "system", "db-password")] == "allowed"  # secret-scope grant
    assert cells[("batch", "shared", "api-key")] == "allowed"  # vault scope inherits


def test_exported_matrix_that_disagrees_with_grants_is_reported() -> None:
    raw = sample_outputs()
    outputs = load_outputs(raw)
    assert matrix_consistency(outputs, derive_matrix(outputs)) == []
    bad = copy.deepcopy(raw)
    for cell in bad["access_matrix"]:
        if cell.get("vm") == "web" and cell["identity"] == "system" and cell["secret"] == "api-key":
            cell["expected"] = "allowed"
    bad_outputs = load_outputs(bad)
    (problem,) = matrix_consistency(bad_outputs, derive_matrix(bad_outputs))
    assert "access_matrix says allowed" in problem and "grants imply denied" in problem


def test_outputs_with_a_missing_field_are_a_config_error() -> None:
    raw = sample_outputs()
    del raw["vault"]
    with pytest.raises(ConfigError) as info:
        load_outputs(raw, "outputs.json")
    assert info.value.field == "outputs.json"
    assert "vault" in str(info.value)


def test_hidden_fingerprints_fail_the_check_and_say_how_to_fix() -> None:
    raw = sample_outputs()
    raw["secret_fingerprints"] = "[secret]"  # `pulumi stack output --json` without --show-secrets
    assert load_outputs(raw).secret_fingerprints is None
    result = _run(raw)
    assert not result.passed
    reads = [c for c in result.cells if c.observed == "read"]
    assert reads and all(not c.passed and c.note == "value not compared" for c in reads)
    assert all("value not compared" in c.detail for c in reads)
    (error,) = result.errors
    assert "--show-secrets" in error and "--allow-unverified-values" in error
    # Denied cells are proven by Key Vault's 403 alone: they still pass.
    assert all(c.passed for c in result.cells if c.expected == "denied")


def test_unverified_values_pass_only_when_asked_and_say_so() -> None:
    raw = sample_outputs()
    raw["secret_fingerprints"] = "[secret]"
    outputs = load_outputs(raw)
    probes = {vm: ProbeResult.model_validate(probe_result_for(raw, vm)) for vm in raw["vms"]}
    result = judge(outputs, expectations_from(outputs), probes, allow_unverified_values=True)
    assert result.passed, result.failures
    reads = [c for c in result.cells if c.observed == "read"]
    assert reads and {c.note for c in reads} == {"value not compared"}
    assert {c.note for c in result.cells if c.observed != "read"} == {None}
    assert all(c.fingerprint_match is None for c in reads)


def test_with_fingerprints_a_read_is_compared_not_noted() -> None:
    result = _run(sample_outputs())
    assert {c.note for c in result.cells} == {None}


def _denied_answer(status: int, code: str):
    def mutate(vm, data):
        for ident in data["identities"]:
            for s in ident["secrets"].values():
                if s["outcome"] == "forbidden":
                    s.update(http_status=status, error_code=code)

    return mutate


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "Unauthorized"),  # the token was refused: says nothing about RBAC
        (403, "Forbidden"),  # a 403 without ForbiddenByRbac (firewall, policy)
        (403, "Forbidden/AccessDenied"),
        (500, "Forbidden/ForbiddenByRbac"),
    ],
)
def test_only_keyvault_403_forbidden_by_rbac_proves_denied(status: int, code: str) -> None:
    # Even when a probe labels it "forbidden", the verifier checks the evidence itself.
    result = _run(sample_outputs(), mutate=_denied_answer(status, code))
    assert not result.passed
    denied = [c for c in result.cells if c.expected == "denied"]
    assert denied and all(not c.passed and c.observed == "inconclusive" for c in denied)
    assert all(f"({status} {code})" in c.detail and "inconclusive" in c.detail for c in denied)


def test_keyvault_403_forbidden_by_rbac_is_a_denial() -> None:
    result = _run(sample_outputs(), mutate=_denied_answer(403, "Forbidden/ForbiddenByRbac"))
    assert result.passed


def test_the_lifecycle_derives_each_state_of_the_deployment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Fixed:
        def outputs(self):
            return load_outputs(sample_outputs())

    calls: list[int] = []
    derive = access.access_matrix
    monkeypatch.setattr(access, "access_matrix", lambda *a, **k: calls.append(1) or derive(*a, **k))
    lc = Lifecycle(Fixed())  # type: ignore[arg-type]
    first = lc.expectations(["web", "batch"])
    assert lc.expectations(["web"], "system") and lc.matrix() and len(calls) == 1
    lc.forget_system_identity("web")  # a new state: derived again, once
    after = lc.expectations(["web", "batch"])
    lc.expectations(["batch"])
    assert len(calls) == 2
    assert len(after) < len(first)


def test_a_cell_names_its_host_and_a_new_host_kind_is_one_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = sample_outputs()
    outputs = load_outputs(raw)
    (web,) = [
        e
        for e in expectations_from(outputs)
        if (e.host, e.identity, e.target) == ("web", "system", "api-key")
    ]
    assert web.host_kind == "vm" and web.resource_id == raw["vms"]["web"]["id"]
    row = AccessCell.model_validate(
        {
            "host": "web",
            "host_kind": "app",
            "identity": "system",
            "principal_id": "p",
            "secret": "api-key",
            "expected": "denied",
        }
    )
    # A kind the outputs do not list is left out, never judged as a VM.
    assert expectations_from(outputs, [row]) == []
    monkeypatch.setitem(HOST_OUTPUTS, "app", "vms")
    (app,) = expectations_from(outputs, [row])
    assert (app.host, app.host_kind, app.resource_id) == ("web", "app", raw["vms"]["web"]["id"])
