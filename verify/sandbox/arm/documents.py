"""ARM routes answered straight from the sandbox's ARM model (``Sandbox.arm``).

The types here have no route of their own in the front: App Service plans, Container Apps
managed environments, AKS managed clusters, storage accounts and blob containers. Each is
served with the model's own handler, the one a deploy runs, so its rules (names, parents,
public access, locks) and its document are the model's. Each type serves the methods whose
Microsoft example is replayed (:data:`MODEL_TYPES`), from:

- ``GET`` of one resource, and of the collection where Azure lists it (a resource group's,
  the subscription's, an account's containers);
- ``PUT``: the request body as the handler's inputs (the envelope, ``properties`` flattened,
  as Pulumi's azure-native inputs are), 201 for a new resource (200 where the service
  answers 200 to a create), 200 for an update;
- ``PATCH``: the body merged over the current document, through the same handler;
- ``DELETE``: the model's delete (locks refuse it), and the sandbox's behaviour of the type
  (a storage account's Blob listener, a cluster's issuer and nodes) goes with it; 200, or
  204 when there was nothing to delete.

Every call is authorized by RBAC with the type's ``read``/``write``/``delete`` action at
the resource, as ARM authorizes it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from components.arm.tokens import (
    PULUMI_APP_SERVICE_PLAN,
    PULUMI_BLOB_CONTAINER,
    PULUMI_MANAGED_CLUSTER,
    PULUMI_MANAGED_ENVIRONMENT,
    PULUMI_STORAGE_ACCOUNT,
)
from verify.sandbox.arm.authorization import json_body
from verify.sandbox.arm.errors import ArmHttpError

if TYPE_CHECKING:
    from verify.sandbox.arm.service import ArmService

JSON = dict[str, Any]

#: Top-level keys of an ARM request body that Pulumi's azure-native inputs keep as they are;
#: everything under ``properties`` is flattened beside them.
ENVELOPE = frozenset({"location", "tags", "identity", "sku", "kind", "zones", "extendedLocation"})
#: Keys of a document that are ARM's own, never an input.
READ_ONLY = frozenset({"id", "name", "type", "etag", "systemData"})


@dataclass(frozen=True)
class ModelType:
    """One ARM type the front serves from the model."""

    arm_type: str
    token: str
    #: The Pulumi inputs that name each of the path's resource names (None: not an input).
    name_inputs: tuple[str | None, ...]
    #: The status of a PUT that creates (Microsoft.Web and Microsoft.Storage answer 200).
    created: int = 201
    #: The methods served on one resource, each replayed from Microsoft's example
    #: (tests/conformance/operations.json); any other is 405.
    methods: frozenset[str] = frozenset({"GET"})
    #: Whether the collection (a resource group's and, for a top-level type, the
    #: subscription's; an account's containers) is listed.
    lists: bool = False


_WEB, _APP, _AKS, _STORAGE = (
    "Microsoft.Web",
    "Microsoft.App",
    "Microsoft.ContainerService",
    "Microsoft.Storage",
)
MODEL_TYPES: dict[str, ModelType] = {
    t.arm_type.lower(): t
    for t in (
        ModelType(
            f"{_WEB}/serverfarms",
            PULUMI_APP_SERVICE_PLAN,
            ("name",),
            created=200,
            methods=frozenset({"GET", "PUT", "PATCH", "DELETE"}),
            lists=True,
        ),
        ModelType(
            f"{_APP}/managedEnvironments",
            PULUMI_MANAGED_ENVIRONMENT,
            ("environmentName",),
            methods=frozenset({"GET", "PUT", "PATCH", "DELETE"}),
            lists=True,
        ),
        ModelType(
            f"{_AKS}/managedClusters",
            PULUMI_MANAGED_CLUSTER,
            ("resourceName",),
            methods=frozenset({"GET", "PUT", "PATCH", "DELETE"}),
            lists=True,
        ),
        ModelType(
            f"{_STORAGE}/storageAccounts",
            PULUMI_STORAGE_ACCOUNT,
            ("accountName",),
            created=200,
            methods=frozenset({"GET", "PUT", "PATCH", "DELETE"}),
            lists=True,
        ),
        ModelType(
            f"{_STORAGE}/storageAccounts/blobServices/containers",
            PULUMI_BLOB_CONTAINER,
            ("accountName", None, "containerName"),
            methods=frozenset({"GET", "PUT", "PATCH", "DELETE"}),
            lists=True,
        ),
    )
}


@dataclass(frozen=True)
class ModelPath:
    """A request path naming a served type: one resource (``name`` set) or a collection
    (a resource group's, or the subscription's where ``resource_group`` is empty)."""

    kind: ModelType
    resource_group: str
    arm_id: str
    names: tuple[str, ...]
    collection: bool


def parse(path: str, subscription_id: str) -> ModelPath | None:
    """The served type a path names, or None (another route, or not ARM's)."""
    parts = path.strip("/").split("/")
    low = [p.lower() for p in parts]
    if len(parts) < 4 or low[0] != "subscriptions" or low[1] != subscription_id.lower():
        return None
    if low[2] == "providers" and len(parts) == 5:
        return _subscription_collection(parts)
    if len(parts) < 7 or low[2] != "resourcegroups" or low[4] != "providers":
        return None
    namespace, rest = parts[5], parts[6:]
    types, names = rest[0::2], rest[1::2]
    kind = MODEL_TYPES.get("/".join([namespace, *types]).lower())
    if kind is None:
        return None
    collection = len(types) > len(names)
    if collection and len(types) > 1 and not names:
        return None
    return ModelPath(kind, parts[3], "/" + "/".join(parts), tuple(names), collection)


def _subscription_collection(parts: list[str]) -> ModelPath | None:
    """``/subscriptions/{id}/providers/{namespace}/{type}``: the subscription's collection
    of a top-level served type."""
    kind = MODEL_TYPES.get(f"{parts[3]}/{parts[4]}".lower())
    if kind is None or kind.token == PULUMI_BLOB_CONTAINER:
        return None
    return ModelPath(kind, "", "/" + "/".join(parts), (), True)


def inputs_from_body(kind: ModelType, found: ModelPath, body: JSON) -> JSON:
    """A PUT body as the model's handler takes it (Pulumi's azure-native input shape)."""
    props = body.get("properties")
    if props is not None and not isinstance(props, dict):
        raise ArmHttpError.of(400, "InvalidRequestContent", "properties must be an object.")
    inputs: JSON = {k: copy.deepcopy(v) for k, v in body.items() if k in ENVELOPE}
    inputs.update(copy.deepcopy(props or {}))
    inputs["resourceGroupName"] = found.resource_group
    for input_name, value in zip(kind.name_inputs, found.names, strict=False):
        if input_name:
            inputs[input_name] = value
    return inputs


def merge(base: JSON, patch: JSON) -> JSON:
    """JSON merge of ``patch`` over ``base`` (ARM's PATCH: objects merge, values replace)."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "tags":
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def route(service: ArmService, request: Request, claims: JSON, path: str) -> Response | None:
    """The answer for a path of a type served from the model, or None."""
    found = parse(path, service._state.subscription_id)
    if found is None or service._model is None:
        return None
    model = service._model()
    state = service._state
    if found.resource_group and state.resource_group(found.resource_group) is None:
        message = f"Resource group '{found.resource_group}' could not be found."
        raise ArmHttpError.of(404, "ResourceGroupNotFound", message)
    kind = found.kind
    if found.collection:
        if request.method != "GET" or not kind.lists:
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        service._authorize(claims, f"{kind.arm_type}/read", found.arm_id)
        _require_parent(model, found)
        # a resource group's (or an account's) collection: the IDs under its path; the
        # subscription's: every document of the type
        prefix = found.arm_id.lower() + "/" if found.resource_group else ""
        docs = [d for d in model.of_type(kind.arm_type) if d["id"].lower().startswith(prefix)]
        return JSONResponse({"value": sorted(docs, key=lambda d: d["id"].lower())})
    action = {"GET": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}.get(
        request.method
    )
    if action is None or request.method not in kind.methods:
        raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
    service._authorize(claims, f"{kind.arm_type}/{action}", found.arm_id)
    return _item(service, request, model, found)


def _item(service: ArmService, request: Request, model: Any, found: ModelPath) -> Response:
    """GET, PUT, PATCH or DELETE of one resource (authorized already)."""
    kind = found.kind
    current = model.get(found.arm_id)
    if request.method == "DELETE":
        if current is None:
            return Response(status_code=204)
        # The front has checked the locks; the behaviour goes first, and with it the
        # document (a container's blobs must not outlive it to come back with a new one).
        _delete_behaviour(service, found)
        model.delete(found.arm_id)
        return Response(status_code=200)
    if request.method == "PUT":
        inputs = inputs_from_body(kind, found, json_body(request))
        doc = model.create_or_update(kind.token, _canonical_id(found, current), inputs)
        return JSONResponse(doc, status_code=200 if current is not None else kind.created)
    if current is None:
        return _not_found(model, found)
    if request.method == "PATCH":
        base = {k: v for k, v in current.items() if k not in READ_ONLY}
        inputs = inputs_from_body(kind, found, merge(base, json_body(request)))
        doc = model.create_or_update(kind.token, current["id"], inputs)
        return JSONResponse(doc)
    return JSONResponse(current)


def _canonical_id(found: ModelPath, current: JSON | None) -> str:
    """The resource's ID as first written (ARM keeps the creator's casing)."""
    return str(current["id"]) if current is not None else found.arm_id


def _require_parent(model: Any, found: ModelPath) -> None:
    if len(found.names) >= 1 and found.kind.token == PULUMI_BLOB_CONTAINER:
        account_id = found.arm_id.split("/blobServices/", 1)[0]
        if model.get(account_id) is None:
            raise ArmHttpError.of(
                404,
                "ParentResourceNotFound",
                "Can not perform requested operation on nested resource. Parent resource "
                f"'{found.names[0]}' not found.",
            )


def _not_found(model: Any, found: ModelPath) -> Response:
    _require_parent(model, found)
    if found.kind.token == PULUMI_BLOB_CONTAINER:
        raise ArmHttpError.of(404, "ContainerNotFound", "The specified container does not exist.")
    raise ArmHttpError.of(
        404,
        "ResourceNotFound",
        f"The Resource '{found.kind.arm_type}/{found.names[-1]}' under resource group "
        f"'{found.resource_group}' was not found. For more details please go to "
        "https://aka.ms/ARMResourceNotFoundFix",
    )


def _delete_behaviour(service: ArmService, found: ModelPath) -> None:
    """What the sandbox runs for the deleted resource goes too (its listener, its nodes)."""
    state = service._state
    token = found.kind.token
    if token == PULUMI_STORAGE_ACCOUNT and state.storage_account(found.arm_id) is not None:
        state.delete_storage_account(found.arm_id)
    elif token == PULUMI_BLOB_CONTAINER and state.container(found.names[0], found.names[2]):
        state.delete_container(found.names[0], found.names[2])
    elif token == PULUMI_MANAGED_CLUSTER and state.cluster(found.arm_id) is not None:
        state.delete_cluster(found.arm_id)
