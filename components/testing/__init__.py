"""Unit-test your own stack: ARM-shaped Pulumi mocks and a whole-program runner.

A stable import point for users' tests. The code lives where the sandbox also runs it:
:mod:`components.arm` (ARM documents and rules) and :mod:`components.mockruntime`.
"""

from components.arm import shapes as arm_shapes
from components.arm.backend import ArmBackend
from components.arm.errors import ArmError
from components.arm.memory import InMemoryArm
from components.mockruntime import (
    AzureMocks,
    Registration,
    StackOutputs,
    flatten,
    is_secret_envelope,
    load_stack_config,
    run_program,
    unwrap_secrets,
)

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
