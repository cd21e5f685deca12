"""Shared shapes for the verifier tests (imported by conftest and the test modules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verify.sandbox import Sandbox

SECRET_VALUES = {"db-password": "correct horse battery staple", "api-key": "k-123456"}


@dataclass
class World:
    sb: Sandbox
    vault_name: str
    vm_a: Any  # system + shared UAI
    vm_b: Any  # shared UAI only
    shared: Any  # the user-assigned identity

    @property
    def vault_url(self) -> str:
        return self.sb.vault_url(self.vault_name)


ProbeRunner = Callable[..., dict[str, Any]]


SUB = "11111111-1111-1111-1111-111111111111"
TENANT = "22222222-2222-2222-2222-222222222222"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-demo"
VAULT_ID = f"{RG}/providers/Microsoft.KeyVault/vaults/kv-demo"
SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


def _role(guid: str) -> str:
    return f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def _grant(name: str, principal: str, principal_id: str, role: str, guid: str, scope: str) -> dict:
    return {
        "name": name,
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "principal": principal,
        "principal_id": principal_id,
        "principal_type": "ServicePrincipal",
        "role_name": role,
        "role_definition_id": _role(guid),
        "scope": scope,
    }


def sample_outputs() -> dict[str, Any]:
    """Contract-shaped outputs (docs/contracts.md) of a small topology.

    web: system identity (db-password at secret scope) + shared UAI (whole vault).
    batch: shared UAI only. The system identity of web also holds Reader on the vault,
    which must NOT read anything (no data actions).
    """
    web_sys = "aaaaaaaa-0000-0000-0000-000000000001"
    shared_pid = "bbbbbbbb-0000-0000-0000-000000000002"
    shared_cid = "cccccccc-0000-0000-0000-000000000003"
    uai_id = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-shared"
    secrets = {
        n: {
            "scope": f"{VAULT_ID}/secrets/{n}",
            "uri": f"https://kv-demo.vault.azure.net/secrets/{n}",
        }
        for n in ("api-key", "db-password")
    }
    grants = [
        _grant(
            "g1",
            "vm:web",
            web_sys,
            "Key Vault Secrets User",
            SECRETS_USER,
            secrets["db-password"]["scope"],
        ),
        _grant("g2", "vm:web", web_sys, "Reader", READER, VAULT_ID),
        _grant(
            "g3", "identity:shared", shared_pid, "Key Vault Secrets User", SECRETS_USER, VAULT_ID
        ),
    ]
    matrix = []
    for vm, ident, pid, cid in (
        ("batch", "shared", shared_pid, shared_cid),
        ("web", "shared", shared_pid, shared_cid),
        ("web", "system", web_sys, None),
    ):
        for secret in ("api-key", "db-password"):
            allowed = ident == "shared" or secret == "db-password"
            matrix.append(
                {
                    "vm": vm,
                    "identity": ident,
                    "principal_id": pid,
                    "client_id": cid,
                    "secret": secret,
                    "expected": "allowed" if allowed else "denied",
                }
            )
    return {
        "tenant_id": TENANT,
        "subscription_id": SUB,
        "location": "westeurope",
        "resource_group_id": RG,
        "vault": {"name": "kv-demo", "id": VAULT_ID, "uri": "https://kv-demo.vault.azure.net/"},
        "secrets": secrets,
        "secret_fingerprints": {"api-key": "sha256:aa", "db-password": "sha256:bb"},
        "identities": {
            "shared": {
                "name": "id-shared",
                "id": uai_id,
                "client_id": shared_cid,
                "principal_id": shared_pid,
                "tenant_id": TENANT,
            }
        },
        "vms": {
            "web": {
                "name": "vm-web",
                "id": f"{RG}/providers/Microsoft.Compute/virtualMachines/vm-web",
                "system_principal_id": web_sys,
                "user_assigned": ["shared"],
            },
            "batch": {
                "name": "vm-batch",
                "id": f"{RG}/providers/Microsoft.Compute/virtualMachines/vm-batch",
                "system_principal_id": None,
                "user_assigned": ["shared"],
            },
        },
        "grants": grants,
        "access_matrix": matrix,
    }


def probe_result_for(outputs: dict[str, Any], vm: str, overrides: dict | None = None) -> dict:
    """The probe result a correct deployment would give for ``vm`` (then ``overrides``:
    {(identity, secret): outcome} to simulate a wrong one)."""
    overrides = overrides or {}
    fps = outputs["secret_fingerprints"] if isinstance(outputs["secret_fingerprints"], dict) else {}
    identities = []
    for ident in (["system"] if outputs["vms"][vm]["system_principal_id"] else []) + list(
        outputs["vms"][vm]["user_assigned"]
    ):
        if ident == "system":
            selector, oid, mirid = (
                "system",
                outputs["vms"][vm]["system_principal_id"],
                outputs["vms"][vm]["id"],
            )
        else:
            spec = outputs["identities"][ident]
            selector, oid, mirid = spec["client_id"], spec["principal_id"], spec["id"]
        secrets = {}
        for cell in outputs["access_matrix"]:
            if cell.get("vm") != vm or cell["identity"] != ident:
                continue
            outcome = overrides.get((ident, cell["secret"]))
            outcome = outcome or ("read" if cell["expected"] == "allowed" else "forbidden")
            secrets[cell["secret"]] = {
                "outcome": outcome,
                "http_status": 200 if outcome == "read" else 403,
                "error_code": None if outcome == "read" else "Forbidden/ForbiddenByRbac",
                "fingerprint": fps.get(cell["secret"]) if outcome == "read" else None,
                "attempts": 1,
            }
        identities.append(
            {
                "selector": selector,
                "token": {
                    "outcome": "ok",
                    "credential_source": "imds",
                    "expires_in_seconds": 86000,
                },
                "claims": {
                    "oid": oid,
                    "tid": outputs["tenant_id"],
                    "aud": "https://vault.azure.net",
                    "xms_mirid": mirid,
                },
                "secrets": secrets,
            }
        )
    return {
        "probe_version": 1,
        "vault_url": outputs["vault"]["uri"],
        "identities": identities,
        "passed": True,
    }
