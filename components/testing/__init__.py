"""Test support: ARM-shaped Pulumi mocks, shared by the unit tests and the sandbox deploy."""

from components.testing import arm_shapes
from components.testing.backend import ArmBackend, ArmError, InMemoryArm
from components.testing.mocks import (
    AzureMocks,
    Registration,
    StackOutputs,
    flatten,
    is_secret_envelope,
    run_program,
    unwrap_secrets,
)
from components.testing.stack_files import load_stack_config

__all__ = [
    "ArmBackend",
    "ArmError",
    "AzureMocks",
    "InMemoryArm",
    "Registration",
    "StackOutputs",
    "arm_shapes",
    "flatten",
    "is_secret_envelope",
    "load_stack_config",
    "run_program",
    "unwrap_secrets",
]
