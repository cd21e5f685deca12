"""Every stack file validates, the sandbox stack deploys the dev topology, and the one
secret export is a Pulumi secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.role_lookup import CatalogRoleResolver
from components.stack_config import blob_value_key, check, parse
from components.testing import load_stack_config
from tests.unit.conftest import PROGRAM, STACKS, Deployment, deploy


def without_namespace(config: dict[str, Any]) -> dict[str, Any]:
    return {
        k.removeprefix("mikit:"): v
        for k, v in config.items()
        if k.startswith("mikit:") and not k.startswith(("mikit:secret-", "mikit:blob-"))
    }


@pytest.mark.parametrize("stack", ["dev", "prod", "sandbox"])
def test_stack_file_is_valid(stack: str) -> None:
    config = load_stack_config(STACKS / f"Pulumi.{stack}.yaml")
    cfg = parse(without_namespace(config))
    roles = check(cfg, CatalogRoleResolver())
    # dev and sandbox add the scale set's grant and two grants to apps' system identities
    # (Key Vault references) to prod's seven.
    assert len(roles) == len(cfg.grants) == (7 if stack == "prod" else 10)
    assert {a.kind for a in cfg.apps.values()} == (
        set() if stack == "prod" else {"webapp", "functionapp", "containerapp"}
    )
    assert cfg.vault.purge_protection is (stack == "prod")
    # Real-Azure stacks carry no secret value in clear; the sandbox one carries them all.
    values = {k for k in config if k.startswith(("mikit:secret-", "mikit:blob-"))}
    expected = {f"mikit:secret-{s}" for s in cfg.secrets} | {
        f"mikit:{blob_value_key(key, b.container, b.name)}"
        for key, account in cfg.storage_accounts.items()
        for b in account.blobs
    }
    assert values == (set() if stack != "sandbox" else expected)
    # The storage topology: two containers, a blob nobody may read (checked in the matrix).
    (account,) = cfg.storage_accounts.values()
    assert account.containers == ["reports", "archive"]


def test_sandbox_stack_deploys_the_dev_topology(dev: Deployment) -> None:
    sandbox = deploy(PROGRAM, load_stack_config(STACKS / "Pulumi.sandbox.yaml"), stack="sandbox")

    def shape(outputs: dict[str, Any]) -> set[tuple[str, str, str, str]]:
        return {
            (r.get("vm") or r["host"], r["identity"], r.get("secret") or r["blob"], r["expected"])
            for r in outputs["access_matrix"]
        }

    assert shape(sandbox.outputs) == shape(dev.outputs)
    assert sandbox.outputs["vault"]["name"] == "kv-mikit-sandbox"
    assert sandbox.backend.secret_values  # the demo values reached the (emulated) vault
    assert len(sandbox.backend.blob_values) == 4  # and the seeded blobs their account


def test_the_fingerprints_are_the_only_secret_exports(dev: Deployment) -> None:
    fingerprints = {"secret_fingerprints", "blob_fingerprints"}
    assert dev.outputs.secret_keys == fingerprints
    assert set(dev.outputs.plain()) == set(dev.outputs) - fingerprints


def test_program_file_is_thin() -> None:
    text = Path(PROGRAM).read_text()
    assert "pulumi.export(name, value)" in text
    assert (
        len(
            [
                line
                for line in text.splitlines()
                if line.strip() and not line.startswith(("#", '"""'))
            ]
        )
        < 15
    )
