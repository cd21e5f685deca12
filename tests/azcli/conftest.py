"""The Azure CLI against one sandbox per module, logged in as a VM's managed identity.

Skipped where az is not installed, unless ``MIKIT_REQUIRE_AZ=1`` (``.ci/run`` sets it after
installing az): then a missing az fails, so a green CI cannot hide untested commands.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from azcli_env import Az, az_executable

from verify.sandbox import Sandbox, SandboxConfig, VirtualMachine


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if az_executable() is not None:
        return
    if os.environ.get("MIKIT_REQUIRE_AZ") == "1":
        raise pytest.UsageError(
            "MIKIT_REQUIRE_AZ=1 but no az was found (MIKIT_AZ, the cache, PATH): install it "
            "with the command in docs/sandbox.md"
        )
    skip = pytest.mark.skip(reason="az is not installed (see docs/sandbox.md)")
    for item in items:
        if "azcli" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as sandbox:
        sandbox.state.create_resource_group("rg-cli")
        yield sandbox


@pytest.fixture(scope="module")
def admin_vm(sb: Sandbox) -> VirtualMachine:
    """The VM az runs "on": its system identity owns rg-cli (as docs/sandbox.md's vm-ops owns
    rg-sandbox), nothing at subscription scope."""
    vm = sb.state.create_vm("rg-cli", "vm-admin", system_assigned=True)
    assert vm.system_principal_id is not None
    sb.state.create_role_assignment(
        f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-cli",
        "Owner",
        vm.system_principal_id,
    )
    return vm


@pytest.fixture(scope="module")
def az(sb: Sandbox, admin_vm: VirtualMachine, tmp_path_factory: pytest.TempPathFactory) -> Az:
    """az with the sandbox registered as a cloud and logged in with ``--identity``."""
    executable = az_executable()
    assert executable is not None
    cli = Az(
        executable, tmp_path_factory.mktemp("azure-config"), sb.ca_cert_path, sb.imds_url(admin_vm)
    )
    cli(
        "cloud", "register", "--name", "MikitSandbox", "--endpoint-resource-manager", sb.arm_url
    ).check()
    cli("cloud", "set", "--name", "MikitSandbox").check()
    cli("login", "--identity").check()
    return cli


@pytest.fixture
def fresh_config(tmp_path: Path) -> Path:
    return tmp_path / "azure-config"
