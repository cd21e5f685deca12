"""``python -m verify`` / ``mikit-verify``: check, lifecycle, cleanup, sandbox.

    mikit-verify check      [--target sandbox|azure] [--stack S] [--outputs FILE]
    mikit-verify lifecycle  [--scenario NAME ...] [--cleanup] [...same options]
    mikit-verify cleanup    --principal OBJECT_ID [...]  [...same options]
    mikit-verify sandbox    ...   (runs the local sandbox on its own; see its --help)

Progress is printed while it runs, a summary table at the end, and the reports
(report.json, report.md, junit.xml) land in --report-dir. Exit code 0 only when every
expectation held; 1 when one did not; 2 for bad input (a ConfigError, before anything
was deleted).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from components.armid import is_guid
from components.errors import ConfigError
from verify.lifecycle import SCENARIO_NAMES
from verify.orphans import CLEANUP_RULES
from verify.report import print_summary, write_reports
from verify.results import RunReport
from verify.runner import check_report, cleanup_report, lifecycle_report

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        choices=("sandbox", "azure"),
        default="sandbox",
        help="where to verify: the local sandbox (default) or real Azure",
    )
    parser.add_argument(
        "--stack",
        default=None,
        help="Pulumi stack (azure: whose outputs to read; sandbox: default 'sandbox')",
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        default=None,
        help="azure: a file holding `pulumi stack output --json --show-secrets`",
    )
    parser.add_argument("--report-dir", type=Path, default=Path("reports"))
    parser.add_argument(
        "--parallel", type=int, default=None, help="VMs probed at once (default: per target)"
    )
    parser.add_argument(
        "--sandbox-faults",
        type=Path,
        default=None,
        help="sandbox: a TOML/JSON fault plan (IMDS 5xx, Key Vault 429, propagation delay, "
        "deleted-principal tokens; see verify/sandbox/faults.py)",
    )
    parser.add_argument(
        "--cloud-init-wait",
        type=int,
        default=None,
        help="azure: seconds each VM may spend finishing cloud-init (it installs the probe's "
        "venv) before it is reported not probed (default 900)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--allow-unverified-values",
        action="store_true",
        help="accept a secret that was read but whose value cannot be compared because the "
        "outputs hide the fingerprints ([secret], no --show-secrets); each such cell says "
        "'value not compared' in every report. Without it such a run fails",
    )
    parser.add_argument(
        "--propagation-wait",
        type=float,
        default=None,
        help="seconds a cell expected allowed may keep getting Key Vault's RBAC 403 while a "
        "grant propagates (default: 600 on azure, Microsoft's documented 'up to 10 minutes'; "
        "15 on the sandbox; lifecycle: 120 after its own grants). Cells expected denied are "
        "never retried",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mikit-verify",
        description="Prove from inside each VM which Key Vault secrets its identities can read.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="probe every VM against the stack's access matrix")
    _common(check)
    life = sub.add_parser(
        "lifecycle",
        help="baseline check, then the deletion scenarios",
        description="Baseline check, then the deletion scenarios.\n\n--cleanup: " + CLEANUP_RULES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(life)
    life.add_argument(
        "--scenario",
        action="append",
        choices=SCENARIO_NAMES,
        help="run only this scenario (repeatable; default: all, in order)",
    )
    life.add_argument(
        "--cleanup",
        action="store_true",
        help="remove the orphaned role assignments of principals this run removed, by the "
        "rules below (never a live one)",
    )
    clean = sub.add_parser(
        "cleanup",
        help="remove orphaned role assignments of principals you name",
        description="Delete the orphaned role assignments of the named principals.\n\n"
        + CLEANUP_RULES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(clean)
    clean.add_argument(
        "--principal",
        action="append",
        required=True,
        metavar="OBJECT_ID",
        help="object ID of a deleted principal whose assignments to clean (repeatable)",
    )
    sub.add_parser("sandbox", help="run the local sandbox (arguments go to it)", add_help=False)
    return parser


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


def make_target(args: argparse.Namespace, console: Console) -> Any:
    """Build the chosen target; imports are per target so each needs only its own deps."""
    if args.target == "azure":
        from verify.targets.azure import AzureTarget  # noqa: PLC0415 -- only for --target azure

        kwargs: dict[str, Any] = {"stack": args.stack, "outputs_file": args.outputs}
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
    from verify.sandbox import SandboxConfig  # noqa: PLC0415 -- imports the sandbox
    from verify.targets.sandbox import SandboxTarget  # noqa: PLC0415

    if args.sandbox_faults is not None and not args.sandbox_faults.is_file():
        raise ConfigError(
            "--sandbox-faults",
            str(args.sandbox_faults),
            "is not a file",
            "give a TOML or JSON file",
        )
    if args.outputs is not None:
        raise ConfigError(
            "--outputs",
            str(args.outputs),
            "only applies to --target azure",
            "drop it: the sandbox target deploys the stack program itself",
        )
    with console.status("starting the sandbox and deploying the stack program..."):
        target = SandboxTarget(
            config=SandboxConfig(faults_file=args.sandbox_faults),
            stack=args.stack or "sandbox",
            max_parallel=args.parallel,
        )
    for name, seconds in target.timings.items():
        console.print(f"[dim]{name}: {seconds:.2f} s[/]")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sandbox"]:
        from verify.sandbox.__main__ import main as sandbox_main  # noqa: PLC0415

        return int(sandbox_main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    # Rich assumes 80 columns when not on a terminal; CI logs read better wider.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    started = time.monotonic()

    def progress(message: str) -> None:
        if not args.quiet:
            console.print(f"[dim]{time.monotonic() - started:6.1f}s[/] {message}")

    target = None
    try:
        principals = _principals(args.principal) if args.command == "cleanup" else []
        target = make_target(args, console)
        stack = args.stack or ("sandbox" if args.target == "sandbox" else "(selected)")
        run: RunReport
        if args.command == "cleanup":
            run = cleanup_report(target, stack, principals, progress)
        elif args.command == "check":
            run = check_report(
                target,
                stack,
                progress,
                allow_unverified_values=args.allow_unverified_values,
                propagation_wait=args.propagation_wait,
            )
        else:
            run = lifecycle_report(
                target,
                stack,
                scenarios=args.scenario,
                cleanup=args.cleanup,
                progress=progress,
                propagation_wait=args.propagation_wait,
                allow_unverified_values=args.allow_unverified_values,
            )
        run.timings = {**getattr(target, "timings", {}), **run.timings}
    except ConfigError as exc:
        console.print(f"[red]error:[/] {exc}")
        return EXIT_USAGE
    finally:
        if target is not None:
            target.close()
    run.timings["total"] = time.monotonic() - started
    paths = write_reports(run, args.report_dir)
    print_summary(run, console, paths)
    return EXIT_OK if run.passed else EXIT_FAILED
