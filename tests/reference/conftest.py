"""Azurite and the sandbox side by side, one of each per session.

Azurite (Microsoft's storage emulator, npm package ``azurite`` pinned in
``package.json``/``package-lock.json``, installed by ``npm ci`` in this folder) runs on
127.0.0.1 only, over HTTPS with a certificate made by trustme, with ``--oauth basic``
(Bearer tokens checked for issuer, audience and expiry), in memory, telemetry off, and
``--skipApiVersionCheck`` because both clients default to x-ms-version 2026-10-06 and
Azurite 3.37 knows versions up to 2026-06-06. The fixture stops it at the end.

Without Node or the npm packages the tests skip, unless ``MIKIT_REQUIRE_REFERENCE=1``
(set by ``.ci/run``), which turns the skip into a failure so CI never hides them.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from verify.sandbox import Sandbox, SandboxConfig
from verify.sandbox.state.storage import StorageAccount
from verify.sandbox.state.store import UserAssignedIdentity, VirtualMachine

HERE = Path(__file__).parent
AZURITE = HERE / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "mikitref"
STARTUP_SECONDS = 60


def _unavailable(reason: str) -> None:
    if os.environ.get("MIKIT_REQUIRE_REFERENCE") == "1":
        pytest.fail(f"reference harness required (MIKIT_REQUIRE_REFERENCE=1): {reason}")
    pytest.skip(f"{reason}; run `npm ci` in tests/reference")


class AzuriteProcess:
    """A started Azurite; ``url`` (``https://127.0.0.1:<port>/<account>``) waits until it
    listens, so its start (~1 s of Node) overlaps whatever runs before the first use."""

    def __init__(self, wait: Callable[[], str], ca_path: str) -> None:
        self._wait = wait
        self.ca_path = ca_path

    @property
    def url(self) -> str:
        return self._wait()


@pytest.fixture(scope="session")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        _unavailable("node is not installed")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def azurite(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    if not AZURITE.exists():
        _unavailable(f"{AZURITE} is missing")
    workdir = tmp_path_factory.mktemp("azurite")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(workdir / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(workdir / "cert.pem"))
    ca.cert_pem.write_to_path(str(workdir / "ca.pem"))
    key = base64.b64encode(uuid.uuid4().bytes * 4).decode()
    env = {**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{key}"}
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--oauth",
            "basic",
            "--cert",
            str(workdir / "cert.pem"),
            "--key",
            str(workdir / "key.pem"),
            "--inMemoryPersistence",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--disableProductStyleUrl",
            "--silent",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    found: list[str] = []
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = re.search(r"listens on (https://127\.0\.0\.1:\d+)", line)
            if match and not found:
                found.append(match.group(1))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + STARTUP_SECONDS

    def listening() -> str:
        while not found and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not found:
            pytest.fail(f"Azurite did not start: {''.join(lines)[-2000:]}")
        return f"{found[0]}/{ACCOUNT}"

    try:
        yield AzuriteProcess(listening, str(workdir / "ca.pem"))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class ReferenceWorld:
    sandbox: Sandbox
    account: StorageAccount
    identity: UserAssignedIdentity
    vm: VirtualMachine


@pytest.fixture(scope="session")
def reference_world() -> Iterator[ReferenceWorld]:
    """A sandbox with the account Azurite also serves and an identity that owns its data."""
    with Sandbox(SandboxConfig()) as sandbox:
        st = sandbox.state
        st.create_resource_group("rg-reference")
        account = st.create_storage_account("rg-reference", ACCOUNT)
        identity = st.create_identity("rg-reference", "id-reference")
        st.create_role_assignment(account.id, "Storage Blob Data Owner", identity.principal_id)
        vm = st.create_vm("rg-reference", "vm-reference", user_assigned=[identity.id])
        yield ReferenceWorld(sandbox, account, identity, vm)
