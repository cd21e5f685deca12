"""The dependency graph a program registers, and its critical path under typical Azure times.

Pulumi's engine creates a resource once every resource it depends on exists; the SDK
tells the engine those dependencies in each ``RegisterResource`` request (``dependencies``:
explicit ``depends_on`` plus every resource whose outputs flow into an input). The mock
runtime records them with each registration (:func:`nodes_of`), so the graph analysed here
is exactly the one ``pulumi up`` would schedule, not one we reconstructed.

Weights are typical creation times, not measurements of ours: see ``DURATIONS`` and
docs/performance.md for where each figure comes from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Node:
    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    dependencies: frozenset[str]


def nodes_of(registrations: Iterable[Any]) -> dict[str, Node]:
    """The graph of one mock run, from its :class:`AzureMocks` registrations.

    The mock runtime's monitor hands every registration its URN and ``dependencies``
    (explicit ``depends_on`` plus every resource whose outputs flow into an input: the SDK
    folds ``propertyDependencies`` into that set), so this reads the graph Pulumi's engine
    would schedule off the public record of the run, without patching the monitor.
    """
    nodes: dict[str, Node] = {}
    for r in registrations:
        if not r.urn:
            raise ValueError(f"{r.type} {r.name} was registered without a URN")
        nodes[r.urn] = Node(r.urn, r.type, r.name, bool(r.custom), "", frozenset(r.dependencies))
    return nodes


# Typical creation times in seconds (low, typical, high) per azure-native type: rounded
# figures seen in public deployment logs and Microsoft's guidance, listed with their
# sources in docs/performance.md. Only their relative sizes matter for the conclusions.
DURATIONS: Mapping[str, tuple[float, float, float]] = {
    "azure-native:resources:ResourceGroup": (1, 5, 10),
    "azure-native:network:NetworkSecurityGroup": (3, 5, 15),
    "azure-native:network:VirtualNetwork": (4, 10, 20),
    "azure-native:network:PublicIPAddress": (3, 4, 10),
    "azure-native:network:NatGateway": (10, 20, 40),
    "azure-native:network:Subnet": (5, 10, 20),
    "azure-native:network:NetworkInterface": (2, 5, 15),
    "azure-native:managedidentity:UserAssignedIdentity": (3, 10, 20),
    "azure-native:managedidentity:FederatedIdentityCredential": (2, 5, 10),
    "azure-native:authorization:ManagementLockByScope": (1, 2, 5),
    "azure-native:keyvault:Vault": (20, 90, 190),
    "azure-native:keyvault:Secret": (1, 3, 10),
    "azure-native:compute:VirtualMachine": (45, 90, 180),
    "azure-native:authorization:RoleAssignment": (3, 10, 30),
}
TYPICAL = 1
KIND = {
    "azure-native:resources:ResourceGroup": "resource group",
    "azure-native:network:NetworkSecurityGroup": "network",
    "azure-native:network:VirtualNetwork": "network",
    "azure-native:network:PublicIPAddress": "network",
    "azure-native:network:NatGateway": "network",
    "azure-native:network:Subnet": "network",
    "azure-native:network:NetworkInterface": "network",
    "azure-native:managedidentity:UserAssignedIdentity": "identity",
    "azure-native:managedidentity:FederatedIdentityCredential": "identity",
    "azure-native:authorization:ManagementLockByScope": "identity",
    "azure-native:keyvault:Vault": "vault",
    "azure-native:keyvault:Secret": "secret",
    "azure-native:compute:VirtualMachine": "vm",
    "azure-native:authorization:RoleAssignment": "role assignment",
}
VM = "azure-native:compute:VirtualMachine"
# What a VM needs to exist at all: the identity layer (identities, vault, secrets, grants)
# is everything else.
VM_ESSENTIALS = frozenset({"resource group", "network", "vm"})


@dataclass
class Schedule:
    """Earliest finish of every node when everything runs as early as its deps allow."""

    finish: dict[str, float]
    via: dict[str, str | None]
    nodes: Mapping[str, Node] = field(repr=False)

    def chain(self, urn: str) -> list[str]:
        out: list[str] = []
        current: str | None = urn
        while current is not None:
            out.append(current)
            current = self.via.get(current)
        return list(reversed(out))


def weight(node: Node, column: int | Mapping[str, float] = TYPICAL) -> float:
    if not node.custom:
        return 0.0  # a component is a logical grouping: nothing is created in Azure
    if isinstance(column, Mapping):
        return float(column[node.type])
    return float(DURATIONS[node.type][column])


def schedule(
    nodes: Mapping[str, Node],
    column: int | Mapping[str, float] = TYPICAL,
    keep: frozenset[str] | None = None,
) -> Schedule:
    """Longest-path finish times over the DAG (optionally only the kinds in ``keep``)."""
    chosen = {
        urn: n
        for urn, n in nodes.items()
        if keep is None or not n.custom or KIND.get(n.type, "other") in keep
    }
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    visiting: set[str] = set()

    def visit(urn: str) -> float:
        if urn in finish:
            return finish[urn]
        if urn in visiting:
            raise ValueError(f"dependency cycle through {urn}")
        visiting.add(urn)
        node = chosen[urn]
        start, best = 0.0, None
        for dep in node.dependencies:
            if dep in chosen and visit(dep) > start:
                start, best = finish[dep], dep
        visiting.discard(urn)
        finish[urn] = start + weight(node, column)
        via[urn] = best
        return finish[urn]

    for urn in chosen:
        visit(urn)
    return Schedule(finish, via, chosen)


def analyse(
    nodes: Mapping[str, Node], column: int | Mapping[str, float] = TYPICAL
) -> dict[str, Any]:
    """Critical path, and whether the identity layer lengthens the VMs' paths.

    * ``makespan``: the longest weighted chain (what ``pulumi up`` would take with
      unlimited parallelism).
    * ``vm_ready``: when the last VM exists; ``vm_ready_bare``: the same with the whole
      identity layer removed (identities, vault, secrets, role assignments). Equal means
      the identity layer adds nothing to the VMs' own path.
    * ``lower_bound``: ``vm_ready_bare`` + one role assignment: a grant to a VM's system
      identity can only be made once the VM exists (its principal ID comes from it), so no
      topology with such grants can finish sooner. ``makespan - lower_bound`` is time the
      graph loses to dependencies it did not need.
    """
    full = schedule(nodes, column)
    bare = schedule(nodes, column, keep=VM_ESSENTIALS)
    vms = [u for u, n in nodes.items() if n.type == VM]
    last = max(full.finish, key=lambda u: full.finish[u])
    ra_weight = weight(
        Node("", "azure-native:authorization:RoleAssignment", "", True, "", frozenset()), column
    )
    vm_ready = max(full.finish[u] for u in vms) if vms else 0.0
    vm_ready_bare = max(bare.finish[u] for u in vms) if vms else 0.0
    has_vm_grant = any(
        n.type == "azure-native:authorization:RoleAssignment"
        and any(nodes[d].type == VM for d in n.dependencies if d in nodes)
        for n in nodes.values()
    )
    lower_bound = max(
        vm_ready_bare + (ra_weight if has_vm_grant else 0.0),
        max((bare.finish.get(u, 0.0) for u in nodes), default=0.0),
    )
    identity_layer_path = {}
    for kind in ("identity", "vault", "secret", "role assignment"):
        finishes = [full.finish[u] for u, n in nodes.items() if KIND.get(n.type) == kind]
        if finishes:
            identity_layer_path[kind] = max(finishes)
    return {
        "makespan": full.finish[last],
        "critical_chain": [
            f"{nodes[u].type.split(':')[-1]} {nodes[u].name} (+{weight(nodes[u], column):g} s)"
            for u in full.chain(last)
            if nodes[u].custom
        ],
        "vm_ready": vm_ready,
        "vm_ready_bare": vm_ready_bare,
        "lower_bound": lower_bound,
        "lost_to_needless_dependencies": full.finish[last] - lower_bound,
        "last_finish_by_kind": identity_layer_path,
        "vm_dependencies": sorted(
            {
                KIND.get(nodes[d].type, nodes[d].type)
                for u in vms
                for d in nodes[u].dependencies
                if d in nodes and nodes[d].custom
            }
        ),
        "identity_slack_before_vm": min(
            (
                full.finish[u] - weight(nodes[u], column) - full.finish[d]
                for u in vms
                for d in nodes[u].dependencies
                if d in nodes and KIND.get(nodes[d].type) == "identity"
            ),
            default=None,
        ),
        "role_assignment_dependencies": sorted(
            {
                KIND.get(nodes[d].type, nodes[d].type)
                for n in nodes.values()
                if n.type == "azure-native:authorization:RoleAssignment"
                for d in n.dependencies
                if d in nodes and nodes[d].custom
            }
        ),
        "resources": sum(1 for n in nodes.values() if n.custom),
        "edges": sum(len(n.dependencies) for n in nodes.values() if n.custom),
    }
