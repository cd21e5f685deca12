"""What an ABAC condition sees of one Blob Storage request: action, suboperation, attributes.

Microsoft's "Actions and attributes for Azure role assignment conditions for Azure Blob
Storage" lists, per data action, which attributes the request supplies; a condition on an
attribute the operation does not supply cannot be evaluated and the access check fails.
So each operation here supplies exactly its own (the same list components.conditions
validates against), besides account name, ``isHnsEnabled`` (false) and container name:

=====================  ==============================  =====================================
operation              action (suboperation)           further attributes
=====================  ==============================  =====================================
Get Blob / Properties  ``blobs/read`` (with            path, isCurrentVersion, index tags, enc.
                       ``x-ms-if-tags``:
                       ``Blob.Read.WithTagConditions``)
List Blobs             ``blobs/read`` (``Blob.List``)  request ``prefix``
Put Blob, new          ``blobs/add/action`` or         path; with ``x-ms-tags``: suboperation
                       ``blobs/write``                 ``Blob.Write.WithTagHeaders``, request tags
Put Blob, overwrite    ``blobs/write``                 as above (no resource tags: write has none)
Delete Blob            ``blobs/delete``                path, isCurrentVersion
Get Blob Tags          ``blobs/tags/read``             path, isCurrentVersion, blob index tags
Set Blob Tags          ``blobs/tags/write``            path, isCurrentVersion, tags; request tags
Find Blobs by Tags     ``blobs/filter/action``         none beyond the account's (no container
                                                       name either, even in a container)
=====================  ==============================  =====================================

Each context is cut to what the attribute catalog (``components.conditions``, Microsoft's
list) names for its action and suboperation, so a condition can never read an attribute
Azure would not supply. Create and Delete Container are *actions*
(``containers/write``, ``containers/delete``), authorized without conditions, as List
Containers is.

Read, write and add also carry the encryption scope (``$account-encryption-key``: no
encryption scopes are modelled), as ``components.access.blob_read`` does for the matrix.
Blob index tags go in as one mapping under ``.../blobs/tags`` (the contract of
:class:`components.conditions.RequestContext`); the environment carries ``UtcNow`` and
``isPrivateLink`` (false: the sandbox has no private link, so private endpoint and subnet
attributes are not supplied). Principal attributes (custom security attributes) are not
modelled: a condition on one cannot be evaluated and denies. Versions and snapshots are
not modelled, so ``versionId`` / ``snapshot`` are never supplied and every blob is the
current version.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from components.conditions import RequestContext
from components.conditions.catalog import AttributeCatalog

PREFIX = "Microsoft.Storage/storageAccounts/blobServices/containers"
BLOB_READ = f"{PREFIX}/blobs/read"
BLOB_WRITE = f"{PREFIX}/blobs/write"
BLOB_ADD = f"{PREFIX}/blobs/add/action"
BLOB_DELETE = f"{PREFIX}/blobs/delete"
BLOB_TAGS_READ = f"{PREFIX}/blobs/tags/read"
BLOB_TAGS_WRITE = f"{PREFIX}/blobs/tags/write"
BLOB_FILTER = f"{PREFIX}/blobs/filter/action"
#: List Containers (and Get Container Properties) are authorized by this *action*, the one
#: Storage Blob Data Reader carries in ``actions``, not in ``dataActions``; Create and
#: Delete Container by the write and delete actions (Storage Blob Data Contributor's).
CONTAINERS_READ = f"{PREFIX}/read"
CONTAINERS_WRITE = f"{PREFIX}/write"
CONTAINERS_DELETE = f"{PREFIX}/delete"

ACCOUNT_NAME = "Microsoft.Storage/storageAccounts:name"
IS_HNS_ENABLED = "Microsoft.Storage/storageAccounts:isHnsEnabled"
IS_CURRENT_VERSION = f"{PREFIX}/blobs:isCurrentVersion"
ENCRYPTION_SCOPE = "Microsoft.Storage/storageAccounts/encryptionScopes:name"
#: Every blob here is encrypted with the account's key (no encryption scopes modelled).
DEFAULT_ENCRYPTION_SCOPE = "$account-encryption-key"
CONTAINER_NAME = f"{PREFIX}:name"
BLOB_PATH = f"{PREFIX}/blobs:path"
BLOB_TAGS = f"{PREFIX}/blobs/tags"
LIST_PREFIX = f"{PREFIX}/blobs:prefix"

SUB_LIST = "Blob.List"
SUB_WRITE_WITH_TAGS = "Blob.Write.WithTagHeaders"
#: Get Blob / Get Blob Properties with ``x-ms-if-tags``.
SUB_READ_WITH_TAG_CONDITIONS = "Blob.Read.WithTagConditions"


#: Which attributes each operation supplies:
#: (path, isCurrentVersion, resource tags, encryption scope).
_SUPPLIES = {
    BLOB_READ: (True, True, True, True),
    BLOB_WRITE: (True, False, False, True),
    BLOB_ADD: (True, False, False, True),
    BLOB_DELETE: (True, True, False, False),
    BLOB_TAGS_READ: (True, True, True, False),
    BLOB_TAGS_WRITE: (True, True, True, False),
}


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
    """The context of one data action on one blob (or, without ``blob``, a listing).

    ``tags`` are the blob's current index tags (None when it does not exist yet); they
    are supplied only to the actions that carry them.
    """
    resource: dict[str, object] = {
        ACCOUNT_NAME: account,
        IS_HNS_ENABLED: False,
        CONTAINER_NAME: container,
    }
    path, current, with_tags, encrypted = _SUPPLIES.get(action, (True, False, False, False))
    if blob is not None and suboperation != SUB_LIST:
        if encrypted:
            resource[ENCRYPTION_SCOPE] = DEFAULT_ENCRYPTION_SCOPE
        if path:
            resource[BLOB_PATH] = blob
        if current:
            resource[IS_CURRENT_VERSION] = True
        if with_tags and tags is not None:
            resource[BLOB_TAGS] = dict(tags)
    return RequestContext(
        action=action,
        suboperation=suboperation,
        resource=_supplied(action, suboperation, resource),
        request=dict(request or {}),
        principal={},
        environment={"UtcNow": datetime.now(UTC), "isPrivateLink": False},
    )


def _supplied(
    action: str, suboperation: str | None, resource: dict[str, object]
) -> dict[str, object]:
    """``resource`` without the attributes Microsoft's list does not give this action."""
    info = AttributeCatalog.builtin().actions.get(action.lower())
    attributes = info.for_suboperation(suboperation) if info is not None else None
    if attributes is None:
        return resource
    tags = any(name.startswith(BLOB_TAGS.lower()) for name in attributes.resource)
    return {
        name: value
        for name, value in resource.items()
        if (name == BLOB_TAGS and tags) or attributes.has("Resource", name)
    }
