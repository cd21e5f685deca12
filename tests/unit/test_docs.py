"""The README stays a short front page, and the documentation's links and quoted text hold.

The README is what a newcomer reads first: at most 250 lines, and exactly the two set-up
commands (the main job and the tests; `.ci/run` and the workflows run the second). Every
relative link in the README and docs/ names a file that exists and, with a `#fragment`, a
heading of that page, so moving a section never leaves a dead link behind. The deployer's
ABAC condition quoted in docs/deploy-from-ci.md is the one the bootstrap generates for its
example config.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import BaseModel

from bootstrap.conditions import constrain_role_assignments
from bootstrap.config import parse_assignable_roles
from bootstrap.program import GRANT_REASONS
from components.stack_config import KEYS, StackConfig
from verify.lifecycle import SCENARIO_NAMES

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
MAX_README_LINES = 250
SETUP_COMMANDS = [
    "python -m pip install uv && python -m uv run --locked --no-dev python -m verify "
    "lifecycle --target sandbox",
    "python -m pip install uv && python -m uv run --locked pytest",
]
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def test_the_readme_is_at_most_250_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines; move detail to a docs/ page and link it"
    )


def test_the_readme_has_exactly_the_two_setup_commands() -> None:
    found = [
        line.strip()
        for line in README.read_text().splitlines()
        if line.strip().startswith("python -m pip install uv")
    ]
    assert found == SETUP_COMMANDS


def test_ci_run_runs_the_readme_test_command() -> None:
    """`.ci/run` is CI's entry point: it runs the README's test command, part by part, in
    order (with the Azure CLI environment for tests/azcli set up in between)."""
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    parts = SETUP_COMMANDS[1].split(" && ")
    positions = [lines.index(part) for part in parts]
    assert positions == sorted(positions)


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation other than
    '-' and '_' dropped, each space a '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text())
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE):
        slug = github_anchor(heading)
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def relative_links(page: Path) -> list[str]:
    text = _FENCE.sub("", page.read_text())
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [t for t in _LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in relative_links(page):
        path_part, _, fragment = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{target}: no heading '#{fragment}' in {dest.relative_to(ROOT)}")
    assert broken == [], f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_link_checker_catches_a_missing_page_and_a_missing_heading(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A page\n\n## Second part\n\n[ok](#second-part)\n")
    page = tmp_path / "b.md"
    page.write_text("[x](a.md#a-page) [y](missing.md) [z](a.md#nope) `[q](not-a-link.md)`\n")
    assert relative_links(page) == ["a.md#a-page", "missing.md", "a.md#nope"]
    assert anchors(tmp_path / "a.md") == {"a-page", "second-part"}
    assert github_anchor("`verify.sandbox`: the API (owner)") == "verifysandbox-the-api-owner"


def test_the_documented_deployer_condition_is_the_generated_one() -> None:
    stack = yaml.safe_load((ROOT / "bootstrap" / "stacks" / "Pulumi.ci.yaml").read_text())
    config = stack["config"]
    roles = parse_assignable_roles(config["managed-identity-kit-bootstrap:assignableRoles"])
    condition = constrain_role_assignments([r.guid for r in roles])
    page = (DOCS / "deploy-from-ci.md").read_text()
    blocks = re.findall(r"```text\n(.+?)\n```", page, re.DOTALL)
    assert condition in blocks


def _sandbox_examples() -> list[tuple[str, str]]:
    """Every Python block of the README and docs/sandbox.md that starts a Sandbox."""
    examples = []
    for page in (README, DOCS / "sandbox.md"):
        blocks = re.findall(r"```python\n(.+?)```", page.read_text(), re.DOTALL)
        examples += [
            (f"{page.name}[{i}]", block) for i, block in enumerate(blocks) if "Sandbox(" in block
        ]
    return examples


@pytest.mark.parametrize(("where", "code"), _sandbox_examples(), ids=lambda v: str(v)[:14])
def test_the_sandbox_examples_run(where: str, code: str) -> None:
    """Each example runs as written against a real sandbox (its os.environ changes undone)."""
    saved = dict(os.environ)
    try:
        exec(compile(code, where, "exec"), {"__name__": "__docs__"})
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_both_pages_have_sandbox_examples() -> None:
    assert [w for w, _ in _sandbox_examples()] == ["README.md[1]", "sandbox.md[0]", "sandbox.md[1]"]


# -- names of the code: every module, attribute and path a page names exists -----------------

#: Pages whose code references are checked here. docs/azure-fidelity.md is left to
#: tests/conformance/test_fidelity_table.py, which holds each of its rows to a test.
CODE_PAGES = [p for p in PAGES if p.name != "azure-fidelity.md"]
#: Example paths the pages use on purpose (a user's own stack file).
EXAMPLE_PATHS = {"stacks/Pulumi.mine.yaml", "stacks/Pulumi.NAME.yaml"}
_REPO_PATH = re.compile(
    r"(?:components|verify|bootstrap|tests|stacks|docs|\.github|\.ci)/[\w.\-/]*"
    r"|__main__\.py|hatch_build\.py|pyproject\.toml|Pulumi\.yaml"
)
_DOTTED = re.compile(r"(?:components|verify|bootstrap)(?:\.[A-Za-z_]\w*)+")


def code_references(page: Path) -> tuple[list[str], list[str]]:
    """(repository paths, dotted Python names) written as inline code on ``page``."""
    paths, dotted = [], []
    for code in re.findall(r"`([^`\n]+)`", _FENCE.sub("", page.read_text())):
        token = code.split("::", 1)[0].strip()
        if _REPO_PATH.fullmatch(token) and token not in EXAMPLE_PATHS:
            paths.append(token)
        elif _DOTTED.fullmatch(token):
            dotted.append(token)
    return paths, dotted


def resolves(name: str) -> bool:
    """``name`` is an importable module, or an attribute path below one."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


@pytest.mark.parametrize("page", CODE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_and_path_a_page_names_exists(page: Path) -> None:
    paths, dotted = code_references(page)
    missing = [p for p in paths if not (ROOT / p).exists()]
    missing += [d for d in dotted if not resolves(d)]
    assert missing == [], f"{page.relative_to(ROOT)} names what the code no longer has: {missing}"


def test_code_references_are_found_and_judged(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "`verify/probe.py` `tests/x.py::test_y` `verify.probe.OUTCOMES` `verify.nope` "
        "`mikit:vms` `stacks/Pulumi.mine.yaml`\n```\n`verify/in_a_fence.py`\n```\n"
    )
    assert code_references(page) == (
        ["verify/probe.py", "tests/x.py"],
        ["verify.probe.OUTCOMES", "verify.nope"],
    )
    assert resolves("verify.probe.OUTCOMES")
    assert not resolves("verify.nope")
    assert not resolves("verify.probe.NO_SUCH_NAME")


_COUNTS = {
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
    11: "eleven",
    12: "twelve",
}


def test_the_pages_name_every_lifecycle_scenario_and_count_them_right() -> None:
    count = _COUNTS[len(SCENARIO_NAMES)]
    for page in (README, DOCS / "verify.md"):
        text = page.read_text()
        missing = [name for name in SCENARIO_NAMES if f"`{name}`" not in text]
        assert missing == [], f"{page.name} does not describe the scenarios {missing}"
        said = re.findall(r"\b(\w+) scenarios\b", text)
        wrong = [n for n in said if n in _COUNTS.values() and n != count]
        assert wrong == [], f"{page.name} says {wrong} scenarios; there are {count}"


def _config_models(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[type[BaseModel]]:
    """Every pydantic model the stack config schema reaches from ``model``."""
    seen.add(model)
    for field in model.model_fields.values():
        pending = [field.annotation]
        while pending:
            annotation = pending.pop()
            is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
            if is_model and annotation not in seen:
                _config_models(annotation, seen)
            pending.extend(get_args(annotation))
    return seen


def test_stack_config_md_has_a_row_per_key_and_names_every_nested_key() -> None:
    text = (DOCS / "stack-config.md").read_text()
    rows = set(re.findall(r"^\| `([\w-]+)`", text, re.MULTILINE))
    assert [k for k in KEYS if k not in rows] == []
    unnamed = [
        f"{model.__name__}.{field.alias or name}"
        for model in _config_models(StackConfig, set())
        for name, field in model.model_fields.items()
        if not re.search(rf"\b{re.escape(field.alias or name)}\b", text)
    ]
    assert unnamed == [], f"docs/stack-config.md does not describe {unnamed}"


_ROLE_ROW = re.compile(r"^\| ([^|]+?)(?:, \*\*with [^|]*)? \| [^|]+ \| [^|]+ \|$", re.MULTILINE)


def test_deploy_from_ci_explains_every_role_the_deployer_holds() -> None:
    rows = set(_ROLE_ROW.findall((DOCS / "deploy-from-ci.md").read_text()))
    assert set(GRANT_REASONS) - rows == set(), "deployer roles without a row in the roles table"
