"""Generated stack configs: N VMs, shared user-assigned identities, one or two grants each.

The shape the benchmarks scale: every VM has a system identity and one shared
user-assigned identity (one identity per ``VMS_PER_IDENTITY`` VMs); every identity gets
Key Vault Secrets User on one secret and every other one also Key Vault Reader on the
vault (one or two grants per identity). The secret count is fixed, so the resource count
(and the access matrix, VMs x identities x secrets) grows linearly with N.
"""

from __future__ import annotations

from typing import Any

VMS_PER_IDENTITY = 10
SECRETS = (
    "app-db-password",
    "api-key",
    "reports-token",
    "queue-key",
    "cache-key",
    "smtp-password",
    "signing-key",
    "break-glass",
)
GRANTED_SECRETS = SECRETS[:-1]  # nobody is granted break-glass: every cell is a denial
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJLVFMIXrgzADPBSTYezYSlnCLrMmPku+3yCgAiifuvd bench"
SECRETS_USER = "Key Vault Secrets User"
READER = "Key Vault Reader"


def identity_count(vms: int) -> int:
    return max(1, -(-vms // VMS_PER_IDENTITY))


def stack_config(vms: int, prefix: str = "bench") -> dict[str, Any]:
    """Full config keys (``mikit:vms``...), as ``run_program`` and ``SandboxTarget`` take them."""
    shared = identity_count(vms)
    identities = {f"shared{k}": {"name": f"id-{prefix}-shared{k}"} for k in range(shared)}
    vm_config = {
        f"vm{i}": {
            "name": f"vm-{prefix}-{i}",
            "systemIdentity": True,
            "userAssigned": [f"shared{i % shared}"],
        }
        for i in range(vms)
    }
    grants: list[dict[str, str]] = []
    for i in range(vms):
        grants.append(_grant(f"vm:vm{i}", SECRETS_USER, GRANTED_SECRETS[i % len(GRANTED_SECRETS)]))
        if i % 2 == 0:
            grants.append({"principal": f"vm:vm{i}", "role": READER, "target": "vault"})
    for k in range(shared):
        target = GRANTED_SECRETS[(k + 3) % len(GRANTED_SECRETS)]
        grants.append(_grant(f"identity:shared{k}", SECRETS_USER, target))
        if k % 2 == 1:
            grants.append({"principal": f"identity:shared{k}", "role": READER, "target": "vault"})
    config: dict[str, Any] = {
        "location": "westeurope",
        "resourceGroup": f"rg-{prefix}",
        "sshPublicKey": SSH_KEY,
        "adminUsername": "azureuser",
        "tags": {"environment": "benchmark"},
        "network": {"addressSpace": "10.42.0.0/16", "subnetPrefix": "10.42.0.0/20"},
        "vault": {"name": f"kv-{prefix}", "purgeProtection": False, "softDeleteRetentionDays": 7},
        "secrets": list(SECRETS),
        "identities": identities,
        "vms": vm_config,
        "grants": grants,
    }
    for name in SECRETS:
        config[f"secret-{name}"] = f"bench-value-of-{name}"
    full = {f"mikit:{key}": value for key, value in config.items()}
    full["azure-native:location"] = "westeurope"
    return full


def _grant(principal: str, role: str, secret: str) -> dict[str, str]:
    return {"principal": principal, "role": role, "target": f"secret:{secret}"}


def counts(vms: int) -> dict[str, int]:
    """What the generated config declares (for the report)."""
    cfg = stack_config(vms)
    return {
        "vms": vms,
        "identities": len(cfg["mikit:identities"]),
        "secrets": len(cfg["mikit:secrets"]),
        "grants": len(cfg["mikit:grants"]),
        "matrix_cells": vms * 2 * len(cfg["mikit:secrets"]),
    }
