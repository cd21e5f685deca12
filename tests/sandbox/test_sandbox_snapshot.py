"""A sandbox snapshot, restored: the same state, every listener back at the same port.

Each test starts its own sandbox (a restore resets the whole sandbox, which the session's
shared one must not see) and changes everything a lifecycle run changes: deletes a vault,
an account, a VM, an app and an identity, scales a set in, grants, injects faults.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from verify.sandbox import Fault, Sandbox, SandboxConfig
from verify.sandbox.state.snapshot import data_copy, restore_data

SUB_PATH = "/providers/Microsoft.Web/sites"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig()) as sandbox:
        st = sandbox.state
        st.create_resource_group("rg")
        vault = st.create_vault("rg", "kv-snap")
        st.set_secret("kv-snap", "db", "s3cret")
        st.create_storage_account("rg", "stsnap")
        st.create_container("stsnap", "data")
        st.put_blob("stsnap", "data", "a.txt", b"hello")
        shared = st.create_identity("rg", "id-shared")
        vm = st.create_vm("rg", "vm-a", system_assigned=True, user_assigned=[shared.id])
        st.create_vm("rg", "vm-b", user_assigned=[shared.id])
        st.create_scale_set("rg", "vmss", capacity=2, system_assigned=True)
        st.create_or_update_app(
            f"/subscriptions/{st.subscription_id}/resourceGroups/rg{SUB_PATH}/app-web",
            kind="app",
            system_assigned=True,
            user_assigned=[shared.id],
        )
        st.create_role_assignment(vault.id, "Key Vault Secrets User", shared.principal_id)
        st.create_role_assignment(vault.id, "Key Vault Secrets User", vm.system_principal_id or "")
        yield sandbox


def _urls(sb: Sandbox) -> dict[str, object]:
    """Every per-resource listener's URL (instances included)."""
    return {
        **sb.endpoints(),
        "instances": {i.id: sb.imds_url(i) for i in sb.state.instances()},
    }


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return True
    except OSError:
        return False


def _change_everything(sb: Sandbox) -> None:
    st = sb.state
    (scale_set,) = st.scale_sets()
    st.delete_vault("kv-snap")
    st.delete_storage_account("stsnap")
    st.delete_vm(st.vms()[0].id)
    st.delete_app(st.apps()[0].id)
    st.delete_identity(st.identities()[0].id)
    st.scale_scale_set(scale_set.id, 1)
    st.create_resource_group("rg-other")
    st.create_vault("rg-other", "kv-other")
    st.create_role_assignment(
        f"/subscriptions/{st.subscription_id}", "Reader", st.principals()[0].object_id
    )
    sb.faults.add(Fault(service="arm", status=500))
    sb.faults.propagation_delay_seconds = 5.0
    sb.faults.deleted_principal_tokens = "refuse"
    sb.graph_directory_read = False


def test_restore_brings_back_the_state_faults_and_every_listener_at_its_port(sb: Sandbox) -> None:
    snap = sb.snapshot()
    state_before, urls_before = sb.state.snapshot(), _urls(sb)
    faults_before = (sb.faults.faults, sb.faults.propagation_delay_seconds)
    requests.get(urls_before["vaults"]["kv-snap"], verify=sb.ca_cert_path, timeout=10)  # type: ignore[index]
    _change_everything(sb)
    assert not _answers(urls_before["vaults"]["kv-snap"])  # type: ignore[index]

    sb.restore(snap)

    assert sb.state.snapshot() == state_before
    assert _urls(sb) == urls_before
    assert (sb.faults.faults, sb.faults.propagation_delay_seconds) == faults_before
    assert sb.faults.deleted_principal_tokens == "accept" and sb.graph_directory_read
    assert len(sb.request_log) == 0
    assert sb.state.vault("kv-other") is None
    # The restored vault answers at its old URL, with its secret behind the challenge.
    vault_url = sb.vault_url("kv-snap")
    answer = requests.get(f"{vault_url}secrets/db", verify=sb.ca_cert_path, timeout=10)
    assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
    assert sb.state.get_secret("kv-snap", "db").value == "s3cret"  # type: ignore[union-attr]
    assert all(_answers(url) for url in _urls(sb)["instances"].values())  # type: ignore[attr-defined]


def test_a_snapshot_restores_again_after_more_changes(sb: Sandbox) -> None:
    snap = sb.snapshot()
    state_before, urls_before = sb.state.snapshot(), _urls(sb)
    for _ in range(3):
        _change_everything(sb)
        sb.restore(snap)
        assert sb.state.snapshot() == state_before
        assert _urls(sb) == urls_before


def test_a_removed_instance_stops_answering_at_its_imds(sb: Sandbox) -> None:
    """Scaling in took the instance out of the state but left its IMDS listener serving,
    unreachable by the sandbox (and holding its port until the sandbox stopped)."""
    (scale_set,) = sb.state.scale_sets()
    last = max(sb.state.instances(scale_set.id), key=lambda i: i.id)
    url = sb.imds_url(last)
    assert _answers(url)
    sb.state.scale_scale_set(scale_set.id, 1)
    assert not _answers(url)


def test_a_cluster_issuer_made_after_the_snapshot_is_gone_after_the_restore(sb: Sandbox) -> None:
    snap = sb.snapshot()
    issuer = sb.clusters.issuer_url(sb.config.location, sb.tenant_id, "0a1b2c")
    discovery = issuer + ".well-known/openid-configuration"
    assert requests.get(discovery, verify=sb.ca_cert_path, timeout=10).status_code == 200
    sb.restore(snap)
    assert requests.get(discovery, verify=sb.ca_cert_path, timeout=10).status_code == 404


def test_a_cluster_issuer_keeps_its_key_across_a_restore(sb: Sandbox) -> None:
    """A cluster's key is made on first use (here after the snapshot): the restored issuer
    serves the same key, and a token it signed before the restore still verifies."""
    issuer = sb.clusters.issuer_url(sb.config.location, sb.tenant_id, "3d4e5f")
    snap = sb.snapshot()
    jwks_url = issuer + "openid/v1/jwks"
    token = sb.clusters.service_account_token(issuer, "shop", "api")
    before = requests.get(jwks_url, verify=sb.ca_cert_path, timeout=10).json()
    sb.restore(snap)
    after = requests.get(jwks_url, verify=sb.ca_cert_path, timeout=10).json()
    assert after == before
    (jwk,) = after["keys"]
    assert jwt.get_unverified_header(token)["kid"] == jwk["kid"]
    claims = jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["RS256"], audience="api://AzureADTokenExchange"
    )
    assert claims["iss"] == issuer


def test_each_cluster_issuer_has_a_key_of_its_own(sb: Sandbox) -> None:
    urls = [sb.clusters.issuer_url(sb.config.location, sb.tenant_id, g) for g in ("a1", "b2")]
    kids = {
        requests.get(u + "openid/v1/jwks", verify=sb.ca_cert_path, timeout=10).json()["keys"][0][
            "kid"
        ]
        for u in urls
    }
    assert len(kids) == 2


class _Store:
    """A store as the state might grow one: its own plain lock, data, a callback, and a
    back-reference to its owner."""

    def __init__(self, owner: object) -> None:
        self._lock = threading.Lock()
        self.docs: dict[str, dict[str, str]] = {"a": {"v": "1"}}
        self.on_change: Callable[[], None] = lambda: None
        self.owner = owner


class _Owner:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.items = [1, 2]
        self.store = _Store(self)
        self.same_store = self.store  # reached twice: its plain lock is taken once
        self.handlers = {"x": print}


def test_the_generic_copy_restores_nested_stores_in_place_and_leaves_what_is_no_data() -> None:
    owner = _Owner()
    store, lock, callback = owner.store, owner.store._lock, owner.store.on_change
    snap = data_copy(owner)
    owner.items.append(3)
    owner.store.docs["a"]["v"] = "2"
    owner.store.docs["b"] = {}
    owner.extra = "made after the snapshot"  # type: ignore[attr-defined]
    restore_data(owner, snap)
    assert owner.items == [1, 2] and not hasattr(owner, "extra")
    assert owner.store is store and owner.same_store is store  # in place, still shared
    assert store.docs == {"a": {"v": "1"}}
    assert store._lock is lock and store.on_change is callback and store.owner is owner
    assert owner.handlers == {"x": print}
    restore_data(owner, snap)  # the snapshot is reusable
    assert store.docs == {"a": {"v": "1"}}
