"""Nothing the CI deployer runs lists at subscription scope.

The deployer holds roles on its workload resource groups only (the bootstrap pins that), so
a role-assignment or resource listing at ``/subscriptions/<id>`` answers 403 for it. The
orphan search of the lifecycle runs as the deployer in CI: it must list at the resource
group. This scans what CI executes (the workflows, the bootstrap helpers, the verifier) for
the subscription-wide listing calls of azure-mgmt-authorization, the REST API and the az
CLI, and proves the scan fires on each form.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Listing forms that read the whole subscription.
SUBSCRIPTION_LISTINGS = {
    "list_for_subscription": re.compile(r"\.list_for_subscription\s*\("),
    "role assignments REST at subscription scope": re.compile(
        r"/subscriptions/\{[^}]*\}/providers/Microsoft\.Authorization/roleAssignments(?![/\w{])"
    ),
    "az role assignment list without a scope": re.compile(
        r"\baz\s+role\s+assignment\s+list\b(?![^\n]*(--scope|--resource-group|\s-g\s))"
    ),
    "az resource list without a group": re.compile(
        r"\baz\s+resource\s+list\b(?![^\n]*(--resource-group|\s-g\s))"
    ),
}

AREAS = {
    "workflows": sorted((ROOT / ".github").rglob("*.yml")),
    "bootstrap": sorted((ROOT / "bootstrap").glob("*.py")),
    # The verifier's Azure-facing code; verify/sandbox *serves* these endpoints.
    "verifier": sorted(p for p in (ROOT / "verify").rglob("*.py") if "sandbox" not in p.parts),
}


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """Lines that execute: comments and docstring prose mentioning a call are not calls."""
    lines = []
    in_doc = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        quotes = stripped.count('"""') + stripped.count("'''")
        if in_doc or stripped.startswith(('"""', "'''")):
            in_doc = in_doc != (quotes % 2 == 1)
            continue
        if stripped.startswith("#") or "``" in stripped:
            continue
        lines.append((number, line))
    return lines


def findings(path: Path) -> list[str]:
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for number, line in _code_lines(path):
        for name, pattern in SUBSCRIPTION_LISTINGS.items():
            if pattern.search(line):
                found.append(f"{where}:{number}: {name}: {line.strip()}")
    return found


@pytest.mark.parametrize("area", sorted(AREAS))
def test_nothing_ci_runs_lists_at_subscription_scope(area: str) -> None:
    assert AREAS[area], f"no files found for {area}"
    hits = [hit for path in AREAS[area] for hit in findings(path)]
    assert hits == [], "\n".join(hits)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (
            "pages = client.role_assignments.list_for_subscription(filter=f)",
            "list_for_subscription",
        ),
        (
            'url = f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments"',
            "role assignments REST at subscription scope",
        ),
        (
            '          az role assignment list --assignee "$OID"',
            "az role assignment list without a scope",
        ),
        ("          az resource list --tag x=y", "az resource list without a group"),
    ],
)
def test_the_scan_fires_on_each_form(tmp_path: Path, text: str, name: str) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(text + "\n")
    assert [f.split(": ")[1] for f in findings(sample)] == [name]


@pytest.mark.parametrize(
    "text",
    [
        "pages = client.role_assignments.list_for_resource_group(rg, filter=f)",
        'az role assignment list --assignee "$OID" --resource-group "$RG"',
        'az role assignment list --scope "$SCOPE"',
        "# list_for_subscription( would need a subscription-wide role",
        'url = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"\n'
        '"Microsoft.Authorization/roleAssignments"',
    ],
)
def test_the_scan_accepts_resource_group_scope_and_prose(tmp_path: Path, text: str) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(text + "\n")
    assert findings(sample) == []
