"""Blob Storage data plane, over HTTPS, one listener per storage account.

URLs are path-style, as with Microsoft's storage emulator: ``https://127.0.0.1:<port>/
<account>/<container>/<blob>``. azure-storage-blob 12.31 takes the account from the first
path segment when the host is ``127.0.0.1`` or ``localhost`` (``_is_localhost`` in its
base client and ``_from_blob_url``), so ``BlobServiceClient("https://127.0.0.1:p/acct")``
and ``BlobClient.from_blob_url(".../acct/c/a/b.txt")`` work unchanged.

What the service checks, in Azure's order:

1. the path names this listener's account (else 400 ``InvalidUri``);
2. ``x-ms-version`` is one the service knows (else 400 ``InvalidHeaderValue``);
3. authentication is a Bearer token only: no ``Authorization`` is 401
   ``NoAuthenticationInformation``; a shared key or SAS is 403
   ``KeyBasedAuthenticationNotPermitted`` (the StorageAccount component turns
   ``allowSharedKeyAccess`` off); a token without ``x-ms-version`` is 403
   ``AuthenticationFailed``; a bad token (signature, ``aud`` other than
   ``https://storage.azure.com``, issuer, expiry) is 401 ``InvalidAuthenticationInfo``.
   Every 401 carries the Storage challenge ``WWW-Authenticate: Bearer
   authorization_uri=https://login.microsoftonline.com/<tid>/oauth2/authorize
   resource_id=https://storage.azure.com``, which azure-storage-blob's
   ``StorageBearerTokenCredentialPolicy.on_challenge`` parses;
4. authorization is Azure RBAC by Storage data actions through the sandbox's one
   :class:`~verify.sandbox.rbac.RbacEvaluator`: an assignment on the account (or above)
   covers every container, one on ``<account>/blobServices/default/containers/<name>``
   only that container; each assignment's ABAC condition is evaluated for this request
   (:mod:`verify.sandbox.blob.access`, :mod:`verify.sandbox.blob.request_context`). A
   denial is 403 ``AuthorizationPermissionMismatch`` (the only Blob answer that proves
   RBAC said no). Authorization precedes existence: no grant + missing blob is 403,
   grant + missing blob is 404 ``BlobNotFound``.

Operations (:mod:`verify.sandbox.blob.blobs`, :mod:`verify.sandbox.blob.containers`):
Get Blob (with ``x-ms-range``: 206, 416 ``InvalidRange`` on an empty blob), Get Blob
Properties (HEAD), Put Blob (block blobs in one request, ``x-ms-tags``, ``x-ms-meta-*``
metadata, ``Content-MD5`` / ``x-ms-blob-content-md5`` checked against the body), Delete
Blob, List Blobs (prefix, ``delimiter`` with ``BlobPrefix``, ``include=metadata,tags``,
paging), Get / Set Blob Tags, Find Blobs by Tags (in a container and in the account,
:mod:`verify.sandbox.blob.tag_filter`), List Containers, Get Container Properties,
Create / Delete Container; conditional headers on reads and writes
(:mod:`verify.sandbox.blob.conditional`) and ``x-ms-if-tags`` on Get Blob, Get Blob
Properties, Put Blob, Delete Blob and Get / Set Blob Tags (412 ``ConditionNotMet``).
Anything else is refused with Azure's code for it rather than answered loosely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from verify.evidence.blob import AUDIENCES as BLOB_EVIDENCE_AUDIENCES
from verify.sandbox.auth import Authenticator, AuthError
from verify.sandbox.blob import wire
from verify.sandbox.blob.access import Access, BlobCall
from verify.sandbox.blob.blobs import BlobOperations
from verify.sandbox.blob.containers import ContainerOperations
from verify.sandbox.blob.errors import BlobError
from verify.sandbox.bodies import BodyError, read_body
from verify.sandbox.rbac import RbacEvaluator
from verify.sandbox.state.records import SandboxError
from verify.sandbox.state.store import SandboxState

#: The audiences Storage accepts: the Blob plane's evidence module states them once.
STORAGE_AUDIENCES = BLOB_EVIDENCE_AUDIENCES
#: Put Blob in one request takes at most 5000 MiB on Azure; the sandbox holds blobs in
#: memory and serves configuration files, so it caps a body far lower and answers
#: Azure's 413 ``RequestBodyTooLarge`` above it.
MAX_BODY_BYTES = 4 * 1024 * 1024


class BlobService:
    """The Blob endpoint of every storage account in the sandbox's state."""

    def __init__(
        self, state: SandboxState, authenticator: Authenticator, rbac: RbacEvaluator
    ) -> None:
        self._state = state
        self._auth = authenticator
        access = Access(state, rbac)
        self._blobs = BlobOperations(state, access)
        self._containers = ContainerOperations(state, access)

    @property
    def challenge(self) -> str:
        return (
            f"Bearer authorization_uri=https://login.microsoftonline.com/"
            f"{self._state.tenant_id}/oauth2/authorize resource_id=https://storage.azure.com"
        )

    # --------------------------------------------------------------- checks
    def _check_version(self, call: BlobCall) -> None:
        if call.version is not None and call.version not in wire.SUPPORTED_VERSIONS:
            raise BlobError(
                400,
                "InvalidHeaderValue",
                extra={"HeaderName": "x-ms-version", "HeaderValue": call.version},
            )

    def _authenticate(self, call: BlobCall) -> None:
        header = call.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if "sig" in call.query or scheme in ("SharedKey", "SharedKeyLite"):
            # A SAS (query ``sig``) or an account-key signature: key-based either way.
            raise BlobError(403, "KeyBasedAuthenticationNotPermitted")
        if not header:
            raise BlobError(
                401, "NoAuthenticationInformation", headers={"WWW-Authenticate": self.challenge}
            )
        if scheme.lower() != "bearer" or not token.strip():
            raise BlobError(403, "AuthenticationFailed")
        if call.version is None:
            raise BlobError(
                403,
                "AuthenticationFailed",
                extra={
                    "AuthenticationErrorDetail": (
                        "Authentication scheme Bearer is not supported in this version."
                    )
                },
            )
        try:
            claims = self._auth.authenticate(header, STORAGE_AUDIENCES)
        except AuthError as failure:
            raise self._invalid_token(failure) from failure
        call.request.state.principal_id = claims["oid"]
        call.claims = claims

    def _invalid_token(self, failure: AuthError) -> BlobError:
        """Storage's 401 for a token it cannot accept, with its wording where known."""
        detail = {
            "audience": "Audience validation failed. Audience did not match.",
            "expired": "Lifetime validation failed. The token is expired.",
            "signature": "Signature validation failed.",
            "issuer": "Issuer validation failed. Issuer did not match.",
        }.get(failure.reason, failure.message)
        return BlobError(
            401,
            "InvalidAuthenticationInfo",
            extra={"AuthenticationErrorDetail": detail},
            headers={"WWW-Authenticate": self.challenge},
        )

    # --------------------------------------------------------------- routing
    def _operation(self, call: BlobCall) -> Callable[[BlobCall], Response]:
        """Which REST operation a method + path + ``restype``/``comp`` names."""
        method = "GET" if call.head else call.request.method
        comp = call.query.get("comp")
        restype = call.query.get("restype")
        if call.container is None:
            if method == "GET" and comp == "list":
                return self._containers.list_containers
            if method == "GET" and comp == "blobs":
                return self._containers.find_blobs
        elif call.blob is None:
            if restype != "container":
                raise BlobError(400, "InvalidUri")
            container_ops: dict[tuple[str, str | None], Callable[[BlobCall], Response]] = {
                ("GET", "list"): self._containers.list_blobs,
                ("GET", "blobs"): self._containers.find_blobs,
                ("GET", None): self._containers.container_properties,
                ("PUT", None): self._containers.create_container,
                ("DELETE", None): self._containers.delete_container,
            }
            found_op = container_ops.get((method, comp))
            if found_op is not None:
                return found_op
        else:
            table: dict[tuple[str, str | None], Callable[[BlobCall], Response]] = {
                ("GET", None): self._blobs.get_blob,
                ("PUT", None): self._blobs.put_blob,
                ("DELETE", None): self._blobs.delete_blob,
                ("GET", "tags"): self._blobs.get_tags,
                ("PUT", "tags"): self._blobs.set_tags,
            }
            found = table.get((method, comp))
            if found is not None:
                return found
            if comp is not None:
                raise BlobError(
                    400,
                    "InvalidQueryParameterValue",
                    extra={"QueryParameterName": "comp", "QueryParameterValue": comp},
                )
        raise BlobError(405, "UnsupportedHttpVerb")

    def _endpoint(self, account_name: str) -> Callable[[Request], Any]:
        async def run(request: Request) -> Response:
            head = request.method == "HEAD"
            version = request.headers.get("x-ms-version")
            try:
                first = request.url.path.lstrip("/").split("/", 1)[0]
                if first != account_name:
                    raise BlobError(400, "InvalidUri")
                account = self._state.storage_account(account_name)
                if account is None:
                    raise BlobError(404, "ResourceNotFound")
                call = BlobCall(request, account)
                self._check_version(call)
                self._authenticate(call)
                operation = self._operation(call)
                try:
                    request.state.body = await read_body(request, MAX_BODY_BYTES)
                except BodyError as exc:
                    if exc.problem == "too_large":
                        raise BlobError(413, "RequestBodyTooLarge") from exc
                    raise BlobError(400, "InvalidInput", message=exc.message) from exc
                return operation(call)
            except BlobError as exc:
                return exc.response(head=head, version=version)
            except SandboxError as exc:
                return BlobError(exc.status, exc.code, message=exc.message).response(
                    head=head, version=version
                )

        return run

    def app(self, account_name: str) -> Starlette:
        """The ASGI app of one account's listener (every path under ``/<account>``)."""
        endpoint = self._endpoint(account_name)
        methods = ["GET", "HEAD", "PUT", "DELETE", "POST"]
        return Starlette(
            routes=[
                Route("/", endpoint, methods=methods),
                Route("/{path:path}", endpoint, methods=methods),
            ]
        )
