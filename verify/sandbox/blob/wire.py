"""Blob Storage's wire formats: listings, tag sets, dates, common headers and versions.

Separate from :mod:`verify.sandbox.blob.service` (what each operation does) and
:mod:`verify.sandbox.blob.errors` (the error body) because these are facts about Azure's
protocol, checked against azure-storage-blob 12.31 (what it parses) and Microsoft's REST
reference (what the service sends):

- ``x-ms-version`` names the REST version; an unknown one is 400 ``InvalidHeaderValue``
  with ``<HeaderName>x-ms-version</HeaderName><HeaderValue>..``; Bearer tokens need it
  (without it Azure answers 403 ``AuthenticationFailed``, "Authentication scheme Bearer
  is not supported in this version.");
- dates are RFC 1123 (``Tue, 01 Dec 2026 15:00:00 GMT``).
"""

from __future__ import annotations

import email.utils
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from verify.sandbox.api_versions import blob_versions

#: The REST versions accepted, exactly (``verify/sandbox/data/api_versions.json``, "blob"):
#: every ``blob.json`` version folder Microsoft's REST API specification publishes
#: (2019-02-02 ... 2027-03-07, newer than the installed client's default), every version
#: azure-storage-blob can send (its ``_SUPPORTED_API_VERSIONS``) and 2021-10-04, which Azure
#: offers but that client skips (Microsoft's Business Central "Storage Service API Version"
#: enum, linking Microsoft's versioning page). Azure also answers older versions (Bearer
#: tokens need 2017-11-09 or later, "Versioning for Azure Storage"); 2017-11-09 ... 2018-11-09
#: are not listed because no source read names them all (see docs/azure-fidelity.md).
#: Anything else: 400 ``InvalidHeaderValue``.
SUPPORTED_VERSIONS = blob_versions().versions
SERVER = "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0"


def http_date(timestamp: float | None = None) -> str:
    """RFC 1123, as every ``Date``/``Last-Modified`` header and listing date is."""
    return email.utils.formatdate(timestamp, usegmt=True)


def common_headers(version: str | None, client_request_id: str | None) -> dict[str, str]:
    """What every Blob response carries (request ID, version, date, server)."""
    headers = {
        "x-ms-request-id": str(uuid.uuid4()),
        "Date": http_date(),
        "Server": SERVER,
    }
    if version:
        headers["x-ms-version"] = version
    if client_request_id:
        headers["x-ms-client-request-id"] = client_request_id
    return headers


def xml_bytes(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8")  # no declaration for utf-8: add Azure's
    return b'<?xml version="1.0" encoding="utf-8"?>' + body


# --------------------------------------------------------------------------- bodies


def tags_document(tags: Mapping[str, str]) -> bytes:
    """``<Tags><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tags>`` (Get Blob Tags)."""
    root = ET.Element("Tags")
    _tag_set(root, tags)
    return xml_bytes(root)


def _tag_set(parent: ET.Element, tags: Mapping[str, str]) -> None:
    tag_set = ET.SubElement(parent, "TagSet")
    for name, value in sorted(tags.items()):
        tag = ET.SubElement(tag_set, "Tag")
        ET.SubElement(tag, "Key").text = name
        ET.SubElement(tag, "Value").text = value


class BadTagsError(ValueError):
    """A Set Blob Tags body that is not the ``Tags/TagSet/Tag`` document."""


def parse_tags_document(body: bytes) -> dict[str, str]:
    """The tags of a Set Blob Tags body.

    The sandbox binds loopback only and CPython's expat (2.4+) refuses entity
    amplification, so the stdlib parser is adequate for this trusted-caller input.
    """
    try:
        root = ET.fromstring(body)  # noqa: S314 - see docstring
    except ET.ParseError as exc:
        raise BadTagsError(str(exc)) from exc
    if root.tag != "Tags" or root.find("TagSet") is None:
        raise BadTagsError("the document is not <Tags><TagSet>...")
    tags: dict[str, str] = {}
    for tag in root.iterfind("TagSet/Tag"):
        name, value = tag.findtext("Key"), tag.findtext("Value")
        if name is None:
            raise BadTagsError("a <Tag> has no <Key>")
        tags[name] = value or ""
    return tags


def _echo(root: ET.Element, *, prefix: str, marker: str, max_results: int | None) -> None:
    """A listing echoes ``prefix``, ``marker`` and ``maxresults`` only when the request has
    them, as Azure does (a bare List Blobs is ``<EnumerationResults ...><Blobs />
    <NextMarker /></EnumerationResults>``)."""
    if prefix:
        ET.SubElement(root, "Prefix").text = prefix
    if marker:
        ET.SubElement(root, "Marker").text = marker
    if max_results is not None:
        ET.SubElement(root, "MaxResults").text = str(max_results)


@dataclass(frozen=True)
class BlobEntry:
    """One ``<Blob>`` of a listing: properties, and metadata / tags when asked for."""

    name: str
    properties: Mapping[str, str]
    metadata: Mapping[str, str] | None = None
    tags: Mapping[str, str] | None = None


@dataclass(frozen=True)
class PrefixEntry:
    """One ``<BlobPrefix>`` of a delimited listing (a "directory")."""

    name: str


def blob_list_document(
    service_endpoint: str,
    container: str,
    entries: Iterable[BlobEntry | PrefixEntry],
    *,
    prefix: str,
    marker: str,
    max_results: int | None,
    next_marker: str,
    delimiter: str | None = None,
) -> bytes:
    """List Blobs' ``EnumerationResults``: blobs and (with a delimiter) prefixes in name
    order; ``<Metadata>`` only for a blob that has metadata, as Azurite lists it."""
    root = ET.Element(
        "EnumerationResults", ServiceEndpoint=service_endpoint, ContainerName=container
    )
    _echo(root, prefix=prefix, marker=marker, max_results=max_results)
    if delimiter is not None:
        ET.SubElement(root, "Delimiter").text = delimiter
    items = ET.SubElement(root, "Blobs")
    for entry in entries:
        if isinstance(entry, PrefixEntry):
            ET.SubElement(ET.SubElement(items, "BlobPrefix"), "Name").text = entry.name
            continue
        blob = ET.SubElement(items, "Blob")
        ET.SubElement(blob, "Name").text = entry.name
        props = ET.SubElement(blob, "Properties")
        for prop, value in entry.properties.items():
            ET.SubElement(props, prop).text = value
        if entry.metadata:
            meta = ET.SubElement(blob, "Metadata")
            for name, value in entry.metadata.items():
                ET.SubElement(meta, name).text = value
        if entry.tags is not None:
            _tag_set(ET.SubElement(blob, "Tags"), entry.tags)
    ET.SubElement(root, "NextMarker").text = next_marker or None
    return xml_bytes(root)


def found_blobs_document(
    service_endpoint: str,
    where: str,
    blobs: Iterable[tuple[str, str, Mapping[str, str]]],
    *,
    next_marker: str,
) -> bytes:
    """Find Blobs by Tags' ``EnumerationResults``: the expression echoed in ``<Where>``,
    each blob as (name, container, the tags the expression names)."""
    root = ET.Element("EnumerationResults", ServiceEndpoint=service_endpoint)
    ET.SubElement(root, "Where").text = where
    items = ET.SubElement(root, "Blobs")
    for name, container, tags in blobs:
        blob = ET.SubElement(items, "Blob")
        ET.SubElement(blob, "Name").text = name
        ET.SubElement(blob, "ContainerName").text = container
        _tag_set(ET.SubElement(blob, "Tags"), tags)
    ET.SubElement(root, "NextMarker").text = next_marker or None
    return xml_bytes(root)


def container_list_document(
    service_endpoint: str,
    containers: Iterable[tuple[str, Mapping[str, str]]],
    *,
    prefix: str,
    marker: str,
    max_results: int | None,
    next_marker: str,
) -> bytes:
    """List Containers' ``EnumerationResults``."""
    root = ET.Element("EnumerationResults", ServiceEndpoint=service_endpoint)
    _echo(root, prefix=prefix, marker=marker, max_results=max_results)
    items = ET.SubElement(root, "Containers")
    for name, properties in containers:
        item = ET.SubElement(items, "Container")
        ET.SubElement(item, "Name").text = name
        props = ET.SubElement(item, "Properties")
        for prop, value in properties.items():
            ET.SubElement(props, prop).text = value
    ET.SubElement(root, "NextMarker").text = next_marker or None
    return xml_bytes(root)
