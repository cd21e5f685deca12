"""Blob Storage data plane with the real azure-storage-blob clients (sync and async).

Every test reaches the sandbox over loopback HTTPS, trusting its CA, with tokens from the
VM's IMDS (ManagedIdentityCredential) or issued directly by the sandbox; client retries
are off (``retry_total=0``) so no test sits in a back-off.
"""

from __future__ import annotations

import http.client
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceResponseError,
)
from azure.identity import ManagedIdentityCredential
from azure.identity.aio import ManagedIdentityCredential as AsyncManagedIdentityCredential
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.blob._serialize import _SUPPORTED_API_VERSIONS
from azure.storage.blob.aio import BlobServiceClient as AsyncBlobServiceClient
from sandbox_world import OnVm

from verify.sandbox import Fault, Sandbox
from verify.sandbox.blob.wire import SUPPORTED_VERSIONS
from verify.sandbox.state.storage import StorageAccount
from verify.sandbox.state.store import UserAssignedIdentity, VirtualMachine

REPORTS, CONFIG = "reports", "config"


@dataclass
class BlobWorld:
    """One account, two containers, and identities with different grants.

    - ``reader``: Storage Blob Data Reader on container ``config`` only.
    - ``owner``: Storage Blob Data Owner on the account (every container, tags too).
    - ``contributor``: Storage Blob Data Contributor on the account (no tag actions).
    - ``manager``: Contributor on the account (management only: no data actions).
    - ``vm``: carries all four, so each test picks its identity by client ID.
    """

    account: StorageAccount
    reader: UserAssignedIdentity
    owner: UserAssignedIdentity
    contributor: UserAssignedIdentity
    manager: UserAssignedIdentity
    vm: VirtualMachine
    content: dict[str, bytes]


@pytest.fixture
def bw(sb: Sandbox) -> BlobWorld:
    suffix = uuid.uuid4().hex[:8]
    st = sb.state
    rg = f"rg-blob-{suffix}"
    st.create_resource_group(rg)
    account = st.create_storage_account(rg, f"st{suffix}")
    content = {
        f"{CONFIG}/app/settings.json": b'{"db": "' + uuid.uuid4().hex.encode() + b'"}',
        f"{CONFIG}/empty.txt": b"",
        f"{REPORTS}/2026/q4.csv": b"a,b\n1,2\n",
    }
    for name in (CONFIG, REPORTS):
        st.create_container(account.name, name)
    for key, data in content.items():
        container, path = key.split("/", 1)
        st.put_blob(account.name, container, path, data, tags={"project": container})
    ids = {n: st.create_identity(rg, f"id-{n}") for n in ("r", "o", "c", "m")}
    st.create_role_assignment(
        account.container_scope(CONFIG), "Storage Blob Data Reader", ids["r"].principal_id
    )
    st.create_role_assignment(account.id, "Storage Blob Data Owner", ids["o"].principal_id)
    st.create_role_assignment(account.id, "Storage Blob Data Contributor", ids["c"].principal_id)
    st.create_role_assignment(account.id, "Contributor", ids["m"].principal_id)
    vm = st.create_vm(rg, f"vm-blob-{suffix}", user_assigned=[i.id for i in ids.values()])
    return BlobWorld(account, ids["r"], ids["o"], ids["c"], ids["m"], vm, content)


def service(sb: Sandbox, bw: BlobWorld, identity: UserAssignedIdentity) -> BlobServiceClient:
    credential = ManagedIdentityCredential(client_id=identity.client_id)
    return BlobServiceClient(
        sb.blob_url(bw.account), credential, retry_total=0, **sb.blob_client_kwargs()
    )


def code_of(exc: HttpResponseError) -> str | None:
    return exc.error_code  # type: ignore[no-any-return]


class StaticCredential:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


# ------------------------------------------------------------------ versions
def test_accepted_versions_are_every_version_the_installed_client_can_send() -> None:
    """The list is exact, not "the recent ones": every version azure-storage-blob
    can be pinned to, plus 2021-10-04 (which Azure offers and that client skips), plus every
    blob.json version the REST API specification publishes (2027-03-07 is newer than the
    installed client's default: the next client release must not be refused)."""
    spec = {"2020-06-02", "2026-12-06", "2027-03-07"}  # published, beyond the client's list
    assert _SUPPORTED_API_VERSIONS[-1] in SUPPORTED_VERSIONS
    assert SUPPORTED_VERSIONS[-1] == "2027-03-07"
    assert set(SUPPORTED_VERSIONS) == set(_SUPPORTED_API_VERSIONS) | {"2021-10-04"} | spec
    assert list(SUPPORTED_VERSIONS) == sorted(SUPPORTED_VERSIONS)


# ------------------------------------------------------------------ reading
def test_read_through_imds_token_at_container_scope(
    sb: Sandbox, bw: BlobWorld, on_vm: OnVm
) -> None:
    on_vm(bw.vm)
    with service(sb, bw, bw.reader) as client:
        blob = client.get_blob_client(CONFIG, "app/settings.json")
        assert blob.download_blob().readall() == bw.content[f"{CONFIG}/app/settings.json"]
        props = blob.get_blob_properties()
        assert props.size == len(bw.content[f"{CONFIG}/app/settings.json"])
        assert props.blob_type == "BlockBlob"
        assert props.tag_count == 1
        assert client.get_blob_client(CONFIG, "empty.txt").download_blob().readall() == b""
        part = blob.download_blob(offset=2, length=4).readall()
        assert part == bw.content[f"{CONFIG}/app/settings.json"][2:6]


def test_from_blob_url_takes_the_account_from_the_path(
    sb: Sandbox, bw: BlobWorld, on_vm: OnVm
) -> None:
    on_vm(bw.vm)
    url = f"{sb.blob_url(bw.account)}/{REPORTS}/2026/q4.csv"
    blob = BlobClient.from_blob_url(
        url,
        credential=ManagedIdentityCredential(client_id=bw.owner.client_id),
        retry_total=0,
        **sb.blob_client_kwargs(),
    )
    assert blob.account_name == bw.account.name
    assert (blob.container_name, blob.blob_name) == (REPORTS, "2026/q4.csv")
    with blob:
        assert blob.download_blob().readall() == bw.content[f"{REPORTS}/2026/q4.csv"]


def test_container_grant_does_not_reach_the_other_container(
    sb: Sandbox, bw: BlobWorld, on_vm: OnVm
) -> None:
    on_vm(bw.vm)
    with service(sb, bw, bw.reader) as client, pytest.raises(HttpResponseError) as denied:
        client.get_blob_client(REPORTS, "2026/q4.csv").download_blob()
    assert denied.value.status_code == 403
    assert code_of(denied.value) == "AuthorizationPermissionMismatch"
    body = denied.value.response.text()
    assert body.startswith('<?xml version="1.0" encoding="utf-8"?><Error>')
    assert "<Code>AuthorizationPermissionMismatch</Code>" in body
    assert "using this permission." in body


def test_management_roles_have_no_data_actions(sb: Sandbox, bw: BlobWorld, on_vm: OnVm) -> None:
    on_vm(bw.vm)
    with service(sb, bw, bw.manager) as client, pytest.raises(HttpResponseError) as denied:
        client.get_blob_client(CONFIG, "app/settings.json").download_blob()
    assert (denied.value.status_code, code_of(denied.value)) == (
        403,
        "AuthorizationPermissionMismatch",
    )


def test_authorization_precedes_existence(sb: Sandbox, bw: BlobWorld, on_vm: OnVm) -> None:
    on_vm(bw.vm)
    with service(sb, bw, bw.reader) as reader:
        with pytest.raises(ResourceNotFoundError) as missing:
            reader.get_blob_client(CONFIG, "nope.txt").download_blob()
        assert code_of(missing.value) == "BlobNotFound"
        with pytest.raises(HttpResponseError) as hidden:
            reader.get_blob_client(REPORTS, "nope.txt").download_blob()
        assert (hidden.value.status_code, code_of(hidden.value)) == (
            403,
            "AuthorizationPermissionMismatch",
        )
    with service(sb, bw, bw.owner) as owner:
        with pytest.raises(ResourceNotFoundError) as no_container:
            owner.get_blob_client("absent", "x.txt").download_blob()
        assert code_of(no_container.value) == "ContainerNotFound"
        with pytest.raises(ResourceNotFoundError) as head:
            owner.get_blob_client(CONFIG, "nope.txt").get_blob_properties()
        assert code_of(head.value) == "BlobNotFound"


# ------------------------------------------------------------------ writing, listing, tags
def test_owner_writes_lists_tags_and_deletes(sb: Sandbox, bw: BlobWorld, on_vm: OnVm) -> None:
    on_vm(bw.vm)
    with service(sb, bw, bw.owner) as client:
        container = client.get_container_client(REPORTS)
        blob = container.get_blob_client("2026/new.txt")
        blob.upload_blob(b"fresh", tags={"project": "reports", "stage": "draft"})
        with pytest.raises(ResourceExistsError) as exists:
            blob.upload_blob(b"again")
        assert code_of(exists.value) == "BlobAlreadyExists"
        blob.upload_blob(b"replaced", overwrite=True)
        assert blob.download_blob().readall() == b"replaced"
        assert blob.get_blob_tags() == {}  # an overwrite without x-ms-tags clears them
        blob.set_blob_tags({"stage": "final"})
        assert blob.get_blob_tags() == {"stage": "final"}
        names = [b.name for b in container.list_blobs(name_starts_with="2026/")]
        assert names == ["2026/new.txt", "2026/q4.csv"]
        tagged = {b.name: b.tags for b in container.list_blobs(include=["tags"])}
        assert tagged["2026/q4.csv"] == {"project": REPORTS}
        paged = container.list_blobs(results_per_page=1).by_page()
        assert [len(list(page)) for page in paged] == [1, 1]
        blob.delete_blob()
        with pytest.raises(ResourceNotFoundError):
            blob.get_blob_properties()
        assert [c.name for c in client.list_containers()] == [CONFIG, REPORTS]
    assert sb.state.get_blob(bw.account.name, REPORTS, "2026/new.txt") is None


def test_tags_are_their_own_actions(sb: Sandbox, bw: BlobWorld, on_vm: OnVm) -> None:
    """Storage Blob Data Contributor reads and writes blobs, but not their index tags."""
    on_vm(bw.vm)
    with service(sb, bw, bw.contributor) as client:
        blob = client.get_blob_client(CONFIG, "app/settings.json")
        assert blob.download_blob().readall()
        for call in (blob.get_blob_tags, lambda: blob.set_blob_tags({"a": "b"})):
            with pytest.raises(HttpResponseError) as denied:
                call()
            assert code_of(denied.value) == "AuthorizationPermissionMismatch"
        with pytest.raises(HttpResponseError) as with_tags:
            client.get_blob_client(CONFIG, "t.txt").upload_blob(b"x", tags={"a": "b"})
        assert code_of(with_tags.value) == "AuthorizationPermissionMismatch"
        with pytest.raises(HttpResponseError) as listing:
            list(client.get_container_client(CONFIG).list_blobs(include=["tags"]))
        assert code_of(listing.value) == "AuthorizationPermissionMismatch"
    assert sb.state.get_blob(bw.account.name, CONFIG, "t.txt") is None


def test_reader_cannot_write_and_container_scope_cannot_list_containers(
    sb: Sandbox, bw: BlobWorld, on_vm: OnVm
) -> None:
    on_vm(bw.vm)
    with service(sb, bw, bw.reader) as client:
        assert [b.name for b in client.get_container_client(CONFIG).list_blobs()] == [
            "app/settings.json",
            "empty.txt",
        ]
        with pytest.raises(HttpResponseError) as write:
            client.get_blob_client(CONFIG, "x.txt").upload_blob(b"x")
        assert code_of(write.value) == "AuthorizationPermissionMismatch"
        with pytest.raises(HttpResponseError) as listing:
            list(client.list_containers())
        assert code_of(listing.value) == "AuthorizationPermissionMismatch"


def test_body_over_the_cap_is_413_before_it_is_read(sb: Sandbox, bw: BlobWorld) -> None:
    """The head announces more than the cap: refused without reading a body byte."""
    token = sb.issue_token(bw.owner.principal_id, "https://storage.azure.com")
    port = int(sb.blob_url(bw.account).split(":")[2].split("/")[0])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=sb.ssl_context(), timeout=10)
    conn.putrequest("PUT", f"/{bw.account.name}/{REPORTS}/big.bin")
    for name, value in {
        "Authorization": f"Bearer {token}",
        "x-ms-version": SUPPORTED_VERSIONS[-1],
        "x-ms-blob-type": "BlockBlob",
        "Content-Length": str(4 * 1024 * 1024 + 1),
    }.items():
        conn.putheader(name, value)
    conn.endheaders()
    response = conn.getresponse()
    assert (response.status, response.getheader("x-ms-error-code")) == (
        413,
        "RequestBodyTooLarge",
    )
    conn.close()
    assert sb.state.get_blob(bw.account.name, REPORTS, "big.bin") is None


# ------------------------------------------------------------------ authentication
def test_shared_key_is_refused(sb: Sandbox, bw: BlobWorld) -> None:
    key = "a2V5" * 22  # any base64 key: the account does not accept key-based auth at all
    client = BlobServiceClient(
        sb.blob_url(bw.account),
        {"account_name": bw.account.name, "account_key": key},
        retry_total=0,
        **sb.blob_client_kwargs(),
    )
    with client, pytest.raises(HttpResponseError) as refused:
        client.get_blob_client(CONFIG, "app/settings.json").download_blob()
    assert refused.value.status_code == 403
    assert code_of(refused.value) == "KeyBasedAuthenticationNotPermitted"


def test_anonymous_request_gets_the_storage_challenge(sb: Sandbox, bw: BlobWorld) -> None:
    client = BlobServiceClient(sb.blob_url(bw.account), retry_total=0, **sb.blob_client_kwargs())
    with client, pytest.raises(ClientAuthenticationError) as anonymous:
        client.get_blob_client(CONFIG, "app/settings.json").download_blob()
    response = anonymous.value.response
    assert response.status_code == 401
    assert code_of(anonymous.value) == "NoAuthenticationInformation"
    assert response.headers["WWW-Authenticate"] == (
        f"Bearer authorization_uri=https://login.microsoftonline.com/{sb.tenant_id}"
        "/oauth2/authorize resource_id=https://storage.azure.com"
    )


def test_token_for_another_audience_is_401_with_challenge(sb: Sandbox, bw: BlobWorld) -> None:
    token = sb.issue_token(bw.owner.principal_id, "https://vault.azure.net")
    client = BlobServiceClient(
        sb.blob_url(bw.account), StaticCredential(token), retry_total=0, **sb.blob_client_kwargs()
    )
    with client, pytest.raises(ClientAuthenticationError) as refused:
        client.get_blob_client(CONFIG, "app/settings.json").download_blob()
    assert refused.value.status_code == 401
    assert code_of(refused.value) == "InvalidAuthenticationInfo"
    assert "Audience validation failed" in refused.value.response.text()
    assert (
        "resource_id=https://storage.azure.com"
        in refused.value.response.headers["WWW-Authenticate"]
    )


def test_unknown_and_missing_versions(sb: Sandbox, bw: BlobWorld) -> None:
    token = sb.issue_token(bw.owner.principal_id, "https://storage.azure.com")
    older = BlobServiceClient(
        sb.blob_url(bw.account),
        StaticCredential(token),
        api_version="2021-12-02",  # a real, older version the installed client can be pinned to
        retry_total=0,
        **sb.blob_client_kwargs(),
    )
    with older:
        assert older.get_blob_client(CONFIG, "app/settings.json").download_blob().readall()
    url = f"{sb.blob_url(bw.account)}/{CONFIG}/app/settings.json"
    unreleased = requests.get(  # well formed, a day after a real one, never released
        url,
        headers={"Authorization": f"Bearer {token}", "x-ms-version": "2021-12-03"},
        verify=sb.ca_cert_path,
        timeout=10,
    )
    assert (unreleased.status_code, unreleased.headers["x-ms-error-code"]) == (
        400,
        "InvalidHeaderValue",
    )
    assert (
        "<HeaderName>x-ms-version</HeaderName><HeaderValue>2021-12-03</HeaderValue>"
        in unreleased.text
    )
    bare = requests.get(
        url, headers={"Authorization": f"Bearer {token}"}, verify=sb.ca_cert_path, timeout=10
    )
    assert (bare.status_code, bare.headers["x-ms-error-code"]) == (403, "AuthenticationFailed")
    assert "Bearer is not supported in this version" in bare.text
    ok = requests.get(
        url,
        headers={"Authorization": f"Bearer {token}", "x-ms-version": "2025-11-05"},
        verify=sb.ca_cert_path,
        timeout=10,
    )
    assert ok.status_code == 200
    assert ok.headers["x-ms-version"] == "2025-11-05"


def test_refused_tokens_of_deleted_principals(sb: Sandbox, bw: BlobWorld) -> None:
    token = sb.issue_token(bw.owner.principal_id, "https://storage.azure.com")
    sb.state.delete_identity(bw.owner.id)
    client = BlobServiceClient(
        sb.blob_url(bw.account), StaticCredential(token), retry_total=0, **sb.blob_client_kwargs()
    )
    with client:
        blob = client.get_blob_client(CONFIG, "app/settings.json")
        assert blob.download_blob().readall()  # "accept": the orphaned assignment still counts
        sb.faults.deleted_principal_tokens = "refuse"
        with pytest.raises(ClientAuthenticationError) as refused:
            blob.download_blob()
    assert code_of(refused.value) == "InvalidAuthenticationInfo"


# ------------------------------------------------------------------ RBAC timing, faults
def test_new_assignment_waits_for_propagation(sb: Sandbox, bw: BlobWorld, on_vm: OnVm) -> None:
    on_vm(bw.vm)
    sb.faults.propagation_delay_seconds = 3600
    sb.state.create_role_assignment(
        bw.account.container_scope(REPORTS), "Storage Blob Data Reader", bw.reader.principal_id
    )
    with service(sb, bw, bw.reader) as client:
        with pytest.raises(HttpResponseError) as early:
            client.get_blob_client(REPORTS, "2026/q4.csv").download_blob()
        assert code_of(early.value) == "AuthorizationPermissionMismatch"
        sb.faults.propagation_delay_seconds = 0
        assert client.get_blob_client(REPORTS, "2026/q4.csv").download_blob().readall()


@pytest.mark.parametrize(("status", "code"), [(503, "ServerBusy"), (500, "InternalError")])
def test_status_faults_answer_in_storage_xml(
    sb: Sandbox, bw: BlobWorld, on_vm: OnVm, status: int, code: str
) -> None:
    on_vm(bw.vm)
    fault = Fault(service="blob", status=status, retry_after=7, target=bw.account.name, times=1)
    with sb.faults.injected(fault), service(sb, bw, bw.owner) as client:
        with pytest.raises(HttpResponseError) as failed:
            client.get_blob_client(CONFIG, "app/settings.json").download_blob()
        assert client.get_blob_client(CONFIG, "app/settings.json").download_blob().readall()
    assert (failed.value.status_code, code_of(failed.value)) == (status, code)
    assert failed.value.response.headers["Retry-After"] == "7"
    assert f"<Code>{code}</Code>" in failed.value.response.text()
    assert fault.hits == 1


def test_reset_and_other_accounts_untouched(sb: Sandbox, bw: BlobWorld, on_vm: OnVm) -> None:
    on_vm(bw.vm)
    other = sb.state.create_storage_account(bw.account.resource_group, bw.account.name + "x")
    sb.state.create_container(other.name, CONFIG)
    sb.state.put_blob(other.name, CONFIG, "a.txt", b"other")
    sb.state.create_role_assignment(other.id, "Storage Blob Data Reader", bw.owner.principal_id)
    with sb.faults.injected(Fault(service="blob", kind="reset", target=bw.account.name)):
        with service(sb, bw, bw.owner) as client, pytest.raises(ServiceResponseError):
            client.get_blob_client(CONFIG, "app/settings.json").download_blob()
        other_client = BlobServiceClient(
            sb.blob_url(other),
            ManagedIdentityCredential(client_id=bw.owner.client_id),
            retry_total=0,
            **sb.blob_client_kwargs(),
        )
        with other_client:
            assert other_client.get_blob_client(CONFIG, "a.txt").download_blob().readall() == (
                b"other"
            )
    sb.state.delete_storage_account(other.name)
    with pytest.raises(Exception, match="is not a storage account"):
        sb.blob_url(other.name)


# ------------------------------------------------------------------ async client
async def test_async_client_reads_lists_and_is_denied(
    sb: Sandbox, bw: BlobWorld, on_vm: OnVm
) -> None:
    on_vm(bw.vm)
    credential = AsyncManagedIdentityCredential(client_id=bw.reader.client_id)
    client = AsyncBlobServiceClient(
        sb.blob_url(bw.account), credential, retry_total=0, **sb.async_blob_client_kwargs()
    )
    async with credential, client:
        blob = client.get_blob_client(CONFIG, "app/settings.json")
        downloaded = await (await blob.download_blob()).readall()
        assert downloaded == bw.content[f"{CONFIG}/app/settings.json"]
        names = [b.name async for b in client.get_container_client(CONFIG).list_blobs()]
        assert names == ["app/settings.json", "empty.txt"]
        with pytest.raises(HttpResponseError) as denied:
            await client.get_blob_client(REPORTS, "2026/q4.csv").download_blob()
        assert code_of(denied.value) == "AuthorizationPermissionMismatch"


# ------------------------------------------------------------------ ABAC conditions
READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
TAG = (
    "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:{key}"
    "<$key_case_sensitive$>]"
)
ONLY_CONFIG = f"""
(
 (
  !(ActionMatches{{'{READ}'}})
 )
 OR
 (
  @Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] StringEquals '{CONFIG}'
 )
)
"""
TAGGED_REPORTS = f"""(
 (!(ActionMatches{{'{READ}'}} AND NOT SubOperationMatches{{'Blob.List'}}))
 OR
 ({TAG.format(key="project")} StringEquals 'reports')
)"""


def conditional(
    sb: Sandbox, bw: BlobWorld, role: str, condition: str, scope: str | None = None
) -> UserAssignedIdentity:
    ident = sb.state.create_identity(bw.account.resource_group, f"id-abac-{uuid.uuid4().hex[:6]}")
    sb.state.create_role_assignment(
        scope or bw.account.id,
        role,
        ident.principal_id,
        condition=condition,
        condition_version="2.0",
    )
    sb.state.update_vm_identity(bw.vm.id, False, [*bw.vm.user_assigned, ident.id])
    return ident


def outcome(call: Any) -> str:
    try:
        call()
    except HttpResponseError as exc:
        return f"{exc.status_code} {code_of(exc)}"
    return "ok"


def test_condition_limits_an_account_grant_to_one_container(
    sb: Sandbox, bw: BlobWorld, on_vm: OnVm
) -> None:
    ident = conditional(sb, bw, "Storage Blob Data Reader", ONLY_CONFIG)
    on_vm(bw.vm)
    with service(sb, bw, ident) as client:
        config = client.get_blob_client(CONFIG, "app/settings.json")
        reports = client.get_blob_client(REPORTS, "2026/q4.csv")
        assert config.download_blob().readall() == bw.content[f"{CONFIG}/app/settings.json"]
        assert outcome(reports.download_blob) == "403 AuthorizationPermissionMismatch"
        # The condition names read only: listing (the same action, suboperation Blob.List)
        # is also limited by it, and the container name is what a listing supplies.
        assert outcome(lambda: list(client.get_container_client(CONFIG).list_blobs())) == "ok"
        assert outcome(lambda: list(client.get_container_client(REPORTS).list_blobs())) == (
            "403 AuthorizationPermissionMismatch"
        )


def test_condition_on_blob_index_tags_per_blob(sb: Sandbox, bw: BlobWorld, on_vm: OnVm) -> None:
    ident = conditional(sb, bw, "Storage Blob Data Owner", TAGGED_REPORTS)
    sb.state.put_blob(bw.account.name, REPORTS, "untagged.csv", b"x")
    sb.state.put_blob(bw.account.name, REPORTS, "other.csv", b"y", tags={"project": "Reports"})
    on_vm(bw.vm)
    with service(sb, bw, ident) as client:
        tagged = client.get_blob_client(REPORTS, "2026/q4.csv")
        assert tagged.download_blob().readall() == bw.content[f"{REPORTS}/2026/q4.csv"]
        for name in ("untagged.csv", "other.csv"):  # tag values compare case-sensitively
            blob = client.get_blob_client(REPORTS, name)
            assert outcome(blob.download_blob) == "403 AuthorizationPermissionMismatch"
            # Reading tags is its own action, which this condition does not restrict.
            assert outcome(blob.get_blob_tags) == "ok"
        # Listing is excluded by the condition (NOT SubOperationMatches{'Blob.List'}).
        assert len(list(client.get_container_client(REPORTS).list_blobs())) == 3
        # Re-tagging a blob changes what the same grant allows on the next request.
        client.get_blob_client(REPORTS, "untagged.csv").set_blob_tags({"project": "reports"})
        assert client.get_blob_client(REPORTS, "untagged.csv").download_blob().readall() == b"x"


def test_condition_on_an_attribute_the_operation_lacks_denies(
    sb: Sandbox, bw: BlobWorld, on_vm: OnVm
) -> None:
    """A listing supplies no blob path: a path condition that does not exclude Blob.List
    cannot be evaluated for it, and Azure fails the access check."""
    path_only = (
        f"((!(ActionMatches{{'{READ}'}})) OR "
        "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] "
        "StringLike 'app/*'))"
    )
    ident = conditional(sb, bw, "Storage Blob Data Reader", path_only)
    on_vm(bw.vm)
    with service(sb, bw, ident) as client:
        container = client.get_container_client(CONFIG)
        assert container.get_blob_client("app/settings.json").download_blob().readall()
        assert outcome(container.get_blob_client("empty.txt").download_blob) == (
            "403 AuthorizationPermissionMismatch"
        )
        assert outcome(lambda: list(container.list_blobs())) == (
            "403 AuthorizationPermissionMismatch"
        )


def test_condition_on_request_tags_of_a_write(sb: Sandbox, bw: BlobWorld, on_vm: OnVm) -> None:
    add = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"
    write = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
    request_tag = TAG.format(key="stage").replace("@Resource", "@Request")
    only_drafts = (
        f"((!(ActionMatches{{'{add}'}} AND SubOperationMatches{{'Blob.Write.WithTagHeaders'}}) "
        f"AND !(ActionMatches{{'{write}'}} AND SubOperationMatches{{'Blob.Write.WithTagHeaders'}}))"
        f" OR ({request_tag} StringEquals 'draft'))"
    )
    ident = conditional(sb, bw, "Storage Blob Data Owner", only_drafts)
    on_vm(bw.vm)
    with service(sb, bw, ident) as client:
        draft = client.get_blob_client(REPORTS, "d.txt")
        draft.upload_blob(b"d", tags={"stage": "draft"})
        final = client.get_blob_client(REPORTS, "f.txt")
        assert outcome(lambda: final.upload_blob(b"f", tags={"stage": "final"})) == (
            "403 AuthorizationPermissionMismatch"
        )
        final.upload_blob(b"f")  # no tag headers: not the suboperation the condition limits
    assert sb.state.get_blob(bw.account.name, REPORTS, "d.txt") is not None
    stored = sb.state.get_blob(bw.account.name, REPORTS, "f.txt")
    assert stored is not None and stored.tags == {}
