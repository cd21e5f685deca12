"""How disable-system-identity judges IMDS's answer, for every kind of VM (no sandbox).

The sandbox tests drive the common cases end to end; these pin the rules on the probe's
report directly, including the ones the reference topology never reaches (several
user-assigned identities left, an IMDS outage).
"""

from __future__ import annotations

from typing import Any

import pytest

from verify.lifecycle import judge_system_request
from verify.model import Identity, IdentityReport, TokenReport

DISABLED = "11111111-1111-4111-8111-111111111111"
LONE = Identity(
    name="id-lone",
    id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-lone",
    client_id="22222222-2222-4222-8222-222222222222",
    principal_id="33333333-3333-4333-8333-333333333333",
)
OTHER = "44444444-4444-4444-8444-444444444444"
MULTIPLE = (
    "Multiple user assigned identities exist, please specify the clientId / resourceId of the "
    "identity in the token request"
)


def refused(status: int | None, message: str, code: str = "invalid_request") -> IdentityReport:
    outcome = "no_identity" if status == 400 else "unreachable"
    token = TokenReport(outcome=outcome, http_status=status, error_code=code, message=message)
    return IdentityReport(selector="system", token=token, secrets={})


def token_of(oid: str, mirid: str = "") -> IdentityReport:
    claims: dict[str, Any] = {"oid": oid, "xms_mirid": mirid or f"/x/{oid}"}
    return IdentityReport(
        selector="system", token=TokenReport(outcome="ok"), claims=claims, secrets={}
    )


def test_system_only_vm_passes_only_on_identity_not_found() -> None:
    verdict = judge_system_request(refused(400, "Identity not found"), DISABLED, [], None)
    assert verdict.passed
    assert verdict.observed == "no token: 400 invalid_request (Identity not found)"


@pytest.mark.parametrize(
    ("report", "observed"),
    [
        (token_of(DISABLED), f"the disabled principal still gets tokens (oid {DISABLED})"),
        (token_of(OTHER), f"IMDS answered with another identity: {OTHER} (oid {OTHER})"),
        (refused(400, MULTIPLE), "no token: 400 invalid_request"),
        (refused(500, "IMDS is down", "imds_http_500"), "unreachable (500 imds_http_500)"),
        (
            refused(None, "connection refused", "imds_no_response"),
            "unreachable (None imds_no_response)",
        ),
        (None, "probe did not try it"),
    ],
)
def test_system_only_vm_fails_on_anything_else(
    report: IdentityReport | None, observed: str
) -> None:
    verdict = judge_system_request(report, DISABLED, [], None)
    assert not verdict.passed
    assert verdict.observed == observed


def test_one_user_assigned_identity_left_may_answer_and_is_reported() -> None:
    answered = judge_system_request(token_of(LONE.principal_id, LONE.id), DISABLED, ["lone"], LONE)
    assert answered.passed
    assert answered.observed.startswith("IMDS answered with another identity: id-lone")
    assert "silently acts as id-lone" in answered.details[0]
    assert judge_system_request(refused(400, "Identity not found"), DISABLED, ["lone"], LONE).passed
    # Neither the disabled principal nor a stranger may answer.
    assert not judge_system_request(token_of(DISABLED), DISABLED, ["lone"], LONE).passed
    stranger = judge_system_request(token_of(OTHER), DISABLED, ["lone"], LONE)
    assert not stranger.passed
    assert stranger.details == (
        "no identity should have answered: it is not the VM's one user-assigned identity lone",
    )


def test_several_user_assigned_identities_left_any_400_refusal_passes() -> None:
    assert judge_system_request(refused(400, MULTIPLE), DISABLED, ["a", "b"], None).passed
    assert not judge_system_request(refused(503, "busy", "x"), DISABLED, ["a", "b"], None).passed
    picked = judge_system_request(token_of(LONE.principal_id), DISABLED, ["a", "b"], None)
    assert not picked.passed
    assert "must not pick one" in picked.details[0]
