"""The Python side of the comparison: each operation with azure-storage-blob.

Mirrors ``blob_ops.mjs``: a ManagedIdentityCredential through the sandbox's IMDS, client
retries off, and the last HTTP response of each operation recorded through
``raw_response_hook`` (status, headers, body text).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient, ContentSettings


class _Recorder:
    def __init__(self) -> None:
        self.last: dict[str, Any] | None = None
        self.stream = False

    def __call__(self, pipeline_response: Any) -> None:
        http = pipeline_response.http_response
        body = None
        if not self.stream or http.status_code >= 300:
            try:
                body = http.text()
            except Exception:
                body = None
        self.last = {
            "status": http.status_code,
            "headers": {k.lower(): v for k, v in http.headers.items()},
            "body": body,
        }


class _StaticCredential:
    """Hands out one fixed token (here: one for another audience)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


def _date(value: str) -> datetime:
    return parsedate_to_datetime(value)


def run(
    account_url: str,
    client_id: str,
    operations: Iterable[Mapping[str, Any]],
    *,
    connection_verify: str,
) -> list[dict[str, Any]]:
    recorder = _Recorder()
    credential = ManagedIdentityCredential(client_id=client_id)
    service = BlobServiceClient(
        account_url,
        credential,
        retry_total=0,
        connection_verify=connection_verify,
        raw_response_hook=recorder,
    )
    vault_token = credential.get_token("https://vault.azure.net/.default").token
    wrong_audience = BlobServiceClient(
        account_url,
        _StaticCredential(vault_token),
        retry_total=0,
        connection_verify=connection_verify,
        raw_response_hook=recorder,
    )
    results: list[dict[str, Any]] = []
    with service, credential, wrong_audience:
        for op in operations:
            recorder.last, recorder.stream = None, op["op"] == "download"
            client = wrong_audience if op.get("credential") == "wrong_audience" else service
            try:
                _run(client, op, recorder)
            except HttpResponseError:
                pass
            except Exception as exc:
                results.append(
                    {
                        "id": op["id"],
                        "status": None,
                        "headers": {},
                        "body": None,
                        "exception": type(exc).__name__,
                    }
                )
                continue
            if recorder.last is None:
                results.append(
                    {
                        "id": op["id"],
                        "status": None,
                        "headers": {},
                        "body": None,
                        "exception": "no response",
                    }
                )
            else:
                results.append({"id": op["id"], **recorder.last})
    return results


def _conditions(service: BlobServiceClient, op: Mapping[str, Any]) -> dict[str, Any]:
    cond = op.get("conditions")
    if not cond:
        return {}
    out: dict[str, Any] = {}
    current = None
    if "etag" in cond.values() or "last_modified" in cond.values():
        current = service.get_blob_client(op["container"], op["blob"]).get_blob_properties(
            raw_response_hook=None
        )
    if "if_match" in cond:
        out["etag"] = current.etag if cond["if_match"] == "etag" and current else cond["if_match"]
        out["match_condition"] = MatchConditions.IfNotModified
    if "if_none_match" in cond:
        if cond["if_none_match"] == "*":
            out["match_condition"] = MatchConditions.IfMissing
        else:
            out["etag"] = current.etag if current else cond["if_none_match"]
            out["match_condition"] = MatchConditions.IfModified
    if "if_tags" in cond:
        out["if_tags_match_condition"] = cond["if_tags"]
    for key in ("if_modified_since", "if_unmodified_since"):
        if key in cond:
            out[key] = (
                current.last_modified
                if cond[key] == "last_modified" and current
                else _date(cond[key])
            )
    return out


def _md5(data: str, kind: str) -> bytearray:
    """The body's MD5 ("right"), another body's ("wrong"), or 3 bytes ("short")."""
    if kind == "short":
        return bytearray(b"abc")
    return bytearray(hashlib.md5((data + "!" if kind == "wrong" else data).encode()).digest())


def _run(service: BlobServiceClient, op: Mapping[str, Any], recorder: _Recorder) -> None:
    kind = op["op"]
    container = service.get_container_client(op["container"]) if "container" in op else None
    blob = container.get_blob_client(op["blob"]) if container and "blob" in op else None
    if kind == "create_container":
        assert container is not None
        container.create_container()
    elif kind == "delete_container":
        assert container is not None
        container.delete_container()
    elif kind == "container_properties":
        assert container is not None
        container.get_container_properties()
    elif kind == "list_containers":
        next(
            service.list_containers(name_starts_with=op["prefix"], include_metadata=True).by_page()
        )
    elif kind == "upload":
        assert blob is not None
        settings = ContentSettings(content_type=op.get("content_type"))
        if op.get("md5"):
            settings.content_md5 = _md5(op["data"], op["md5"])
        conditions = _conditions(service, op)
        missing = conditions.get("match_condition") is MatchConditions.IfMissing
        if missing:
            conditions.pop("match_condition")
        blob.upload_blob(
            op["data"].encode(),
            overwrite=not missing,
            metadata=op.get("metadata"),
            tags=op.get("tags"),
            content_settings=settings,
            **conditions,
        )
    elif kind == "properties":
        assert blob is not None
        blob.get_blob_properties(**_conditions(service, op))
    elif kind == "download":
        assert blob is not None
        data = blob.download_blob(**_conditions(service, op)).readall()
        if recorder.last is not None:
            recorder.last["body"] = data.decode()
    elif kind == "delete_blob":
        assert blob is not None
        blob.delete_blob(**_conditions(service, op))
    elif kind == "set_tags":
        assert blob is not None
        blob.set_blob_tags(op["tags"])
    elif kind == "get_tags":
        assert blob is not None
        blob.get_blob_tags()
    elif kind == "list_flat":
        assert container is not None
        next(
            container.list_blobs(
                name_starts_with=op.get("prefix"), include=op.get("include")
            ).by_page()
        )
    elif kind == "list_hierarchy":
        assert container is not None
        next(
            container.walk_blobs(
                name_starts_with=op.get("prefix"),
                include=op.get("include"),
                delimiter=op["delimiter"],
                results_per_page=op.get("max_results"),
            ).by_page()
        )
    elif kind == "find_container":
        assert container is not None
        next(container.find_blobs_by_tags(op["where"]).by_page())
    elif kind == "find_account":
        next(service.find_blobs_by_tags(op["where"]).by_page())
    else:
        raise ValueError(f"unknown operation {kind}")
