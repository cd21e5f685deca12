"""How a sandbox runs: :class:`SandboxConfig`, checked before anything is bound or created."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.armid import is_guid
from components.errors import ConfigError
from verify.sandbox.server import require_loopback


@dataclass
class SandboxConfig:
    """How the sandbox runs. Every field has the default a newcomer wants."""

    host: str = "127.0.0.1"
    tenant_id: str | None = None  # random GUID by default
    subscription_id: str | None = None  # random GUID by default
    location: str = "westeurope"
    token_lifetime_seconds: int = 86400  # managed-identity tokens live ~24 h on Azure
    clock_skew_seconds: int = 300  # what resource servers tolerate on nbf/exp
    propagation_delay_seconds: float = 0.0  # RBAC: new assignments apply after this
    deleted_principal_tokens: Literal["accept", "refuse"] = "accept"
    faults_file: str | Path | None = None
    arm_port: int = 0  # 0: any free port
    issuer_port: int = 0
    graph_port: int = 0
    oidc_port: int = 0  # the local GitHub-Actions-shaped OIDC issuer
    # Whether callers may read the directory through Graph (Directory.Read.All granted);
    # False: every Graph call is 403 Authorization_RequestDenied.
    graph_directory_read: bool = True
    workdir: str | Path | None = None  # where the CA PEM is written; a temp dir if None
    operator_role: str = "Owner"  # the operator principal's role on the subscription

    def validate(self) -> None:
        """ConfigError naming the field, before anything is bound or created."""
        require_loopback(self.host)
        for name in ("tenant_id", "subscription_id"):
            value = getattr(self, name)
            if value is not None and not is_guid(value):
                raise ConfigError(
                    name, value, "is not a GUID", "omit it for a random one, or give a GUID"
                )
        if self.token_lifetime_seconds < 60:
            raise ConfigError(
                "token_lifetime_seconds",
                self.token_lifetime_seconds,
                "is below 60",
                "use 60 or more",
            )
        if self.propagation_delay_seconds < 0:
            raise ConfigError(
                "propagation_delay_seconds",
                self.propagation_delay_seconds,
                "is negative",
                "use >= 0",
            )
        if self.deleted_principal_tokens not in ("accept", "refuse"):
            raise ConfigError(
                "deleted_principal_tokens",
                self.deleted_principal_tokens,
                "is not a mode",
                "use 'accept' or 'refuse'",
            )
        if not isinstance(self.graph_directory_read, bool):
            raise ConfigError(
                "graph_directory_read",
                self.graph_directory_read,
                "is not a boolean",
                "use True (callers may read the directory) or False (403 from Graph)",
            )
        for name in ("arm_port", "issuer_port", "graph_port", "oidc_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(
                    name, port, "is not a TCP port", "use 0 (any free port) or 1-65535"
                )
