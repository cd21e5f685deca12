"""Render a :class:`RunReport` for people and for CI: JSON, Markdown, JUnit XML, a table.

* ``report.json``: everything, machine-readable.
* ``report.md``: a Mermaid diagram of VMs, identities, grants and secrets, the access
  matrix coloured by outcome, then every lifecycle step; renders on GitHub as-is and is
  what a CI job summary should show.
* ``junit.xml``: one test case per matrix cell and per lifecycle step, so CI systems
  list the exact failing cell.
* a rich summary table on the terminal.

Nothing here decides pass/fail; it prints what :mod:`verify.evidence` and
:mod:`verify.lifecycle` decided. No secret value or token ever reaches a report: the
inputs carry claims and fingerprints only.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from components.roles import RoleCatalog
from verify import report_storage
from verify.evidence.cells import CellResult
from verify.model import StackOutputs, grant_allows
from verify.results import RunReport

MARK_READ = "🟩"
MARK_DENIED = "🟦"
MARK_FAIL = "🟥"
SUMMARY_ROW_LIMIT = 40


def write_reports(run: RunReport, directory: Path) -> dict[str, Path]:
    """Write all three files into ``directory`` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": directory / "report.json",
        "markdown": directory / "report.md",
        "junit": directory / "junit.xml",
    }
    paths["json"].write_text(json.dumps(run.to_dict(), indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_markdown(run), encoding="utf-8")
    paths["junit"].write_bytes(render_junit(run))
    return paths


# --------------------------------------------------------------------------- Markdown


def _node(prefix: str, key: str) -> str:
    return prefix + "_" + re.sub(r"[^A-Za-z0-9_]", "_", key)


def _label(text: str) -> str:
    return text.replace('"', "'")


def render_mermaid(outputs: StackOutputs) -> str:
    """VMs -> the identities they present -> grants (edges, labelled by role) -> secrets."""
    lines = ["flowchart LR"]
    lines.append("  subgraph VMs")
    for key, vm in sorted(outputs.vms.items()):
        lines.append(f'    {_node("vm", key)}["VM {_label(key)}<br/>{_label(vm.name)}"]')
    lines.append("  end")
    lines.append("  subgraph Identities")
    for key, vm in sorted(outputs.vms.items()):
        if vm.system_principal_id:
            lines.append(f'    {_node("sys", key)}(["system: {_label(key)}"])')
    for key, uai in sorted(outputs.identities.items()):
        lines.append(f'    {_node("uai", key)}(["user-assigned: {_label(uai.name)}"])')
    lines.append("  end")
    lines.append(f'  subgraph Vault["Key Vault {_label(outputs.vault.name)}"]')
    for name in sorted(outputs.secrets):
        lines.append(f'    {_node("sec", name)}[("{_label(name)}")]')
    lines.append("  end")
    lines += report_storage.storage_nodes(outputs)
    for key, vm in sorted(outputs.vms.items()):
        if vm.system_principal_id:
            lines.append(f"  {_node('vm', key)} --> {_node('sys', key)}")
        for ident in vm.user_assigned:
            lines.append(f"  {_node('vm', key)} --> {_node('uai', ident)}")
    catalog = RoleCatalog.builtin()
    principals = {vm.system_principal_id: _node("sys", k) for k, vm in outputs.vms.items()}
    principals.update({i.principal_id: _node("uai", k) for k, i in outputs.identities.items()})
    # Grants on a storage account or container are drawn with it (report_storage).
    for grant in [g for g in outputs.grants if "/microsoft.storage/" not in g.scope.lower()]:
        source = principals.get(grant.principal_id)
        if source is None:
            continue
        targets = [
            _node("sec", name)
            for name, ref in sorted(outputs.secrets.items())
            if grant_allows(grant, ref.scope, catalog)
        ]
        if not targets:
            # A grant that reads nothing is still drawn: it is what the stack asked for.
            lines.append(f'  {source} -. "{_label(grant.role_name)} (no secret read)" .-> Vault')
        for target in targets:
            lines.append(f'  {source} -- "{_label(grant.role_name)}" --> {target}')
    lines += report_storage.storage_edges(outputs, principals)
    return "\n".join(lines)


def _cell_mark(cell: CellResult) -> str:
    note = f" ({cell.note})" if cell.note else ""
    if not cell.passed:
        return f"{MARK_FAIL} {cell.observed} (expected {cell.expected}){note}"
    if cell.observed == "read":
        return f"{MARK_READ} read{note}"
    return f"{MARK_DENIED} {cell.observed}{note}"


def render_matrix(cells: Iterable[CellResult]) -> str:
    """Rows host/identity, columns targets (secrets, then blobs); each cell coloured by
    outcome."""
    cells = list(cells)
    kinds = {c.target: c.kind for c in cells}
    targets = sorted(kinds, key=lambda name: (kinds[name] == "blob", name))
    rows: dict[tuple[str, str], dict[str, CellResult]] = {}
    for cell in cells:
        rows.setdefault((cell.host, cell.identity), {})[cell.target] = cell
    titles = [f"blob {t}" if kinds[t] == "blob" else t for t in targets]
    header = "| host | identity | " + " | ".join(titles) + " |"
    rule = "|---|---|" + "---|" * len(targets)
    body = [
        f"| {host} | {identity} | "
        + " | ".join(_cell_mark(row[t]) if t in row else "" for t in targets)
        + " |"
        for (host, identity), row in sorted(rows.items())
    ]
    legend = (
        f"\n{MARK_READ} allowed and read · {MARK_DENIED} denied and refused · "
        f"{MARK_FAIL} not what the stack says\n"
    )
    return "\n".join([header, rule, *body]) + "\n" + legend


def render_markdown(run: RunReport) -> str:
    verdict = run.verdict
    out = [
        f"# managed-identity-kit verify {run.command}: {verdict}",
        "",
        f"- target: `{run.target}`, stack: `{run.stack}`, started {run.started_at}",
        f"- stack file: `{run.stack_file}`" if run.stack_file else "- stack file: (none)",
        *(
            [f"- VMs: {', '.join(f'`{k}` ({v.name})' for k, v in sorted(run.outputs.vms.items()))}"]
            if run.outputs is not None
            else []
        ),
        "- timings: "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run.timings.items()),
        "",
    ]
    if run.error:
        out += ["## Error", "", f"```\n{run.error}\n```", ""]
    if run.outputs is not None:
        out += ["## Topology", "", "```mermaid", render_mermaid(run.outputs), "```", ""]
    if run.check is not None:
        out += ["## Access matrix", "", render_matrix(run.check.cells)]
        out += ["### Identities seen in the tokens", ""]
        out += [
            "| host | identity | expected principal | token oid | credential source | result |",
            "|---|---|---|---|---|---|",
        ]
        for ident in run.check.identities:
            mark = "✅" if ident.passed else "❌ " + ident.detail
            out.append(
                f"| {ident.host} | {ident.identity} | {ident.expected_principal} | "
                f"{ident.observed_oid} | {ident.credential_source or '-'} | {mark} |"
            )
        out.append("")
        if run.check.failures:
            out += ["### Failures", ""] + [f"- {f}" for f in run.check.failures] + [""]
    for scenario in run.scenarios:
        if scenario.skipped is not None:
            mark = "❌ SKIPPED" if run.require_all_scenarios else "⏭️ SKIPPED"
            out += [f"## {mark} Scenario `{scenario.name}`", "", scenario.description, ""]
            out += [f"**Cannot run on this topology:** {scenario.skipped}.", ""]
            out += [f"**To run it, add to the stack:** {scenario.fix}", ""]
            continue
        mark = "✅" if scenario.passed else "❌"
        out += [f"## {mark} Scenario `{scenario.name}` ({scenario.seconds:.1f} s)", ""]
        out += [scenario.description, ""]
        if scenario.subjects:
            out += [f"Acts on: {scenario.subjects}.", ""]
        if scenario.error:
            out += [f"**Error:** {scenario.error}", ""]
        out += ["| step | expected | observed | result | time |", "|---|---|---|---|---|"]
        for step in scenario.steps:
            result = "✅" if step.passed else "❌"
            out.append(
                f"| {step.name} | {_cell(step.expected)} | {_cell(step.observed)} | {result} | "
                f"{step.seconds:.2f} s |"
            )
        notes = [f"- **{s.name}**: {d}" for s in scenario.steps for d in s.details]
        out += ["", *notes, ""] if notes else [""]
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --------------------------------------------------------------------------- JUnit


def render_junit(run: RunReport) -> bytes:
    """JUnit XML: a suite for the matrix check, one per lifecycle scenario."""
    root = ET.Element("testsuites", name=f"verify {run.command} ({run.target})")
    if run.error:
        suite = ET.SubElement(root, "testsuite", name="run", tests="1", failures="1")
        name = "INTERRUPTED" if run.interrupted else "run"
        case = ET.SubElement(suite, "testcase", classname="verify", name=name)
        ET.SubElement(case, "error", message=run.error[:500]).text = run.error
    if run.check is not None:
        cases = run.check.cells
        failed = sum(not c.passed for c in cases) + sum(not i.passed for i in run.check.identities)
        total = len(cases) + len(run.check.identities)
        suite = ET.SubElement(
            root, "testsuite", name="access-matrix", tests=str(total), failures=str(failed)
        )
        for ident in run.check.identities:
            case = ET.SubElement(
                suite, "testcase", classname=f"identity.{ident.host}", name=f"{ident.identity} oid"
            )
            if not ident.passed:
                ET.SubElement(case, "failure", message=ident.detail)
        for cell in cases:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=f"matrix.{cell.host}.{cell.identity}",
                name=f"{'blob ' if cell.kind == 'blob' else ''}{cell.target} {cell.expected}",
            )
            if not cell.passed:
                ET.SubElement(case, "failure", message=cell.detail)
            if cell.note:
                # A passing case that still carries a caveat (e.g. "value not compared").
                props = ET.SubElement(case, "properties")
                ET.SubElement(props, "property", name="note", value=cell.note)
                ET.SubElement(case, "system-out").text = cell.note
    for scenario in run.scenarios:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"lifecycle.{scenario.name}",
            tests=str(max(1, len(scenario.steps))),
            failures=str(sum(not s.passed for s in scenario.steps)),
            time=f"{scenario.seconds:.3f}",
        )
        if scenario.skipped is not None:
            case = ET.SubElement(suite, "testcase", classname=scenario.name, name="scenario")
            text = f"{scenario.skipped}; to run it: {scenario.fix}"
            kind = "failure" if run.require_all_scenarios else "skipped"
            ET.SubElement(case, kind, message=text[:500]).text = text
            suite.set("skipped" if kind == "skipped" else "failures", "1")
            continue
        if scenario.error:
            case = ET.SubElement(suite, "testcase", classname=scenario.name, name="scenario")
            ET.SubElement(case, "error", message=scenario.error[:500]).text = scenario.error
        for step in scenario.steps:
            case = ET.SubElement(
                suite,
                "testcase",
                classname=scenario.name,
                name=step.name,
                time=f"{step.seconds:.3f}",
            )
            if not step.passed:
                ET.SubElement(
                    case,
                    "failure",
                    message=f"expected {step.expected}; observed {step.observed}",
                ).text = "\n".join(step.details)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


# --------------------------------------------------------------------------- terminal


def summary_tables(run: RunReport) -> list[Table]:
    """The terminal's matrix table: every cell, or per-VM counts when there are many."""
    tables: list[Table] = []
    if run.check is not None:
        tables.append(_matrix_table(run.check.cells))
    return tables


def _matrix_table(cells: list[CellResult]) -> Table:
    if len(cells) <= SUMMARY_ROW_LIMIT:
        table = Table(title="Access matrix", show_lines=False)
        for col in ("host", "identity", "target", "expected", "observed", "result"):
            table.add_column(col)
        for c in cells:
            table.add_row(
                c.host,
                c.identity,
                c.target,
                c.expected,
                c.observed + (f" ({c.note})" if c.note else ""),
                "[green]pass[/]" if c.passed else "[red]FAIL[/]",
            )
    else:
        table = Table(title=f"Access matrix ({len(cells)} cells)")
        for col in ("host", "cells", "read", "refused", "failed"):
            table.add_column(col)
        per_host: dict[str, list[CellResult]] = {}
        for c in cells:
            per_host.setdefault(c.host, []).append(c)
        for host, items in sorted(per_host.items()):
            bad = sum(not c.passed for c in items)
            table.add_row(
                host,
                str(len(items)),
                str(sum(c.observed == "read" for c in items)),
                str(sum(c.observed == "forbidden" for c in items)),
                f"[red]{bad}[/]" if bad else "[green]0[/]",
            )
    return table


def lifecycle_lines(run: RunReport) -> list[str]:
    """One line per step (rich markup): a table wraps badly in an 80-column CI log."""
    lines: list[str] = []
    for scenario in run.scenarios:
        if scenario.skipped is not None:
            colour = "red" if run.require_all_scenarios else "yellow"
            lines.append(f"[{colour}]- SKIPPED[/] [bold]{scenario.name}[/]: {scenario.skipped}")
            lines.append(f"    to run it: {scenario.fix}")
            continue
        mark = "[green]✓[/]" if scenario.passed else "[red]✗[/]"
        lines.append(f"{mark} [bold]{scenario.name}[/] ({scenario.seconds:.1f} s)")
        for step in scenario.steps:
            tick = "[green]✓[/]" if step.passed else "[red]✗[/]"
            lines.append(f"    {tick} {step.name}: {step.observed} [dim]({step.seconds:.2f} s)[/]")
            if not step.passed:
                lines.append(f"        [red]expected:[/] {step.expected}")
                lines.extend(f"        {detail}" for detail in step.details)
        if scenario.error:
            lines.append(f"    [red]✗ {scenario.error}[/]")
    return lines


def print_summary(run: RunReport, console: Console, paths: dict[str, Path] | None = None) -> None:
    for table in summary_tables(run):
        console.print(table)
    if run.scenarios:
        console.print("[bold]Lifecycle[/]")
        for line in lifecycle_lines(run):
            console.print(line, highlight=False, soft_wrap=False)
    if run.check is not None:
        for failure in run.check.failures:
            console.print(f"[red]✗[/] {failure}")
    if run.error:
        console.print(f"[red]error:[/] {run.error}")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in run.timings.items())
    colour = {"PASSED": "bold green", "FAILED": "bold red", "INTERRUPTED": "bold yellow"}
    verdict = f"[{colour[run.verdict]}]{run.verdict}[/]"
    skipped = [s.name for s in run.scenarios if s.skipped is not None]
    if skipped:
        note = (
            "fail the run (--require-all-scenarios)"
            if run.require_all_scenarios
            else ("did not run; everything that ran is judged")
        )
        console.print(
            f"[yellow]{len(skipped)} scenario(s) skipped[/] ({', '.join(skipped)}): {note}"
        )
    where = f"{run.stack} ({run.stack_file})" if run.stack_file else run.stack
    console.print(f"{verdict}  verify {run.command} on {run.target}, stack {where} ({timing})")
    if paths:
        console.print("reports: " + ", ".join(str(p) for p in paths.values()))
