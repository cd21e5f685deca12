"""A sandbox as it was at one moment, to go back to: :class:`SandboxSnapshot`.

``Sandbox.snapshot()`` takes one (say right after a deploy) and ``Sandbox.restore()``
puts the sandbox back, in a small fraction of a deploy's time, so each test that changes
a deployment can start from "freshly deployed" without deploying again. A restore brings
back the state with the ARM model's documents it holds (deep copies: the snapshot can be
restored any number of times), the faults and knobs, the clusters' OIDC issuers and Graph's
directory-read switch; every per-resource listener answers again at the port it had (the
stack's outputs carry the vault URLs and blob endpoints); the token caches of IMDS and the
app identity endpoints are emptied and the request log cleared, as on a sandbox that has
served nobody yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from verify.sandbox.listeners import Ports
from verify.sandbox.state.snapshot import DataTree


@dataclass(frozen=True)
class SandboxSnapshot:
    state: DataTree
    #: The ARM model's documents (what a deploy wrote, what the ARM front serves).
    arm: DataTree
    faults: DataTree
    #: The clusters' OIDC issuers (which ones exist; each keeps its key, made on first use,
    #: for the sandbox's life: ``ClusterIssuers.NOT_SNAPSHOTTED``).
    clusters: DataTree
    graph_directory_read: bool
    #: Where each per-resource listener answered (none if the sandbox was not started).
    ports: Ports
