"""A VM: Run Command (``virtual_machines.begin_run_command``) with the inline probe.

Permissions: ``Microsoft.Compute/virtualMachines/runCommand/action`` and
``.../virtualMachines/read`` on the VM (Virtual Machine Contributor).
"""

from __future__ import annotations

from azure.core.exceptions import HttpResponseError

from verify.model import ProbeResult
from verify.targets.azure_hosts.base import HostContext, host_key
from verify.targets.azure_hosts.run_command import VM_TOKEN_DIR, refused_as, run_probe
from verify.targets.base import ProbeRequest


class VmPath:
    permissions = (
        "Microsoft.Compute/virtualMachines/runCommand/action",
        "Microsoft.Compute/virtualMachines/read",
    )

    def probe(self, ctx: HostContext, request: ProbeRequest) -> ProbeResult:
        spec = ctx.spec(request, ctx.token_dir or VM_TOKEN_DIR)
        name = ctx.outputs.vms[host_key(request.host)].name
        try:
            return run_probe(
                ctx,
                spec,
                lambda parameters: ctx.compute.virtual_machines.begin_run_command(
                    ctx.outputs.resource_group,
                    name,
                    parameters,
                    polling_interval=ctx.polling_interval,
                ),
                request.host,
            )
        except HttpResponseError as exc:
            raise refused_as(exc, f"Run Command on VM {name}", self.permissions[0]) from None
