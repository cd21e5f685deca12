"""Run a whole stack program in Pulumi's mock runtime and hand back its exports.

``run_program`` runs ``__main__.py`` (or a callable) with the given config against any
``pulumi.runtime.Mocks`` (usually :class:`~components.mockruntime.mocks.AzureMocks`),
each run isolated in its own context, event loop and settings, and returns the resolved
exports as :class:`StackOutputs`.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import runpy
import sys
import threading
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import known_types, rpc, settings
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import stack as pulumi_stack
from pulumi.runtime.config import set_all_config

from components.mockruntime.mocks import RecordingMonitor

Program = Path | str | Callable[[], None]


def _contains_unknowns(val: Any) -> bool:
    """``pulumi.runtime.rpc.contains_unknowns`` without its per-call reference cycle.

    The SDK's version defines a recursive closure on every call (the function, its
    cell and its annotations form a cycle), ~24 k calls per run of the dev stack: some
    165 k objects only the cyclic collector frees, 0.25-0.45 s of collection after each
    run (every unit test that deploys, every sandbox deploy in a test process). Same
    answer: whether an :class:`~pulumi.output.Unknown` is reachable through dicts (their
    values) and lists, each container visited once.
    """
    is_unknown = known_types.is_unknown
    seen: set[int] = set()
    pending = [val]
    while pending:
        item = pending.pop()
        if is_unknown(item):
            return True
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


#: The SDK's own, kept for the test that both answer alike (tests/unit/test_mocks.py).
SDK_CONTAINS_UNKNOWNS = rpc.contains_unknowns
# Module attribute lookups at each call (``rpc.contains_unknowns`` in pulumi.output and
# pulumi.runtime.invoke, a global in rpc itself) all reach the replacement.
rpc.contains_unknowns = _contains_unknowns


class StackOutputs(dict[str, Any]):
    """Resolved stack exports (secrets unwrapped) that remember which were secret.

    ``secret_keys`` names the exports Pulumi would show as ``[secret]``, so a caller that
    prints outputs can hide exactly those.
    """

    def __init__(self, values: Mapping[str, Any], *, secret_keys: frozenset[str]) -> None:
        super().__init__(values)
        self.secret_keys = secret_keys

    def plain(self) -> dict[str, Any]:
        """The exports that are safe to show."""
        return {k: v for k, v in self.items() if k not in self.secret_keys}


def _config_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _full_key(key: str, project: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def run_program(
    program: Program,
    config: Mapping[str, Any],
    *,
    mocks: pulumi_mocks.Mocks,
    project: str = "managed-identity-kit",
    stack: str = "dev",
    secret_keys: Collection[str] = (),
) -> StackOutputs:
    """Run a stack program in the mock runtime; return its exports as plain values.

    ``program`` is a path to a ``__main__.py`` (run like the Pulumi Python host does,
    with its directory on ``sys.path``) or a callable. ``config`` maps full keys
    (``mikit:vms``) or bare keys (taken as ``<project>:<key>``) to values; non-strings
    are JSON-encoded, as the Pulumi CLI passes structured config. Secret outputs are
    unwrapped in the result: callers decide what to show.

    Each call runs in a copy of the current ``contextvars`` context with freshly
    configured Pulumi settings, so runs do not leak into each other or into the caller.
    Exceptions from the program (e.g. :class:`ConfigError`) propagate unchanged. The
    result is a :class:`StackOutputs` (a dict) whose ``secret_keys`` names secret exports.
    """
    full = {_full_key(k, project): _config_value(v) for k, v in config.items()}
    secrets = [_full_key(k, project) for k in secret_keys]
    ctx = contextvars.copy_context()
    return ctx.run(
        lambda: _run_isolated(
            program, config=full, secret_keys=secrets, mocks=mocks, project=project, stack=stack
        )
    )


def _run_isolated(
    program: Program,
    *,
    config: dict[str, str],
    secret_keys: list[str],
    mocks: pulumi_mocks.Mocks,
    project: str,
    stack: str,
) -> StackOutputs:
    monitor = RecordingMonitor(mocks)
    info = monitor.GetDeploymentInfo(None)  # type: ignore[no-untyped-call]
    settings.ROOT.set(None)
    settings.configure(
        pulumi_mocks.MockSettings(  # type: ignore[no-untyped-call]
            monitor=monitor,
            monitor_features=set(info.supportedFeatures),
            engine=pulumi_mocks.MockEngine(None),
            project=project,
            stack=stack,
            dry_run=False,
            organization="organization",
            root_directory=str(Path(program).parent) if not callable(program) else None,
            callbacks=None,
            # Fresh per run: the defaults are shared objects, and a failed run leaves
            # pending output tasks (bound to its closed loop) that the next would await.
            outputs=set(),
            lock=threading.Lock(),
            package_refs={},
            base_providers_by_ref={},
            legacy_apply_enabled=False,
        )
    )
    set_all_config(config, secret_keys)
    body = _as_callable(program)
    loop = asyncio.new_event_loop()
    # Pulumi's mock monitor runs in executor threads and gives each thread an event loop
    # of its own; a pool we own lets us close those loops instead of leaving them to GC.
    thread_loops: list[asyncio.AbstractEventLoop] = []
    lock = threading.Lock()

    def give_thread_a_loop() -> None:
        thread_loop = asyncio.new_event_loop()
        asyncio.set_event_loop(thread_loop)
        with lock:
            thread_loops.append(thread_loop)

    pool = ThreadPoolExecutor(thread_name_prefix="mikit-mocks", initializer=give_thread_a_loop)
    loop.set_default_executor(pool)
    # The SDK allocates millions of short-lived futures, tasks and closures per run, so the
    # cyclic collector kept re-scanning an ever larger heap: 60-75% of a 100-VM run went
    # to full collections (tests/benchmarks). Refcounting still frees almost everything;
    # the few cycles wait for the next collection after the run.
    collect = gc.isenabled()
    gc.disable()
    try:
        # Not installed as the thread's current loop: the caller's loop state is left
        # as it was (the program runs inside this loop, where Pulumi finds it).
        return loop.run_until_complete(_run_in_stack(body))
    finally:
        _cancel_leftovers(loop)
        if collect:
            gc.enable()
        loop.close()
        pool.shutdown(wait=True)
        for thread_loop in thread_loops:
            thread_loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel and await what a failed run left pending on its loop.

    A program that raises mid-deploy (bad input found inside an apply, a mock refusing a
    resource) leaves output tasks waiting on each other; closed with the loop, each is
    reported as "Task was destroyed but it is pending!" when the interpreter exits.
    """
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _as_callable(program: Program) -> Callable[[], None]:
    if callable(program):
        return program
    path = Path(program).resolve()
    if path.is_dir():
        path = path / "__main__.py"

    def run_path() -> None:
        sys.path.insert(0, str(path.parent))
        try:
            runpy.run_path(str(path), run_name="__main__")
        finally:
            sys.path.remove(str(path.parent))

    return run_path


async def _run_in_stack(body: Callable[[], None]) -> StackOutputs:
    """Like pulumi.runtime.run_in_stack, but hands back the root stack's exports."""
    holder: dict[str, pulumi_stack.Stack] = {}

    def in_stack() -> None:
        root = pulumi_stack.Stack()
        holder["stack"] = root
        try:
            body()
        finally:
            root._finish()

    await pulumi_stack.run_pulumi_func(in_stack)
    exports = holder["stack"].outputs
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for name, value in exports.items():
        values[name], is_secret = await _resolve(value)
        if is_secret:
            secret.add(name)
    return StackOutputs(values, secret_keys=frozenset(secret))


async def _resolve(value: Any) -> tuple[Any, bool]:
    """An export's plain value, and whether any Output in it was secret.

    Awaits each Output once and walks plain containers in Python. ``Output.from_input``
    would wrap every nested dict and list of an already-resolved value in further
    Outputs: for a 400-row access matrix that was ~10% of a whole 25-VM program run.
    """
    if isinstance(value, pulumi.Output):
        inner, inner_secret = await _resolve(await value.future())
        return inner, inner_secret or await value.is_secret()
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        any_secret = False
        for key, item in value.items():
            out[key], item_secret = await _resolve(item)
            any_secret = any_secret or item_secret
        return out, any_secret
    if isinstance(value, (list, tuple)):
        items = [await _resolve(item) for item in value]
        resolved = [item for item, _ in items]
        return (
            tuple(resolved) if isinstance(value, tuple) else resolved,
            any(s for _, s in items),
        )
    return value, False
