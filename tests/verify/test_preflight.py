"""``verify preflight`` and the soft-deleted vault it looks for.

After ``pulumi destroy`` a vault is soft-deleted and keeps its global name; re-deploying
fails with ARM's 409 ``ConflictError`` unless the program recovers it (``createMode:
recover``) or it was purged. The preflight names that before ``pulumi up`` runs. Its one
Azure call is faked at its boundary (the lookup) for the decision table, and served for
real by the sandbox's ARM for the wire format.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.arm.errors import ArmError
from components.errors import ConfigError
from components.mockruntime import load_stack_config
from verify import cli, preflight
from verify.preflight import DeletedVaultAnswer, VaultPlan, arm_lookup, check_vault_name
from verify.sandbox import Sandbox, SandboxConfig, SandboxError
from verify.targets.sandbox import STACK_CONFIG, SandboxTarget, deploy

ROOT = Path(__file__).resolve().parents[2]
PLAN = VaultPlan("kv-mikit-dev", "westeurope", "default")
HELD = {
    "id": "/subscriptions/s/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/x",
    "name": "kv-mikit-dev",
    "type": "Microsoft.KeyVault/deletedVaults",
    "properties": {
        "vaultId": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/x",
        "deletionDate": "2026-11-30T10:00:00.000000Z",
        "scheduledPurgeDate": "2027-02-28T10:00:00.000000Z",
        "purgeProtectionEnabled": True,
    },
}


def answering(status: int | None, body: dict[str, Any] | None = None) -> preflight.Lookup:
    seen: list[tuple[str, str]] = []

    def lookup(name: str, location: str) -> DeletedVaultAnswer:
        seen.append((name, location))
        return DeletedVaultAnswer(status, body or {})

    lookup.seen = seen  # type: ignore[attr-defined]
    return lookup


# -- the decision, with ARM faked at the boundary -------------------------------------------


def test_a_free_name_passes() -> None:
    lookup = answering(404, {"error": {"code": "ResourceNotFound"}})
    finding = check_vault_name(PLAN, lookup)
    assert finding.passed
    assert lookup.seen == [("kv-mikit-dev", "westeurope")]  # type: ignore[attr-defined]


def test_a_name_held_by_a_deleted_vault_is_named_with_the_fixes() -> None:
    finding = check_vault_name(PLAN, answering(200, HELD))
    assert finding.verdict == "conflict"
    assert "409 ConflictError" in finding.message
    assert "2027-02-28" in finding.message  # when the name frees itself
    assert "createMode recover" in finding.message
    assert "purge protection is on" in finding.message


def test_recover_with_a_deleted_vault_passes_and_without_one_fails() -> None:
    recover = VaultPlan("kv-mikit-dev", "westeurope", "recover")
    assert check_vault_name(recover, answering(200, HELD)).passed
    stale = check_vault_name(recover, answering(404))
    assert stale.verdict == "conflict"
    assert "createMode" in stale.message


@pytest.mark.parametrize("status", [403, 500, None])
def test_no_proving_answer_is_inconclusive_and_fails(status: int | None) -> None:
    body = {"error": {"code": "AuthorizationFailed"}} if status == 403 else {}
    finding = check_vault_name(PLAN, answering(status, body))
    assert finding.verdict == "inconclusive"
    assert not finding.passed
    if status == 403:
        assert "AuthorizationFailed" in finding.message


def test_the_plan_comes_from_the_stack_file_with_its_schema() -> None:
    config = {
        "mikit:location": "westeurope",
        "mikit:resourceGroup": "rg",
        "mikit:sshPublicKey": "ssh-ed25519 AAAA",
        "mikit:vault": {"name": "kv-a", "createMode": "recover"},
        "mikit:secret-x": "never read",
    }
    assert VaultPlan.from_config(config) == VaultPlan("kv-a", "westeurope", "recover")


# -- the wire: the sandbox's ARM serves the deleted-vaults GET ---------------------------------


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as sandbox:
        yield sandbox


def sandbox_lookup(sb: Sandbox, principal: Any = None) -> preflight.Lookup:
    return arm_lookup(
        sb.credential(principal),
        sb.subscription_id,
        base_url=sb.arm_url,
        connection_verify=sb.ca_cert_path,
        retry_total=0,
    )


def test_the_sandbox_holds_a_deleted_vault_until_recovered_or_purged(sb: Sandbox) -> None:
    suffix = uuid.uuid4().hex[:6]
    rg, name = f"rg-{suffix}", f"kv-{suffix}"
    sb.state.create_resource_group(rg)
    sb.state.create_vault(rg, name, soft_delete_retention_days=7)
    sb.state.set_secret(name, "db", "v1")
    plan = VaultPlan(name, sb.config.location, "default")
    assert check_vault_name(plan, sandbox_lookup(sb)).passed
    sb.state.delete_vault(name)
    held = check_vault_name(plan, sandbox_lookup(sb))
    assert held.verdict == "conflict"
    with pytest.raises(SandboxError) as conflict:
        sb.state.create_vault(rg, name)
    assert (conflict.value.status, conflict.value.code) == (409, "ConflictError")
    assert conflict.value.message.startswith("A vault with the same name already exists in deleted")
    recovered = sb.state.create_vault(rg, name, recover=True)
    assert sb.state.get_secret(name, "db").value == "v1"  # type: ignore[union-attr]
    assert recovered.soft_delete_retention_days == 7
    sb.state.delete_vault(name)
    assert sb.state.purge_deleted_vault(name)
    assert check_vault_name(plan, sandbox_lookup(sb)).passed
    sb.state.create_vault(rg, name)  # the name is free again


def test_purge_protection_keeps_the_name_held(sb: Sandbox) -> None:
    suffix = uuid.uuid4().hex[:6]
    rg, name = f"rg-{suffix}", f"kv-{suffix}"
    sb.state.create_resource_group(rg)
    sb.state.create_vault(rg, name, purge_protection=True)
    sb.state.delete_vault(name)
    with pytest.raises(SandboxError) as refused:
        sb.state.purge_deleted_vault(name)
    assert (refused.value.status, refused.value.code) == (405, "MethodNotAllowed")
    finding = check_vault_name(VaultPlan(name, sb.config.location, "default"), sandbox_lookup(sb))
    assert finding.verdict == "conflict"
    assert "purge protection is on" in finding.message


def test_a_caller_without_subscription_read_gets_inconclusive(sb: Sandbox) -> None:
    nobody = sb.state.create_principal("no-roles")
    finding = check_vault_name(PLAN, sandbox_lookup(sb, nobody))
    assert finding.verdict == "inconclusive"
    assert "HTTP 403 AuthorizationFailed" in finding.message


def test_redeploying_the_stack_after_a_destroy_needs_recover(
    deployed_target: SandboxTarget,
) -> None:
    """The real stack program, deployed into the sandbox (a fresh deployment of the sandbox
    stack) and deployed again around a vault delete."""
    sb = deployed_target.sandbox
    vault = dict(load_stack_config(STACK_CONFIG)["mikit:vault"])
    name = vault["name"]
    assert deployed_target.outputs().vault.name == name
    sb.state.delete_vault(name)
    with pytest.raises(ArmError) as caught:
        deploy(sb)
    assert (caught.value.status, caught.value.code) == (409, "ConflictError")
    outputs = deploy(sb, config_overrides={"mikit:vault": {**vault, "createMode": "recover"}})
    assert sb.state.vault(name) is not None
    assert outputs["vault"]["name"] == name


def test_the_cli_runs_against_the_sandbox() -> None:
    assert cli.main(["preflight", "--target", "sandbox"]) == cli.EXIT_OK


def test_an_aks_issuer_without_its_trailing_slash_is_refused_before_any_cloud_call(
    tmp_path: Path,
) -> None:
    """The credential every exchange would answer with AADSTS700211 fails the preflight
    (exit 2 from the CLI), before a sandbox or a subscription is touched."""
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.sandbox.yaml").read_text())
    stack["config"]["mikit:identities"]["shared"]["federatedCredentials"] = [
        {
            "name": "k8s",
            "issuer": "https://westeurope.oic.prod-aks.azure.com/"
            "00000000-0000-0000-0000-000000000001/1a2b",
            "subject": "system:serviceaccount:other:app",
        }
    ]
    path = tmp_path / "Pulumi.sandbox.yaml"
    path.write_text(yaml.safe_dump(stack))
    with pytest.raises(ConfigError) as caught:
        preflight.run("azure", "sandbox", stack_file=path, subscription_id="s", env={})
    assert caught.value.field == "mikit:identities.shared.federatedCredentials[0].issuer"
    assert "AADSTS700211" in caught.value.problem
