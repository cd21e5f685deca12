"""Test support: ARM-shaped Pulumi mocks, shared by the unit tests and the sandbox deploy."""

from components.testing import arm_shapes
from components.testing.backend import ArmBackend, ArmError, InMemoryArm
from components.testing.mocks import AzureMocks, Registration, flatten, run_program
from components.testing.stack_files import load_stack_config

__all__ = [
    "ArmBackend",
    "ArmError",
    "AzureMocks",
    "InMemoryArm",
    "Registration",
    "arm_shapes",
    "flatten",
    "load_stack_config",
    "run_program",
]
