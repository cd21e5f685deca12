"""WorkloadIdentityBinding: a Kubernetes workload bound (or deliberately not) to an identity.

AKS workload identity has three parts that must agree, and each fails silently when it
does not:

* a **federated credential** on the user-assigned identity whose issuer is the cluster's
  ``oidcIssuerProfile.issuerURL`` *exactly* (Entra ID compares strings: a missing trailing
  slash is AADSTS700211), whose subject is ``system:serviceaccount:<namespace>:<name>``
  (a typo is AADSTS700213) and whose audience is ``api://AzureADTokenExchange``;
* the **service account**, annotated ``azure.workload.identity/client-id`` so the webhook
  injects ``AZURE_CLIENT_ID``;
* the **pods**, labelled ``azure.workload.identity/use: "true"`` so the webhook projects the
  token file and injects the environment at all.

This component makes all three from one declaration: the issuer is the cluster's *output*,
never a typed copy, and the subject is built from the same namespace and name the service
account gets. Without an identity it makes the service account and the workload with no
annotation and no label: the workload runs without workload identity, and a call to IMDS
from it answers as the node's kubelet identity (which is why the verifier checks the
source of every token, not only that one came back).

Credentials on one identity are written one at a time and at most 20
(:meth:`UserAssignedIdentity.federate`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from components.errors import ConfigError
from components.identity import TOKEN_EXCHANGE_AUDIENCE, FederatedCredential

if TYPE_CHECKING:
    from components.aks import AksCluster
    from components.identity import UserAssignedIdentity

# The workload identity webhook's contract (Azure/azure-workload-identity
# pkg/webhook/consts.go): the pod label it acts on, the service account annotations it
# reads, and what it injects.
USE_LABEL = "azure.workload.identity/use"
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
TENANT_ID_ANNOTATION = "azure.workload.identity/tenant-id"
TOKEN_DIRECTORY = "/var/run/secrets/azure/tokens"  # noqa: S105 (a path)
TOKEN_FILE = f"{TOKEN_DIRECTORY}/azure-identity-token"
INJECTED_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
)
#: Projected service-account token lifetime the webhook allows (seconds).
TOKEN_LIFETIME_RANGE = (3600, 86400)

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CREDENTIAL = re.compile(r"[^A-Za-z0-9_-]+")
DEFAULT_IMAGE = "mcr.microsoft.com/azurelinux/base/python:3.12"


def namespace_name(value: object, field: str = "namespace") -> str:
    """A Kubernetes namespace: an RFC 1123 label (lower case, 1-63)."""
    if not isinstance(value, str) or len(value) > 63 or not _LABEL.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid Kubernetes namespace",
            "use 1-63 lower-case letters, digits and '-', starting and ending with a "
            "letter or digit",
        )
    return value


def service_account_name(value: object, field: str = "serviceAccount") -> str:
    """A Kubernetes service account name: an RFC 1123 subdomain (lower case, 1-253)."""
    if not isinstance(value, str) or len(value) > 253 or not _SUBDOMAIN.match(value):
        raise ConfigError(
            field,
            value,
            "is not a valid Kubernetes service account name",
            "use lower-case letters, digits, '-' and '.', starting and ending with a "
            "letter or digit (at most 253)",
        )
    return value


def service_account_subject(namespace: str, service_account: str) -> str:
    """The ``sub`` of the service account's projected token, as the federated credential
    must name it (case-sensitive)."""
    return (
        f"system:serviceaccount:{namespace_name(namespace)}:{service_account_name(service_account)}"
    )


def credential_name(*parts: str) -> str:
    """A federated credential name from ``parts`` (3-120 of ``[A-Za-z0-9_-]``)."""
    name = "-".join(_CREDENTIAL.sub("-", p).strip("-") for p in parts if p)
    return name[:120].rstrip("-_") or "workload"


@dataclass(frozen=True)
class WorkloadSpec:
    """The Deployment that runs as the service account (an idle container by default,
    where the probe or the user's code can run)."""

    name: str
    image: str = DEFAULT_IMAGE
    command: Sequence[str] = ("sleep", "infinity")
    replicas: int = 1


@dataclass(frozen=True)
class WorkloadIdentityBindingArgs:
    cluster: AksCluster
    namespace: str
    service_account: str
    identity: UserAssignedIdentity | None = None
    """None: no workload identity (no credential, annotation or label)."""
    workload: WorkloadSpec | None = None
    """None: a Deployment named after the service account."""
    credential_name: str | None = None
    """Defaults to ``<resource name>-<namespace>-<service account>``."""
    labels: dict[str, str] = field(default_factory=dict)


class WorkloadIdentityBinding(pulumi.ComponentResource):
    """The federated credential, the Kubernetes service account and a labelled workload.

    Outputs: ``subject``, ``issuer`` (the cluster's, exactly), ``client_id`` (the
    identity's; None without one), ``service_account`` and ``deployment`` (the
    pulumi-kubernetes resources), ``federated_credential`` (None without an identity).
    """

    def __init__(
        self,
        resource_name: str,
        args: WorkloadIdentityBindingArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        subject = service_account_subject(args.namespace, args.service_account)
        workload = args.workload or WorkloadSpec(name=args.service_account)
        if not _SUBDOMAIN.match(workload.name) or len(workload.name) > 253:
            raise ConfigError(
                "workload.name",
                workload.name,
                "is not a valid Kubernetes Deployment name",
                "use lower-case letters, digits, '-' and '.'",
            )
        cred_name = args.credential_name or credential_name(
            resource_name, args.namespace, args.service_account
        )
        super().__init__(
            "mikit:containerservice:WorkloadIdentityBinding", resource_name, None, opts
        )
        import pulumi_kubernetes as k8s  # noqa: PLC0415 (a heavy import, paid on use)

        cluster = args.cluster
        self.subject = subject
        self.issuer: pulumi.Output[str] = cluster.oidc_issuer_url
        self.federated_credential = (
            args.identity.federate(
                FederatedCredential(
                    name=cred_name,
                    issuer=cluster.oidc_issuer_url,
                    subject=subject,
                    audiences=(TOKEN_EXCHANGE_AUDIENCE,),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            if args.identity is not None
            else None
        )
        self.client_id: pulumi.Output[str | None] = (
            args.identity.client_id if args.identity is not None else pulumi.Output.from_input(None)
        )
        namespace = cluster.namespace(args.namespace)
        k8s_opts = pulumi.ResourceOptions(
            parent=self, provider=cluster.provider, depends_on=[namespace] if namespace else []
        )
        annotations = (
            {CLIENT_ID_ANNOTATION: args.identity.client_id} if args.identity is not None else None
        )
        self.service_account: Any = k8s.core.v1.ServiceAccount(
            f"{resource_name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=args.service_account,
                namespace=args.namespace,
                annotations=annotations,
                labels=dict(args.labels) or None,
            ),
            # The pods need no Kubernetes API token; the webhook projects its own
            # audience-bound token for Entra ID regardless of this setting.
            automount_service_account_token=False,
            opts=k8s_opts,
        )
        selector = {"app.kubernetes.io/name": workload.name}
        pod_labels = {**selector, **args.labels}
        if args.identity is not None:
            pod_labels[USE_LABEL] = "true"
        self.deployment: Any = k8s.apps.v1.Deployment(
            f"{resource_name}-workload",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=workload.name, namespace=args.namespace, labels=dict(args.labels) or None
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=workload.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=pod_labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        service_account_name=args.service_account,
                        automount_service_account_token=False,
                        security_context=k8s.core.v1.PodSecurityContextArgs(
                            run_as_non_root=True,
                            run_as_user=65532,
                            run_as_group=65532,
                            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
                        ),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name=workload.name.replace(".", "-")[:63],
                                image=workload.image,
                                command=list(workload.command),
                                security_context=k8s.core.v1.SecurityContextArgs(
                                    allow_privilege_escalation=False,
                                    read_only_root_filesystem=True,
                                    capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
                                ),
                            )
                        ],
                    ),
                ),
            ),
            # Pods started before the trust exists would fail their first exchanges.
            opts=pulumi.ResourceOptions.merge(
                k8s_opts,
                pulumi.ResourceOptions(
                    depends_on=[self.service_account]
                    + ([self.federated_credential] if self.federated_credential else [])
                ),
            ),
        )
        self.register_outputs(
            {"subject": subject, "issuer": self.issuer, "client_id": self.client_id}
        )
