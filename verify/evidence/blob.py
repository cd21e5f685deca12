"""Blob Storage's evidence: content read with its fingerprint, or 403
``AuthorizationPermissionMismatch``.

* audiences: ``https://storage.azure.com`` (with or without the slash);
* denied: only 403 ``AuthorizationPermissionMismatch`` (RBAC, conditions included, found
  no grant for the data action). ``AuthorizationFailure`` (firewall, private endpoint),
  other 403s, 401, 5xx, resets and timeouts prove nothing;
* absent: 404 ``BlobNotFound`` or ``ContainerNotFound``;
* fingerprint: ``sha256:<hex>`` of the content, compared with the stack's
  ``blob_fingerprints`` (the content is secret configuration: a read of something else
  proves nothing about this blob).
"""

from __future__ import annotations

from verify import probe
from verify.evidence.plane import Plane
from verify.model import TargetReport

AUDIENCE = "https://storage.azure.com"
AUDIENCES = (AUDIENCE, AUDIENCE + "/")


def service_code(seen: TargetReport) -> str | None:
    """The code Blob Storage's rules read: its ``x-ms-error-code``, as the probe reported it."""
    return seen.error_code


PLANE = Plane(
    kind="blob",
    service="Blob Storage",
    audiences=AUDIENCES,
    denial=probe.BLOB_DENIAL,
    missing=probe.BLOB_MISSING,
    denial_code=service_code,
    fingerprints_field="blob_fingerprints",
    value_word="content",
    bearer_label="storage token",
    observations=lambda report: report.blobs,
    token=lambda report: report.blob_token,
    claims=lambda report: report.blob_claims,
)
