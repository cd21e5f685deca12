"""``python -m verify`` / ``mikit-verify``: check, lifecycle, cleanup, sandbox.

    mikit-verify check      [--target sandbox|azure] [--stack S] [--outputs FILE]
    mikit-verify lifecycle  [--scenario NAME ...] [--cleanup] [...same options]
    mikit-verify cleanup    --principal OBJECT_ID [...]  [...same options]
    mikit-verify sandbox    ...   (runs the local sandbox on its own; see its --help)
    mikit-verify preflight  [--target azure|sandbox] [--stack S]  (vault name free? before up)

Progress is printed while it runs, a summary table at the end, and the reports
(report.json, report.md, junit.xml) land in --report-dir. Exit code 0 only when every
expectation held; 1 when one did not; 2 for bad input (a ConfigError, before anything
was deleted).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

import verify
from components.armid import is_guid
from components.errors import ConfigError
from verify import arguments
from verify.command_line import build_parser
from verify.interrupt import EXIT_CODES, Interrupted, fast_exit, interruptible

if TYPE_CHECKING:
    from components.role_lookup import RoleResolver
    from verify.report import print_summary, write_reports
    from verify.results import RunReport
    from verify.runner import check_report, cleanup_report, lifecycle_report
    from verify.stacks import StackSelection

#: What a run needs once its input is checked, imported then (``_load_run``; the
#: evidence model, the lifecycle, Azure's SDK models: ~0.5 s), not by ``--help``,
#: ``--version``, ``preflight`` or a usage error. Still attributes of this module.
_RUN_NAMES = {
    "check_report": "verify.runner",
    "cleanup_report": "verify.runner",
    "lifecycle_report": "verify.runner",
    "print_summary": "verify.report",
    "write_reports": "verify.report",
    "RunReport": "verify.results",
}


def __getattr__(name: str) -> Any:
    """The run's functions (``_RUN_NAMES``), imported on first use."""
    module = _RUN_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def _load_run() -> None:
    """Bind every name of ``_RUN_NAMES`` here, keeping one already set (a test's own)."""
    namespace = globals()
    for name in _RUN_NAMES:
        if name not in namespace:
            __getattr__(name)


EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _principals(values: Sequence[str]) -> list[str]:
    """``--principal`` values: object IDs (GUIDs) only, checked before any cloud call."""
    for value in values:
        if not is_guid(value):
            raise ConfigError(
                "--principal",
                value,
                "is not an object ID (a GUID)",
                "give the principal's object ID, e.g. the principalId of its role assignment",
            )
    return [v.lower() for v in values]


def _run_sandbox(argv: list[str], as_program: bool) -> int:
    """The sandbox on its own: a long-lived server, so the collector runs again
    (python -m verify paused it for the imports). As a program it ends as
    ``python -m verify.sandbox`` does, through :func:`fast_exit` once the sandbox stopped."""
    gc.enable()
    from verify.sandbox.__main__ import main as sandbox_main  # noqa: PLC0415

    code = int(sandbox_main(argv) or 0)
    if as_program:
        fast_exit(code)
    return code


def _run_preflight(args: argparse.Namespace, console: Console) -> int:
    """Exit 0 only when every check proved there is no conflict."""
    gc.enable()  # no deploy to freeze after (python -m verify paused it for the imports)
    from verify import preflight  # noqa: PLC0415 -- only for this command

    try:
        findings = preflight.run(args.target, args.stack, subscription_id=args.subscription)
    except ConfigError as exc:
        console.print(f"[red]error:[/] {exc}")
        return EXIT_USAGE
    for finding in findings:
        colour = {"ok": "green", "conflict": "red", "inconclusive": "yellow"}[finding.verdict]
        console.print(f"[{colour}]{finding.verdict}:[/] {finding.message}")
    return EXIT_OK if all(f.passed for f in findings) else EXIT_FAILED


class ImportClock:
    """Seconds spent importing: before ``main`` and in the lazy per-target imports.

    The imports (the Pulumi SDK, azure-mgmt-*, the sandbox's server stack) take seconds
    that no other phase counted; the report shows them as the "imports" phase.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.startup = 0.0
        self._spans: list[tuple[float, float]] = []
        self._first_run = True

    def start_run(self) -> None:
        """The first run in a process counts the imports before ``main``; later ones
        (tests calling :func:`main` again) start from zero."""
        self.startup = _IMPORTED_AT - verify.STARTED if self._first_run else 0.0
        self._first_run = False
        self.seconds = self.startup

    @contextmanager
    def timed(self) -> Iterator[None]:
        began = time.monotonic()
        try:
            yield
        finally:
            ended = time.monotonic()
            self._spans.append((began, ended))
            self.seconds += ended - began

    def since(self, moment: float) -> float:
        """Import seconds spent after ``moment`` (to keep them out of other phases)."""
        return sum(end - max(begin, moment) for begin, end in self._spans if end > moment)


IMPORTS = ImportClock()


def make_target(
    args: argparse.Namespace,
    console: Console,
    selection: StackSelection,
    outputs: dict[str, Any] | None,
) -> Any:
    """Build the chosen target; imports are per target so each needs only its own deps."""
    if args.target == "azure":
        with IMPORTS.timed():
            from verify.targets.azure import AzureTarget  # noqa: PLC0415 -- only for azure

        kwargs: dict[str, Any] = {"stack": selection.name, "outputs": outputs}
        if args.parallel:
            kwargs["max_parallel"] = args.parallel
        if args.cloud_init_wait is not None:
            if args.cloud_init_wait < 1:
                raise ConfigError(
                    "--cloud-init-wait",
                    args.cloud_init_wait,
                    "is below one second",
                    "give the seconds a VM may take to finish cloud-init, e.g. 900",
                )
            kwargs["cloud_init_wait"] = args.cloud_init_wait
        return AzureTarget(**kwargs)
    with IMPORTS.timed():
        from verify.sandbox import SandboxConfig  # noqa: PLC0415 -- imports the sandbox
        from verify.stacks import sandbox_overrides  # noqa: PLC0415
        from verify.targets.sandbox import SandboxTarget  # noqa: PLC0415

    if selection.encrypted_keys:
        console.print(
            f"[dim]{', '.join(selection.encrypted_keys)}: encrypted in the stack file; "
            "the sandbox deploys throw-away values instead[/]"
        )
    assert selection.path is not None  # the sandbox target always resolves a file
    with console.status(f"starting the sandbox and deploying {selection.describe()}..."):
        target = SandboxTarget(
            config=SandboxConfig(faults_file=args.sandbox_faults),
            stack_config=selection.path,
            stack=selection.label,
            config_overrides=sandbox_overrides(selection),
            max_parallel=args.parallel,
        )
    for name, seconds in target.timings.items():
        console.print(f"[dim]{name}: {seconds:.2f} s[/]")
    return target


def resolver_for(target: str) -> RoleResolver:
    """Catalog roles for the sandbox; on Azure, custom roles are looked up there too."""
    with IMPORTS.timed():
        from components.role_lookup import (  # noqa: PLC0415 -- imports the Pulumi SDK
            CatalogRoleResolver,
            default_role_resolver,
        )

    return CatalogRoleResolver() if target == "sandbox" else default_role_resolver()


def _interrupted_run(args: argparse.Namespace, exc: Interrupted) -> RunReport:
    """The report of a run a signal stopped before a runner took over."""
    _load_run()  # the signal may have come during the imports
    run = RunReport(args.command, args.target, args.stack or "(selected)", _now())
    run.mark_interrupted(exc.signal_name)
    return run


@contextmanager
def _frozen_afterwards(enabled: bool) -> Iterator[None]:
    """Run the block without the cyclic collector, then freeze what it allocated.

    The deploy (``run_program`` pauses the collector) leaves ~0.5 M young objects: the
    first collection after it re-scanned them all, 0.4-1.6 s in the middle of the check.
    In a process that ends with the run they live until exit anyway, so they go to the
    permanent generation instead; the few cycles among them are freed at exit. Only for
    a run as a program: a test calling :func:`main` keeps its collector as it was.
    """
    if not enabled:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def main(argv: Sequence[str] | None = None) -> int:
    as_program = argv is None  # the console script or python -m verify, not a test
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sandbox"]:
        return _run_sandbox(argv[1:], as_program)
    IMPORTS.start_run()
    args = build_parser().parse_args(argv)
    # Rich assumes 80 columns when not on a terminal; CI logs read better wider.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    if args.command == "preflight":
        return _run_preflight(args, console)
    started = time.monotonic()

    def progress(message: str) -> None:
        if not args.quiet:
            console.print(f"[dim]{time.monotonic() - started:6.1f}s[/] {message}")

    with interruptible():
        target = None
        try:
            # Everything the user gave is checked before anything starts or is deleted.
            outputs = arguments.check(args)
            principals = _principals(args.principal) if args.command == "cleanup" else []
            with IMPORTS.timed():
                from verify.stacks import load_selection  # noqa: PLC0415 -- imports the components

            selection = load_selection(
                args.target, args.stack, args.stack_file, resolver_for(args.target)
            )
            validated = time.monotonic() - started - IMPORTS.since(started)
            with IMPORTS.timed():
                _load_run()  # the input is good: what the run needs
            with _frozen_afterwards(as_program):
                target = make_target(args, console, selection, outputs)
            run: RunReport
            if args.command == "cleanup":
                run = cleanup_report(target, selection.label, principals, progress)
            elif args.command == "check":
                run = check_report(
                    target,
                    selection.label,
                    progress,
                    allow_unverified_values=args.allow_unverified_values,
                    propagation_wait=args.propagation_wait,
                )
            else:
                run = lifecycle_report(
                    target,
                    selection.label,
                    scenarios=args.scenario,
                    cleanup=args.cleanup,
                    progress=progress,
                    propagation_wait=args.propagation_wait,
                    allow_unverified_values=args.allow_unverified_values,
                    require_all=args.require_all_scenarios,
                    keep_locks=args.keep_locks,
                )
            run.stack_file = str(selection.path) if selection.path else None
            run.timings = {
                "imports": IMPORTS.seconds,
                "validate input": validated,
                **getattr(target, "timings", {}),
                **run.timings,
            }
        except Interrupted as exc:  # before a runner took over (sandbox start, deploy)
            run = _interrupted_run(args, exc)
        except ConfigError as exc:
            # Unwrapped, so the fix command can be copied whole.
            console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
            return EXIT_USAGE
        finally:
            if target is not None:
                target.close()

        run.timings["total"] = time.monotonic() - started + IMPORTS.startup
        paths = write_reports(run, args.report_dir)
        print_summary(run, console, paths)

        code = EXIT_OK if run.passed else EXIT_FAILED
        if run.interrupted is not None:
            code = EXIT_CODES.get(run.interrupted, 130)
        if as_program:
            # Reports written, the target closed, temporary files removed: end now. The
            # interpreter's own teardown of the SDKs' objects (a heap of Pulumi and
            # azure-mgmt modules) took 1-3 s of every run, after the summary was printed.
            fast_exit(code)
        return code


#: End of this module's import: everything before ``main`` has been imported by now.
_IMPORTED_AT = time.monotonic()
