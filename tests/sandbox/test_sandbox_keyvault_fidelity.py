"""Key Vault fidelity: disabled secrets, exp/nbf, name and
size limits, body shapes, and the vault's soft-delete retention, with the real SecretClient
where it can send the request and raw requests where it cannot."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient
from sandbox_world import World

from components.arm.tokens import PULUMI_KEY_VAULT
from verify.sandbox import Sandbox, SandboxError, Vault
from verify.sandbox.keyvault.secret_rules import MAX_VALUE_BYTES
from verify.targets.sandbox import SandboxBackend

VAULT = "https://vault.azure.net"


def officer_client(sb: Sandbox, vault: Vault) -> SecretClient:
    writer = sb.state.create_principal("writer")
    sb.state.create_role_assignment(vault.id, "Key Vault Secrets Officer", writer.object_id)
    return SecretClient(
        sb.vault_url(vault), sb.credential(writer), retry_total=0, **sb.keyvault_client_kwargs()
    )


def officer_put(sb: Sandbox, vault: Vault, name: str, body: Any) -> requests.Response:
    writer = sb.state.create_principal("raw-writer")
    sb.state.create_role_assignment(vault.id, "Key Vault Secrets Officer", writer.object_id)
    return requests.put(
        f"{sb.vault_url(vault)}secrets/{name}?api-version=2026-04-01",
        headers={"Authorization": f"Bearer {sb.issue_token(writer, VAULT)}"},
        data=body if isinstance(body, bytes) else None,
        json=None if isinstance(body, bytes) else body,
        verify=sb.ca_cert_path,
        timeout=10,
    )


def test_a_disabled_secret_is_403_secret_disabled(sb: Sandbox, world: World) -> None:
    """Reproduced: a disabled secret returned its value."""
    client = officer_client(sb, world.vault)
    client.set_secret("off", "hidden", enabled=False)
    with pytest.raises(HttpResponseError) as refused:
        client.get_secret("off")
    body = refused.value.response.json()  # type: ignore[union-attr]
    assert refused.value.status_code == 403
    assert body["error"]["code"] == "Forbidden"
    assert body["error"]["innererror"] == {"code": "SecretDisabled"}
    assert body["error"]["message"] == "Operation get is not allowed on a disabled secret."
    # metadata stays listable, and an enabled newer version reads again
    assert [p.enabled for p in client.list_properties_of_secret_versions("off")] == [False]
    assert client.set_secret("off", "visible").value == "visible"


def test_no_grant_on_a_disabled_secret_is_still_forbidden_by_rbac(
    sb: Sandbox, world: World
) -> None:
    """Authorization comes first: a caller without a grant learns nothing about the state."""
    officer_client(sb, world.vault).set_secret("off2", "hidden", enabled=False)
    stranger = sb.state.create_principal("stranger")
    client = SecretClient(
        sb.vault_url(world.vault),
        sb.credential(stranger),
        retry_total=0,
        **sb.keyvault_client_kwargs(),
    )
    with pytest.raises(HttpResponseError) as refused:
        client.get_secret("off2")
    assert refused.value.response.json()["error"]["innererror"]["code"] == "ForbiddenByRbac"  # type: ignore[union-attr]


def test_exp_and_nbf_are_stored_returned_and_do_not_block_a_get(sb: Sandbox, world: World) -> None:
    """Reproduced: exp/nbf were dropped. Key Vault documents that get still works outside
    the nbf/exp window ("Date-time controlled operations")."""
    client = officer_client(sb, world.vault)
    expired = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    future = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    client.set_secret("old", "still-readable", expires_on=expired)
    client.set_secret("early", "readable-too", not_before=future)
    old, early = client.get_secret("old"), client.get_secret("early")
    assert (old.value, old.properties.expires_on) == ("still-readable", expired)
    assert (early.value, early.properties.not_before) == ("readable-too", future)
    listed = {p.name: p for p in client.list_properties_of_secrets()}
    assert listed["old"].expires_on == expired
    assert listed["early"].not_before == future


@pytest.mark.parametrize("name", ["bad_name", "a" * 128, "dots.not.allowed", "ümlaut"])
def test_secret_names_outside_1_to_127_letters_digits_hyphens_are_400(
    sb: Sandbox, world: World, name: str
) -> None:
    client = officer_client(sb, world.vault)
    with pytest.raises(HttpResponseError) as refused:
        client.set_secret(name, "v")
    assert refused.value.status_code == 400
    assert refused.value.error.code == "BadParameter"  # type: ignore[union-attr]
    assert "The request URI contains an invalid name" in refused.value.error.message  # type: ignore[union-attr]
    assert sb.state.get_secret(world.vault.name, name) is None
    assert client.set_secret("a" * 127, "v").name == "a" * 127  # the longest valid name


def test_values_over_25_kb_are_400(sb: Sandbox, world: World) -> None:
    client = officer_client(sb, world.vault)
    with pytest.raises(HttpResponseError) as refused:
        client.set_secret("big", "x" * (MAX_VALUE_BYTES + 1))
    assert (refused.value.status_code, refused.value.error.code) == (400, "BadParameter")  # type: ignore[union-attr]
    assert sb.state.get_secret(world.vault.name, "big") is None
    assert len(client.set_secret("big", "x" * MAX_VALUE_BYTES).value or "") == MAX_VALUE_BYTES
    with pytest.raises(HttpResponseError):  # octets, not characters: 2 bytes each in UTF-8
        client.set_secret("big2", "é" * (MAX_VALUE_BYTES // 2 + 1))


@pytest.mark.parametrize(
    "body",
    [
        {"value": "v", "attributes": []},
        {"value": "v", "attributes": "enabled"},
        {"value": "v", "attributes": {"enabled": "yes"}},
        {"value": "v", "attributes": {"exp": "tomorrow"}},
        {"value": "v", "attributes": {"nbf": 1.5}},
        {"value": "v", "tags": ["a", "b"]},
        {"value": "v", "tags": {"k": 1}},
        {"value": "v", "contentType": 5},
        {"value": 5},
        [1, 2],
        b"{not json",
        b"",
    ],
    ids=lambda b: repr(b)[:40],
)
def test_malformed_set_secret_bodies_are_400_bad_parameter(
    sb: Sandbox, world: World, body: Any
) -> None:
    """Reproduced: ``attributes``/``tags`` that are not objects gave 500 or were ignored."""
    response = officer_put(sb, world.vault, "shape", body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "BadParameter"
    assert sb.state.get_secret(world.vault.name, "shape") is None


@pytest.mark.parametrize(
    ("days", "purge_protection", "level"),
    [
        (7, False, "CustomizedRecoverable+Purgeable"),
        (30, True, "CustomizedRecoverable"),
        (90, False, "Recoverable+Purgeable"),
        (90, True, "Recoverable"),
    ],
)
def test_retention_sets_recoverable_days_purge_date_and_recovery_level(
    sb: Sandbox, world: World, days: int, purge_protection: bool, level: str
) -> None:
    vault = sb.state.create_vault(
        world.rg,
        f"kv-{uuid.uuid4().hex[:10]}",
        purge_protection=purge_protection,
        soft_delete_retention_days=days,
    )
    client = officer_client(sb, vault)
    created = client.set_secret("s", "v")
    assert (created.properties.recoverable_days, created.properties.recovery_level) == (days, level)
    deleted = client.begin_delete_secret("s").result()
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == timedelta(days=days)


def test_retention_outside_7_to_90_is_refused(sb: Sandbox, world: World) -> None:
    for days in (6, 91):
        with pytest.raises(SandboxError):
            sb.state.create_vault(
                world.rg, f"kv-{uuid.uuid4().hex[:10]}", soft_delete_retention_days=days
            )


def test_the_stacks_retention_flows_into_the_sandbox(sb: Sandbox, world: World) -> None:
    """Reproduced: the vault's ``softDeleteRetentionDays`` from the stack was ignored."""
    name = f"kv-{uuid.uuid4().hex[:10]}"
    arm_id = (
        f"/subscriptions/{sb.subscription_id}/resourceGroups/{world.rg}"
        f"/providers/Microsoft.KeyVault/vaults/{name}"
    )
    doc = SandboxBackend(sb).create_or_update(
        PULUMI_KEY_VAULT,
        arm_id,
        {
            "location": "westeurope",
            "properties": {
                "tenantId": sb.tenant_id,
                "enableRbacAuthorization": True,
                "softDeleteRetentionInDays": 7,
                "sku": {"name": "standard", "family": "A"},
            },
        },
    )
    vault = sb.state.vault(name)
    assert vault is not None and vault.soft_delete_retention_days == 7
    assert doc["properties"]["softDeleteRetentionInDays"] == 7
    created = officer_client(sb, vault).set_secret("s", "v")
    assert created.properties.recovery_level == "CustomizedRecoverable+Purgeable"
