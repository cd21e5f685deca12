"""Microsoft's own examples, replayed against the sandbox (conformance).

Every operation the sandbox serves is a row of ``operations.json`` with the example
Microsoft publishes for it (vendored under ``examples/`` with its spec path and commit). The
replay compares status, the headers that matter and the body's shape with the example's; a
difference is either fixed or listed in the row's ``differences`` (and in
docs/azure-fidelity.md as deliberately not modelled). The coverage tests probe the sandbox
for every route it answers, so a new route without a row (and an example) fails here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conformance_replay import (
    ARM,
    EXAMPLES,
    SESSION,
    VAULT,
    Bindings,
    compare,
    example,
    operations,
    request_body,
    send,
)

from verify.sandbox import Sandbox
from verify.sandbox.api_versions import DATA

ROWS = operations()
RG_TEMPLATE = "/subscriptions/{}/resourceGroups/{}"
REPLAYED = [row for row in ROWS if row.get("example")]


def test_every_row_has_an_example_or_says_why_not() -> None:
    ids = [row["id"] for row in ROWS]
    assert len(ids) == len(set(ids)), "operation ids are unique"
    for row in ROWS:
        assert bool(row.get("example")) != bool(row.get("no_example")), row["id"]
        if row.get("example"):
            assert row["spec"].startswith("specification/") and row["spec"].endswith(".json")
            assert len(row["commit"]) == 40, row["id"]
            assert (EXAMPLES / row["example"]).is_file(), row["example"]
            assert row["spec"].endswith("/" + row["example"].rsplit("/", 1)[1]), row["id"]


def test_every_vendored_example_is_replayed() -> None:
    used = {row["example"] for row in REPLAYED}
    files = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.json")}
    assert files == used, files ^ used


@pytest.mark.parametrize("row", REPLAYED, ids=[row["id"] for row in REPLAYED])
def test_example_replays_against_the_sandbox(
    row: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    # a GET changes nothing: it may share resources; anything else gets its own; a
    # subscription-wide list gets a sandbox of its own (what other replays made is listed)
    fixture = "shared_bindings" if row["method"] == "GET" else "bindings"
    bindings: Bindings = request.getfixturevalue(
        "own_bindings" if row.get("sandbox") == "own" else fixture
    )
    ex = example(row)
    response = send(row, bindings, request_body(row, ex, bindings))
    differences = compare(ex, response, row["plane"])
    record = os.environ.get("MIKIT_CONFORMANCE_RECORD")
    if record:  # to fill a new row: the differences found, one JSON line per operation
        with Path(record).open("a") as out:
            out.write(json.dumps({"id": row["id"], "differences": sorted(differences)}) + "\n")
    assert sorted(differences) == sorted(row["differences"]), (
        f"{row['id']}: the sandbox's answer differs from {row['example']} "
        f"(status {response.status_code}); fix it or list the difference in operations.json "
        "and docs/azure-fidelity.md:\n  "
        + "\n  ".join(sorted(set(differences) ^ set(row["differences"])))
    )


def test_arm_echoes_the_callers_correlation_id(shared_bindings: Bindings) -> None:
    """ARM returns the x-ms-correlation-request-id a caller sends (az and the SDKs send one
    per command and print it with errors), and its own x-ms-request-id."""
    sb = shared_bindings.sb
    correlation = "6f1c6bd4-8f7e-4e2b-9c41-0d6a3f1c2b7e"
    response = SESSION.get(
        f"{sb.arm_url}/subscriptions/{sb.subscription_id}/resourceGroups/"
        f"{shared_bindings.values['rg']}",
        params={"api-version": "2022-09-01"},
        headers={
            "Authorization": f"Bearer {sb.issue_token(sb.operator, ARM)}",
            "x-ms-correlation-request-id": correlation,
        },
        verify=sb.ca_cert_path,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-ms-correlation-request-id"] == correlation
    assert response.headers["x-ms-request-id"] != correlation


def test_no_example_waits_for_its_route() -> None:
    """Every vendored example is replayed as a test: a row may not be parked (``awaiting``)
    until the sandbox serves its route, so nothing Microsoft documents is skipped."""
    parked = [row["id"] for row in ROWS if "awaiting" in row]
    assert not parked, f"rows vendored ahead of their route: {parked}"


# ------------------------------------------------------------------------ coverage


def _normal(path: str) -> str:
    """A path template with every placeholder as ``{}``, lower-case (ARM is case-blind)."""
    out, depth = [], 0
    for char in path:
        if char == "{":
            depth += 1
            if depth == 1:
                out.append("{}")
        elif char == "}":
            depth -= 1
        elif depth == 0:
            out.append(char)
    return "".join(out).lower().rstrip("/")


def _table(plane: str) -> set[tuple[str, str]]:
    found = set()
    for row in ROWS:
        if row["plane"] == plane:
            for path in [row["path"], *row.get("also", [])]:
                found.add((row["method"], _normal(path)))
    return found


#: A nested type's parent is a real one where the bindings have it (a route may check that
#: its parent exists before it checks the method).
PARENTS = {
    "userAssignedIdentities": "identity",
    "sites": "site",
    "virtualMachineScaleSets": "scale_set",
    "storageAccounts": "account",
    "blobServices": "blob_service",
}


def _arm_candidates(bound: Bindings) -> Iterator[tuple[str, str, str, str]]:
    """(method, template, url path, api-version) for every shape of request ARM could route
    for the resource types the sandbox has api-versions for."""
    data = json.loads(DATA.read_text())["arm"]
    sub, rg = bound.values["sub"], bound.values["rg"]
    for type_, entry in data.items():
        version = entry["versions"][-1]
        namespace, *types = type_.split("/")
        if namespace == "Microsoft.Resources":
            continue  # ARM's own types: rows ResourceGroups_Get, Subscriptions_*
        if type_ == "Microsoft.KeyVault/deletedVaults":
            continue  # subscription-level, by location: rows Vaults_GetDeleted/_ListDeleted
        base = "{scope}" if namespace == "Microsoft.Authorization" else RG_TEMPLATE
        real = f"/subscriptions/{sub}/resourceGroups/{rg}"
        template, url = f"{base}/providers/{namespace}", f"{real}/providers/{namespace}"
        for type_name in types[:-1]:
            parent = bound.values.get(PARENTS.get(type_name, ""), "probe-parent")
            template, url = f"{template}/{type_name}/{{}}", f"{url}/{type_name}/{parent}"
        collection_t, collection_u = f"{template}/{types[-1]}", f"{url}/{types[-1]}"
        item_t, item_u = f"{collection_t}/{{}}", f"{collection_u}/probe-{bound.values['new_guid']}"
        yield "GET", collection_t, collection_u, version
        for method in ("GET", "PUT", "PATCH", "DELETE"):
            yield method, item_t, item_u, version


def _arm_served(response: requests.Response) -> bool:
    """False when ARM has no route for the request: 405, or the sandbox's 'not in its
    slice' answers (400 InvalidResourceType; 404 "No ARM resource at ..."). A 404 for a
    missing resource of a served type (``NotFound``, ``ResourceNotFound``) is served."""
    if response.status_code == 405:
        return False
    try:
        error = response.json()["error"]
        code, message = error["code"], error.get("message", "")
    except (ValueError, KeyError, TypeError):
        return True
    if code in ("InvalidResourceType", "MethodNotAllowed"):
        return False
    return not (response.status_code == 404 and message.startswith("No ARM resource at"))


def test_every_arm_route_the_sandbox_serves_has_a_row(shared_bindings: Bindings) -> None:
    bindings = shared_bindings
    sb = bindings.sb
    token = sb.issue_token(sb.operator, ARM)
    table = _table("arm")
    unlisted, served, generated = [], set(), set()
    for method, template, path, version in _arm_candidates(bindings):
        generated.add((method, _normal(template)))
        response = SESSION.request(
            method,
            f"{sb.arm_url}{path}",
            params={"api-version": version},
            json={} if method in ("PUT", "PATCH") else None,
            headers={"Authorization": f"Bearer {token}"},
            verify=sb.ca_cert_path,
            timeout=10,
        )
        if _arm_served(response):
            served.add((method, _normal(template)))
            if (method, _normal(template)) not in table:
                unlisted.append(f"{method} {template} -> {response.status_code}")
    # the probe is not blind: every row it can generate is found served
    vm = f"{RG_TEMPLATE}/providers/Microsoft.Compute/virtualMachines/{{}}"
    assert ("GET", _normal(vm)) in served
    # (a row deeper than the api-version data's types, e.g. a site's config references,
    # is not generated here; its replay above holds it)
    probed = {
        key
        for key in _table("arm")
        if key[1].startswith((_normal(RG_TEMPLATE) + "/", "{}/")) and key in generated
    }
    assert probed <= served, probed - served
    assert not unlisted, (
        "the sandbox serves these ARM routes, but tests/conformance/operations.json has no "
        "row (with Microsoft's example) for them:\n  " + "\n  ".join(unlisted)
    )


#: The secrets operations of Key Vault's data-plane specification (secrets.json).
KEYVAULT_OPERATIONS = [
    ("GET", "/secrets"),
    ("GET", "/secrets/{}"),
    ("GET", "/secrets/{}/{}"),
    ("GET", "/secrets/{}/versions"),
    ("PUT", "/secrets/{}"),
    ("PATCH", "/secrets/{}/{}"),
    ("DELETE", "/secrets/{}"),
    ("GET", "/deletedsecrets"),
    ("GET", "/deletedsecrets/{}"),
    ("DELETE", "/deletedsecrets/{}"),
    ("POST", "/deletedsecrets/{}/recover"),
    ("POST", "/secrets/{}/backup"),
    ("POST", "/secrets/restore"),
]


def test_every_key_vault_operation_the_sandbox_serves_has_a_row(
    shared_bindings: Bindings,
) -> None:
    bindings = shared_bindings
    sb = bindings.sb
    token = sb.issue_token(bindings.keyvault_principal, VAULT)
    table = _table("keyvault")
    unlisted = []
    for method, template in KEYVAULT_OPERATIONS:
        path = template.replace("{}", "probe", 1).replace("{}", "0" * 32)
        response = SESSION.request(
            method,
            sb.vault_url(bindings.vault) + path.lstrip("/"),
            params={"api-version": "2025-07-01"},
            json={"value": "x"} if method in ("PUT", "PATCH", "POST") else None,
            headers={"Authorization": f"Bearer {token}"},
            verify=sb.ca_cert_path,
            timeout=10,
        )
        routed = not (
            response.status_code in (404, 405)
            and not response.headers.get("content-type", "").startswith("application/json")
        )
        if routed and (method, _normal(template)) not in table:
            unlisted.append(f"{method} {template} -> {response.status_code}")
    assert not unlisted, (
        "the sandbox serves these Key Vault operations without a row in "
        "tests/conformance/operations.json:\n  " + "\n  ".join(unlisted)
    )


def test_the_sandbox_fixture_is_shared(sb: Sandbox, shared_bindings: Bindings) -> None:
    """One sandbox for the whole conformance run (the suite must stay fast)."""
    assert shared_bindings.sb is sb
