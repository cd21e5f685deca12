"""Host kind -> the credential source its tokens must come from.

A token from the right principal but the wrong source is still the wrong proof: a pod
without workload identity that reaches IMDS gets the node's identity; an App Service
app whose endpoint variables are missing falls through to another credential. The probe
reports the source that answered (``verify.probe.credential_source``); the judge fails a
host whose token came from any source but its own, naming it. A new host kind is one
entry here.
"""

from __future__ import annotations

#: ``vm``: Azure's Instance Metadata Service on the VM. ``app`` (web app, Function app,
#: container app): the platform's identity endpoint (``IDENTITY_ENDPOINT`` +
#: ``IDENTITY_HEADER``), which azure-identity reaches as App Service's credential.
EXPECTED_SOURCES: dict[str, str] = {
    "vm": "imds",
    "app": "app_service",
    # A scale-set instance: IMDS, as a VM. A cluster workload: its projected token
    # exchanged at Entra ID. A workload without one reaches IMDS on its node (the kubelet
    # identity) and is judged as that: it passes only if it reads nothing not granted.
    "scaleset": "imds",
    "workload": "workload_identity",
    "workload_without_identity": "imds",
}


def source_problem(host_kind: str, source: str | None) -> str | None:
    """Why a token from ``source`` does not count for a host of ``host_kind`` (or None)."""
    expected = EXPECTED_SOURCES.get(host_kind)
    if expected is None:
        return f"no credential source is known for host kind {host_kind!r}"
    if source is None:
        return "the probe did not report which credential source answered"
    if source != expected:
        return (
            f"the token came from credential source {source!r}, but a {host_kind} must get "
            f"its tokens from {expected!r}"
        )
    return None
