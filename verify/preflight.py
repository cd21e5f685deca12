"""``python -m verify preflight``: name the conflicts ``pulumi up`` would hit, before it runs.

After ``pulumi destroy`` a Key Vault is only soft-deleted: it holds its (global) name for
its retention days, and creating a vault of that name fails with 409 ``ConflictError`` ("A
vault with the same name already exists in deleted state..."), minutes into a deployment.
With purge protection (the default here) nobody can purge it early. The preflight asks
ARM for the deleted vault (``GET /subscriptions/{sub}/providers/Microsoft.KeyVault/
locations/{location}/deletedVaults/{name}``, the Key Vault management API's
``Vaults_GetDeleted``) and says what to do.

Only a proving answer counts: 200 (the name is held) or 404 (it is free). Anything else
(403, 5xx, a network error) is reported as inconclusive and fails the preflight, since
"could not check" is not "no conflict".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from azure.core import PipelineClient
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy

from components import stack_config
from components.errors import ConfigError
from components.mockruntime import load_stack_config

#: The Key Vault management API version azure-native 3.x deploys vaults with.
KEY_VAULT_API_VERSION = "2024-11-01"
ARM_SCOPE = "https://management.azure.com/.default"

Verdict = Literal["ok", "conflict", "inconclusive"]


@dataclass(frozen=True)
class DeletedVaultAnswer:
    """What ARM said about one deleted-vault name: the status and the body it sent."""

    status: int | None  # None: no HTTP answer at all (connection refused, timeout)
    body: Mapping[str, Any]
    error: str = ""


Lookup = Callable[[str, str], DeletedVaultAnswer]
"""``lookup(vault_name, location)``: ARM's answer for that deleted vault."""


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    message: str

    @property
    def passed(self) -> bool:
        return self.verdict == "ok"


@dataclass(frozen=True)
class VaultPlan:
    """The vault the stack will create, from its config."""

    name: str
    location: str
    create_mode: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> VaultPlan:
        """From a stack file's ``config:`` block (``components.mockruntime.load_stack_config``);
        validated by the same schema ``pulumi up`` uses, so a bad file fails here too."""
        prefix = f"{stack_config.NAMESPACE}:"
        bare = {
            k.removeprefix(prefix): v
            for k, v in config.items()
            if k.startswith(prefix) and k.removeprefix(prefix) in stack_config.KEYS
        }
        parsed = stack_config.parse(bare)
        return cls(parsed.vault.name, parsed.location, parsed.vault.create_mode)


def check_vault_name(plan: VaultPlan, lookup: Lookup) -> Finding:
    """Will creating ``plan``'s vault conflict with a soft-deleted one?"""
    answer = lookup(plan.name, plan.location)
    recover = plan.create_mode == "recover"
    if answer.status == 404:
        if recover:
            return Finding(
                "conflict",
                f"mikit:vault.createMode is 'recover' but no deleted vault named "
                f"'{plan.name}' exists in {plan.location}. Fix: remove createMode (`pulumi "
                "config rm --path vault.createMode`) so the vault is created new.",
            )
        return Finding("ok", f"vault name '{plan.name}' is not held by a deleted vault")
    if answer.status == 200:
        props = answer.body.get("properties") or {}
        held = (
            f"vault name '{plan.name}' is held by a vault deleted on "
            f"{props.get('deletionDate', '?')} (was {props.get('vaultId', '?')}); it keeps "
            f"the name until {props.get('scheduledPurgeDate', '?')}"
        )
        if recover:
            return Finding(
                "ok",
                f"{held}; createMode 'recover' brings it back with its secrets. Remove "
                "createMode after this `pulumi up`.",
            )
        purge = (
            "purge protection is on, so it cannot be purged before then"
            if props.get("purgeProtectionEnabled")
            else f"or purge it: `az keyvault purge --name {plan.name} --location "
            f"{plan.location}` (needs Key Vault Contributor or Owner on the subscription)"
        )
        return Finding(
            "conflict",
            f"{held}. `pulumi up` would fail with 409 ConflictError. Fix: recover it "
            "(`pulumi config set --path vault.createMode recover`), pick another name "
            f"(mikit:vault.name), {purge}.",
        )
    what = f"HTTP {answer.status}" if answer.status is not None else "no answer"
    code = (answer.body.get("error") or {}).get("code") if answer.body else None
    detail = f" {code}" if code else (f" ({answer.error})" if answer.error else "")
    return Finding(
        "inconclusive",
        f"could not tell whether vault name '{plan.name}' is held by a deleted vault: "
        f"{what}{detail}. Needed: Microsoft.KeyVault/locations/deletedVaults/read on the "
        "subscription (Reader has it).",
    )


def arm_lookup(
    credential: TokenCredential,
    subscription_id: str,
    *,
    base_url: str = "https://management.azure.com",
    connection_verify: str | bool = True,
    retry_total: int = 3,
) -> Lookup:
    """A :data:`Lookup` through ARM: ``GET .../locations/{loc}/deletedVaults/{name}``.

    Built on azure-core's pipeline with ARM's challenge-aware bearer policy, the same
    pieces the azure-mgmt-* clients use, so no Key Vault management SDK is needed for one
    GET.
    """
    client: PipelineClient[Any, Any] = PipelineClient(
        base_url,
        policies=[
            RetryPolicy(retry_total=retry_total),
            ARMChallengeAuthenticationPolicy(credential, ARM_SCOPE),
        ],
        transport=RequestsTransport(connection_verify=connection_verify),
    )

    def lookup(name: str, location: str) -> DeletedVaultAnswer:
        url = (
            f"{base_url.rstrip('/')}/subscriptions/{subscription_id}/providers/"
            f"Microsoft.KeyVault/locations/{location}/deletedVaults/{name}"
            f"?api-version={KEY_VAULT_API_VERSION}"
        )
        try:
            response = client.send_request(HttpRequest("GET", url))
        except AzureError as exc:
            return DeletedVaultAnswer(None, {}, type(exc).__name__)
        try:
            body = response.json()
        except ValueError:
            body = {}
        return DeletedVaultAnswer(response.status_code, body if isinstance(body, dict) else {})

    return lookup


STACKS = Path(__file__).resolve().parents[1] / "stacks"


def check_stack_config(raw: Mapping[str, Any]) -> None:
    """The stack file's schema and cross-references, as the stack program checks them, with
    no secret value needed: a mistake that would fail ``pulumi up`` or only show at run
    time (an AKS issuer without its trailing slash, which every exchange would answer with
    AADSTS700211) is a ConfigError before any cloud call."""
    from components.role_lookup import CatalogRoleResolver  # noqa: PLC0415

    values = {
        k.removeprefix(f"{stack_config.NAMESPACE}:"): v
        for k, v in raw.items()
        if k.startswith(f"{stack_config.NAMESPACE}:")
        and not k.startswith(
            (f"{stack_config.NAMESPACE}:secret-", f"{stack_config.NAMESPACE}:blob-")
        )
    }
    stack_config.check(stack_config.parse(values), CatalogRoleResolver())


def run(
    target: str,
    stack: str | None,
    *,
    subscription_id: str | None = None,
    stack_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> list[Finding]:
    """The preflight checks for ``stack`` against ``target`` ("azure" or "sandbox")."""
    env = os.environ if env is None else env
    stack = stack or ("sandbox" if target == "sandbox" else "dev")
    path = stack_file or STACKS / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise ConfigError("--stack", stack, f"has no stack file {path}", "pass an existing stack")
    raw = load_stack_config(path)
    check_stack_config(raw)
    plan = VaultPlan.from_config(raw)
    if target == "sandbox":
        from verify.sandbox import Sandbox, SandboxConfig  # noqa: PLC0415 -- sandbox only

        with Sandbox(SandboxConfig()) as sb:
            lookup = arm_lookup(
                sb.credential(),
                sb.subscription_id,
                base_url=sb.arm_url,
                connection_verify=sb.ca_cert_path,
                retry_total=0,
            )
            return [check_vault_name(plan, lookup)]
    sub = subscription_id or env.get("AZURE_SUBSCRIPTION_ID") or env.get("ARM_SUBSCRIPTION_ID")
    if not sub:
        raise ConfigError(
            "--subscription",
            None,
            "is not set (nor AZURE_SUBSCRIPTION_ID)",
            "pass --subscription <guid> or export AZURE_SUBSCRIPTION_ID",
        )
    from verify.credentials import operator_credential  # noqa: PLC0415 -- azure only

    return [check_vault_name(plan, arm_lookup(operator_credential(env), sub))]
