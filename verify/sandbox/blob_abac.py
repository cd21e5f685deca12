"""What an ABAC condition sees of one Blob Storage request: action, suboperation, attributes.

Microsoft's "Actions and attributes for Azure role assignment conditions for Azure Blob
Storage" lists, per data action, which attributes the request supplies; a condition on an
attribute the operation does not supply cannot be evaluated and the access check fails.
So each operation here builds exactly its own attributes:

========================  =================  ===================================================
operation                 action             attributes (besides container name, account name)
========================  =================  ===================================================
Get Blob / Properties     ``blobs/read``     blob path, blob index tags
List Blobs                ``blobs/read``     suboperation ``Blob.List``; request ``prefix``
Put Blob (new)            ``blobs/add/...``  blob path; request tags (``Blob.Write.WithTagHeaders``)
                          / ``blobs/write``
Put Blob (overwrite)      ``blobs/write``    blob path, existing index tags; request tags
Delete Blob               ``blobs/delete``   blob path, blob index tags
Get Blob Tags             ``tags/read``      blob path, blob index tags
Set Blob Tags             ``tags/write``     blob path, blob index tags; request tags
========================  =================  ===================================================

Blob index tags go in as one mapping under ``.../blobs/tags`` (the contract of
:class:`components.conditions.RequestContext`); the environment carries ``UtcNow`` and
``isPrivateLink`` (false: the sandbox has no private link). Principal attributes (custom
security attributes) are not modelled: a condition on one cannot be evaluated and denies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from components.conditions import RequestContext

PREFIX = "Microsoft.Storage/storageAccounts/blobServices/containers"
BLOB_READ = f"{PREFIX}/blobs/read"
BLOB_WRITE = f"{PREFIX}/blobs/write"
BLOB_ADD = f"{PREFIX}/blobs/add/action"
BLOB_DELETE = f"{PREFIX}/blobs/delete"
BLOB_TAGS_READ = f"{PREFIX}/blobs/tags/read"
BLOB_TAGS_WRITE = f"{PREFIX}/blobs/tags/write"
#: List Containers (and Get Container Properties) are authorized by this *action*, the one
#: Storage Blob Data Reader carries in ``actions``, not in ``dataActions``.
CONTAINERS_READ = f"{PREFIX}/read"

ACCOUNT_NAME = "Microsoft.Storage/storageAccounts:name"
CONTAINER_NAME = f"{PREFIX}:name"
BLOB_PATH = f"{PREFIX}/blobs:path"
BLOB_TAGS = f"{PREFIX}/blobs/tags"
LIST_PREFIX = f"{PREFIX}/blobs:prefix"

SUB_LIST = "Blob.List"
SUB_WRITE_WITH_TAGS = "Blob.Write.WithTagHeaders"


def request_context(
    action: str,
    *,
    account: str,
    container: str,
    blob: str | None = None,
    tags: Mapping[str, str] | None = None,
    suboperation: str | None = None,
    request: Mapping[str, object] | None = None,
) -> RequestContext:
    """The context of one data action; ``tags`` are the blob's current index tags (None
    when the operation does not supply them, e.g. a blob that does not exist yet)."""
    resource: dict[str, object] = {ACCOUNT_NAME: account, CONTAINER_NAME: container}
    if blob is not None:
        resource[BLOB_PATH] = blob
    if tags is not None:
        resource[BLOB_TAGS] = dict(tags)
    return RequestContext(
        action=action,
        suboperation=suboperation,
        resource=resource,
        request=dict(request or {}),
        principal={},
        environment={"UtcNow": datetime.now(UTC), "isPrivateLink": False},
    )
