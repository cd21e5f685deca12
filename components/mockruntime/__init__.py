"""Run a whole Pulumi program in Pulumi's mock runtime, answered like ARM.

Used by the unit tests and, in production, by the sandbox target, which deploys the real
stack program into the local sandbox through these mocks (so this is not test-only code).
``mocks`` answers each registration, ``azure_native`` holds what the provider sends and
returns, ``ordering`` the engine's write order, ``runner`` runs a program.
"""

from components.mockruntime.azure_native import flatten, is_secret_envelope, unwrap_secrets
from components.mockruntime.mocks import AzureMocks, Registration
from components.mockruntime.runner import StackOutputs, run_program
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
