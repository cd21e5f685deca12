"""The verified-token cache of :meth:`TokenIssuer.verify` answers as a full verification.

A resource server verifies the same bearer token on every request; the sandbox remembers a
token it accepted (for those audiences and that leeway) until its ``exp``. These tests hold
each rule that keeps the answer unchanged: another audience, an expired token, a principal
deleted after the token's first use, a tampered copy, a token of another tenant.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
import requests
from sandbox_world import World

from verify.sandbox import Sandbox
from verify.sandbox.auth import AuthError
from verify.sandbox.entra import tokens
from verify.sandbox.entra.tokens import TokenError, TokenIssuer

VAULT = "https://vault.azure.net"
ARM = "https://management.azure.com"


class _Later(datetime):
    """``datetime`` whose ``now`` is ``shift`` ahead of the real clock (PyJWT's and the cache's)."""

    shift = timedelta(0)

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + cls.shift


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> type[_Later]:
    """Move the clock every token check reads forward by setting ``later.shift``."""
    _Later.shift = timedelta(0)
    monkeypatch.setattr(jwt.api_jwt, "datetime", _Later)
    monkeypatch.setattr(tokens, "datetime", _Later)
    return _Later


def _decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count PyJWT decodes (each full verification makes some)."""
    calls: list[int] = []
    decode = jwt.decode

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    return calls


def test_a_token_used_again_is_not_verified_again(
    sb: Sandbox, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = sb.issue_token(world.id_a.principal_id, VAULT)
    issuer = sb.issuer_service
    first = issuer.verify(token, [VAULT])
    calls = _decodes(monkeypatch)
    again = issuer.verify(token, [VAULT])
    assert again == first and calls == []
    again["oid"] = "changed by a caller"  # the caller's copy, not the remembered claims
    assert issuer.verify(token, [VAULT])["oid"] == world.id_a.principal_id


def test_an_accepted_token_is_still_refused_for_another_audience(sb: Sandbox, world: World) -> None:
    token = sb.issue_token(world.id_a.principal_id, VAULT)
    sb.issuer_service.verify(token, [VAULT])
    with pytest.raises(TokenError) as refused:
        sb.issuer_service.verify(token, [ARM])
    assert refused.value.reason == "audience"
    with pytest.raises(TokenError) as again:  # a refusal is never remembered as an acceptance
        sb.issuer_service.verify(token, [ARM])
    assert again.value.reason == "audience"


def test_an_accepted_token_expires_as_if_never_seen(
    sb: Sandbox, world: World, later: type[_Later]
) -> None:
    """Accepted, then its exp passes: inside the leeway it is still accepted (as by a full
    verification), after the leeway refused as expired."""
    token = sb.issue_token(world.id_a.principal_id, VAULT, lifetime_seconds=60)
    issuer = sb.issuer_service
    assert issuer.verify(token, [VAULT], leeway_seconds=30)["oid"] == world.id_a.principal_id
    later.shift = timedelta(seconds=75)  # past exp, within the leeway
    assert issuer.verify(token, [VAULT], leeway_seconds=30)["oid"] == world.id_a.principal_id
    later.shift = timedelta(seconds=95)  # past exp + leeway
    with pytest.raises(TokenError) as expired:
        issuer.verify(token, [VAULT], leeway_seconds=30)
    assert expired.value.reason == "expired"
    later.shift = timedelta(0)  # a clock set back: accepted again, as PyJWT would
    assert issuer.verify(token, [VAULT], leeway_seconds=30)["oid"] == world.id_a.principal_id


def test_an_accepted_token_is_refused_once_the_clock_is_before_its_nbf(
    sb: Sandbox, world: World, later: type[_Later]
) -> None:
    now = int(time.time())
    token = sb.issue_token(world.id_a.principal_id, VAULT, nbf=now + 20, iat=now)
    issuer = sb.issuer_service
    assert issuer.verify(token, [VAULT], leeway_seconds=30)["nbf"] == now + 20
    later.shift = timedelta(seconds=-60)  # the clock went back: nbf is too far ahead now
    with pytest.raises(TokenError) as early:
        issuer.verify(token, [VAULT], leeway_seconds=30)
    assert early.value.reason == "not_yet_valid"


def test_a_principal_deleted_after_its_first_request_is_refused_at_once(
    sb: Sandbox, world: World
) -> None:
    """Refuse mode: the first request with the token is served, the next one (the token
    now verified from the cache) is refused because the principal is gone."""
    sb.faults.deleted_principal_tokens = "refuse"
    url = f"{sb.vault_url(world.vault)}secrets/db/?api-version=2026-04-01"
    token = sb.issue_token(world.id_a.principal_id, VAULT)
    headers = {"Authorization": f"Bearer {token}"}
    served = requests.get(url, headers=headers, verify=sb.ca_cert_path, timeout=5)
    assert served.status_code == 200
    sb.state.delete_identity(world.id_a.id)
    refused = requests.get(url, headers=headers, verify=sb.ca_cert_path, timeout=5)
    assert refused.status_code == 401
    with pytest.raises(AuthError) as failure:
        sb.authenticator.authenticate(f"Bearer {token}", [VAULT])
    assert failure.value.kind == "principal_deleted"


def test_a_tampered_copy_of_an_accepted_token_is_refused(sb: Sandbox, world: World) -> None:
    token = sb.issue_token(world.id_a.principal_id, VAULT)
    sb.issuer_service.verify(token, [VAULT])
    header, _payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["oid"] = world.id_b.principal_id
    forged = jwt.utils.base64url_encode(json.dumps(claims).encode())
    with pytest.raises(TokenError) as refused:
        sb.issuer_service.verify(".".join((header, forged.decode(), signature)), [VAULT])
    assert refused.value.reason == "signature"


def test_a_token_accepted_by_one_tenant_is_refused_by_another(sb: Sandbox, world: World) -> None:
    """Sandboxes of one process share the signing key: ``iss`` and ``tid`` keep them apart,
    and each issuer remembers only what it accepted itself."""
    token = sb.issue_token(world.id_a.principal_id, VAULT)
    sb.issuer_service.verify(token, [VAULT])
    other = TokenIssuer("11111111-1111-1111-1111-111111111111", key=sb.issuer_service._key)
    with pytest.raises(TokenError) as refused:
        other.verify(token, [VAULT])
    assert refused.value.reason == "issuer"


def test_the_cache_stays_bounded(
    sb: Sandbox, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 4)
    issuer = TokenIssuer(sb.tenant_id, key=sb.issuer_service._key)
    principal = sb.state.principal(world.id_a.principal_id)
    assert principal is not None
    issued = [issuer.issue(principal, VAULT).token for _ in range(9)]
    for token in issued:
        issuer.verify(token, [VAULT])
        assert len(issuer._verified) <= 4
    for token in issued:  # remembered or not, each is still accepted
        assert issuer.verify(token, [VAULT])["oid"] == world.id_a.principal_id
