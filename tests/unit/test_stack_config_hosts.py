"""The host-kind seam of the stack config: one module and one field per kind of host."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field

from components.stack_config import HOST_KINDS, HostConfig, StackConfig, grant_principals, parse
from components.stack_config.hosts import host_kinds_of

_BASE = {
    "location": "westeurope",
    "resourceGroup": "rg-x",
    "sshPublicKey": "ssh-ed25519 AAAA",
    "vault": {"name": "kv-x"},
}


def test_vms_are_a_registered_host_kind() -> None:
    assert [(k.key, k.prefix) for k in HOST_KINDS][:1] == [("vms", "vm")]


def test_principal_table_comes_from_each_host_entry() -> None:
    cfg = parse(
        {
            **_BASE,
            "identities": {"shared": {"name": "id-shared"}},
            "vms": {
                "a": {"name": "vm-a", "systemIdentity": True},
                "b": {"name": "vm-b", "userAssigned": ["shared"]},
            },
        }
    )
    table = grant_principals(cfg)
    assert table["vm:a"].unavailable is None
    assert table["vm:a"].identity is None
    assert table["vm:b"].unavailable == (
        "names a VM whose system identity is off",
        "set mikit:vms.b.systemIdentity: true, or grant a user-assigned identity",
    )


class _Gizmo(HostConfig):
    PRINCIPAL_PREFIX: ClassVar[str] = "vm"
    NOUN: ClassVar[str] = "a gizmo"
    PRINCIPAL_HINT: ClassVar[str] = "vm:<gizmo key>"


class _Clashing(StackConfig):
    gizmos: dict[str, _Gizmo] = Field(default_factory=dict)


def test_two_host_kinds_cannot_share_a_principal_prefix() -> None:
    with pytest.raises(TypeError, match="share a principal prefix"):
        host_kinds_of(_Clashing)
