"""Every config field that can be wrong fails with the key, the value and a fix, before
any resource is registered (the mocks must not have seen a single custom resource)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.errors import ConfigError
from components.testing import AzureMocks, InMemoryArm, run_program
from tests.unit.conftest import PROGRAM, WEAK_RSA_KEY, dev_config


def fails(config: dict[str, Any]) -> ConfigError:
    mocks = AzureMocks(InMemoryArm())
    with pytest.raises(ConfigError) as caught:
        run_program(PROGRAM, config, mocks=mocks)
    assert mocks.custom_registrations() == [], "a resource was registered before the error"
    assert caught.value.fix, "the error must say how to fix it"
    return caught.value


def with_grant(**changes: str) -> dict[str, Any]:
    grants = copy.deepcopy(dev_config()["mikit:grants"])
    grants[0].update(changes)
    return dev_config(**{"mikit:grants": grants})


def with_vm(key: str, **changes: Any) -> dict[str, Any]:
    vms = copy.deepcopy(dev_config()["mikit:vms"])
    vms[key].update(changes)
    return dev_config(**{"mikit:vms": vms})


def test_unknown_role_name_suggests_close_matches() -> None:
    error = fails(with_grant(role="Key Vault Secret User"))
    assert error.field == "mikit:grants[0].role"
    assert error.value == "Key Vault Secret User"
    assert "'Key Vault Secrets User'" in error.fix


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("kv", "is not a valid Key Vault name"),
        ("1kv-starts-with-digit", "is not a valid Key Vault name"),
        ("kv_underscore", "is not a valid Key Vault name"),
        ("kv-name-that-is-far-too-long", "is not a valid Key Vault name"),
        ("kv-ends-with-", "is not a valid Key Vault name"),
        ("kv--double", "contains consecutive hyphens"),
    ],
)
def test_invalid_vault_names(name: str, problem: str) -> None:
    vault = {**dev_config()["mikit:vault"], "name": name}
    error = fails(dev_config(**{"mikit:vault": vault}))
    assert (error.field, error.value, error.problem) == ("mikit:vault.name", name, problem)
    assert "3-24" in error.fix


@pytest.mark.parametrize("name", ["db_password", "has space", "x" * 128, ""])
def test_invalid_secret_names(name: str) -> None:
    secrets = [*dev_config()["mikit:secrets"], name]
    error = fails(dev_config(**{"mikit:secrets": secrets}))
    assert error.field == "mikit:secrets[4]"
    assert error.value == name


def test_invalid_identity_name() -> None:
    identities = {"shared": {"name": "ab"}}
    error = fails(dev_config(**{"mikit:identities": identities}))
    assert (error.field, error.value) == ("mikit:identities.shared.name", "ab")
    assert "3-128" in error.fix


def test_empty_user_assigned_list() -> None:
    error = fails(with_vm("worker1", userAssigned=[]))
    assert error.field == "mikit:vms.worker1.userAssigned"
    assert error.value == []
    assert "at least one identity key" in error.fix


def test_vm_with_no_identity_at_all() -> None:
    vms = copy.deepcopy(dev_config()["mikit:vms"])
    vms["worker1"].pop("userAssigned")
    error = fails(dev_config(**{"mikit:vms": vms}))
    assert error.field == "mikit:vms.worker1"
    assert "systemIdentity: true" in error.fix


def test_vm_naming_an_unknown_identity() -> None:
    error = fails(with_vm("worker1", userAssigned=["ghost"]))
    assert (error.field, error.value) == ("mikit:vms.worker1.userAssigned[0]", "ghost")
    assert "'shared'" in error.fix


@pytest.mark.parametrize(
    ("principal", "problem"),
    [
        ("identity:ghost", "names an identity that does not exist"),
        ("vm:ghost", "names a VM that does not exist"),
        ("vm:worker1", "names a VM whose system identity is off"),
        ("ghost", "is not a principal reference"),
    ],
)
def test_grant_principal_must_exist(principal: str, problem: str) -> None:
    error = fails(with_grant(principal=principal))
    assert (error.field, error.value, error.problem) == (
        "mikit:grants[0].principal",
        principal,
        problem,
    )


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("secret:nope", "names a secret that is not declared in mikit:secrets"),
        ("/subscriptions/x", "is not a grant target"),
    ],
)
def test_grant_target_must_exist(target: str, problem: str) -> None:
    error = fails(with_grant(target=target))
    assert (error.field, error.value, error.problem) == ("mikit:grants[0].target", target, problem)
    assert "secret:" in error.fix


@pytest.mark.parametrize("user", ["admin", "root", "administrator", "Azure User", "1abc"])
def test_forbidden_admin_usernames(user: str) -> None:
    error = fails(dev_config(**{"mikit:adminUsername": user}))
    assert (error.field, error.value) == ("mikit:adminUsername", user)


def test_a_stack_with_vms_needs_the_ssh_key_and_names_the_vm_that_does() -> None:
    config = dev_config()
    del config["mikit:sshPublicKey"]
    error = fails(config)
    first_vm = next(iter(config["mikit:vms"]))
    assert error.field == "mikit:sshPublicKey"
    assert error.problem == (
        f"is required but not set (vms.{first_vm} is a Linux host that logs in with it)"
    )
    assert 'pulumi config set mikit:sshPublicKey "$(cat ~/.ssh/id_ed25519.pub)"' in error.fix


def test_a_stack_whose_only_linux_hosts_are_scale_sets_needs_the_ssh_key_too() -> None:
    config = dev_config(**{"mikit:vms": {}})
    del config["mikit:sshPublicKey"]
    assert config.get("mikit:scaleSets"), "the dev stack declares a scale set"
    grants = [g for g in config["mikit:grants"] if not g["principal"].startswith("vm:")]
    error = fails({**config, "mikit:grants": grants})
    assert error.field == "mikit:sshPublicKey"
    assert "(scaleSets." in error.problem


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("not a key", "is not an OpenSSH public key"),
        ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", "is not an OpenSSH public key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n", "is a private key"),
        (WEAK_RSA_KEY, "is a 1024-bit RSA key; Azure requires at least 2048 bits"),
    ],
)
def test_malformed_ssh_keys(key: str, problem: str) -> None:
    error = fails(dev_config(**{"mikit:sshPublicKey": key}))
    assert error.field == "mikit:sshPublicKey"
    assert error.problem.startswith(problem)
    assert "ssh-keygen" in error.fix
    assert "PRIVATE" not in str(error.value)


def test_missing_secret_value_names_the_secret_config_command() -> None:
    error = fails(dev_config(**{"mikit:secret-api-key": None}))
    assert error.field == "mikit:secret-api-key"
    assert error.fix == "run: pulumi config set --secret mikit:secret-api-key <value>"


def test_unknown_key_lists_the_allowed_ones() -> None:
    vault = {**dev_config()["mikit:vault"], "purgeProtect": True}
    error = fails(dev_config(**{"mikit:vault": vault}))
    assert (error.field, error.value) == ("mikit:vault.purgeProtect", True)
    assert "purgeProtection" in error.fix


def test_missing_required_key() -> None:
    error = fails(dev_config(**{"mikit:vault": None}))
    assert error.field == "mikit:vault"
    # A nested key needs --path (without it Pulumi sets a key literally named "vault.name"),
    # and the message says "not set", never "None".
    assert "pulumi config set --path 'mikit:vault.name' <value>" in error.fix
    assert str(error).startswith("mikit:vault: is required but not set. Fix:")


def test_wrong_type_names_the_nested_key() -> None:
    error = fails(with_vm("solo", systemIdentity="sometimes"))
    assert (error.field, error.value) == ("mikit:vms.solo.systemIdentity", "sometimes")
    assert error.fix == "use true or false"


def test_duplicate_grant_is_refused() -> None:
    grants = copy.deepcopy(dev_config()["mikit:grants"])
    grants.append(dict(grants[0]))
    error = fails(dev_config(**{"mikit:grants": grants}))
    assert error.field == f"mikit:grants[{len(grants) - 1}]"
    assert "repeats grants[0]" in error.problem


@pytest.mark.parametrize(
    ("overrides", "field", "value"),
    [
        (
            {"mikit:network": {"subnetPrefix": "10.43.1.0/24"}},
            "mikit:network.subnetPrefix",
            "10.43.1.0/24",
        ),
        (
            {"mikit:network": {"addressSpace": "10.42.0.0/33"}},
            "mikit:network.addressSpace",
            "10.42.0.0/33",
        ),
        ({"mikit:vmSize": "B1s"}, "mikit:vmSize", "B1s"),
    ],
)
def test_network_and_size_are_checked_up_front(
    overrides: dict[str, Any], field: str, value: str
) -> None:
    error = fails(dev_config(**overrides))
    assert (error.field, error.value) == (field, value)


def test_vm_size_override_is_checked() -> None:
    error = fails(with_vm("solo", size="huge"))
    assert (error.field, error.value) == ("mikit:vms.solo.size", "huge")


def test_federated_credential_is_checked_up_front() -> None:
    identities = {
        "shared": {
            "name": "id-ok",
            "federatedCredentials": [{"name": "gh", "issuer": "http://x", "subject": "s"}],
        }
    }
    error = fails(dev_config(**{"mikit:identities": identities}))
    assert error.field == "mikit:identities.shared.federatedCredentials[0].issuer"
    assert error.value == "http://x"
