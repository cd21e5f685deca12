"""The Blob plane application code uses: metadata, Content-MD5, delimiter listings,
container create/delete, Find Blobs by Tags and conditional headers, each with RBAC and
ABAC as Azure applies them.

The answers themselves are compared with Azurite in tests/reference; here each
operation's authorization (its data action or action, its ABAC attributes) and the rules
Azure holds where Azurite differs.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient, ContentSettings
from sandbox_world import OnVm

from verify.sandbox import Sandbox
from verify.sandbox.blob.tag_filter import TagFilterError, parse_if_tags, parse_where
from verify.sandbox.state.storage import StorageAccount
from verify.sandbox.state.store import VirtualMachine

FILTER = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/filter/action"


@dataclass
class Plane:
    account: StorageAccount
    vm: VirtualMachine
    rg: str

    def identity(self, sb: Sandbox, role: str, scope: str, condition: str | None = None) -> str:
        ident = sb.state.create_identity(self.rg, f"id-{uuid.uuid4().hex[:6]}")
        sb.state.create_role_assignment(
            scope,
            role,
            ident.principal_id,
            condition=condition,
            condition_version="2.0" if condition else None,
        )
        vm = sb.state.vm(self.vm.id)
        assert vm is not None
        sb.state.update_vm_identity(vm.id, False, [*vm.user_assigned, ident.id])
        return ident.client_id


@pytest.fixture
def plane(sb: Sandbox, on_vm: OnVm) -> Plane:
    suffix = uuid.uuid4().hex[:8]
    rg = f"rg-plane-{suffix}"
    sb.state.create_resource_group(rg)
    account = sb.state.create_storage_account(rg, f"stp{suffix}")
    sb.state.create_container(account.name, "data")
    for name, tags in (("a/1.txt", {"team": "red"}), ("a/2.txt", {"team": "blue"}), ("b.txt", {})):
        sb.state.put_blob(account.name, "data", name, name.encode(), tags=tags)
    holder = sb.state.create_identity(rg, "id-holder")
    vm = sb.state.create_vm(rg, f"vm-plane-{suffix}", user_assigned=[holder.id])
    on_vm(vm)
    return Plane(account, vm, rg)


def client(sb: Sandbox, plane: Plane, client_id: str) -> BlobServiceClient:
    return BlobServiceClient(
        sb.blob_url(plane.account),
        ManagedIdentityCredential(client_id=client_id),
        retry_total=0,
        **sb.blob_client_kwargs(),
    )


def outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except HttpResponseError as exc:
        return f"{exc.status_code} {getattr(exc.error_code, 'value', exc.error_code)}"
    return "ok"


# ------------------------------------------------------------------ metadata, Content-MD5
def test_metadata_and_md5_round_trip(sb: Sandbox, plane: Plane) -> None:
    owner = plane.identity(sb, "Storage Blob Data Owner", plane.account.id)
    with client(sb, plane, owner) as svc:
        blob = svc.get_blob_client("data", "m.txt")
        blob.upload_blob(b"payload", metadata={"Project": "alpha", "owner": "ops"})
        props = blob.get_blob_properties()
        # Azure keeps a name's case; the sandbox's ASGI server lowercases request header
        # names before the service sees them (docs/azure-fidelity.md, Blob).
        assert props.metadata == {"project": "alpha", "owner": "ops"}
        expected = hashlib.md5(b"payload").digest()
        assert bytes(props.content_settings.content_md5) == expected
        download = blob.download_blob()
        assert download.properties.metadata == {"project": "alpha", "owner": "ops"}
        listed = {
            b.name: b for b in svc.get_container_client("data").list_blobs(include=["metadata"])
        }
        assert listed["m.txt"].metadata == {"project": "alpha", "owner": "ops"}
        assert bytes(listed["m.txt"].content_settings.content_md5) == expected
        # Overwriting replaces the metadata with the request's (none).
        blob.upload_blob(b"again", overwrite=True)
        assert blob.get_blob_properties().metadata == {}


def test_bad_metadata_name_and_md5_are_refused(sb: Sandbox, plane: Plane) -> None:
    owner = plane.identity(sb, "Storage Blob Data Owner", plane.account.id)
    with client(sb, plane, owner) as svc:
        blob = svc.get_blob_client("data", "x.txt")
        assert outcome(lambda: blob.upload_blob(b"x", metadata={"1bad": "v"})) == (
            "400 InvalidMetadata"
        )
        wrong = ContentSettings(content_md5=bytearray(hashlib.md5(b"y").digest()))
        assert outcome(lambda: blob.upload_blob(b"x", content_settings=wrong)) == (
            "400 Md5Mismatch"
        )
        short = ContentSettings(content_md5=bytearray(b"abc"))
        assert outcome(lambda: blob.upload_blob(b"x", content_settings=short)) == "400 InvalidMd5"
        assert outcome(blob.get_blob_properties) == "404 BlobNotFound"


# ------------------------------------------------------------------ listings
def test_delimiter_listing_pages_prefixes_with_blobs(sb: Sandbox, plane: Plane) -> None:
    reader = plane.identity(sb, "Storage Blob Data Reader", plane.account.container_scope("data"))
    with client(sb, plane, reader) as svc:
        container = svc.get_container_client("data")
        assert [i.name for i in container.walk_blobs(delimiter="/")] == ["a/", "b.txt"]
        pages = container.walk_blobs(delimiter="/", results_per_page=1).by_page()
        assert [[i.name for i in page] for page in pages] == [["a/"], ["b.txt"]]
        assert [i.name for i in container.walk_blobs("a/", delimiter="/")] == ["a/1.txt", "a/2.txt"]


def test_condition_on_the_listing_prefix_holds_for_delimited_listings(
    sb: Sandbox, plane: Plane
) -> None:
    """A delimited listing is List Blobs (``blobs/read``, suboperation ``Blob.List``): its
    request ``prefix`` is what a condition reads; the delimiter changes nothing."""
    read = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
    only_a = (
        f"((!(ActionMatches{{'{read}'}} AND SubOperationMatches{{'Blob.List'}})) OR "
        "(@Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:prefix] "
        "StringStartsWith 'a/'))"
    )
    reader = plane.identity(sb, "Storage Blob Data Reader", plane.account.id, only_a)
    with client(sb, plane, reader) as svc:
        container = svc.get_container_client("data")
        assert [i.name for i in container.walk_blobs("a/", delimiter="/")] == [
            "a/1.txt",
            "a/2.txt",
        ]
        assert outcome(lambda: list(container.walk_blobs(delimiter="/"))) == (
            "403 AuthorizationPermissionMismatch"
        )
        assert container.get_blob_client("b.txt").download_blob().readall() == b"b.txt"


def test_listing_echoes_only_given_parameters(sb: Sandbox, plane: Plane) -> None:
    """Azure's bare List Blobs is ``<EnumerationResults ...><Blobs>..</Blobs><NextMarker />``:
    no empty ``Prefix``/``Marker`` and no ``MaxResults`` nobody asked for (Azurite sends
    all three)."""
    owner = plane.identity(sb, "Storage Blob Data Owner", plane.account.id)
    token = ManagedIdentityCredential(client_id=owner).get_token(
        "https://storage.azure.com/.default"
    )
    url = f"{sb.blob_url(plane.account)}/data?restype=container&comp=list"
    headers = {"Authorization": f"Bearer {token.token}", "x-ms-version": "2026-10-06"}
    bare = requests.get(url, headers=headers, verify=sb.ca_cert_path, timeout=10).text
    assert "<Prefix" not in bare and "<Marker" not in bare and "<MaxResults" not in bare
    asked = requests.get(
        url + "&prefix=a/&maxresults=1&delimiter=/",
        headers=headers,
        verify=sb.ca_cert_path,
        timeout=10,
    ).text
    assert "<Prefix>a/</Prefix>" in asked and "<MaxResults>1</MaxResults>" in asked
    assert "<Delimiter>/</Delimiter>" in asked


# ------------------------------------------------------------------ containers
def test_container_create_and_delete_are_their_own_actions(sb: Sandbox, plane: Plane) -> None:
    """Create / Delete Container need ``containers/write`` / ``containers/delete``: Storage
    Blob Data Reader has neither, Contributor both."""
    reader = plane.identity(sb, "Storage Blob Data Reader", plane.account.id)
    writer = plane.identity(sb, "Storage Blob Data Contributor", plane.account.id)
    with client(sb, plane, reader) as svc:
        assert outcome(lambda: svc.create_container("fresh")) == (
            "403 AuthorizationPermissionMismatch"
        )
        assert outcome(lambda: svc.delete_container("data")) == (
            "403 AuthorizationPermissionMismatch"
        )
    with client(sb, plane, writer) as svc:
        svc.create_container("fresh")
        assert outcome(lambda: svc.create_container("fresh")) == "409 ContainerAlreadyExists"
        assert outcome(lambda: svc.create_container("Bad_Name")) == "400 InvalidResourceName"
        svc.delete_container("fresh")
        assert outcome(lambda: svc.delete_container("fresh")) == "404 ContainerNotFound"
    assert sb.state.container(plane.account.name, "fresh") is None


# ------------------------------------------------------------------ Find Blobs by Tags
def test_find_blobs_needs_the_filter_action(sb: Sandbox, plane: Plane) -> None:
    """Find Blobs by Tags is ``blobs/filter/action``: Data Owner has it (``blobs/*``), Data
    Contributor and Reader do not; a container grant finds in its container only."""
    contributor = plane.identity(sb, "Storage Blob Data Contributor", plane.account.id)
    owner_here = plane.identity(
        sb, "Storage Blob Data Owner", plane.account.container_scope("data")
    )
    owner = plane.identity(sb, "Storage Blob Data Owner", plane.account.id)
    where = "\"team\"='red'"
    with client(sb, plane, contributor) as svc:
        assert outcome(lambda: list(svc.find_blobs_by_tags(where))) == (
            "403 AuthorizationPermissionMismatch"
        )
    with client(sb, plane, owner_here) as svc:
        found = list(svc.get_container_client("data").find_blobs_by_tags(where))
        assert [(b.name, b.container_name, b.tags) for b in found] == [
            ("a/1.txt", "data", {"team": "red"})
        ]
        assert outcome(lambda: list(svc.find_blobs_by_tags(where))) == (
            "403 AuthorizationPermissionMismatch"
        )
    with client(sb, plane, owner) as svc:
        assert [b.name for b in svc.find_blobs_by_tags("\"team\">'a' AND \"team\"<'c'")] == [
            "a/2.txt"
        ]
        assert outcome(lambda: list(svc.find_blobs_by_tags("\"team\"='red' OR \"x\"='y'"))) == (
            "400 InvalidQueryParameterValue"
        )


def test_condition_on_filter_sees_the_account_only(sb: Sandbox, plane: Plane) -> None:
    """``blobs/filter/action`` carries the account's attributes and no container name, even
    in a container: a condition on the account name decides, one on the container name
    cannot be evaluated and denies."""
    on_account = (
        f"((!(ActionMatches{{'{FILTER}'}})) OR "
        f"(@Resource[Microsoft.Storage/storageAccounts:name] StringEquals '{plane.account.name}'))"
    )
    elsewhere = on_account.replace(f"'{plane.account.name}'", "'another'")
    on_container = (
        f"((!(ActionMatches{{'{FILTER}'}})) OR "
        "(@Resource[Microsoft.Storage/storageAccounts/blobServices/containers:name] "
        "StringEquals 'data'))"
    )
    allowed = plane.identity(sb, "Storage Blob Data Owner", plane.account.id, on_account)
    denied = plane.identity(sb, "Storage Blob Data Owner", plane.account.id, elsewhere)
    where = "\"team\"='blue'"
    with client(sb, plane, allowed) as svc:
        assert [b.name for b in svc.find_blobs_by_tags(where)] == ["a/2.txt"]
    with client(sb, plane, denied) as svc:
        assert outcome(lambda: list(svc.find_blobs_by_tags(where))) == (
            "403 AuthorizationPermissionMismatch"
        )
        # The condition limits only the filter action: reads still work.
        assert svc.get_blob_client("data", "b.txt").download_blob().readall() == b"b.txt"
    # Azure accepts the condition (the attribute exists); it just cannot be evaluated here.
    lacking = plane.identity(sb, "Storage Blob Data Owner", plane.account.id, on_container)
    with client(sb, plane, lacking) as svc:
        container = svc.get_container_client("data")
        assert outcome(lambda: list(container.find_blobs_by_tags(where))) == (
            "403 AuthorizationPermissionMismatch"
        )


@pytest.mark.parametrize(
    ("where", "position", "problem"),
    [
        ("\"a\"='1' OR \"b\"='2'", 8, "unexpected or"),
        ("\"a\"<>'1'", 3, "unexpected <>"),
        ("\"a\"='1' AND \"a\"='2'", 12, "multiple conditions for a single tag"),
        ("\"a!\"='x'", 0, "'!' not permitted"),
        ("@container>'c'", 0, "@container can only be compared with '='"),
        ("@owner='c'", 0, "unsupported parameter"),
        ('"a"=', 3, "unexpected end of query"),
        (" AND ".join(f"\"t{i}\"='v'" for i in range(11)), 130, "at most 10 unique tags"),
    ],
)
def test_where_expression_errors(where: str, position: int, problem: str) -> None:
    with pytest.raises(TagFilterError) as refused:
        parse_where(where)
    assert refused.value.position == position
    assert problem in str(refused.value)


def test_where_expression_ranges_and_grouping() -> None:
    expression = parse_where(
        "(@container='data' and \"tier\">='2') AND \"tier\"<'5' AND \"n\"='it'"
    )
    assert expression.tag_names == ("tier", "n")
    assert expression.matches("data", {"tier": "3", "n": "it", "x": "y"})
    assert not expression.matches("other", {"tier": "3", "n": "it"})
    assert not expression.matches("data", {"tier": "5", "n": "it"})
    assert expression.shown_tags({"tier": "3", "n": "it", "x": "y"}) == {"tier": "3", "n": "it"}


# ------------------------------------------------------------------ conditional headers
def test_conditional_headers(sb: Sandbox, plane: Plane) -> None:
    owner = plane.identity(sb, "Storage Blob Data Owner", plane.account.id)
    with client(sb, plane, owner) as svc:
        blob = svc.get_blob_client("data", "b.txt")
        props = blob.get_blob_properties()
        stale = '"0x8D000000000000"'
        assert (
            outcome(
                lambda: blob.get_blob_properties(
                    etag=stale, match_condition=MatchConditions.IfNotModified
                )
            )
            == "412 ConditionNotMet"
        )
        assert (
            outcome(
                lambda: blob.download_blob(
                    etag=props.etag, match_condition=MatchConditions.IfModified
                )
            )
            == "304 ConditionNotMet"
        )
        assert outcome(lambda: blob.download_blob(if_modified_since=props.last_modified)) == (
            "304 ConditionNotMet"
        )
        assert (
            outcome(
                lambda: blob.upload_blob(
                    b"new",
                    overwrite=True,
                    etag=stale,
                    match_condition=MatchConditions.IfNotModified,
                )
            )
            == "412 ConditionNotMet"
        )
        assert (
            outcome(
                lambda: blob.delete_blob(etag=stale, match_condition=MatchConditions.IfNotModified)
            )
            == "412 ConditionNotMet"
        )
        blob.upload_blob(
            b"new", overwrite=True, etag=props.etag, match_condition=MatchConditions.IfNotModified
        )
        assert blob.download_blob().readall() == b"new"


def test_authorization_precedes_conditions(sb: Sandbox, plane: Plane) -> None:
    stranger = plane.identity(sb, "Contributor", plane.account.id)
    with client(sb, plane, stranger) as svc:
        blob = svc.get_blob_client("data", "b.txt")
        assert (
            outcome(
                lambda: blob.get_blob_properties(
                    etag='"x"', match_condition=MatchConditions.IfNotModified
                )
            )
            == "403 AuthorizationPermissionMismatch"
        )


def test_md5_header_value_is_base64_of_the_content(sb: Sandbox, plane: Plane) -> None:
    owner = plane.identity(sb, "Storage Blob Data Owner", plane.account.id)
    with client(sb, plane, owner) as svc:
        blob = svc.get_blob_client("data", "a/1.txt")
        headers: dict[str, str] = {}
        blob.get_blob_properties(
            raw_response_hook=lambda r: headers.update(r.http_response.headers)
        )
        digest = hashlib.md5(b"a/1.txt").digest()
        assert headers["content-md5"] == base64.b64encode(digest).decode()
        ranged: dict[str, str] = {}
        blob.download_blob(
            offset=0, length=2, raw_response_hook=lambda r: ranged.update(r.http_response.headers)
        )
        assert ranged["x-ms-blob-content-md5"] == headers["content-md5"]
        assert "content-md5" not in ranged


# ------------------------------------------------------------------ x-ms-if-tags
def test_if_tags_conditions_on_the_blobs_tags(sb: Sandbox, plane: Plane) -> None:
    """``x-ms-if-tags`` is a condition on the blob's index tags: a miss is 412 on reads and
    writes alike; a malformed expression is 400 before anything else."""
    owner = plane.identity(sb, "Storage Blob Data Owner", plane.account.id)
    with client(sb, plane, owner) as svc:
        blob = svc.get_blob_client("data", "a/1.txt")
        assert blob.get_blob_properties(if_tags_match_condition="\"team\"='red'").size == 7
        assert outcome(
            lambda: blob.download_blob(if_tags_match_condition="\"team\"='blue' OR \"x\"='y'")
        ) == ("412 ConditionNotMet")
        assert outcome(lambda: blob.delete_blob(if_tags_match_condition="\"team\"<>'red'")) == (
            "412 ConditionNotMet"
        )
        assert outcome(lambda: blob.get_blob_tags(if_tags_match_condition="\"team\"='x'")) == (
            "412 ConditionNotMet"
        )
        assert outcome(lambda: blob.get_blob_properties(if_tags_match_condition="team=red")) == (
            "400 InvalidHeaderValue"
        )
        blob.delete_blob(if_tags_match_condition="\"team\"='red'")
        assert outcome(blob.get_blob_properties) == "404 BlobNotFound"


def test_read_with_tag_conditions_is_its_own_suboperation(sb: Sandbox, plane: Plane) -> None:
    """A read carrying ``x-ms-if-tags`` is ``blobs/read`` with suboperation
    ``Blob.Read.WithTagConditions``, which a condition can single out."""
    read = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
    no_tag_conditions = (
        f"((!(ActionMatches{{'{read}'}} AND "
        "SubOperationMatches{'Blob.Read.WithTagConditions'})) OR "
        "(@Resource[Microsoft.Storage/storageAccounts:name] StringEquals 'nobody'))"
    )
    reader = plane.identity(sb, "Storage Blob Data Reader", plane.account.id, no_tag_conditions)
    with client(sb, plane, reader) as svc:
        blob = svc.get_blob_client("data", "a/1.txt")
        assert blob.download_blob().readall() == b"a/1.txt"
        assert outcome(lambda: blob.download_blob(if_tags_match_condition="\"team\"='red'")) == (
            "403 AuthorizationPermissionMismatch"
        )


def test_if_tags_grammar_differs_from_where() -> None:
    expression = parse_if_tags("\"a\"='1' AND \"b\"<>'2' OR (\"c\">'x')")
    assert expression.matches("any", {"a": "1", "b": "3"})  # (a AND b) OR c
    assert expression.matches("any", {"c": "y"})
    assert not expression.matches("any", {"a": "1"})  # a comparison on a missing tag is false
    assert not expression.matches("any", {"a": "1", "b": "2"})
    with pytest.raises(TagFilterError, match="unsupported parameter"):
        parse_if_tags("@container='c'")
    # No count or range limits in the header.
    parse_if_tags(" AND ".join(f"\"t{i}\"='v'" for i in range(11)) + " AND \"t0\"='w'")
