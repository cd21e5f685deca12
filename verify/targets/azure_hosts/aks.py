"""An AKS workload: the probe as a Kubernetes Job in the workload's namespace, under the
workload's service account, so its token comes from that service account's federation
(or, for a workload without an identity, from wherever such a pod reaches).

Cluster credentials come through Microsoft Entra ID: the operator's azure-identity token
for the AKS Entra server application (``6dae42f8-4368-4678-94ff-3960e28e3630``), sent as a
bearer token to the API server; ``listClusterUserCredential`` gives only the API server's
address and CA (the kubeconfig of an Entra cluster holds an exec plugin, no static secret;
local accounts are off on the component's clusters). Plain HTTPS through ``requests``: no
Kubernetes client and no kubeconfig file.

The pod is labelled ``azure.workload.identity/use: "true"`` only when the workload has an
identity, as the component labels the workload's own pods: a labelled pod whose service
account names no client ID makes azure-identity refuse to start, and an unlabelled one
reaches IMDS (the node's kubelet identity), which is what such a workload really gets.
Steps: ``POST /apis/batch/v1/namespaces/<ns>/jobs`` (``backoffLimit: 0``,
``activeDeadlineSeconds`` = the bound, ``ttlSecondsAfterFinished``); poll the Job until
it succeeded or failed, bounded; read its pod's log (``/api/v1/.../pods/<pod>/log``) for
the probe's result; ``DELETE`` the Job with its pods, always.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import urllib.parse
import uuid
from typing import Any

import yaml

from verify.model import ProbeResult
from verify.targets.azure_hosts.base import (
    HostContext,
    HostProbeError,
    host_key,
    probe_budget,
    result_from,
    wait_until,
)
from verify.targets.azure_hosts.launcher import SOURCE_ENV, container_script, packed_source
from verify.targets.azure_hosts.rest import AKS_SCOPE, ARM, ARM_SCOPE, BearerClient, Refusal
from verify.targets.base import ProbeRequest

AKS_API_VERSION = "2024-09-01"
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
DEFAULT_IMAGE = "mcr.microsoft.com/azurelinux/base/python:3.12"
#: Scheduling the pod, pulling the image, installing the probe's dependencies.
POD_START_SECONDS = 420.0

CLUSTER_USER = Refusal(
    "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
    "Azure Kubernetes Service Cluster User Role",
)
K8S_WRITE = Refusal(
    "Microsoft.ContainerService/managedClusters/batch/jobs/write, .../batch/jobs/read, "
    ".../batch/jobs/delete, .../pods/read and .../pods/log/read in the namespace",
    "Azure Kubernetes Service RBAC Writer (namespace scope)",
)


def find_workload(ctx: HostContext, host: str) -> tuple[dict[str, Any], dict[str, Any]]:
    key = host_key(host)
    for cluster in (ctx.raw.get("clusters") or {}).values():
        workload = (cluster.get("workloads") or {}).get(key)
        if isinstance(workload, dict):
            return cluster, workload
    raise HostProbeError(
        f"workload {host!r} is not in the stack outputs (clusters): its probe, a Kubernetes "
        "Job in its namespace under its service account, has nowhere to run"
    )


def job_manifest(
    name: str, workload: dict[str, Any], spec: dict[str, Any], image: str, deadline: int
) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "mikit-verify"}
    if workload.get("identity"):
        labels[WORKLOAD_IDENTITY_LABEL] = "true"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": workload["namespace"], "labels": labels},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": workload["service_account"],
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": True,
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "command": ["/bin/sh", "-c", container_script(spec)],
                            "env": [{"name": SOURCE_ENV, "value": packed_source()}],
                            "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
                        }
                    ],
                },
            },
        },
    }


def api_server(kubeconfig_b64: str) -> tuple[str, bytes | None]:
    """The API server URL and CA certificate of a user kubeconfig (no credential read)."""
    config = yaml.safe_load(base64.b64decode(kubeconfig_b64))
    cluster = ((config or {}).get("clusters") or [{}])[0].get("cluster") or {}
    server = cluster.get("server")
    if not server:
        raise HostProbeError("the cluster's kubeconfig names no API server")
    ca = cluster.get("certificate-authority-data")
    return str(server).rstrip("/"), base64.b64decode(ca) if ca else None


class AksPath:
    permissions = (
        CLUSTER_USER.action,
        "Microsoft.ContainerService/managedClusters/batch/jobs/write",
        "Microsoft.ContainerService/managedClusters/batch/jobs/read",
        "Microsoft.ContainerService/managedClusters/batch/jobs/delete",
        "Microsoft.ContainerService/managedClusters/pods/read",
    )

    def probe(self, ctx: HostContext, request: ProbeRequest) -> ProbeResult:
        cluster, workload = find_workload(ctx, request.host)
        if request.stash_token or request.replay:
            raise HostProbeError(
                f"workload {request.host}: each probe runs in a new pod, so a token stashed "
                "by one run cannot be replayed by the next"
            )
        spec = ctx.spec(request)
        client = BearerClient(ctx.credential, ctx.http)
        creds = client.request(
            "POST",
            f"{ARM}{cluster['id']}/listClusterUserCredential?api-version={AKS_API_VERSION}",
            scope=ARM_SCOPE,
            what=f"reading the API server of cluster {cluster.get('name')}",
            refusal=CLUSTER_USER,
        ).body
        configs = (creds or {}).get("kubeconfigs") or []
        if not configs:
            raise HostProbeError(f"cluster {cluster.get('name')} returned no kubeconfig")
        server, ca = api_server(configs[0]["value"])
        ns = workload["namespace"]
        digest = hashlib.sha256(f"{request.host}|{request.expect}".encode()).hexdigest()[:12]
        # Unique per run: the previous run's Job may still be terminating.
        name = f"mikit-probe-{digest[:8]}-{uuid.uuid4().hex[:8]}"
        bound = POD_START_SECONDS + probe_budget(spec)
        manifest = job_manifest(
            name, workload, spec, ctx.options.get("container_image", DEFAULT_IMAGE), int(bound)
        )
        with tempfile.TemporaryDirectory(prefix="mikit-aks-") as tmp:
            verify: bool | str = True
            if ca is not None:
                verify = os.path.join(tmp, "ca.crt")
                with open(verify, "wb") as handle:
                    handle.write(ca)

            def kube(method: str, path: str, what: str, **kw: Any) -> Any:
                return client.request(
                    method,
                    f"{server}{path}",
                    scope=AKS_SCOPE,
                    what=f"{what} in namespace {ns}",
                    refusal=K8S_WRITE,
                    verify=verify,
                    **kw,
                ).body

            jobs = f"/apis/batch/v1/namespaces/{ns}/jobs"
            kube("POST", jobs, f"creating probe Job {name}", json_body=manifest)
            try:
                state = wait_until(
                    ctx,
                    bound,
                    lambda: _job_state(kube("GET", f"{jobs}/{name}", f"reading Job {name}")),
                    f"probe Job {name} of workload {request.host}",
                )
                selector = urllib.parse.quote(f"job-name={name}")
                pods = kube(
                    "GET",
                    f"/api/v1/namespaces/{ns}/pods?labelSelector={selector}",
                    "listing the Job's pods",
                )
                items = (pods or {}).get("items") or []
                if not items:
                    raise HostProbeError(f"probe Job {name} ({state}) left no pod to read")
                pod = items[0]["metadata"]["name"]
                log = kube(
                    "GET",
                    f"/api/v1/namespaces/{ns}/pods/{pod}/log?container=probe",
                    f"reading the log of pod {pod}",
                )
            finally:
                kube(
                    "DELETE",
                    f"{jobs}/{name}?propagationPolicy=Background",
                    f"deleting probe Job {name}",
                    ok=(200, 202, 404),
                )
        return result_from(
            log if isinstance(log, str) else str(log or ""), f"probe Job {name} ({state})"
        )


def _job_state(job: Any) -> str | None:
    status = (job or {}).get("status") or {}
    if status.get("succeeded"):
        return "succeeded"
    if status.get("failed"):
        return "failed"  # the probe exits 1 when an expectation fails: still a result
    return None
