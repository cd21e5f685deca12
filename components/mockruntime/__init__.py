"""Run a whole Pulumi program in Pulumi's mock runtime, answered like ARM.

Used by the unit tests and, in production, by the sandbox target, which deploys the real
stack program into the local sandbox through these mocks (so this is not test-only code).
"""

from components.mockruntime.mocks import (
    AzureMocks,
    Registration,
    StackOutputs,
    flatten,
    is_secret_envelope,
    run_program,
    unwrap_secrets,
)
from components.mockruntime.stack_files import load_stack_config

__all__ = [
    "AzureMocks",
    "Registration",
    "StackOutputs",
    "flatten",
    "is_secret_envelope",
    "load_stack_config",
    "run_program",
    "unwrap_secrets",
]
