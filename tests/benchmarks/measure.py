"""One measurement per process: ``python tests/benchmarks/measure.py <kind> '<json args>'``.

``run.py`` starts this once per measurement so imports, caches, sandbox listeners and
peak memory of one measurement never leak into another. Prints one JSON line last.
Peak memory is the process's own ``ru_maxrss`` (and its children's for fan-out).
"""

from __future__ import annotations

import cProfile
import gc
import importlib.util
import json
import os
import pstats
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

import topology  # noqa: E402  (the benchmark's own modules, after the path set-up)

PROGRAM = ROOT / "__main__.py"
PROBE = ROOT / "verify" / "probe.py"


def _rss_mib() -> float:
    """Current resident set size (VmRSS) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- 1. program

_WARMED: set[str] = set()


def program(
    which: str, vms: int, count_calls: bool = False, warm_up: bool = True
) -> dict[str, Any]:
    """Wall and CPU time of one mock-runtime run of the components or the raw program.

    ``count_calls`` instead counts the Python function calls of the run (cProfile): slower,
    but deterministic, so its ratios do not move with the machine's load.
    """
    import raw_program  # noqa: PLC0415

    body: Any = {
        "components": PROGRAM,
        "raw": raw_program.program,
        "parented": raw_program.program_parented,
    }[which]
    # What the process held before this call (measured in-process: the whole test
    # session's heap) is set aside for the collect below, which then scans only what the
    # warm-up and this call allocated (0.3 s per collect in a test worker otherwise).
    gc.freeze()
    try:
        return _program_run(body, which, vms, count_calls, warm_up)
    finally:
        gc.unfreeze()


def _program_run(
    body: Any, which: str, vms: int, count_calls: bool, warm_up: bool
) -> dict[str, Any]:
    from components.testing import AzureMocks, InMemoryArm, run_program  # noqa: PLC0415

    secret_keys = [k for k in topology.stack_config(1) if k.startswith("mikit:secret-")]
    # Warm-up on a 2-VM topology: imports every azure-native module and fills caches, so
    # the timed run measures the program, not Python's import system (once per program
    # and process: measured in-process, a smoke run does not warm up again).
    if warm_up and which not in _WARMED:
        run_program(body, topology.stack_config(2), mocks=AzureMocks(InMemoryArm()), stack="bench")
        _WARMED.add(which)
    config = topology.stack_config(vms)
    mocks = AzureMocks(InMemoryArm())
    gc.collect()  # the warm-up's garbage must not count as (or hide) this run's memory
    rss_before = _rss_mib()
    cpu, started = time.process_time(), time.perf_counter()
    profiler = cProfile.Profile() if count_calls else None
    if profiler is not None:
        profiler.enable()
    outputs = run_program(body, config, mocks=mocks, stack="bench", secret_keys=secret_keys)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
    customs = [r for r in mocks.registrations if r.custom]
    vm_count = sum(1 for r in customs if r.type == "azure-native:compute:VirtualMachine")
    if vm_count != vms:
        raise RuntimeError(f"{which}: expected {vms} VMs, registered {vm_count}")
    result: dict[str, Any] = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "peak_rss_mib": _peak_mib(),
        "rss_before_mib": rss_before,
        "rss_growth_mib": max(0.0, _peak_mib() - rss_before),
        "registrations": len(mocks.registrations),
        "custom_resources": len(customs),
        "matrix_rows": len(outputs.get("access_matrix") or []),
    }
    if profiler is not None:
        result["calls"] = pstats.Stats(profiler).total_calls
    return result


# --------------------------------------------------------------------------- 5. graph


def graph(vms: int) -> dict[str, Any]:
    """Record both programs' dependency graphs; the critical path under typical times."""
    import graph as dependency_graph  # noqa: PLC0415
    import raw_program  # noqa: PLC0415

    from components.testing import AzureMocks, InMemoryArm, run_program  # noqa: PLC0415

    result: dict[str, Any] = {}
    for which, body in (("components", PROGRAM), ("raw", raw_program.program)):
        mocks = AzureMocks(InMemoryArm())
        run_program(body, topology.stack_config(vms), mocks=mocks, stack="bench")
        nodes = dependency_graph.nodes_of(mocks.registrations)
        analysis = dependency_graph.analyse(nodes)
        # The same question with every type at its low and at its high figure.
        for label, column in (("low", 0), ("high", 2)):
            other = dependency_graph.analyse(nodes, column)
            analysis[f"{label}_times"] = {
                k: other[k] for k in ("makespan", "vm_ready", "vm_ready_bare", "lower_bound")
            }
        result[which] = analysis
    return result


# --------------------------------------------------------------------------- sandbox helpers


def _small_world(sb: Any, grant: bool) -> dict[str, Any]:
    """One vault with one secret and one VM with a system identity (granted or not yet)."""
    st = sb.state
    st.create_resource_group("rg-bench")
    vault = st.create_vault("rg-bench", "kv-bench")
    st.set_secret(vault.id, "db-password", "bench-secret-value")
    vm = st.create_vm("rg-bench", "vm-bench", system_assigned=True)
    if grant:
        st.create_role_assignment(
            vault.secret_scope("db-password"), "Key Vault Secrets User", vm.system_principal_id
        )
    return {"vault": vault, "vm": vm, "secret": "db-password"}


def _spec(sb: Any, world: dict[str, Any], **extra: Any) -> dict[str, Any]:
    spec = {
        "vault_url": sb.vault_url(world["vault"].id),
        "secrets": [world["secret"]],
        "identities": ["system"],
        "ca_bundle": sb.ca_cert_path,
        "verify_challenge_resource": False,
        "budget_seconds": 30.0,
        "expect": {"system": {world["secret"]: "allowed"}},
    }
    spec.update(extra)
    return spec


# --------------------------------------------------------------------------- 2. time-to-verified


def time_to_verified(delay: float, max_backoff: float | None) -> dict[str, Any]:
    """Grant, start the probe at once (a process, as on a VM); time to its first read."""
    from verify.sandbox import Sandbox, SandboxConfig  # noqa: PLC0415
    from verify.targets.sandbox import probe_environment  # noqa: PLC0415

    with Sandbox(SandboxConfig(propagation_delay_seconds=delay)) as sb:
        world = _small_world(sb, grant=False)
        vm = world["vm"]
        extra: dict[str, Any] = {"propagation_wait_seconds": 4 * delay + 10}
        if max_backoff is not None:
            extra["max_backoff_seconds"] = max_backoff
        spec = _spec(sb, world, **extra)
        assignment = sb.state.create_role_assignment(
            world["vault"].secret_scope(world["secret"]),
            "Key Vault Secrets User",
            vm.system_principal_id,
        )
        granted = assignment.created_on
        done = subprocess.run(
            [sys.executable, str(PROBE), "--spec-json", json.dumps(spec)],
            env=probe_environment(sb.imds_url(vm.id)),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        records = [
            r
            for r in sb.request_log.records(service="keyvault", since=granted)
            if r.principal_id == vm.system_principal_id and "/secrets/" in r.path
        ]
    ok = [r for r in records if r.status == 200]
    if done.returncode != 0 or not ok:
        raise RuntimeError(
            f"probe did not read the secret: {done.stdout[-300:]} {done.stderr[-300:]}"
        )
    first_ok = min(r.at for r in ok)
    waiting = [r for r in records if r.at < first_ok]
    first_request = min(r.at for r in records)
    return {
        "delay": delay,
        "max_backoff": max_backoff if max_backoff is not None else 2.0,
        "seconds_to_first_read": first_ok - granted,
        "ratio": (first_ok - granted) / delay,
        "requests_while_waiting": sum(1 for r in waiting if r.status == 403),
        "first_request_after_grant": first_request - granted,
        "overshoot": first_ok - granted - delay,
    }


# --------------------------------------------------------------------------- 2b. check


def check_time_to_verified(
    delay: float, parallel: int | None = None, vms: int | None = None
) -> dict[str, Any]:
    """Deploy the sandbox stack with RBAC propagation delay D, run ``verify check`` at
    once with its defaults, and time the last allowed cell's first read after its grant.

    The grants are made by the deployment itself (the last one at the end of the deploy),
    so this is what a user sees running ``verify check`` right after ``pulumi up``.
    ``vms`` deploys the generated topology of that size instead (the smoke run: 1).
    """
    from verify.runner import check_report  # noqa: PLC0415
    from verify.sandbox import SandboxConfig  # noqa: PLC0415
    from verify.targets.sandbox import SandboxTarget  # noqa: PLC0415

    config = SandboxConfig(propagation_delay_seconds=delay)
    deployed = (
        SandboxTarget(config=config, max_parallel=parallel)
        if vms is None
        else _generated_target(vms, config=config, max_parallel=parallel)
    )
    with deployed as target:
        sb = target.sandbox
        granted = max(a.created_on for a in sb.state.role_assignments())
        started = time.time()
        run = check_report(target, "sandbox")
        finished = time.time()
        assert run.check is not None
        if not run.check.passed:
            raise RuntimeError(f"check failed: {run.check.failures[:3]}")
        secrets = sb.request_log.records(service="keyvault", since=granted)
        blobs = sb.request_log.records(service="blob", since=granted)
        # Each allowed cell (a secret or a blob) is read successfully exactly once (after
        # its 403s), so the last successful read is when the last allowed cell was verified.
        reads = [r.at for r in secrets if r.status == 200 and "/secrets/" in r.path]
        # azure-storage-blob downloads with a Range header: a successful read is a 206.
        reads += [r.at for r in blobs if r.status in (200, 206) and r.method == "GET"]
        refused = [r for r in secrets + blobs if r.status == 403]
    allowed = sum(c.expected == "allowed" for c in run.check.cells)
    # A scale set's cells are proven on every instance (each one reads), any other host's once.
    instances = {f"scaleset:{k}": s.instances for k, s in target.outputs().scale_sets.items()}
    expected_reads = sum(
        instances.get(c.host, 1) for c in run.check.cells if c.expected == "allowed"
    )
    if len(reads) != expected_reads:
        raise RuntimeError(
            f"{len(reads)} successful reads for {allowed} allowed cells "
            f"({expected_reads} reads expected: one per scale-set instance)"
        )
    verified = max(reads)
    return {
        "delay": delay,
        "parallel": target.max_parallel,
        "vms": len(target.outputs().vms),
        "cells": len(run.check.cells),
        "allowed_cells": allowed,
        "seconds_to_verified": verified - granted,
        "ratio": (verified - granted) / delay,
        "check_started_after_grant": started - granted,
        "check_seconds": finished - started,
        "refused_while_waiting": len(refused),
    }


# --------------------------------------------------------------------------- 3. fan-out


def _generated_target(vms: int, **kwargs: Any) -> Any:
    """A SandboxTarget deployed from the generated N-VM topology, as a stack file of its own:
    merged into the sandbox stack's config instead, that stack's other hosts (apps, scale
    sets, clusters) would refer to identities the generated topology does not declare."""
    from verify.targets.sandbox import SandboxTarget  # noqa: PLC0415

    stack = Path(tempfile.mkdtemp(prefix="mikit-bench-")) / "Pulumi.bench.yaml"
    stack.write_text(json.dumps({"config": topology.stack_config(vms)}))
    try:
        return SandboxTarget(stack_config=stack, stack="bench", **kwargs)
    finally:
        shutil.rmtree(stack.parent, ignore_errors=True)


def fanout(vms: int, parallel: int | None) -> dict[str, Any]:
    """``verify check`` on the sandbox over a generated N-VM stack: what the CLI runs."""
    from verify.runner import check_report  # noqa: PLC0415

    started = time.perf_counter()
    target = _generated_target(vms, max_parallel=parallel)
    try:
        check_started = time.perf_counter()
        own, probes = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        run = check_report(target, "bench")
        check_seconds = time.perf_counter() - check_started
        own, probes = _cpu(resource.RUSAGE_SELF) - own, _cpu(resource.RUSAGE_CHILDREN) - probes
    finally:
        target.close()
    total = time.perf_counter() - started
    if run.check is None or not run.check.passed:
        failures = run.check.failures()[:3] if run.check else ["no check result"]
        raise RuntimeError(f"check over {vms} VMs did not pass: {failures}")
    return {
        "vms": vms,
        "parallel": target.max_parallel,
        "cells": len(run.check.cells),
        "total_seconds": total,
        "sandbox_start_seconds": target.timings.get("sandbox start", 0.0),
        "deploy_seconds": target.timings.get("deploy", 0.0),
        "check_seconds": check_seconds,
        "sandbox_cpu_seconds": own,
        "probes_cpu_seconds": probes,
        "peak_rss_mib": _peak_mib(),
    }


# --------------------------------------------------------------------------- 4. probe floor


def _load_probe() -> Any:
    """verify/probe.py loaded from its file, exactly as shipped to a VM (a module of its
    own, not ``verify.probe``), without putting ``verify/`` on ``sys.path``."""
    spec = importlib.util.spec_from_file_location("mikit_bench_probe", PROBE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def probe_floor(reps: int) -> dict[str, Any]:
    """Token + one secret read: the probe's code in-process vs two plain HTTP requests."""
    saved = dict(os.environ)
    try:
        return _probe_floor(reps)
    finally:  # measured in a test process too (run.py --in-process): leave it as found
        os.environ.clear()
        os.environ.update(saved)


def _probe_floor(reps: int) -> dict[str, Any]:
    from verify.sandbox import Sandbox, SandboxConfig  # noqa: PLC0415

    with Sandbox(SandboxConfig()) as sb:
        world = _small_world(sb, grant=True)
        imds = sb.imds_url(world["vm"].id)
        for name in [n for n in os.environ if n.startswith(("AZURE_", "IDENTITY_", "MSI_"))]:
            del os.environ[name]
        os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = imds
        probe = _load_probe()
        spec = probe.load_spec(_spec(sb, world))
        vault_url = spec["vault_url"].rstrip("/")
        context = ssl.create_default_context(cafile=sb.ca_cert_path)

        def sdk() -> None:
            result = probe.run(spec)
            outcome = result["identities"][0]["secrets"][world["secret"]]["outcome"]
            if outcome != "read":
                raise RuntimeError(f"probe outcome {outcome}")

        def plain() -> None:
            token_request = urllib.request.Request(
                f"{imds}/metadata/identity/oauth2/token?api-version=2018-02-01"
                "&resource=https%3A%2F%2Fvault.azure.net",
                headers={"Metadata": "true"},
            )
            with urllib.request.urlopen(token_request, timeout=5) as response:
                token = json.load(response)["access_token"]
            secret_request = urllib.request.Request(
                f"{vault_url}/secrets/{world['secret']}/?api-version=2025-07-01",
                headers={"Authorization": f"Bearer {token}"},
            )
            with urllib.request.urlopen(secret_request, timeout=5, context=context) as response:
                if "value" not in json.load(response):
                    raise RuntimeError("no value in the plain response")

        timings: dict[str, list[float]] = {"sdk": [], "plain": []}
        requests: dict[str, int] = {}
        for fn in (sdk, plain):  # warm-up: imports, TLS context, first connections
            fn()
        for _ in range(reps):
            for label, fn in (("sdk", sdk), ("plain", plain)):
                before = len(sb.request_log)
                started = time.perf_counter()
                fn()
                timings[label].append(time.perf_counter() - started)
                requests[label] = len(sb.request_log) - before
    sdk_median = statistics.median(timings["sdk"])
    plain_median = statistics.median(timings["plain"])
    return {
        "sdk_ms": sdk_median * 1000,
        "plain_ms": plain_median * 1000,
        "ratio": sdk_median / plain_median,
        "sdk_requests": requests["sdk"],
        "plain_requests": requests["plain"],
        "reps": reps,
    }


KINDS = {
    "program": lambda a: program(
        a["which"], a["vms"], a.get("count_calls", False), a.get("warm_up", True)
    ),
    "graph": lambda a: graph(a["vms"]),
    "ttv": lambda a: time_to_verified(a["delay"], a.get("max_backoff")),
    "ttvcheck": lambda a: check_time_to_verified(a["delay"], a.get("parallel"), a.get("vms")),
    "fanout": lambda a: fanout(a["vms"], a.get("parallel")),
    "floor": lambda a: probe_floor(a["reps"]),
}


def main() -> None:
    kind, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    result = KINDS[kind](args)
    sys.stdout.flush()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
