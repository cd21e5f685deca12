"""The mocks and the in-memory ARM: isolation between runs, ARM behaviour, flattening."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_azure_native as azure_native
import pytest

from components.arm.backend import ArmBackend
from components.arm.errors import ArmError
from components.arm.tokens import PULUMI_ROLE_ASSIGNMENT, PULUMI_VIRTUAL_MACHINE
from components.testing import (
    AzureMocks,
    InMemoryArm,
    flatten,
    load_stack_config,
    run_program,
    unwrap_secrets,
)

SUB = "11111111-2222-3333-4444-555555555555"
RG = f"/subscriptions/{SUB}/resourceGroups/rg"
SCOPE = f"{RG}/providers/Microsoft.KeyVault/vaults/kv"
ROLE_DEFS = f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions"
ROLE = f"{ROLE_DEFS}/4633458b-17de-408a-b874-0445c86b69e6"
P1, P2 = "aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002"


def test_in_memory_arm_implements_the_protocol() -> None:
    assert isinstance(InMemoryArm(), ArmBackend)


def test_runs_are_isolated_from_each_other_and_from_the_caller() -> None:
    seen: list[str | None] = []

    def program() -> None:
        seen.append(pulumi.Config("mikit").get("flavour"))
        pulumi.export("stack", pulumi.get_stack())

    assert run_program(program, {"mikit:flavour": "a"}, mocks=AzureMocks(), stack="one") == {
        "stack": "one"
    }
    assert run_program(program, {}, mocks=AzureMocks(), stack="two") == {"stack": "two"}
    assert seen == ["a", None]
    with pytest.raises(RuntimeError, match="boom"):
        run_program(lambda: (_ for _ in ()).throw(RuntimeError("boom")), {}, mocks=AzureMocks())
    assert run_program(program, {"flavour": "bare-key"}, mocks=AzureMocks(), project="mikit") == {
        "stack": "dev"
    }
    assert seen[-1] == "bare-key"


def test_program_path_and_structured_config(tmp_path: Path) -> None:
    (tmp_path / "helper_mod_for_test.py").write_text("VALUE = 41\n")
    (tmp_path / "__main__.py").write_text(
        "import pulumi\nimport helper_mod_for_test\n"
        "cfg = pulumi.Config('mikit')\n"
        "pulumi.export('n', helper_mod_for_test.VALUE + cfg.require_object('obj')['one'])\n"
        "pulumi.export('s', pulumi.Output.secret('hidden'))\n"
    )
    out = run_program(tmp_path, {"mikit:obj": {"one": 1}}, mocks=AzureMocks())
    assert out == {"n": 42, "s": "hidden"}  # secrets come back unwrapped for the caller


def test_role_assignment_conflicts_like_arm() -> None:
    arm = InMemoryArm(subscription_id=SUB, existing=[SCOPE])
    n1, n2 = "0a5e3d8e-0000-4000-8000-000000000001", "0a5e3d8e-0000-4000-8000-000000000002"
    ra_id = f"{SCOPE}/providers/Microsoft.Authorization/roleAssignments/{n1}"
    inputs = {"scope": SCOPE, "principalId": P1, "roleDefinitionId": ROLE}
    arm.create_or_update(PULUMI_ROLE_ASSIGNMENT, ra_id, inputs)
    arm.create_or_update(PULUMI_ROLE_ASSIGNMENT, ra_id, inputs)  # idempotent re-put
    with pytest.raises(ArmError) as exists:
        arm.create_or_update(PULUMI_ROLE_ASSIGNMENT, ra_id.replace(n1, n2), inputs)
    assert (exists.value.status, exists.value.code) == (409, "RoleAssignmentExists")
    with pytest.raises(ArmError) as update:
        arm.create_or_update(PULUMI_ROLE_ASSIGNMENT, ra_id, {**inputs, "principalId": P2})
    assert update.value.code == "RoleAssignmentUpdateNotPermitted"


def test_vm_identity_lifecycle_in_memory() -> None:
    arm = InMemoryArm(subscription_id=SUB)
    vm_id = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm"
    missing = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope"
    with pytest.raises(ArmError) as caught:
        arm.create_or_update(
            PULUMI_VIRTUAL_MACHINE,
            vm_id,
            {"identity": {"type": "UserAssigned", "userAssignedIdentities": [missing]}},
        )
    assert caught.value.status == 400
    on = arm.create_or_update(
        PULUMI_VIRTUAL_MACHINE, vm_id, {"identity": {"type": "SystemAssigned"}}
    )
    again = arm.create_or_update(
        PULUMI_VIRTUAL_MACHINE, vm_id, {"identity": {"type": "SystemAssigned"}}
    )
    assert on["identity"]["principalId"] == again["identity"]["principalId"]
    assert on["properties"]["vmId"] == again["properties"]["vmId"]
    off = arm.create_or_update(PULUMI_VIRTUAL_MACHINE, vm_id, {"identity": {"type": "None"}})
    assert "identity" not in off
    back = arm.create_or_update(
        PULUMI_VIRTUAL_MACHINE, vm_id, {"identity": {"type": "SystemAssigned"}}
    )
    assert back["identity"]["principalId"] != on["identity"]["principalId"]  # a new principal


def test_flatten_lifts_properties_unless_the_sdk_nests_them() -> None:
    arm = {
        "id": "x",
        "name": "n",
        "type": "t",
        "properties": {"vaultUri": "u", "sub": [{"id": "s", "properties": {"a": 1}}]},
    }
    assert flatten("azure-native:keyvault:Vault", arm)["properties"] == {
        "vaultUri": "u",
        "sub": [{"id": "s", "a": 1}],
    }
    lifted = flatten("azure-native:network:VirtualNetwork", arm)
    assert lifted["vaultUri"] == "u" and lifted["sub"] == [{"id": "s", "a": 1}]
    assert "id" not in lifted and lifted["azureApiVersion"] == "2024-05-01"
    assert azure_native.keyvault.Vault.properties is not None  # the rule's source


def test_mock_outputs_reach_the_sdk_as_typed_outputs() -> None:
    def program() -> None:
        uai = azure_native.managedidentity.UserAssignedIdentity(
            "u", resource_group_name="rg", resource_name_="id-x"
        )
        pulumi.export("client_id", uai.client_id)
        pulumi.export("api", uai.azure_api_version)

    backend = InMemoryArm(subscription_id=SUB)
    out = run_program(program, {}, mocks=AzureMocks(backend))
    doc = backend.get(f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-x")
    assert doc is not None
    assert out == {"client_id": doc["properties"]["clientId"], "api": "2023-01-31"}


def test_unwrap_secrets_and_stack_files(tmp_path: Path) -> None:
    sig = "4dabf18193072939515e22adb298388d"
    wrapped = {sig: "1b47061264138c4ac30d75fd1eb44270", "value": {"inner": [1]}}
    assert unwrap_secrets({"a": wrapped, "b": [wrapped]}) == {
        "a": {"inner": [1]},
        "b": [{"inner": [1]}],
    }
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text("config:\n  mikit:a: 1\n  mikit:b:\n    secure: v1:abc\n  mikit:c: [1, 2]\n")
    assert load_stack_config(stack) == {"mikit:a": 1, "mikit:c": [1, 2]}


def test_the_mock_runtimes_contains_unknowns_answers_as_the_sdks() -> None:
    """The mock runtime replaces the SDK's ``contains_unknowns`` (one without a reference
    cycle per call); every caller reaches it and it answers as the SDK's own."""
    from pulumi.output import UNKNOWN  # noqa: PLC0415
    from pulumi.runtime import rpc  # noqa: PLC0415

    from components.mockruntime import runner  # noqa: PLC0415

    assert rpc.contains_unknowns is runner._contains_unknowns
    looped: list[object] = [1]
    looped.append(looped)
    shared = {"a": 1}
    values: list[object] = [
        None, 1, "x", UNKNOWN, [], {}, [1, "a", None], [1, [2, [UNKNOWN]]],
        {"a": {"b": [1, {"c": UNKNOWN}]}}, {"a": {"b": [1, {"c": 2}]}}, (UNKNOWN,),
        {UNKNOWN: 1}, looped, [looped, UNKNOWN], [shared, shared, {"x": shared}],
        {"k": [shared, [UNKNOWN]]}, [{"a": []}, [[[[]]]]],
    ]  # fmt: skip
    for value in values:
        expected = runner.SDK_CONTAINS_UNKNOWNS(value)
        assert runner._contains_unknowns(value) is expected, value
        assert pulumi.contains_unknowns(value) is expected, value
    assert [runner.SDK_CONTAINS_UNKNOWNS(v) for v in values].count(True) == 5
