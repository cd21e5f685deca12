"""``mikit:clusters``: AKS clusters and their workloads, each bound to an identity or not.

A workload ``{namespace, serviceAccount, identity}`` gets a federated credential on that
user-assigned identity, made from the cluster's issuer *output* (so issuer and subject
cannot be mistyped), an annotated service account and labelled pods. Without
``identity`` it runs without workload identity: grants cannot name it, because on AKS
such a pod reaches IMDS as the node's kubelet identity, which no grant here should feed.

Grants name ``workload:<workload key>``: that workload's identity receives the grant (so
does every other host holding that identity, exactly as Azure sees it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

from pydantic import Field

from components import validation
from components.aks import cluster_name
from components.arm.rules import MAX_FEDERATED_CREDENTIALS
from components.errors import ConfigError
from components.identity import TOKEN_EXCHANGE_AUDIENCE
from components.stack_config.base import ConfigModel, choices
from components.stack_config.hosts import GrantPrincipal, HostConfig
from components.stack_config.keys import NAMESPACE
from components.workload_identity import namespace_name, service_account_name

if TYPE_CHECKING:
    from components.stack_config.schema import StackConfig


class WorkloadConfig(ConfigModel):
    namespace: str
    service_account: str
    #: A ``mikit:identities`` key; absent: no workload identity.
    identity: str | None = None


class ClusterConfig(HostConfig):
    PRINCIPAL_PREFIX: ClassVar[str] = "workload"
    NOUN: ClassVar[str] = "a workload"
    PRINCIPAL_HINT: ClassVar[str] = "workload:<workload key> (its identity)"

    name: str
    node_count: int = 1
    node_size: str | None = None
    workloads: dict[str, WorkloadConfig] = Field(default_factory=dict)

    def check(self, key: str, where: str, cfg: StackConfig) -> None:
        cluster_name(self.name, f"{where}.name")
        if isinstance(self.node_count, bool) or not 1 <= self.node_count <= 1000:
            raise ConfigError(
                f"{where}.nodeCount", self.node_count, "is not 1-1000 nodes", "use 1 or more"
            )
        if self.node_size is not None:
            validation.vm_size(self.node_size, f"{where}.nodeSize")
        subjects: dict[tuple[str, str], str] = {}
        for wkey, workload in self.workloads.items():
            at = f"{where}.workloads.{wkey}"
            validation.logical_key(wkey, at)
            for other_key, other in cfg.clusters.items():
                if other_key != key and wkey in other.workloads:
                    raise ConfigError(
                        at,
                        wkey,
                        f"is also a workload of {NAMESPACE}:clusters.{other_key}",
                        "give each workload a key of its own (grants name them workload:<key>)",
                    )
            namespace_name(workload.namespace, f"{at}.namespace")
            service_account_name(workload.service_account, f"{at}.serviceAccount")
            subject = (workload.namespace, workload.service_account)
            if subject in subjects:
                raise ConfigError(
                    f"{at}.serviceAccount",
                    workload.service_account,
                    f"is already used in namespace {workload.namespace!r} by workload "
                    f"{subjects[subject]!r}: one service account has one subject, and Entra "
                    "ID refuses a second credential with the same issuer and subject",
                    "give this workload a service account of its own",
                )
            subjects[subject] = wkey
            if workload.identity is not None:
                if workload.identity not in cfg.identities:
                    raise ConfigError(
                        f"{at}.identity",
                        workload.identity,
                        "is not a key of mikit:identities",
                        choices("use one of", cfg.identities),
                    )
                _check_credential_count(cfg, workload.identity, f"{at}.identity")

    def grant_principals(self, key: str, where: str) -> Iterator[GrantPrincipal]:
        for wkey, workload in self.workloads.items():
            at = f"{where}.workloads.{wkey}"
            reference = f"{self.PRINCIPAL_PREFIX}:{wkey}"
            if workload.identity is not None:
                yield GrantPrincipal(reference, at, identity=workload.identity)
            else:
                yield GrantPrincipal(
                    reference,
                    at,
                    unavailable=(
                        "names a workload that runs without workload identity (its pods "
                        "would reach IMDS as the node's kubelet identity)",
                        f"set {at}.identity: <identity key>",
                    ),
                )


def federated_workloads(cfg: StackConfig, identity: str) -> list[str]:
    """``<cluster key>/<workload key>`` of every workload federated to ``identity``."""
    return [
        f"{ckey}/{wkey}"
        for ckey, cluster in cfg.clusters.items()
        for wkey, workload in cluster.workloads.items()
        if workload.identity == identity
    ]


def _check_credential_count(cfg: StackConfig, identity: str, field: str) -> None:
    declared = len(cfg.identities[identity].federated_credentials)
    workloads = federated_workloads(cfg, identity)
    total = declared + len(workloads)
    if total > MAX_FEDERATED_CREDENTIALS:
        raise ConfigError(
            field,
            identity,
            f"needs {total} federated credentials on one identity ({declared} in "
            f"{NAMESPACE}:identities.{identity}.federatedCredentials, {len(workloads)} "
            f"workload{'s' if len(workloads) != 1 else ''}); Entra ID allows "
            f"{MAX_FEDERATED_CREDENTIALS}",
            "bind some workloads to a second identity",
        )


#: AKS's OIDC issuer hosts: ``<region>.oic.prod-aks.azure.com`` (and sovereign clouds').
_AKS_ISSUER_HOST = re.compile(r"^[a-z0-9-]+\.oic\.prod-aks\.azure\.[a-z.]+$")
_SA_SUBJECT = "system:serviceaccount:"


def check_declared_federation(cfg: StackConfig) -> None:
    """Hand-written credentials (``mikit:identities.<k>.federatedCredentials``) meant for
    Kubernetes service accounts, held to what AKS tokens carry.

    Entra ID compares issuer, subject and audience as strings, so each mistake here is a
    failed exchange at run time (AADSTS700211/700213/700212), caught now instead.
    """
    for ikey, identity in cfg.identities.items():
        for i, cred in enumerate(identity.federated_credentials):
            at = f"{NAMESPACE}:identities.{ikey}.federatedCredentials[{i}]"
            host = urlsplit(cred.issuer).hostname or ""
            aks_issuer = bool(_AKS_ISSUER_HOST.match(host))
            looks_like_sa = cred.subject.lower().startswith(("system:serviceacc", "system:sa:"))
            if aks_issuer and not cred.issuer.endswith("/"):
                raise ConfigError(
                    f"{at}.issuer",
                    cred.issuer,
                    "lacks the trailing slash every AKS issuer URL ends with; Entra ID "
                    "compares issuers character by character (AADSTS700211)",
                    f"write {cred.issuer}/ (as az aks show --query "
                    "oidcIssuerProfile.issuerURL prints it), or declare the workload under "
                    f"{NAMESPACE}:clusters so the stack federates it from the cluster's output",
                )
            if aks_issuer or looks_like_sa:
                _check_sa_subject(cred.subject, f"{at}.subject")
            if aks_issuer and list(cred.audiences) != [TOKEN_EXCHANGE_AUDIENCE]:
                raise ConfigError(
                    f"{at}.audiences",
                    list(cred.audiences),
                    "is not the audience of the tokens AKS projects for workload identity "
                    "(AADSTS700212)",
                    f"use [{TOKEN_EXCHANGE_AUDIENCE!r}]",
                )
            if looks_like_sa:
                for ckey, cluster in cfg.clusters.items():
                    for wkey, workload in cluster.workloads.items():
                        subject = f"{_SA_SUBJECT}{workload.namespace}:{workload.service_account}"
                        if workload.identity == ikey and cred.subject == subject:
                            raise ConfigError(
                                at,
                                cred.name,
                                f"is the credential workload {wkey!r} of "
                                f"{NAMESPACE}:clusters.{ckey} already gets from the cluster's "
                                "issuer output (a typed copy of an issuer is how AADSTS700211 "
                                "happens)",
                                "remove this entry",
                            )


def _check_sa_subject(subject: str, field: str) -> None:
    parts = subject.split(":")
    if not subject.startswith(_SA_SUBJECT) or len(parts) != 4:
        raise ConfigError(
            field,
            subject,
            "is not the subject of a Kubernetes service account token (AADSTS700213 at "
            "the first exchange)",
            "write system:serviceaccount:<namespace>:<service account>",
        )
    for check, part, what in (
        (namespace_name, parts[2], "namespace"),
        (service_account_name, parts[3], "service account"),
    ):
        try:
            check(part, field)
        except ConfigError as error:
            raise ConfigError(
                field, subject, f"names {what} {part!r}, which {error.problem}", error.fix
            ) from None
