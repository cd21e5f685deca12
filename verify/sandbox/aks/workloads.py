"""What a pod of a workload sees: the webhook's environment and its projected token file.

The workload identity webhook (Azure/azure-workload-identity, ``pkg/webhook``) mutates a pod
labelled ``azure.workload.identity/use: "true"``: it projects the service account's token
(audience ``api://AzureADTokenExchange``) at
``/var/run/secrets/azure/tokens/azure-identity-token`` and adds ``AZURE_TENANT_ID``,
``AZURE_FEDERATED_TOKEN_FILE``, ``AZURE_AUTHORITY_HOST`` and, only when the service account
is annotated ``azure.workload.identity/client-id``, ``AZURE_CLIENT_ID`` (it adds no empty
value and never overwrites a variable the pod sets itself). A pod reaches IMDS on its node,
whose only identity is the cluster's kubelet identity.

A pod *without* the label gets none of it: azure-identity then finds no workload identity
and asks IMDS, which answers as the kubelet identity (the silent trap). A labelled pod
whose service account has no client-id annotation gets the three other variables, and
azure-identity 1.27's ``ManagedIdentityCredential`` (so ``DefaultAzureCredential``) refuses
to start there: "Workload identity was selected but no client ID was provided".

:func:`pod_environment` gives a local process exactly that, pointed at the sandbox: the token
file written under ``token_dir``, the authority host the sandbox's HTTPS token endpoint, the
node's IMDS (``AZURE_POD_IDENTITY_AUTHORITY_HOST``) and the sandbox CA.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from verify.sandbox.aks.issuer import DEFAULT_TOKEN_LIFETIME_SECONDS
from verify.sandbox.state.fleet import Workload

if TYPE_CHECKING:
    from verify.sandbox.sandbox import Sandbox

#: Where the webhook mounts the token in the pod (the released webhook's path).
POD_TOKEN_FILE = "/var/run/secrets/azure/tokens/azure-identity-token"  # noqa: S105 (a path)


@dataclass(frozen=True)
class PodEnvironment:
    """One workload's view: the injected variables, the token file, the node's IMDS."""

    workload: Workload
    webhook: dict[str, str]
    """What the webhook injects (``AZURE_CLIENT_ID`` only with a client-id annotation)."""
    token_file: Path | None
    """None for a pod without the label (nothing is projected)."""
    imds: str
    ca_bundle: str

    def env(self) -> dict[str, str]:
        """Everything a local process needs to run as this pod against the sandbox."""
        return {
            **self.webhook,
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.imds,
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
        }


def pod_environment(
    sb: Sandbox,
    workload: Workload,
    token_dir: Path,
    *,
    lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS,
) -> PodEnvironment:
    """Project ``workload``'s service-account token into ``token_dir`` and return its
    environment (the token is signed by its cluster's issuer, as the kubelet has it)."""
    cluster = sb.state.cluster(workload.cluster_id)
    if cluster is None:
        raise ValueError(f"workload {workload.key!r}: its cluster is gone")
    node = sb.state.node_instance(cluster.id)
    if not workload.labelled:
        return PodEnvironment(workload, {}, None, sb.imds_url(node), sb.ca_cert_path)
    token = sb.clusters.service_account_token(
        cluster.issuer_url,
        workload.namespace,
        workload.service_account,
        lifetime_seconds=lifetime_seconds,
    )
    path = (
        token_dir
        / cluster.name
        / workload.namespace
        / workload.service_account
        / Path(POD_TOKEN_FILE).name
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token)
    webhook = {
        "AZURE_TENANT_ID": sb.tenant_id,
        "AZURE_FEDERATED_TOKEN_FILE": str(path),
        "AZURE_AUTHORITY_HOST": sb.authority_url,
    }
    if workload.client_id:
        webhook = {"AZURE_CLIENT_ID": workload.client_id, **webhook}
    return PodEnvironment(workload, webhook, path, sb.imds_url(node), sb.ca_cert_path)
