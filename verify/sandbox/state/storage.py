"""Storage accounts, blob containers and blobs in the sandbox's state (a SandboxState mixin).

What Blob Storage's data plane needs to answer like Azure, and nothing more:

- a storage account has an ARM ID (the RBAC scope of the whole account) and, as the
  StorageAccount component configures it, shared-key access off;
- a container is a child ARM resource,
  ``<account id>/blobServices/default/containers/<name>``: the narrowest scope a role
  assignment can have for blob data (a blob is not an ARM resource);
- a blob is content (bytes, never logged), a content type, the content's MD5 (Azure
  computes and keeps it for a blob written in one Put Blob), user metadata
  (``x-ms-meta-*``), an ETag that changes on every write, and up to 10 blob index tags,
  which ABAC conditions and Find Blobs by Tags read.

Creating or deleting an account emits ``storage_account_created`` / ``_deleted`` so the
Sandbox can give each account its own HTTPS listener, as vaults get theirs.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from components.arm import shapes as arm_shapes
from components.arm.store import ArmStore
from verify.sandbox.state.base import StateBase
from verify.sandbox.state.records import SandboxError

#: ARM's child path from an account to its (only) blob service and a container in it.
BLOB_SERVICE = "blobServices/default"


@dataclass(frozen=True)
class StorageAccount:
    """A StorageV2 account reduced to what the blob data plane checks."""

    id: str
    name: str
    resource_group: str
    location: str
    allow_shared_key_access: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    def container_scope(self, container: str) -> str:
        """The ARM ID of one container: what a container-scoped grant targets."""
        return f"{self.id}/{BLOB_SERVICE}/containers/{container}"


@dataclass(frozen=True)
class BlobContainer:
    id: str
    account: str  # account name
    name: str
    created: float


@dataclass(frozen=True)
class StoredBlob:
    """One block blob; ``content`` is secret configuration and stays out of reprs."""

    account: str
    container: str
    name: str
    content: bytes = field(repr=False)
    content_type: str
    etag: str
    created: float
    last_modified: float
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def content_md5(self) -> str:
        """The base64 MD5 of the content, as ``Content-MD5`` and listings carry it."""
        digest = hashlib.md5(self.content).digest()  # noqa: S324 - Azure's integrity hash
        return base64.b64encode(digest).decode()


def _etag(content: bytes, stamp: float) -> str:
    digest = hashlib.sha256(content + repr(stamp).encode()).hexdigest()[:16].upper()
    return f'"0x{digest}"'


class StorageMixin(StateBase):
    """Storage accounts (names are global, as on Azure), their containers and blobs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._accounts: dict[str, StorageAccount] = {}
        #: When each container was made, by its ARM ID (lower-cased); the container itself
        #: is the ARM model's document (``arm_store``), whichever plane made it.
        self._container_times: dict[str, float] = {}
        self._blobs: dict[tuple[str, str], dict[str, StoredBlob]] = {}

    arm_store: ArmStore

    def _storage_tables(
        self,
    ) -> tuple[dict[str, StorageAccount], dict[tuple[str, str], dict[str, StoredBlob]]]:
        return self._accounts, self._blobs

    def _container_record(self, account: StorageAccount, doc: dict[str, Any]) -> BlobContainer:
        made = self._container_times.get(doc["id"].lower(), 0.0)
        return BlobContainer(doc["id"], account.name, doc["name"], made)

    # ------------------------------------------------------------- accounts
    def create_storage_account(
        self,
        rg: str,
        name: str,
        location: str | None = None,
        *,
        allow_shared_key_access: bool = False,
        tags: dict[str, str] | None = None,
    ) -> StorageAccount:
        """PUT semantics: an existing account keeps its containers and blobs."""
        with self._lock:
            group = self._require_group(rg)
            accounts, _ = self._storage_tables()
            account = StorageAccount(
                id=self._resource_id(group.name, "Microsoft.Storage", "storageAccounts", name),
                name=name,
                resource_group=group.name,
                location=location or group.location,
                allow_shared_key_access=allow_shared_key_access,
                tags=dict(tags or {}),
            )
            existing = accounts.get(name.lower())
            if existing is not None and existing.id.lower() != account.id.lower():
                # Account names are global (they are DNS names), like vault names.
                raise SandboxError(
                    409,
                    "StorageAccountAlreadyTaken",
                    f"The storage account named {name} is already taken.",
                )
            created = existing is None
            accounts[name.lower()] = account
        if created:
            self._emit([("storage_account_created", account)])
        return account

    def storage_account(self, name_or_id: str) -> StorageAccount | None:
        """By name or ARM ID (case-insensitive), or None."""
        key = name_or_id.rstrip("/").rsplit("/", 1)[-1].lower()
        with self._lock:
            found = self._storage_tables()[0].get(key)
        if (
            found is not None
            and name_or_id.startswith("/")
            and (found.id.lower() != name_or_id.rstrip("/").lower())
        ):
            return None
        return found

    def storage_accounts(self) -> list[StorageAccount]:
        with self._lock:
            return list(self._storage_tables()[0].values())

    def delete_storage_account(self, name_or_id: str) -> StorageAccount | None:
        """Deletes the account with every container and blob in it."""
        account = self.storage_account(name_or_id)
        if account is None:
            return None
        with self._lock:
            accounts, blobs = self._storage_tables()
            accounts.pop(account.name.lower(), None)
            for key in [k for k in blobs if k[0] == account.name.lower()]:
                blobs.pop(key, None)
            prefix = f"{account.id}/{BLOB_SERVICE}/containers/".lower()
            for doc_key in [k for k in self.arm_store.resources if k.startswith(prefix)]:
                del self.arm_store.resources[doc_key]
                self._container_times.pop(doc_key, None)
        self._emit([("storage_account_deleted", account)])
        return account

    def _require_account(self, name_or_id: str) -> StorageAccount:
        account = self.storage_account(name_or_id)
        if account is None:
            raise SandboxError(
                404, "ResourceNotFound", f"The storage account {name_or_id} was not found."
            )
        return account

    # ------------------------------------------------------------- containers
    def create_container(
        self, account: str, name: str, *, exclusive: bool = False
    ) -> BlobContainer:
        """ARM's PUT semantics (idempotent): an existing container keeps its blobs.

        ``exclusive`` is the data plane's Create Container: an existing one is 409
        ``ContainerAlreadyExists``.
        """
        acct = self._require_account(account)
        with self._lock:
            _, blobs = self._storage_tables()
            existing = self.container(acct.name, name)
            if existing is not None and exclusive:
                raise SandboxError(
                    409, "ContainerAlreadyExists", "The specified container already exists."
                )
            blobs.setdefault((acct.name.lower(), name), {})
            if existing is not None:
                return existing
            doc = arm_shapes.blob_container(arm_id=acct.container_scope(name))
            self._container_times[doc["id"].lower()] = self.clock()
            self.arm_store.resources[doc["id"].lower()] = doc
            return self._container_record(acct, doc)

    def container(self, account: str, name: str) -> BlobContainer | None:
        """The container, read from its ARM document (made by a deploy, the ARM front or
        the Blob data plane: one record)."""
        acct = self.storage_account(account)
        if acct is None:
            return None
        with self._lock:
            doc = self.arm_store.resources.get(acct.container_scope(name).lower())
            if doc is None or doc.get("type") != arm_shapes.BLOB_CONTAINER:
                return None
            self._storage_tables()[1].setdefault((acct.name.lower(), doc["name"]), {})
            return self._container_record(acct, doc)

    def containers(self, account: str) -> list[BlobContainer]:
        acct = self._require_account(account)
        prefix = f"{acct.id}/{BLOB_SERVICE}/containers/".lower()
        with self._lock:
            docs = [
                d
                for k, d in list(self.arm_store.resources.items())
                if k.startswith(prefix) and d.get("type") == arm_shapes.BLOB_CONTAINER
            ]
            found = [self._container_record(acct, d) for d in docs]
        return sorted(found, key=lambda c: c.name)

    def delete_container(self, account: str, name: str) -> BlobContainer | None:
        acct = self._require_account(account)
        with self._lock:
            found = self.container(acct.name, name)
            self._storage_tables()[1].pop((acct.name.lower(), name), None)
            if found is not None:
                del self.arm_store.resources[found.id.lower()]
                self._container_times.pop(found.id.lower(), None)
            return found

    def _blob_table(self, account: str, container: str) -> dict[str, StoredBlob]:
        acct = self._require_account(account)
        table = (
            self._storage_tables()[1].get((acct.name.lower(), container))
            if self.container(acct.name, container) is not None
            else None
        )
        if table is None:
            raise SandboxError(404, "ContainerNotFound", "The specified container does not exist.")
        return table

    # ------------------------------------------------------------- blobs
    def put_blob(
        self,
        account: str,
        container: str,
        name: str,
        content: bytes,
        *,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
    ) -> StoredBlob:
        """Create or overwrite (a new ETag each time); tags replace the old ones when given,
        metadata always (Put Blob replaces a blob's metadata with the request's)."""
        with self._lock:
            table = self._blob_table(account, container)
            now = self.clock()
            old = table.get(name)
            blob = StoredBlob(
                account=self._require_account(account).name,
                container=container,
                name=name,
                content=bytes(content),
                content_type=content_type or "application/octet-stream",
                etag=_etag(content, now),
                created=old.created if old else now,
                last_modified=now,
                tags=dict(tags) if tags is not None else {},
                metadata=dict(metadata or {}),
            )
            table[name] = blob
            return blob

    def get_blob(self, account: str, container: str, name: str) -> StoredBlob | None:
        """The blob, or None; a missing container raises ``ContainerNotFound``."""
        with self._lock:
            return self._blob_table(account, container).get(name)

    def list_blobs(self, account: str, container: str, prefix: str = "") -> list[StoredBlob]:
        with self._lock:
            table = self._blob_table(account, container)
            found = [b for n, b in table.items() if n.startswith(prefix)]
        return sorted(found, key=lambda b: b.name)

    def find_blobs(self, account: str, matches: Callable[[StoredBlob], bool]) -> list[StoredBlob]:
        """Every blob of the account ``matches`` accepts, by container then name."""
        acct = self._require_account(account)
        with self._lock:
            found = [
                blob
                for key, table in self._storage_tables()[1].items()
                if key[0] == acct.name.lower()
                for blob in table.values()
                if matches(blob)
            ]
        return sorted(found, key=lambda b: (b.container, b.name))

    def delete_blob(self, account: str, container: str, name: str) -> StoredBlob | None:
        with self._lock:
            return self._blob_table(account, container).pop(name, None)

    def set_blob_tags(
        self, account: str, container: str, name: str, tags: dict[str, str]
    ) -> StoredBlob | None:
        """Replace the blob's index tags (Set Blob Tags does not change the ETag)."""
        with self._lock:
            table = self._blob_table(account, container)
            blob = table.get(name)
            if blob is None:
                return None
            table[name] = replace(blob, tags=dict(tags))
            return table[name]
