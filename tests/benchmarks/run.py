"""Run every benchmark and print each figure as a ratio plus the raw medians.

    uv run python tests/benchmarks/run.py            # the full run (about 10 minutes, 2 cores)
    uv run python tests/benchmarks/run.py --quick    # smaller sizes (a few minutes)
    uv run python tests/benchmarks/run.py --smoke    # every figure at its smallest size
    uv run python tests/benchmarks/run.py --json benchmark.json

Every measurement runs in a process of its own (``measure.py``), so imports, caches and
peak memory of one never pollute another, and the two sides of each ratio are measured
alternately in the same run (components, raw, components, raw, ...), so a busy machine
slows both sides alike. Figures are medians over ``--reps`` repetitions.

``--smoke`` is what the test suite runs (``tests/benchmarks/test_figures_smoke.py``): each
figure at its smallest size, measured in the calling process (``--in-process``) to skip
a fresh interpreter's imports, so a figure that no longer runs fails the suite. Its
numbers mean nothing and nothing judges them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import topology  # noqa: E402

#: The README's main job: the whole lifecycle on the sandbox, as a user runs it
#: (``python -m uv run --locked --no-dev python -m verify lifecycle --target sandbox --quiet``).
LIFECYCLE = ("python", "-m", "verify", "lifecycle", "--target", "sandbox", "--quiet")


def lifecycle_command(through_uv: bool, extra: Sequence[str] = ()) -> list[str]:
    """The README's command; without ``through_uv`` the same ``python -m verify`` run by
    this interpreter (a smoke run inside the test suite must not have uv re-check, and
    perhaps re-install into, the environment the other tests are running from)."""
    verify = [sys.executable, *LIFECYCLE[1:], *extra]
    if not through_uv:
        return verify
    found = os.environ.get("UV") or shutil.which("uv")  # `uv run` exports UV
    uv = [found] if found else [sys.executable, "-m", "uv"]
    return [*uv, "run", "--locked", "--no-dev", *LIFECYCLE, *extra]


class Settings:
    """How :func:`measure` runs a measurement (``--in-process`` sets ``in_process``)."""

    in_process = False


def measure(kind: str, **args: Any) -> dict[str, Any]:
    if Settings.in_process:
        import measure as measurements  # noqa: PLC0415  (this directory's measure.py)

        # Through JSON, as from a process: the figures see the same types either way.
        result: dict[str, Any] = json.loads(json.dumps(measurements.KINDS[kind](args)))
        return result
    done = subprocess.run(
        [sys.executable, str(HERE / "measure.py"), kind, json.dumps(args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} {args} failed:\n{done.stderr[-2000:]}")
    measured: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return measured


def median(rows: Sequence[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in rows))


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
    }


def goal(value: float, limit: float) -> str:
    return f"{'meets' if value <= limit else 'MISSES'} goal <= {limit:g}"


class Printer:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, text: str = "") -> None:
        print(text, flush=True)

    def section(self, title: str) -> None:
        self(f"\n== {title}  [{time.monotonic() - self.started:5.0f} s into the run]")


# --------------------------------------------------------------------------- 1


def program_cost(
    out: Printer, sizes: Sequence[int], reps: Callable[[int], int], warm_up: bool = True
) -> dict[str, Any]:
    out.section("1. Program cost: components vs raw pulumi-azure-native, same mocks")
    results: dict[str, Any] = {}
    for vms in sizes:
        programs = ("components", "raw", "parented") if vms <= 100 else ("components", "raw")
        rows: dict[str, list[dict[str, Any]]] = {which: [] for which in programs}
        for _ in range(reps(vms)):
            for which in programs:
                rows[which].append(measure("program", which=which, vms=vms, warm_up=warm_up))
        comp, raw = rows["components"], rows["raw"]
        entry = {
            "topology": topology.counts(vms),
            "reps": reps(vms),
            "components": {k: median(comp, k) for k in comp[0]},
            "raw": {k: median(raw, k) for k in raw[0]},
            "runs_seconds": {k: [round(r["seconds"], 2) for r in v] for k, v in rows.items()},
        }
        if "parented" in rows:
            entry["parented"] = {k: median(rows["parented"], k) for k in raw[0]}
        entry["ratio"] = entry["components"]["seconds"] / entry["raw"]["seconds"]
        entry["cpu_ratio"] = entry["components"]["cpu_seconds"] / entry["raw"]["cpu_seconds"]
        results[str(vms)] = entry
        c, r = entry["components"], entry["raw"]
        out(
            f"{vms:4d} VMs ({c['custom_resources']} resources,"
            f" {entry['topology']['grants']} grants,"
            f" {c['matrix_rows']} matrix rows), median of {reps(vms)}:"
        )
        out(
            f"     components {c['seconds']:7.2f} s  cpu {c['cpu_seconds']:7.2f} s"
            f"  peak RSS {c['peak_rss_mib']:6.0f} MiB"
            f" (+{c['rss_growth_mib']:.0f} during the run)"
            f"  ({c['registrations']} registrations)"
        )
        out(
            f"     raw        {r['seconds']:7.2f} s  cpu {r['cpu_seconds']:7.2f} s"
            f"  peak RSS {r['peak_rss_mib']:6.0f} MiB"
            f" (+{r['rss_growth_mib']:.0f} during the run)"
            f"  ({r['registrations']} registrations)"
        )
        if "parented" in entry:
            p = entry["parented"]
            entry["pattern_ratio"] = p["seconds"] / r["seconds"]
            entry["own_ratio"] = c["seconds"] / p["seconds"]
            out(
                f"     raw+parent {p['seconds']:7.2f} s  cpu {p['cpu_seconds']:7.2f} s"
                f"  (raw with bare components as parents: Pulumi's component pattern alone)"
            )
        out(
            f"     ratio components/raw = {entry['ratio']:.2f} wall, {entry['cpu_ratio']:.2f} cpu"
            f"  ({goal(entry['ratio'], 1.15)})"
        )
        if "parented" in entry:
            out(
                f"       = pattern (raw+parent/raw) {entry['pattern_ratio']:.2f}"
                f" x our components' own work (components/raw+parent) {entry['own_ratio']:.2f}"
            )
    calls = {
        which: measure("program", which=which, vms=sizes[0], count_calls=True, warm_up=warm_up)[
            "calls"
        ]
        for which in ("components", "raw", "parented")
    }
    results["calls"] = {"vms": sizes[0], **calls}
    out(
        f"function calls at {sizes[0]} VMs (cProfile; deterministic, so independent of load):"
        f" components {calls['components'] / 1e6:.2f} M, raw {calls['raw'] / 1e6:.2f} M,"
        f" raw+parent {calls['parented'] / 1e6:.2f} M -> components/raw"
        f" {calls['components'] / calls['raw']:.2f}"
        f" = pattern {calls['parented'] / calls['raw']:.2f}"
        f" x ours {calls['components'] / calls['parented']:.2f}"
    )
    if len(sizes) >= 2:
        small, large = str(sizes[-2]), str(sizes[-1])
        factor = sizes[-1] / sizes[-2]
        limit = 1.1 * factor
        for which in ("components", "raw"):
            growth = results[large][which]["seconds"] / results[small][which]["seconds"]
            results[f"growth_{which}"] = growth
            out(
                f"growth {small} -> {large} VMs ({which}): x{growth:.2f} wall"
                f" ({goal(growth, limit)}; linear would be x{factor:g})"
            )
    return results


# --------------------------------------------------------------------------- 2


def time_to_verified(out: Printer, delay: float, reps: int, longer: bool = True) -> dict[str, Any]:
    out.section("2. Time-to-verified: grant, then the probe (a process) polls until it reads")
    results: dict[str, Any] = {}
    for d, n in ((delay, reps), (3 * delay, 1))[: 2 if longer else 1]:
        rows = [measure("ttv", delay=d) for _ in range(n)]
        entry = {
            "delay": d,
            "seconds_to_first_read": median(rows, "seconds_to_first_read"),
            "ratio": median(rows, "ratio"),
            "requests_while_waiting": median(rows, "requests_while_waiting"),
            "first_request_after_grant": median(rows, "first_request_after_grant"),
            "runs": [round(r["seconds_to_first_read"], 2) for r in rows],
        }
        results[f"{d:g}"] = entry
        out(
            f"D = {d:4.1f} s: first read {entry['seconds_to_first_read']:.2f} s after the grant"
            f" (runs {entry['runs']}), ratio to D = {entry['ratio']:.2f}"
            f" ({goal(entry['ratio'], 1.15)}); {entry['requests_while_waiting']:.0f} refused"
            f" requests while waiting, the first {entry['first_request_after_grant']:.2f} s"
            " after the grant"
        )
    return results


def check_time_to_verified(
    out: Printer, delay: float, reps: int, parallel: int | None = None, vms: int | None = None
) -> dict[str, Any]:
    out.section(
        "2b. Time-to-verified for `verify check`: deploy with delay D, check at once"
        f" ({'defaults' if parallel is None else f'--parallel {parallel}'};"
        f" {'the sandbox stack' if vms is None else f'a generated {vms}-VM stack'})"
    )
    rows = [measure("ttvcheck", delay=delay, parallel=parallel, vms=vms) for _ in range(reps)]
    entry = {
        "delay": delay,
        "parallel": rows[0]["parallel"],
        "vms": rows[0]["vms"],
        "seconds_to_verified": median(rows, "seconds_to_verified"),
        "ratio": median(rows, "ratio"),
        "check_started_after_grant": median(rows, "check_started_after_grant"),
        "check_seconds": median(rows, "check_seconds"),
        "refused_while_waiting": median(rows, "refused_while_waiting"),
        "runs": [round(r["ratio"], 3) for r in rows],
    }
    out(
        f"D = {delay:4.1f} s, {entry['vms']} VMs, {entry['parallel']} probed at once: last"
        f" allowed cell read {entry['seconds_to_verified']:.2f} s"
        f" after the last grant, ratio to D = {entry['ratio']:.2f} (runs {entry['runs']};"
        f" {goal(entry['ratio'], 1.15)}); check started {entry['check_started_after_grant']:.2f}"
        f" s after the grant and took {entry['check_seconds']:.2f} s;"
        f" {entry['refused_while_waiting']:.0f} refused reads while waiting"
    )
    return entry


# --------------------------------------------------------------------------- 3


def fan_out(out: Printer, sizes: Sequence[int], reps: Callable[[int], int]) -> dict[str, Any]:
    out.section("3. Verifier fan-out: verify check on the sandbox (deploy + probe every VM)")
    results: dict[str, Any] = {}
    for vms in sizes:
        rows = [measure("fanout", vms=vms) for _ in range(reps(vms))]
        entry = {k: median(rows, k) for k in rows[0]}
        entry["runs"] = [round(r["total_seconds"], 2) for r in rows]
        results[str(vms)] = entry
    one = results[str(sizes[0])]
    for vms in sizes:
        e = results[str(vms)]
        e["ratio_total"] = e["total_seconds"] / one["total_seconds"]
        e["ratio_check"] = e["check_seconds"] / one["check_seconds"]
        out(
            f"{vms:3d} VMs ({e['cells']:.0f} cells, {e['parallel']:.0f} probes at a time, median of"
            f" {reps(vms)}): total {e['total_seconds']:6.2f} s = deploy {e['deploy_seconds']:5.2f}"
            f" + probes {e['check_seconds']:5.2f}; x{e['ratio_total']:.2f} one VM"
            f" (probe phase x{e['ratio_check']:.2f}); probe CPU {e['probes_cpu_seconds']:.2f} s;"
            f" peak RSS {e['peak_rss_mib']:.0f} MiB"
        )
    last = results[str(sizes[-1])]
    out(
        f"{sizes[-1]} VMs vs 1: x{last['ratio_total']:.2f} total ({goal(last['ratio_total'], 4.0)})"
    )
    return results


# --------------------------------------------------------------------------- 4


def probe_floor(out: Printer, reps: int, processes: int = 3) -> dict[str, Any]:
    out.section("4. Probe floor: token + one secret read, probe code vs plain HTTP (urllib)")
    rows = [measure("floor", reps=reps) for _ in range(processes)]
    entry = {k: median(rows, k) for k in rows[0]}
    out(
        f"probe (DefaultAzureCredential + SecretClient) {entry['sdk_ms']:.1f} ms"
        f" ({entry['sdk_requests']:.0f} requests) vs plain HTTP {entry['plain_ms']:.1f} ms"
        f" ({entry['plain_requests']:.0f} requests): ratio {entry['ratio']:.2f}"
        f" (medians of {reps} in each of {processes} processes)"
    )
    return entry


# --------------------------------------------------------------------------- 5


def critical_path(out: Printer, vms: int) -> dict[str, Any]:
    out.section(f"5. Modelled deployment critical path ({vms} VMs, typical Azure creation times)")
    result = measure("graph", vms=vms)
    for which in ("components", "raw"):
        a = result[which]
        out(
            f"{which:10s}: makespan {a['makespan']:.0f} s; last VM ready at {a['vm_ready']:.0f} s"
            f" (without identities/vault/secrets/grants: {a['vm_ready_bare']:.0f} s); lower bound"
            f" {a['lower_bound']:.0f} s; lost to needless dependencies"
            f" {a['lost_to_needless_dependencies']:.0f} s"
        )
    a = result["components"]
    out("critical chain: " + " -> ".join(a["critical_chain"]))
    out(
        f"identities finish {a['identity_slack_before_vm']:.0f} s before their VMs can start;"
        f" VMs depend on: {', '.join(a['vm_dependencies'])};"
        f" role assignments depend on: {', '.join(a['role_assignment_dependencies'])}"
    )
    for label in ("low_times", "high_times"):
        t = a[label]
        out(
            f"with every type at its {label.split('_')[0]} figure: makespan {t['makespan']:.0f} s,"
            f" lower bound {t['lower_bound']:.0f} s; VM ready {t['vm_ready']:.0f} s"
            f" (bare {t['vm_ready_bare']:.0f} s)"
        )
    return result


# --------------------------------------------------------------------------- 6


def lifecycle_wall(
    out: Printer, runs: int, command: Sequence[str], warm_up: bool = True
) -> dict[str, Any]:
    """Wall time of the README's main job, warm: one run first (bytecode, uv's environment
    check, the OS's file cache), then the median of ``runs``. Each run must exit 0.

    The warm-up run writes the ``__pycache__`` a user's first run writes, even where the
    caller's environment sets ``PYTHONDONTWRITEBYTECODE`` (some CI images and sessions do:
    every run would then compile ~3,000 modules from source, about twice the imports'
    CPU); the timed runs keep the caller's environment. The phases are the medians of
    what each run's report.json says (imports, deploy, baseline check, scenarios), plus
    the wall time outside the report's total (uv, the interpreter's start and exit).
    """
    out.section("6. The README's main job, warm: `verify lifecycle --target sandbox`")
    seconds: list[float] = []
    phases: dict[str, list[float]] = {}
    writes_bytecode = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for i in range(runs + (1 if warm_up else 0)):
        warming = warm_up and i == 0
        started = time.perf_counter()
        if Settings.in_process:  # the smoke run: the CLI's main, as a test calls it
            from verify.cli import main as verify_main  # noqa: PLC0415

            argv = list(command[list(command).index("verify") + 1 :])
            code, output = verify_main(argv), "(printed above)"
        else:
            done = subprocess.run(
                list(command),
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=600,
                check=False,
                env=writes_bytecode if warming else None,
            )
            code, output = done.returncode, f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        took = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"{' '.join(command)} exited {code}:\n{output}")
        if not warming:
            seconds.append(took)
            if not Settings.in_process:
                for name, value in _report_phases(took).items():
                    phases.setdefault(name, []).append(value)
    medians = {k: round(statistics.median(v), 2) for k, v in phases.items()}
    entry: dict[str, Any] = {
        "command": " ".join(command),
        "runs_seconds": [round(s, 2) for s in seconds],
        "seconds": float(statistics.median(seconds)),
        "phases_seconds": medians,
        "load_average": os.getloadavg(),
    }
    out(f"command: {entry['command']}")
    out(
        f"median of {len(seconds)} warm run(s): {entry['seconds']:.2f} s wall"
        f" (runs {entry['runs_seconds']}; {goal(entry['seconds'], 10.0)});"
        f" load average {entry['load_average'][0]:.2f}"
    )
    if medians:
        out("phases (medians): " + ", ".join(f"{k} {v:.2f} s" for k, v in medians.items()))
    return entry


def _report_phases(wall: float) -> dict[str, float]:
    """One run's phases from the report.json it wrote (the CLI's default report
    directory): imports, deploy, baseline check, the scenarios together, and the wall
    time outside the report's total."""
    timings = json.loads((ROOT / "reports" / "report.json").read_text())["timings_seconds"]
    named = ("imports", "validate input", "sandbox start", "deploy", "baseline check", "total")
    phases = {k: float(timings[k]) for k in named if k in timings}
    phases["scenarios"] = sum(float(v) for k, v in timings.items() if k not in named)
    phases["outside the run (uv, start, exit)"] = wall - phases.pop("total", wall)
    return phases


FIGURES = ("graph", "floor", "ttv", "ttvcheck", "fanout", "program", "lifecycle")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="25/100 VMs, fan-out 1/10")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="every figure at its smallest size, once (a check that each still runs)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="measure in this process instead of one process per measurement (smoke runs)",
    )
    parser.add_argument(
        "--lifecycle-runs", type=int, default=5, help="figure 6: warm runs (median)"
    )
    parser.add_argument(
        "--lifecycle-args",
        default="",
        help="figure 6: extra arguments for the lifecycle command (e.g. --scenario delete-vm)",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions per figure (median)")
    parser.add_argument(
        "--large-reps", type=int, default=1, help="repetitions at 400 VMs / 40-VM fan-out"
    )
    parser.add_argument("--delay", type=float, default=3.0, help="RBAC propagation delay D")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    parser.add_argument(
        "--parallel",
        type=int,
        default=None,
        help="ttvcheck: VMs probed at once (default: target's)",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=FIGURES,
    )
    args = parser.parse_args(argv)
    Settings.in_process = args.in_process
    out = Printer()
    info = machine()
    out(
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, Python"
        f" {info['python']}; load average at start {info['load_average_at_start'][0]:.2f}"
    )
    program_sizes: tuple[int, ...] = (25, 100) if args.quick else (25, 100, 400)
    fan_sizes: tuple[int, ...] = (1, 10) if args.quick else (1, 10, 40)
    graph_vms, floor_reps, floor_processes, delay = 25, 20, 3, args.delay
    lifecycle_runs, warm_up = args.lifecycle_runs, True
    if args.smoke:
        program_sizes, fan_sizes, graph_vms = (1,), (1,), 1
        floor_reps, floor_processes, delay = 1, 1, 0.2
        args.reps = args.large_reps = 1
        lifecycle_runs, warm_up = 1, False

    def reps(size: int) -> int:
        return args.large_reps if size in (400, 40) else args.reps

    only = set(args.only or FIGURES)
    report: dict[str, Any] = {"machine": info, "command": " ".join(sys.argv)}
    if "graph" in only:
        report["critical_path"] = critical_path(out, graph_vms)
    if "floor" in only:
        report["probe_floor"] = probe_floor(out, floor_reps, floor_processes)
    if "ttv" in only:
        report["time_to_verified"] = time_to_verified(out, delay, args.reps, not args.smoke)
    if "ttvcheck" in only:
        report["check_time_to_verified"] = check_time_to_verified(
            out, delay, args.reps, args.parallel, 1 if args.smoke else None
        )
    if "fanout" in only:
        report["fan_out"] = fan_out(out, fan_sizes, reps)
    if "program" in only:
        report["program_cost"] = program_cost(out, program_sizes, reps, not args.smoke)
    if "lifecycle" in only:
        command = lifecycle_command(not args.smoke, args.lifecycle_args.split())
        report["lifecycle"] = lifecycle_wall(out, lifecycle_runs, command, warm_up)
    report["load_average_at_end"] = os.getloadavg()
    report["seconds"] = time.monotonic() - out.started
    out(
        f"\ndone in {report['seconds']:.0f} s;"
        f" load average at end {report['load_average_at_end'][0]:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
