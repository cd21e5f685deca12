"""``pytest -m benchmark``: the critical-path model on graphs with known answers, and a
quick run of the whole suite. Not part of the default run (pyproject deselects the
marker); the figures themselves come from ``tests/benchmarks/run.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import graph
import run
import topology

pytestmark = pytest.mark.benchmark

RG = "azure-native:resources:ResourceGroup"
NIC = "azure-native:network:NetworkInterface"
UAI = "azure-native:managedidentity:UserAssignedIdentity"
VAULT = "azure-native:keyvault:Vault"
RA = "azure-native:authorization:RoleAssignment"


def node(urn: str, typ: str, *deps: str, custom: bool = True) -> graph.Node:
    return graph.Node(urn, typ, urn, custom, "", frozenset(deps))


def weights(**overrides: float) -> dict[str, float]:
    base = {t: d[graph.TYPICAL] for t, d in graph.DURATIONS.items()}
    base.update(overrides)
    return base


def test_identity_off_the_vm_path_costs_nothing() -> None:
    nodes = {
        "rg": node("rg", RG),
        "nic": node("nic", NIC, "rg"),
        "uai": node("uai", UAI, "rg"),
        "vm": node("vm", graph.VM, "nic", "uai"),
        "ra": node("ra", RA, "vm"),
    }
    w = weights(**{RG: 5, NIC: 50, UAI: 10, graph.VM: 90, RA: 10})
    result = graph.analyse(nodes, w)
    assert result["makespan"] == 155  # rg 5 + nic 50 + vm 90 + ra 10
    assert result["vm_ready"] == result["vm_ready_bare"] == 145
    assert result["lower_bound"] == 155
    assert result["lost_to_needless_dependencies"] == 0
    assert result["identity_slack_before_vm"] == 40  # uai done at 15, vm starts at 55


def test_a_needless_dependency_is_reported() -> None:
    # The VM waits for the vault although nothing of it flows into the VM.
    nodes = {
        "rg": node("rg", RG),
        "nic": node("nic", NIC, "rg"),
        "vault": node("vault", VAULT, "rg"),
        "vm": node("vm", graph.VM, "nic", "vault"),
        "ra": node("ra", RA, "vm", "vault"),
    }
    w = weights(**{RG: 5, NIC: 5, VAULT: 90, graph.VM: 90, RA: 10})
    result = graph.analyse(nodes, w)
    assert result["vm_ready"] == 185 and result["vm_ready_bare"] == 100
    assert result["lost_to_needless_dependencies"] == 85
    assert "VirtualMachine vm (+90 s)" in result["critical_chain"]


def test_components_do_not_count_as_work_and_cycles_are_refused() -> None:
    nodes = {
        "comp": node("comp", "mikit:compute:LinuxVirtualMachine", custom=False),
        "vm": node("vm", graph.VM, "comp"),
    }
    assert graph.schedule(nodes).finish["vm"] == graph.DURATIONS[graph.VM][graph.TYPICAL]
    loop = {"a": node("a", RA, "b"), "b": node("b", RA, "a")}
    with pytest.raises(ValueError, match="cycle"):
        graph.schedule(loop)


def test_generated_topology_scales_linearly() -> None:
    small, large = topology.counts(100), topology.counts(400)
    assert large["identities"] == 4 * small["identities"] == 40
    assert large["grants"] == 4 * small["grants"]
    assert large["matrix_cells"] == 4 * small["matrix_cells"]
    config = topology.stack_config(3)
    assert all(vm["systemIdentity"] and vm["userAssigned"] for vm in config["mikit:vms"].values())


def test_quick_suite_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert run.main(["--quick", "--reps", "1", "--only", "graph", "--only", "floor"]) == 0
    printed = capsys.readouterr().out
    assert "makespan" in printed and "lost to needless dependencies 0 s" in printed
    assert "plain HTTP" in printed and "ratio" in printed
