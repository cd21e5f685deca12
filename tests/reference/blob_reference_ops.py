"""The Blob operations compared between Azurite and the sandbox, and how results compare.

One list of operations (``operations``) is run by two independent stacks of Microsoft
clients, azure-storage-blob (Python, :mod:`blob_reference_python`) and
@azure/storage-blob with @azure/identity (JavaScript, ``blob_ops.mjs``), against two
services: Azurite (Microsoft's storage emulator) and the sandbox. Each run records, per
operation, the last HTTP response: status, headers and body. :func:`normalize` keeps
what an application depends on (status, error code, the headers that matter, the shape
of an XML body with the values that carry meaning) and drops what differs by nature
(request IDs, dates, ETag values, messages with their request ID and time).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

#: The x-ms-version both services see: each client sends its own default; Azurite 3.37
#: knows versions up to 2026-06-06 and both clients default to 2026-10-06, so Azurite
#: runs with --skipApiVersionCheck (the sandbox accepts every published version).
PAST = "Mon, 01 Jan 2001 00:00:00 GMT"


def operations(container: str) -> list[dict[str, Any]]:
    """The operation list for one client run in its own ``container``.

    ``conditions`` values ``"etag"`` / ``"last_modified"`` mean "the blob's current one",
    which the runner reads first (that read is not recorded); ``credential:
    "wrong_audience"`` sends a managed-identity token issued for Key Vault instead.
    """
    c = container
    text_a = "alpha content\n"
    return [
        {"id": "create_container", "op": "create_container", "container": c},
        {"id": "create_container_again", "op": "create_container", "container": c},
        {"id": "container_properties", "op": "container_properties", "container": c},
        {
            "id": "upload_with_metadata_tags_md5",
            "op": "upload",
            "container": c,
            "blob": "dir1/a.txt",
            "data": text_a,
            "metadata": {"project": "alpha", "owner": "ops"},
            "tags": {"team": "red", "tier": "1"},
            "md5": "right",
            "content_type": "text/plain",
        },
        {
            "id": "upload_b",
            "op": "upload",
            "container": c,
            "blob": "dir1/b.txt",
            "data": "beta\n",
            "metadata": {"project": "beta"},
            "tags": {"team": "blue", "tier": "2"},
        },
        {
            "id": "upload_c",
            "op": "upload",
            "container": c,
            "blob": "dir2/c.txt",
            "data": "gamma\n",
            "tags": {"team": "red", "tier": "3"},
        },
        {"id": "upload_top", "op": "upload", "container": c, "blob": "top.txt", "data": "top\n"},
        {
            "id": "upload_if_none_match_star_existing",
            "op": "upload",
            "container": c,
            "blob": "dir1/a.txt",
            "data": "again\n",
            "conditions": {"if_none_match": "*"},
        },
        {
            "id": "upload_wrong_md5",
            "op": "upload",
            "container": c,
            "blob": "bad.txt",
            "data": "bad\n",
            "md5": "wrong",
        },
        {"id": "properties", "op": "properties", "container": c, "blob": "dir1/a.txt"},
        {"id": "download", "op": "download", "container": c, "blob": "dir1/a.txt"},
        {"id": "get_tags", "op": "get_tags", "container": c, "blob": "dir1/a.txt"},
        {
            "id": "set_tags",
            "op": "set_tags",
            "container": c,
            "blob": "top.txt",
            "tags": {"team": "green"},
        },
        {"id": "list_flat_metadata", "op": "list_flat", "container": c, "include": ["metadata"]},
        {
            "id": "list_flat_prefix_metadata_tags",
            "op": "list_flat",
            "container": c,
            "prefix": "dir1/",
            "include": ["metadata", "tags"],
        },
        {
            "id": "list_delimiter",
            "op": "list_hierarchy",
            "container": c,
            "delimiter": "/",
            "include": ["metadata"],
        },
        {
            "id": "list_delimiter_prefix",
            "op": "list_hierarchy",
            "container": c,
            "delimiter": "/",
            "prefix": "dir1/",
        },
        {
            "id": "find_in_container",
            "op": "find_container",
            "container": c,
            "where": "\"team\"='red'",
        },
        {
            "id": "find_in_container_range",
            "op": "find_container",
            "container": c,
            "where": "\"team\"='red' AND \"tier\">='2'",
        },
        {
            "id": "find_in_container_or_is_refused",
            "op": "find_container",
            "container": c,
            "where": "\"team\"='red' OR \"tier\"='1'",
        },
        {
            "id": "find_in_account_scoped_to_container",
            "op": "find_account",
            "where": f"@container='{c}' AND \"team\"='blue'",
        },
        {
            "id": "find_in_account_range",
            "op": "find_account",
            "where": "\"team\">'a' AND \"team\"<'c'",
        },
        {
            "id": "if_match_wrong_etag",
            "op": "properties",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_match": '"0x8D000000000000"'},
        },
        {
            "id": "if_match_current_etag",
            "op": "properties",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_match": "etag"},
        },
        {
            "id": "if_none_match_current_etag",
            "op": "download",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_none_match": "etag"},
        },
        {
            "id": "if_modified_since_last_modified",
            "op": "download",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_modified_since": "last_modified"},
        },
        {
            "id": "if_unmodified_since_past",
            "op": "download",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_unmodified_since": PAST},
        },
        {
            "id": "if_modified_since_past",
            "op": "properties",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_modified_since": PAST},
        },
        {
            "id": "if_none_match_star_on_read",
            "op": "download",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_none_match": "*"},
        },
        {
            "id": "if_match_on_missing_blob",
            "op": "properties",
            "container": c,
            "blob": "nothing.txt",
            "conditions": {"if_match": '"0x8D000000000000"'},
        },
        {
            "id": "upload_if_match_wrong_etag",
            "op": "upload",
            "container": c,
            "blob": "dir1/a.txt",
            "data": "overwrite\n",
            "conditions": {"if_match": '"0x8D000000000000"'},
        },
        {
            "id": "delete_if_match_wrong_etag",
            "op": "delete_blob",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_match": '"0x8D000000000000"'},
        },
        {
            "id": "upload_bad_metadata_name",
            "op": "upload",
            "container": c,
            "blob": "meta.txt",
            "data": "m\n",
            "metadata": {"1bad": "v"},
        },
        {
            "id": "upload_invalid_md5",
            "op": "upload",
            "container": c,
            "blob": "md5.txt",
            "data": "m\n",
            "md5": "short",
        },
        {
            "id": "list_delimiter_first_page",
            "op": "list_hierarchy",
            "container": c,
            "delimiter": "/",
            "max_results": 1,
        },
        {
            "id": "find_bad_character",
            "op": "find_container",
            "container": c,
            "where": "\"team!\"='red'",
        },
        {"id": "create_container_bad_name", "op": "create_container", "container": "Bad_Name"},
        {
            "id": "token_for_another_audience",
            "op": "properties",
            "container": c,
            "blob": "dir1/a.txt",
            "credential": "wrong_audience",
        },
        {
            "id": "if_tags_met",
            "op": "properties",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_tags": "\"team\"='red' AND \"tier\"<>'9'"},
        },
        {
            "id": "if_tags_not_met",
            "op": "download",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_tags": "\"team\"='blue' OR \"tier\">'5'"},
        },
        {
            "id": "if_tags_malformed",
            "op": "properties",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_tags": '"team"=red'},
        },
        {
            "id": "delete_if_tags_not_met",
            "op": "delete_blob",
            "container": c,
            "blob": "dir1/a.txt",
            "conditions": {"if_tags": "\"team\"='blue'"},
        },
        {"id": "delete_blob", "op": "delete_blob", "container": c, "blob": "dir1/b.txt"},
        {"id": "properties_missing", "op": "properties", "container": c, "blob": "dir1/b.txt"},
        {"id": "download_missing", "op": "download", "container": c, "blob": "dir1/b.txt"},
        {"id": "list_containers", "op": "list_containers", "prefix": c},
        {"id": "delete_container", "op": "delete_container", "container": c},
        {"id": "delete_container_again", "op": "delete_container", "container": c},
        {
            "id": "download_in_missing_container",
            "op": "download",
            "container": c,
            "blob": "dir1/a.txt",
        },
    ]


# --------------------------------------------------------------------------- comparison

#: Response headers an application reads; compared by value.
VALUE_HEADERS = (
    "content-md5",
    "x-ms-blob-content-md5",
    "content-type",
    "content-length",
    "content-range",
    "x-ms-blob-type",
    "x-ms-tag-count",
    "x-ms-error-code",
)
#: Compared by presence only (their values differ by nature).
PRESENT_HEADERS = ("etag", "last-modified", "x-ms-request-id")
#: Elements whose text differs by nature: compared by presence.
VOLATILE = {"Etag", "Last-Modified", "Creation-Time", "NextMarker", "Marker", "Message"}
#: List Blobs properties an application reads; the others are left out of the shape.
PROPERTIES = {"Content-Length", "Content-Type", "Content-MD5", "BlobType", "TagCount"}


#: Listing elements that echo a request parameter. Azure sends each only when the request
#: has the parameter (its recorded responses: ``<EnumerationResults ...><Blobs />
#: <NextMarker /></EnumerationResults>`` for a bare List Blobs); Azurite always sends
#: ``<Prefix/>``, ``<Marker/>`` and ``<MaxResults>5000</MaxResults>``. An empty echo and
#: Azurite's unrequested 5000 are left out of the shape; the sandbox's own echoes are held
#: to Azure's rule by tests/sandbox/test_sandbox_blob_plane.py.
ECHOES = {"Prefix", "Marker", "MaxResults"}
UNREQUESTED_MAX_RESULTS = "5000"


def _echo_left_out(node: ET.Element) -> bool:
    text = (node.text or "").strip()
    return node.tag in ECHOES and (
        not text or (node.tag == "MaxResults" and text == UNREQUESTED_MAX_RESULTS)
    )


def _element(node: ET.Element) -> Any:
    """A comparable form of one XML element: tag, attribute names, text or children."""
    tag = node.tag
    attributes = sorted(node.attrib)
    children = [child for child in node if not _echo_left_out(child)]
    if tag == "Properties":
        children = [child for child in children if child.tag in PROPERTIES]
    if not children:
        text = (node.text or "").strip()
        return [tag, attributes, "<present>" if tag in VOLATILE and text else text]
    shapes = [_element(child) for child in children]
    if tag in ("Properties", "Metadata", "TagSet"):
        shapes = sorted(shapes, key=repr)
    return [tag, attributes, shapes]


def body_shape(body: str | None, content_type: str) -> Any:
    if not body:
        return None
    if "xml" not in content_type:
        return body
    try:
        root = ET.fromstring(body.encode())
    except ET.ParseError:
        return {"unparsable": body[:200]}
    return _element(root)


def normalize(result: Mapping[str, Any]) -> dict[str, Any]:
    """What is compared of one operation's result."""
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    kept: dict[str, Any] = {}
    if "x-ms-error-code" in headers or "xml" in headers.get("content-type", ""):
        # An XML body's length depends on its endpoint URL and message: its shape is compared.
        headers.pop("content-length", None)
    for name, value in sorted(headers.items()):
        if name.startswith("x-ms-meta-"):
            kept[name] = value
        elif name in VALUE_HEADERS:
            kept[name] = value.split(";")[0].strip() if name == "content-type" else value
        elif name in PRESENT_HEADERS:
            kept[name] = "<present>"
    return {
        "status": result.get("status"),
        "code": headers.get("x-ms-error-code"),
        "headers": kept,
        "body": body_shape(result.get("body"), headers.get("content-type", "")),
        "exception": result.get("exception"),
    }


def differences(reference: Mapping[str, Any], sandbox: Mapping[str, Any]) -> list[str]:
    """What differs between two normalized results (empty when they match)."""
    out = []
    for key in ("status", "code", "exception"):
        if reference.get(key) != sandbox.get(key):
            out.append(f"{key}: azurite {reference.get(key)!r}, sandbox {sandbox.get(key)!r}")
    ref_headers, sb_headers = reference["headers"], sandbox["headers"]
    for name in sorted(set(ref_headers) | set(sb_headers)):
        if ref_headers.get(name) != sb_headers.get(name):
            out.append(
                f"header {name}: azurite {ref_headers.get(name)!r}, "
                f"sandbox {sb_headers.get(name)!r}"
            )
    if reference["body"] != sandbox["body"]:
        out.append(f"body: azurite {reference['body']!r}\n      sandbox {sandbox['body']!r}")
    return out
