"""The Azure CLI against one sandbox per module, logged in as a VM's managed identity.

Skipped where az is not installed, unless ``MIKIT_REQUIRE_AZ=1`` (``.ci/run`` sets it after
installing az): then a missing az fails, so a green CI cannot hide untested commands.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
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
def registered(sb: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], Path]:
    """A function making an az config directory in which the sandbox is registered as a
    cloud and set as the current one, as docs/sandbox.md does, logged in as no one.

    az runs ``cloud register`` and ``cloud set`` once per sandbox; each directory asked
    for is a copy of that one (what the two commands write is the whole of it), so every
    profile starts from the same registration without two more az runs (~0.3 s each).
    """
    executable = az_executable()
    assert executable is not None
    template = tmp_path_factory.mktemp("azure-config-registered")
    cli = Az(executable, template, sb.ca_cert_path, "")
    cli(
        "cloud", "register", "--name", "MikitSandbox", "--endpoint-resource-manager", sb.arm_url
    ).check()
    cli("cloud", "set", "--name", "MikitSandbox").check()

    def copy(config_dir: Path) -> Path:
        shutil.copytree(template, config_dir)
        return config_dir

    return copy


@pytest.fixture(scope="module")
def az(
    sb: Sandbox,
    admin_vm: VirtualMachine,
    registered: Callable[[Path], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Az:
    """az with the sandbox registered as a cloud and logged in with ``--identity``."""
    executable = az_executable()
    assert executable is not None
    config_dir = registered(tmp_path_factory.mktemp("az") / "azure-config")
    cli = Az(executable, config_dir, sb.ca_cert_path, sb.imds_url(admin_vm))
    cli("login", "--identity").check()
    return cli


@pytest.fixture
def fresh_config(tmp_path: Path) -> Path:
    return tmp_path / "azure-config"
