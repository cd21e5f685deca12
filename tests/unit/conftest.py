"""Shared fixtures for the mock-runtime unit tests.

The mock runtime costs about a second per full stack run, so the dev stack is deployed
once per session (and re-deployed once onto the same backend, for the idempotence
checks); component tests run small programs of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from components.testing import (
    AzureMocks,
    InMemoryArm,
    StackOutputs,
    load_stack_config,
    run_program,
)

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "__main__.py"
STACKS = ROOT / "stacks"

# Values for the dev stack's secrets: tests supply them the way `pulumi config set
# --secret` would; they must never show up in a plain output.
DEV_SECRET_VALUES = {
    "mikit:secret-app-db-password": "s3cr3t-db-VALUE-1f2e",
    "mikit:secret-api-key": "s3cr3t-api-VALUE-7a7a",
    "mikit:secret-reports-token": "s3cr3t-reports-VALUE-0c0c",
    "mikit:secret-break-glass": "s3cr3t-breakglass-VALUE-9d9d",
    # seeded blob contents (mikit:blob-<account>-<container>-<path>), secret config too
    "mikit:blob-data-reports-q1-summary-csv": "s3cr3t-blob-q1-VALUE-aa01",
    "mikit:blob-data-reports-private-payroll-csv": "s3cr3t-blob-payroll-VALUE-bb02",
    "mikit:blob-data-archive-2025-ledger-csv": "s3cr3t-blob-ledger-VALUE-cc03",
    "mikit:blob-data-archive-keys-break-glass-txt": "s3cr3t-blob-breakglass-VALUE-dd04",
}


def openssh(key: Any) -> str:
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


SSH_KEY = openssh(ed25519.Ed25519PrivateKey.generate().public_key())
WEAK_RSA_KEY = openssh(rsa.generate_private_key(65537, 1024).public_key())


def dev_config(**overrides: Any) -> dict[str, Any]:
    """The dev stack file's config plus test secret values, with ``overrides`` applied."""
    config: dict[str, Any] = {**load_stack_config(STACKS / "Pulumi.dev.yaml"), **DEV_SECRET_VALUES}
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


@dataclass
class Deployment:
    outputs: StackOutputs
    mocks: AzureMocks

    @property
    def backend(self) -> InMemoryArm:
        assert isinstance(self.mocks.backend, InMemoryArm)
        return self.mocks.backend


def deploy(
    program: Path | Callable[[], None],
    config: Mapping[str, Any] | None = None,
    backend: InMemoryArm | None = None,
    stack: str = "dev",
) -> Deployment:
    mocks = AzureMocks(backend or InMemoryArm())
    outputs = run_program(program, config or {}, mocks=mocks, stack=stack)
    return Deployment(outputs, mocks)


@pytest.fixture(scope="session")
def dev_backend() -> InMemoryArm:
    return InMemoryArm()


@pytest.fixture(scope="session")
def dev(dev_backend: InMemoryArm) -> Deployment:
    """The dev stack deployed once into memory."""
    return deploy(PROGRAM, dev_config(), dev_backend)


@pytest.fixture(scope="session")
def dev_again(dev: Deployment, dev_backend: InMemoryArm) -> Deployment:
    """The same program and config run a second time against the same (now full) ARM."""
    return deploy(PROGRAM, dev_config(), dev_backend)


@pytest.fixture
def fresh() -> Iterator[AzureMocks]:
    yield AzureMocks(InMemoryArm())
