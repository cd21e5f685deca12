"""The probe's pure parts: spec validation, claims, result framing, retry policy, exit."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time

import pytest

from verify import probe


def _jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


def test_claims_are_decoded_without_the_token() -> None:
    token = _jwt(
        {
            "oid": "o",
            "tid": "t",
            "aud": "https://vault.azure.net",
            "xms_mirid": "/x",
            "exp": 5,
            "secret": "no",
        }
    )
    claims = probe.decode_claims(token)
    assert claims == {
        "oid": "o",
        "tid": "t",
        "aud": "https://vault.azure.net",
        "xms_mirid": "/x",
        "exp": 5,
    }
    assert probe.decode_claims("not-a-jwt") == {}


def test_fingerprint_is_sha256_of_the_value() -> None:
    assert probe.fingerprint("abc") == (
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


@pytest.mark.parametrize("encoding", ["json", "gzip-b64"])
def test_emit_and_parse_round_trip(encoding: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = {"probe_version": 1, "identities": [{"selector": "system"}], "passed": True}
    print("noise before")  # Run Command output carries other lines too
    probe.emit(result, encoding)
    out = capsys.readouterr().out
    assert probe.parse_output("[stdout]\n" + out + "[stderr]\n") == result
    with pytest.raises(ValueError, match="no probe result"):
        probe.parse_output("Enable succeeded: nothing")


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"secrets": ["a"]}, "vault_url"),
        ({"vault_url": "http://kv", "secrets": ["a"]}, "vault_url"),
        ({"vault_url": "https://kv", "secrets": []}, "secrets"),
        ({"vault_url": "https://kv", "secrets": ["a"], "identities": [""]}, "identities"),
        ({"vault_url": "https://kv", "secrets": ["a"], "mode": "replay"}, "token_dir"),
        ({"vault_url": "https://kv", "secrets": ["a"], "budget_seconds": -1}, "budget_seconds"),
    ],
)
def test_bad_spec_names_the_field(spec: dict, field: str) -> None:
    with pytest.raises(probe.SpecError, match=f"^{field}"):
        probe.load_spec(spec)


def test_bad_spec_exits_2_before_any_request() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(probe.__file__),
            "--spec-json",
            '{"vault_url": "http://x", "secrets": ["a"]}',
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == probe.EXIT_USAGE
    assert "vault_url" in done.stderr and done.stdout == ""


def test_retry_plan_retries_only_what_is_worth_it() -> None:
    spec = probe.load_spec(
        {
            "vault_url": "https://kv",
            "secrets": ["a"],
            "propagation_wait_seconds": 20,
            "max_backoff_seconds": 0.5,
        }
    )
    plan = probe.RetryPlan(spec, probe.Deadline(30))
    now = time.monotonic()
    assert plan.delay(403, None, 1, now) == 0.25  # the floor
    assert plan.delay(403, None, 3, now - 4) == pytest.approx(0.4, abs=0.01)  # 10% of the wait
    assert plan.delay(403, None, 9, now - 15) == 0.5  # capped
    assert plan.delay(403, None, 1, now - 25) is None  # past the propagation window
    assert plan.delay(429, 3.0, 1, 0) == 3.0
    assert plan.delay(429, 60.0, 1, 0) is None  # longer than max_retry_after
    assert plan.delay(404, None, 1, 0) is None
    assert plan.delay(500, None, 1, 0) is None
    no_wait = probe.RetryPlan(
        probe.load_spec({"vault_url": "https://kv", "secrets": ["a"]}), probe.Deadline(30)
    )
    assert no_wait.delay(403, None, 1, now) is None
    tight = probe.RetryPlan(spec, probe.Deadline(0.1))
    assert tight.delay(429, 1.0, 1, 0) is None  # does not fit the budget


def test_evaluate_uses_expectations_when_given() -> None:
    result = {
        "identities": [
            {
                "selector": "system",
                "secrets": {"a": {"outcome": "read"}, "b": {"outcome": "forbidden"}},
            }
        ]
    }
    assert probe.evaluate(result, None) is False  # without expectations: all must be read
    assert probe.evaluate(result, {"system": {"a": "allowed", "b": "denied"}}) is True
    assert probe.evaluate(result, {"system": {"a": "denied"}}) is False


class _SecondScopeUnanswered:
    """A credential that got one scope's token (IMDS answered 200) and whose next request,
    for another scope, got no response at all (a read timeout on a loaded host)."""

    def __init__(self, trace: probe.ImdsTrace) -> None:
        self.trace = trace

    def get_token_info(self, scope: str) -> object:
        if scope == probe.VAULT_SCOPE:
            self.trace.statuses.append(200)
            return type("Info", (), {"token": "t", "expires_on": int(time.time()) + 3600})()
        raise TimeoutError("read timed out")


def test_a_token_failure_through_a_shared_credential_is_classified_by_its_own_responses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The storage token reuses the vault token's credential and trace; the vault's 200
    is no answer to the storage request, so the failure is ``imds_no_response``, not
    ``imds_http_200`` (which read as if IMDS had answered)."""
    monkeypatch.setattr(
        probe,
        "fresh_credential",
        lambda selector, spec, trace, deadline: _SecondScopeUnanswered(trace),
    )
    spec = probe.load_spec(
        {"vault_url": "https://kv.example/", "secrets": ["s"], "identities": ["system"]}
    )
    deadline = probe.Deadline(30)
    plan = probe.RetryPlan(spec, deadline)
    first = probe.obtain_token(
        "system", spec, deadline, plan, scope=probe.VAULT_SCOPE, stash_name="system", what="token"
    )
    assert first.report["outcome"] == "ok"
    second = probe.obtain_token(
        "system",
        spec,
        deadline,
        plan,
        scope="https://storage.azure.com/.default",
        stash_name="system-storage",
        what="storage token",
        via=first,
    )
    assert second.report["outcome"] == "unreachable"
    assert second.report["http_status"] is None
    assert second.report["error_code"] == "imds_no_response"
    assert "read timed out" in second.report["message"]
