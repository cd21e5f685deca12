"""A scale set: Run Command on every instance
(``virtual_machine_scale_set_vms.begin_run_command``), the VM path's script, cloud-init
wait and client-side bound per instance.

Every instance holds the set's identities (one system principal for the set), so each one
must prove the same cells (``ProbeRequest.instances`` names some of them, e.g. the one a
scale-out just added; by default every instance); the host's result is the first instance
whose probe did not pass (else the first instance's), and an instance that gives no
result fails the host, naming the instance (the first such instance ends the run).
Instances run in the order of their IDs, one after the other: the set is one host of the
fan-out, and ARM throttles Run Command per subscription.

Permissions: ``Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read`` (list
the instances) and ``.../virtualMachineScaleSets/virtualMachines/runCommand/action``
(Virtual Machine Contributor on the scale set).
"""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import HttpResponseError

from verify.model import ProbeResult
from verify.targets.azure_hosts.base import (
    HostContext,
    HostProbeError,
    host_key,
)
from verify.targets.azure_hosts.run_command import VM_TOKEN_DIR, refused_as, run_probe
from verify.targets.base import ProbeRequest

LIST_ACTION = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read"
RUN_ACTION = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommand/action"


def scale_set_name(ctx: HostContext, host: str) -> str:
    record = (ctx.raw.get("scale_sets") or {}).get(host_key(host))
    if not isinstance(record, dict) or not record.get("name"):
        raise HostProbeError(f"scale set {host!r} is not in the stack outputs (scale_sets)")
    return str(record["name"])


class ScaleSetPath:
    permissions = (LIST_ACTION, RUN_ACTION)

    def instances(self, ctx: HostContext, name: str) -> list[str]:
        try:
            found = sorted(
                (
                    str(vm.instance_id)
                    for vm in ctx.compute.virtual_machine_scale_set_vms.list(
                        ctx.outputs.resource_group, name
                    )
                ),
                key=lambda i: (not i.isdigit(), int(i) if i.isdigit() else 0, i),
            )
        except HttpResponseError as exc:
            raise refused_as(
                exc, f"listing the instances of scale set {name}", LIST_ACTION
            ) from None
        if not found:
            raise HostProbeError(f"scale set {name} has no instances: nothing to probe")
        return found

    def probe(self, ctx: HostContext, request: ProbeRequest) -> ProbeResult:
        spec = ctx.spec(request, ctx.token_dir or VM_TOKEN_DIR)
        name = scale_set_name(ctx, request.host)
        results: list[ProbeResult] = []
        for instance in request.instances or self.instances(ctx, name):

            def begin(parameters: Any, instance: str = instance) -> Any:
                return ctx.compute.virtual_machine_scale_set_vms.begin_run_command(
                    ctx.outputs.resource_group,
                    name,
                    instance,
                    parameters,
                    polling_interval=ctx.polling_interval,
                )

            try:
                results.append(run_probe(ctx, spec, begin, f"{name} instance {instance}"))
            except HttpResponseError as exc:
                raise refused_as(
                    exc, f"Run Command on {name} instance {instance}", RUN_ACTION
                ) from None
        return next((r for r in results if not r.passed), results[0])
