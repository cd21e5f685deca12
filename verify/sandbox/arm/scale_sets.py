"""ARM for scale sets in the sandbox: what the lifecycle's scale-set scenarios call through
azure-mgmt-compute, served from the shared state (:mod:`verify.sandbox.state.fleet`).

- ``GET .../Microsoft.Compute/virtualMachineScaleSets/{name}``: the set as ARM returns it,
  ``sku.capacity`` and the ``identity`` block as they are now;
- ``PATCH`` (VirtualMachineScaleSets_Update): ``sku.capacity`` scales the set (new
  instances hold the set's identities from their first IMDS request, removed ones take
  nothing with them), ``tags``, and ``identity`` with ARM's PATCH rules (``type`` sets the
  kinds; in ``userAssignedIdentities`` a null value detaches, an object attaches);
- ``DELETE``: the set, its instances and its system principal (its role assignments stay,
  orphaned); a set that is not there is 204, as ARM answers;
- ``GET .../virtualMachineScaleSets/{name}/virtualMachines[/{instanceId}]``: the instances
  (VirtualMachineScaleSetVMs_List) or one (VirtualMachineScaleSetVMs_Get), what Run
  Command and the scenarios read.

Long-running operations complete synchronously (200 with ``provisioningState: Succeeded``,
204 for a delete), which the clients' pollers accept as done.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from components.arm import fleet_shapes
from components.arm import shapes as arm_shapes
from components.identity_type import NONE, parse_identity_type
from verify.sandbox.arm import request_rules as arm_requests
from verify.sandbox.arm.authorization import json_body
from verify.sandbox.arm.errors import ArmHttpError
from verify.sandbox.state.fleet import ScaleSet
from verify.sandbox.state.store import SandboxState

if TYPE_CHECKING:
    from verify.sandbox.arm.service import ArmService

SCALE_SET_PATH = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"microsoft\.compute/virtualmachinescalesets/(?P<name>[^/]+)"
    r"(?P<vms>/virtualmachines(?:/(?P<instance>[^/]+))?)?$",
    re.IGNORECASE,
)
ARM_TYPE = "Microsoft.Compute/virtualMachineScaleSets"
#: ARM's answer when a capacity is out of range (Compute's InvalidParameter).
MAX_CAPACITY = 1000


def route(
    service: ArmService, request: Request, claims: dict[str, Any], path: str
) -> Response | None:
    """The answer for a scale-set path, or None when ``path`` is not one."""
    m = SCALE_SET_PATH.match(path)
    if m is None or m.group("sub").lower() != service._state.subscription_id.lower():
        return None
    state: SandboxState = service._state
    group = state.resource_group(m.group("rg"))
    if group is None:
        message = f"Resource group '{m.group('rg')}' could not be found."
        raise ArmHttpError.of(404, "ResourceGroupNotFound", message)
    name = m.group("name")
    set_id = (
        f"/subscriptions/{state.subscription_id}/resourceGroups/{group.name}"
        f"/providers/{ARM_TYPE}/{name}"
    )
    if m.group("vms"):
        if request.method != "GET":
            raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
        service._authorize(claims, f"{ARM_TYPE}/virtualMachines/read", set_id)
        scale_set = _require(state, set_id, name, group.name)
        listed = instances_json(state, scale_set)
        wanted = m.group("instance")
        if wanted is None:
            return JSONResponse({"value": listed})
        return _instance(request, listed, name, wanted, group.name)
    action = {"GET": "read", "PATCH": "write", "DELETE": "delete"}.get(request.method)
    if action is None:
        raise ArmHttpError.of(405, "MethodNotAllowed", f"{request.method} not allowed.")
    service._authorize(claims, f"{ARM_TYPE}/{action}", set_id)
    found = state.scale_set(set_id)
    if request.method == "DELETE":
        if found is not None:
            state.delete_scale_set(set_id)
        return Response(status_code=200 if found is not None else 204)
    scale_set = _require(state, set_id, name, group.name)
    if request.method == "PATCH":
        scale_set = _patch(service, claims, state, scale_set, json_body(request))
        _write_document(state, scale_set)
    return JSONResponse(scale_set_json(state, scale_set))


def _write_document(state: SandboxState, scale_set: ScaleSet) -> None:
    """The set's ARM document in the sandbox's one ARM model follows a PATCH (capacity,
    identity, tags), so the model never answers with the set as it was before."""
    answer = scale_set_json(state, scale_set)
    with state._lock:
        old = state.arm_store.resources.get(scale_set.id.lower())
        doc = copy.deepcopy(old) if old is not None else answer
        doc["sku"] = {**doc.get("sku", {}), "capacity": scale_set.capacity}
        doc["tags"] = dict(scale_set.tags)
        if answer.get("identity") is None:
            doc.pop("identity", None)
        else:
            doc["identity"] = answer["identity"]
        state.arm_store.resources[scale_set.id.lower()] = doc


def _instance(
    request: Request, listed: list[dict[str, Any]], name: str, wanted: str, rg: str
) -> Response:
    """VirtualMachineScaleSetVMs_Get: one instance; ``$expand`` takes the spec's
    InstanceViewTypes (userData and resiliencyPolicy add nothing to an instance made
    without either)."""
    expand = request.query_params.get("$expand")
    if expand is not None and expand.lower() not in (
        "instanceview",
        "userdata",
        "resiliencypolicy",
    ):
        raise ArmHttpError.of(
            400,
            "InvalidParameter",
            f"The value '{expand}' of parameter '$expand' is not valid; use instanceView, "
            "userData or resiliencyPolicy.",
        )
    found = next((vm for vm in listed if vm["instanceId"] == wanted), None)
    if found is None:
        raise ArmHttpError.of(
            404,
            "ResourceNotFound",
            f"The Resource '{ARM_TYPE}/{name}/virtualMachines/{wanted}' under resource group "
            f"'{rg}' was not found.",
        )
    return JSONResponse(found)


def _require(state: SandboxState, set_id: str, name: str, rg: str) -> ScaleSet:
    found = state.scale_set(set_id)
    if found is None:
        raise ArmHttpError.of(
            404,
            "ResourceNotFound",
            f"The Resource '{ARM_TYPE}/{name}' under resource group '{rg}' was not found.",
        )
    return found


def _patch(
    service: ArmService,
    claims: dict[str, Any],
    state: SandboxState,
    scale_set: ScaleSet,
    body: dict[str, Any],
) -> ScaleSet:
    """ARM's PATCH: only the fields given change."""
    if body.get("identity") is not None:
        scale_set = _patch_identity(service, claims, state, scale_set, body)
    if body.get("sku") is not None:
        sku = arm_requests.object_field(body, "sku")
        capacity = sku.get("capacity")
        if capacity is not None:
            if isinstance(capacity, bool) or not isinstance(capacity, int):
                raise ArmHttpError.of(400, "InvalidParameter", "sku.capacity must be an integer.")
            if not 0 <= capacity <= MAX_CAPACITY:
                raise ArmHttpError.of(
                    400,
                    "InvalidParameter",
                    f"The value {capacity} of parameter 'sku.capacity' is out of range. "
                    f"The value must be between 0 and {MAX_CAPACITY}, inclusive.",
                )
            scale_set = state.scale_scale_set(scale_set.id, capacity)
    tags = arm_requests.tags_field(body)
    if tags is not None:
        scale_set = state.update_scale_set_tags(scale_set.id, tags)
    return scale_set


def _patch_identity(
    service: ArmService,
    claims: dict[str, Any],
    state: SandboxState,
    scale_set: ScaleSet,
    body: dict[str, Any],
) -> ScaleSet:
    identity = arm_requests.object_field(body, "identity")
    kind = arm_requests.string_field(identity, "type", "identity.type") or NONE
    try:
        system, wants_user = parse_identity_type(kind)
    except ValueError as bad:
        raise ArmHttpError.of(400, "InvalidParameter", f"identity.type: {bad}") from bad
    changes = arm_requests.object_field(
        identity, "userAssignedIdentities", "identity.userAssignedIdentities"
    )
    if not wants_user and changes:
        raise ArmHttpError.of(
            400,
            "InvalidParameter",
            f"The identity type '{identity.get('type')}' does not allow userAssignedIdentities.",
        )
    current = list(scale_set.user_assigned) if wants_user else []
    for uai_id, value in changes.items():
        if value is None:
            current = [u for u in current if u.lower() != uai_id.lower()]
        elif uai_id.lower() not in {u.lower() for u in current}:
            service._authorize(
                claims, "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action", uai_id
            )
            current.append(uai_id)
    if wants_user and not current:
        raise ArmHttpError.of(
            400,
            "InvalidParameter",
            "The identity type includes UserAssigned but no user-assigned identity is given.",
        )
    return state.update_scale_set_identity(scale_set.id, system, current)


def _identity_block(state: SandboxState, scale_set: ScaleSet) -> dict[str, Any] | None:
    instances = state.instances(scale_set.id)
    attached = {}
    for uai_id in scale_set.user_assigned:
        uai = (
            state.attached_identity(instances[0].id, uai_id)
            if instances
            else state.identity(uai_id)
        )
        if uai is not None:
            attached[uai.id] = arm_shapes.AttachedIdentity(uai.principal_id, uai.client_id)
    return arm_shapes.vm_identity(
        system_principal_id=scale_set.system_principal_id,
        tenant_id=state.tenant_id,
        user_assigned=attached,
    )


def scale_set_json(state: SandboxState, scale_set: ScaleSet) -> dict[str, Any]:
    return fleet_shapes.virtual_machine_scale_set(
        arm_id=scale_set.id,
        location=scale_set.location,
        unique_id=scale_set.unique_id,
        identity=_identity_block(state, scale_set),
        sku={"name": scale_set.vm_size, "capacity": scale_set.capacity},
        admin_username=scale_set.admin_username,
        computer_name_prefix=scale_set.name,
        tags=scale_set.tags,
        time_created=arm_shapes.arm_timestamp(datetime.fromtimestamp(scale_set.created_on, tz=UTC)),
    )


def instances_json(state: SandboxState, scale_set: ScaleSet) -> list[dict[str, Any]]:
    doc = scale_set_json(state, scale_set)
    found = sorted(state.instances(scale_set.id), key=lambda i: int(i.id.rsplit("/", 1)[-1]))
    out = []
    for instance in found:
        vm = fleet_shapes.scale_set_vm(
            scale_set=doc, instance_id=instance.id.rsplit("/", 1)[-1], vm_id=instance.vm_id
        )
        vm["properties"]["timeCreated"] = arm_shapes.arm_timestamp(
            datetime.fromtimestamp(instance.created_on, tz=UTC)
        )
        out.append(vm)
    return out
