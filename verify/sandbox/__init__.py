"""The local sandbox: Entra token issuer, IMDS, Key Vault and an ARM slice on loopback.

A faithful stand-in for the part of Azure this project touches, so the real Microsoft
client libraries run end to end without an Azure account. Start it in-process with
:class:`Sandbox` or from a shell with ``python -m verify.sandbox``.
"""

from verify.sandbox.faults import Fault, FaultPlan
from verify.sandbox.requestlog import RequestLog, RequestRecord
from verify.sandbox.sandbox import Sandbox, SandboxConfig
from verify.sandbox.state.store import (
    RoleAssignment,
    SandboxError,
    SandboxState,
    SecretVersion,
    ServicePrincipal,
    UserAssignedIdentity,
    Vault,
    VirtualMachine,
)

__all__ = [
    "Fault",
    "FaultPlan",
    "RequestLog",
    "RequestRecord",
    "RoleAssignment",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxState",
    "SecretVersion",
    "ServicePrincipal",
    "UserAssignedIdentity",
    "Vault",
    "VirtualMachine",
]
