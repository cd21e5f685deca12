"""What both targets share about running the probe: its spec and bounded fan-out.

The probe itself (verify/probe.py) is self-contained and knows nothing of the stack;
this module turns a :class:`ProbeRequest` plus the stack outputs into the probe's JSON
spec, and runs many probes with a fixed number of workers so 40 VMs do not become 40
simultaneous Run Commands (ARM throttles) or 40 processes on a 2-core machine.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import context as mp_context
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from pathlib import Path
from typing import Any

from verify.evidence.cells import Expectation
from verify.interrupt import CANCELLED, POLL_SECONDS, check_cancelled
from verify.model import ProbeResult, StackOutputs
from verify.targets.base import ProbeOutcome, ProbeRequest

PROBE_SOURCE = Path(__file__).resolve().parent.parent / "probe.py"
#: Imported once by the fork server, so a forked probe starts with them already loaded
#: (about 0.4 s of CPU per probe process otherwise, which 40 probes pay on 2 cores). The
#: last ones are what azure-identity and azure-core import only on a probe's first token
#: request or response (IMDS, an app's identity endpoint, the requests transport's
#: response): imported in every probe, they were about a fifth of its CPU. A module a
#: newer release no longer has is skipped (the fork server ignores an ImportError).
FORKSERVER_PRELOAD = (
    "azure.identity",
    "azure.keyvault.secrets",
    "azure.storage.blob",
    "verify.probe",
    "azure.identity._credentials.imds",
    "azure.identity._credentials.app_service",
    "azure.identity._internal.managed_identity_client",
    "azure.identity._internal.msal_managed_identity_client",
    "azure.core.rest._requests_basic",
    "azure.core.rest._http_response_impl",
    "encodings.utf_8_sig",
)


def probe_source() -> str:
    """The probe's own source text, as shipped inline through Run Command."""
    return PROBE_SOURCE.read_text(encoding="utf-8")


def build_spec(
    outputs: StackOutputs,
    request: ProbeRequest,
    *,
    ca_bundle: str | None = None,
    verify_challenge_resource: bool = True,
    token_dir: str | None = None,
) -> dict[str, Any]:
    """The probe's JSON spec for one request (see verify/probe.py ``load_spec``)."""
    if (request.stash_token or request.replay) and not token_dir:
        raise ValueError("stashing or replaying a token needs a token_dir on the VM")
    return {
        "vault_url": outputs.vault.uri,
        "secrets": list(request.secrets),
        # Blob key -> its URL as exported (a sandbox exports its loopback listener's).
        "blobs": {key: outputs.blobs[key].url for key in request.blobs if key in outputs.blobs},
        "identities": list(request.selectors),
        "ca_bundle": ca_bundle,
        "verify_challenge_resource": verify_challenge_resource,
        "budget_seconds": request.budget,
        "propagation_wait_seconds": request.propagation_wait,
        "mode": "replay" if request.replay else "fresh",
        "stash_token": request.stash_token,
        "token_dir": token_dir,
        "expect": {sel: dict(cells) for sel, cells in request.expect.items()} or None,
    }


def expect_map(
    cells: Iterable[tuple[str, str, str]],
) -> dict[str, dict[str, str]]:
    """(selector, target, expected) -> the probe's ``expect`` mapping (allowed/denied only)."""
    mapping: dict[str, dict[str, str]] = {}
    for selector, target, expected in cells:
        if expected in ("allowed", "denied"):
            mapping.setdefault(selector, {})[target] = expected
    return mapping


def requests_for(
    expectations: Iterable[Expectation], secrets: Sequence[str], **options: Any
) -> list[ProbeRequest]:
    """One request per host covering every identity its expectations name.

    ``options`` are the remaining :class:`ProbeRequest` fields (budget, stash, ...).
    """
    expectations = list(expectations)
    plan: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for exp in expectations:
        selectors = plan.setdefault(exp.host, [])
        kinds[exp.host] = exp.host_kind
        if exp.selector not in selectors:
            selectors.append(exp.selector)
    return [
        ProbeRequest(
            host=vm,
            host_kind=kinds[vm],
            selectors=tuple(selectors),
            secrets=tuple(secrets),
            blobs=tuple(
                sorted({e.target for e in expectations if e.host == vm and e.kind == "blob"})
            ),
            expect=expect_map(
                (e.selector, e.target, e.expected) for e in expectations if e.host == vm
            ),
            **options,
        )
        for vm, selectors in plan.items()
    ]


def fan_out(
    run_one: Callable[[ProbeRequest], ProbeResult],
    requests: Sequence[ProbeRequest],
    max_workers: int,
) -> Mapping[str, ProbeOutcome]:
    """Run ``run_one`` for each request, at most ``max_workers`` at a time.

    An exception from one VM is kept as that VM's outcome rather than raised: the
    report must still show every other VM.
    """

    def guarded(request: ProbeRequest) -> ProbeOutcome:
        try:
            return run_one(request)
        except Exception as exc:
            return exc

    if not requests:
        return {}
    workers = max(1, min(max_workers, len(requests)))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")
    try:
        outcomes = list(pool.map(guarded, requests))
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM): nothing new starts, and the running launchers,
        # which poll verify.interrupt.CANCELLED, kill their probe and return at once.
        CANCELLED.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return {req.host: outcome for req, outcome in zip(requests, outcomes, strict=True)}


# --------------------------------------------------------------------------- probe processes


@dataclass(frozen=True)
class ProbeRun:
    """What one probe process left behind: its exit code and its two output streams."""

    returncode: int
    stdout: str
    stderr: str


class ProbeTimeoutError(TimeoutError):
    """The probe process outlived its budget plus its watchdog's grace and was killed."""


def run_probe_subprocess(
    spec: Mapping[str, Any], env: Mapping[str, str], timeout: float
) -> ProbeRun:
    """Run probe.py as a new interpreter, exactly as Run Command would start it on a VM.

    The reference path: nothing inherited but the environment, at the price of importing
    azure-identity and azure-keyvault-secrets in every probe.
    """
    check_cancelled("probe")
    deadline = time.monotonic() + timeout
    with subprocess.Popen(  # noqa: S603 -- our own interpreter and probe, no shell
        [sys.executable, str(PROBE_SOURCE), "--spec-json", json.dumps(dict(spec))],
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=POLL_SECONDS)
                break
            except subprocess.TimeoutExpired:
                if CANCELLED.is_set() or time.monotonic() >= deadline:
                    process.kill()
                    process.communicate()
                    check_cancelled("probe")
                    raise ProbeTimeoutError(f"probe process killed after {timeout:.0f} s") from None
    return ProbeRun(process.returncode, stdout, stderr)


class _ProbePopen(popen_forkserver.Popen):
    """multiprocessing's fork-server launch, minus re-running the parent's ``__main__``.

    multiprocessing makes every child re-import the parent's main script (so pickled
    functions defined there resolve): under ``pytest`` or a console script that re-imports
    the whole test runner or verifier in each probe, several times the import tax this
    avoids, and a script without a ``__main__`` guard would run again. The probe's target
    lives in this module, which the fork server preloads, so the child needs no main.
    This is ``popen_forkserver.Popen._launch`` (CPython 3.11-3.13) with that one change.
    """

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_name", None)
        prep_data.pop("init_main_from_path", None)
        buf = io.BytesIO()
        mp_context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            mp_context.set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)  # type: ignore[attr-defined]
        _parent_w = os.dup(w)
        self.finalizer = util.Finalize(
            self,
            util.close_fds,  # type: ignore[attr-defined]
            (_parent_w, self.sentinel),
        )
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _ProbeProcess(mp_context.ForkServerProcess):
    """A fork-server process launched by :class:`_ProbePopen`."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:  # noqa: N802 -- multiprocessing's hook name
        return _ProbePopen(process_obj)


_forkserver_lock = threading.Lock()
_forkserver_started: list[bool] = []


def start_forkserver() -> None:
    """Start the fork server (once per process) without waiting for it.

    Its preload (azure-identity, the Key Vault and Blob clients, the probe: about a second
    of imports) then runs in its own process, on another core, while the caller goes on
    (the sandbox target starts it before its deploy); the first probe waits only for
    what is left of it.
    """
    _ensure_forkserver()


def _ensure_forkserver() -> None:
    """Set the fork server's preload once, before it first starts.

    Why a fork server and not plain fork: the verifier runs threads (this fan-out, the
    sandbox's asyncio servers), and forking a threaded process can copy a held lock into
    the child. The fork server is a separate single-threaded process that has imported
    only :data:`FORKSERVER_PRELOAD` and never made a request, so every child forked from
    it starts as clean as a new interpreter: no credential, no token cache, no connection.
    """
    with _forkserver_lock:
        if not _forkserver_started:
            multiprocessing.get_context("forkserver").set_forkserver_preload(
                [*FORKSERVER_PRELOAD, __name__]
            )
            forkserver.ensure_running()
            _forkserver_started.append(True)


def _forked_probe_main(spec_json: str, env: dict[str, str], out_path: str, err_path: str) -> None:
    """Child side: become "the probe on that VM", then run probe.py's own ``main``.

    The environment is replaced wholesale before any credential exists; azure-identity
    reads ``AZURE_POD_IDENTITY_AUTHORITY_HOST`` per request and requests reads
    ``REQUESTS_CA_BUNDLE`` per request, so the preloaded modules honour it. stdout and
    stderr go to files at the descriptor level, so the probe's watchdog (which prints and
    calls ``os._exit``) reaches the parent exactly as from a subprocess.
    """
    os.environ.clear()
    os.environ.update(env)
    for path, fd in ((out_path, 1), (err_path, 2)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    code = 2
    try:
        from verify import probe  # noqa: PLC0415 -- preloaded by the fork server

        code = probe.main(["--spec-json", spec_json])
    except BaseException as exc:  # report it like a crashed interpreter
        sys.stderr.write(f"probe crashed: {type(exc).__name__}: {exc}\n")
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_probe_forked(spec: Mapping[str, Any], env: Mapping[str, str], timeout: float) -> ProbeRun:
    """Run probe.py's ``main`` in a fresh process forked from the pre-warmed fork server.

    Same spec, same JSON result on stdout, same exit codes and watchdog as
    :func:`run_probe_subprocess`; a child still alive at ``timeout`` is killed and
    reported as :class:`ProbeTimeoutError`, never waited on.
    """
    check_cancelled("probe")
    _ensure_forkserver()
    with tempfile.TemporaryDirectory(prefix="mikit-probe-run-") as tmp:
        out_path, err_path = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        process = _ProbeProcess(
            target=_forked_probe_main,
            args=(json.dumps(dict(spec)), dict(env), out_path, err_path),
            name="mikit-probe",
            daemon=True,
        )
        process.start()
        deadline = time.monotonic() + timeout
        while process.exitcode is None and time.monotonic() < deadline:
            if CANCELLED.is_set():
                break
            process.join(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        if process.exitcode is None:
            process.kill()
            process.join()
            process.close()
            check_cancelled("probe")
            raise ProbeTimeoutError(f"probe process killed after {timeout:.0f} s")
        returncode = int(process.exitcode)
        process.close()
        return ProbeRun(returncode, _read(out_path), _read(err_path))


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:  # the child died before it opened its output
        return ""
