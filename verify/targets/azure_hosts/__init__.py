"""How the real-Azure target runs the probe inside each kind of host: one module per host
kind (like azure-identity's one class per credential), one table.

* ``vm`` (:mod:`.vm`): Run Command with the inline probe;
* ``scaleset`` (:mod:`.scale_set`): Run Command on every instance;
* ``app`` of kind ``webapp`` / ``functionapp`` (:mod:`.app_service`): Kudu's command API,
  signed in with Entra ID;
* ``app`` of kind ``containerapp`` (:mod:`.container_app`): a Container Apps job holding
  the app's user-assigned identities;
* ``workload`` / ``workload_without_identity`` (:mod:`.aks`): a Kubernetes Job under the
  workload's service account.

An ``app`` record's ``kind`` (the stack's ``apps.<key>.kind``) picks between the App
Service and the Container Apps path through :data:`APP_PATHS`. A new host kind is one
module and one entry.
"""

from __future__ import annotations

from verify.model import ProbeResult
from verify.targets.azure_hosts.aks import AksPath
from verify.targets.azure_hosts.app_service import AppServicePath, app_record
from verify.targets.azure_hosts.base import HostContext, HostPath, HostProbeError
from verify.targets.azure_hosts.container_app import ContainerAppPath
from verify.targets.azure_hosts.scale_set import ScaleSetPath
from verify.targets.azure_hosts.vm import VmPath
from verify.targets.base import ProbeRequest

#: An app's ``kind`` -> the path that runs the probe in it.
APP_PATHS: dict[str, HostPath] = {
    "webapp": AppServicePath(),
    "functionapp": AppServicePath(),
    "containerapp": ContainerAppPath(),
}


class AppPath:
    """``app`` hosts: the path of the app's kind (:data:`APP_PATHS`)."""

    @property
    def permissions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for path in APP_PATHS.values() for p in path.permissions))

    def probe(self, ctx: HostContext, request: ProbeRequest) -> ProbeResult:
        kind = str(app_record(ctx, request.host).get("kind") or "")
        path = APP_PATHS.get(kind)
        if path is None:
            raise HostProbeError(
                f"app {request.host!r} is of kind {kind!r}; the Azure target runs the probe "
                f"in {', '.join(sorted(APP_PATHS))}"
            )
        return path.probe(ctx, request)


#: ``ProbeRequest.host_kind`` -> the path that runs the probe in that host.
HOST_PATHS: dict[str, HostPath] = {
    "vm": VmPath(),
    "scaleset": ScaleSetPath(),
    "app": AppPath(),
    "workload": AksPath(),
    "workload_without_identity": AksPath(),
}


def path_for(host_kind: str) -> HostPath:
    """The path for ``host_kind``, or a HostProbeError naming the kinds there are."""
    path = HOST_PATHS.get(host_kind)
    if path is None:
        raise HostProbeError(
            f"the Azure target cannot run the probe in a host of kind {host_kind!r} "
            f"(it knows {', '.join(sorted(HOST_PATHS))})"
        )
    return path


__all__ = ["APP_PATHS", "HOST_PATHS", "HostContext", "HostPath", "HostProbeError", "path_for"]
