"""The command line's grammar: ``mikit-verify``'s parser, its subcommands and options.

Building the parser imports none of a run's modules: the scenario names and the cleanup
rules it quotes are read when parsing ``lifecycle`` or printing help (``--version`` and a
usage error stay instant). :mod:`verify.cli` runs what it parses.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from verify.arguments import PARALLEL_RANGE, PROPAGATION_WAIT_RANGE

DISTRIBUTION = "managed-identity-kit"


def version() -> str:
    """The installed distribution's version (the wheel's, or the checkout's editable one)."""
    from importlib.metadata import PackageNotFoundError  # noqa: PLC0415
    from importlib.metadata import version as dist_version  # noqa: PLC0415

    try:
        return dist_version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


class _ScenarioNames(Sequence[str]):
    """``--scenario``'s choices, read from :mod:`verify.lifecycle` when first needed
    (parsing ``lifecycle`` or printing its help): building the parser imports nothing."""

    @staticmethod
    def _names() -> tuple[str, ...]:
        from verify.lifecycle import SCENARIO_NAMES  # noqa: PLC0415

        return SCENARIO_NAMES

    def __getitem__(self, index: Any) -> Any:
        return self._names()[index]

    def __len__(self) -> int:
        return len(self._names())

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


def _cleanup_rules() -> str:
    from verify.orphans import CLEANUP_RULES  # noqa: PLC0415

    return CLEANUP_RULES


class _Parser(argparse.ArgumentParser):
    """An argument parser whose description may be computed when help is printed
    (``describe``), so the rules it quotes are imported only for ``--help``."""

    def __init__(self, *args: Any, describe: Callable[[], str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._describe = describe

    def format_help(self) -> str:
        if self._describe is not None:
            self.description = self._describe()
            self._describe = None
        return super().format_help()


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
        help="Pulumi stack: its file is stacks/Pulumi.NAME.yaml here (azure: also whose "
        "outputs to read; sandbox: default 'sandbox', the packaged copy if there is none)",
    )
    parser.add_argument(
        "--stack-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="the stack file to verify, anywhere (sandbox: deploys that topology; azure: "
        "checked before anything runs); the stack name defaults to Pulumi.<name>.yaml",
    )
    parser.add_argument(
        "--outputs",
        type=Path,
        default=None,
        help="azure: a file holding `pulumi stack output --json --show-secrets`",
    )
    parser.add_argument("--report-dir", type=Path, default=Path("reports"))
    parser.add_argument(
        "--parallel",
        default=None,
        metavar="N",
        help=f"VMs probed at once, {PARALLEL_RANGE[0]}-{PARALLEL_RANGE[1]} (default: per target)",
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
        default=None,
        metavar="SECONDS",
        help=f"{PROPAGATION_WAIT_RANGE[0]:g}-{PROPAGATION_WAIT_RANGE[1]:g}: seconds a cell "
        "expected allowed may keep getting Key Vault's RBAC 403 while a "
        "grant propagates (default: 600 on azure, Microsoft's documented 'up to 10 minutes'; "
        "15 on the sandbox; lifecycle: 120 after its own grants). Cells expected denied are "
        "never retried",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mikit-verify",
        description=(
            "Prove from inside each host (VM, scale-set instance, app, AKS workload) which Key "
            "Vault secrets and Blob Storage blobs its identities can read, and no more."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    check = sub.add_parser("check", help="probe every host against the stack's access matrix")
    _common(check)
    life = sub.add_parser(
        "lifecycle",
        help="baseline check, then the deletion scenarios",
        describe=lambda: (
            "Baseline check, then the deletion scenarios.\n\n--cleanup: " + _cleanup_rules()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(life)
    scenario = life.add_argument(
        "--scenario",
        action="append",
        help="run only this scenario (repeatable; default: all, in order)",
    )
    # Set after adding: add_argument formats the choices (to check a metavar) at once.
    scenario.choices = _ScenarioNames()
    life.add_argument(
        "--require-all-scenarios",
        action="store_true",
        help="fail when the topology cannot run a scenario (default: it is reported SKIPPED "
        "with what to add to the stack, and the run passes if everything that ran passed)",
    )
    life.add_argument(
        "--keep-locks",
        action="store_true",
        help="never lift a management lock: a scenario a lock refuses (deleting an identity "
        "with a CanNotDelete lock, any write under a ReadOnly lock) is reported SKIPPED naming "
        "the lock (default: the lock is lifted for that scenario and always put back, with "
        "Microsoft.Authorization/locks/delete and /write)",
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
        describe=lambda: (
            "Delete the orphaned role assignments of the named principals.\n\n" + _cleanup_rules()
        ),
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
    _preflight_parser(sub)
    return parser


def _preflight_parser(sub: Any) -> None:
    pre = sub.add_parser(
        "preflight",
        help="before `pulumi up`: is the vault name held by a soft-deleted vault?",
    )
    pre.add_argument("--target", choices=("sandbox", "azure"), default="azure")
    pre.add_argument("--stack", default=None, help="stack whose stacks/Pulumi.<stack>.yaml to read")
    pre.add_argument(
        "--subscription",
        default=None,
        help="azure: subscription ID (default AZURE_SUBSCRIPTION_ID)",
    )
