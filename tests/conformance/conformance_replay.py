"""Replay Microsoft's REST API examples against the sandbox and compare what comes back.

An example (``x-ms-examples`` in Azure/azure-rest-api-specs) holds one request's parameters
and the responses Azure gives, per status. A replay sends the same request to the sandbox,
with the example's resource names swapped for the sandbox's own (``operations.json``'s
placeholders, bound by :class:`Bindings`), then compares:

- the status: one the example lists;
- the headers that matter: each header the example's response names for that status
  (``Location`` of a 202), the plane's own (:data:`PLANE_HEADERS`: ARM's request and
  correlation IDs, Key Vault's request ID), and ``application/json`` where the example has
  a body;
- the body's SHAPE, not its values: the same keys at every level, each with the same JSON
  type (object, array, string, number, boolean, null); array items against the union of the
  example's items; maps (``tags``, ``userAssignedIdentities``) by their values only.

Differences come back as short strings (``missing properties.vmId``, ``extra identity``,
``type properties.created: example number, sandbox string``) so a table can list the ones
kept on purpose.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from verify.sandbox import Sandbox, ServicePrincipal

HERE = Path(__file__).parent
EXAMPLES = HERE / "examples"
TABLE = HERE / "operations.json"
ARM = "https://management.azure.com"
VAULT = "https://vault.azure.net"
#: One connection pool for every replay and probe (a TLS handshake per request cost ~25 ms).
SESSION = requests.Session()
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
#: Objects whose keys are data, not schema (a map): only their values' shapes are compared.
MAPS = frozenset({"tags", "userAssignedIdentities"})


def operations() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(TABLE.read_text())["operations"]
    return rows


def example(row: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / row["example"]).read_text())
    return data


@dataclass
class Bindings:
    """The sandbox, the value of each placeholder, and who calls the Key Vault data plane."""

    sb: Sandbox
    values: dict[str, str]
    vault: str
    keyvault_principal: ServicePrincipal

    def fill(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.values:
                raise KeyError(f"no binding for {{{name}}} (conftest.py's bindings fixture)")
            return self.values[name]

        return _PLACEHOLDER.sub(one, text)


def _filled(value: Any, bound: Bindings) -> Any:
    """A body override with every placeholder bound (in an object's keys too: a map of
    user-assigned identities is keyed by their IDs)."""
    if isinstance(value, str):
        return bound.fill(value)
    if isinstance(value, dict):
        return {bound.fill(k): _filled(v, bound) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, bound) for v in value]
    return value


def _set_dotted(body: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def request_body(row: dict[str, Any], ex: dict[str, Any], bound: Bindings) -> Any:
    if row.get("body") != "example":
        return None
    # the body parameter's name is the operation's (appServicePlan, blobContainer...)
    body = json.loads(json.dumps(ex["parameters"][row.get("body_parameter", "parameters")]))
    for dotted, value in row.get("body_override", {}).items():
        _set_dotted(body, dotted, _filled(value, bound))
    return body


def send(row: dict[str, Any], bound: Bindings, body: Any = None) -> requests.Response:
    """The row's request to the sandbox (ARM or the vault's data plane), with its example's
    api-version unless ``version`` is given."""
    sb = bound.sb
    version = row.get("api_version") or (example(row)["parameters"]["api-version"])
    query = {"api-version": version, **{k: bound.fill(v) for k, v in row["query"].items()}}
    if row["plane"] == "arm":
        url = sb.arm_url + bound.fill(row["path"])
        token = sb.issue_token(sb.operator, ARM)
    else:
        url = sb.vault_url(bound.vault) + bound.fill(row["path"]).lstrip("/")
        token = sb.issue_token(bound.keyvault_principal, VAULT)
    return SESSION.request(
        row["method"],
        url,
        params=query,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=sb.ca_cert_path,
        timeout=10,
    )


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _merge(items: list[Any]) -> Any:
    """One item standing for all of an example's array items (dict keys united)."""
    dicts = [i for i in items if isinstance(i, dict)]
    if len(dicts) != len(items) or not dicts:
        return items[0]
    merged: dict[str, Any] = {}
    for item in dicts:
        for key, value in item.items():
            if key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
                merged[key] = _merge([merged[key], value])
            else:
                merged.setdefault(key, value)
    return merged


def shape_differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """How ``actual``'s shape differs from ``expected``'s (sorted, de-duplicated)."""
    found: set[str] = set()
    _diff(expected, actual, path, found)
    return sorted(found)


def _diff(expected: Any, actual: Any, path: str, found: set[str]) -> None:
    te, ta = kind(expected), kind(actual)
    where = path or "."
    if te != ta:
        found.add(f"type {where}: example {te}, sandbox {ta}")
        return
    if te == "object" and path.rsplit(".", 1)[-1] in MAPS:
        if expected and actual:
            model = _merge(list(expected.values()))
            for value in actual.values():
                _diff(model, value, f"{path}{{}}", found)
    elif te == "object":
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                found.add(f"missing {sub}")
            else:
                _diff(value, actual[key], sub, found)
        for key in actual:
            if key not in expected:
                found.add(f"extra {path}.{key}" if path else f"extra {key}")
    elif te == "array":
        if expected and not actual:
            found.add(f"empty {path}[]")
        elif expected:
            model = _merge(expected)
            for item in actual:
                _diff(model, item, f"{path}[]", found)


#: Headers every response of a plane carries on Azure (and clients read): ARM's request and
#: correlation IDs, Key Vault's request ID.
PLANE_HEADERS = {
    "arm": ("x-ms-request-id", "x-ms-correlation-request-id"),
    "keyvault": ("x-ms-request-id",),
}


def compare(ex: dict[str, Any], response: requests.Response, plane: str = "arm") -> list[str]:
    """Every difference between the sandbox's answer and the example's response."""
    responses: dict[str, Any] = ex["responses"]
    status = str(response.status_code)
    if status not in responses:
        return [f"status {status} (example: {', '.join(sorted(responses))}): {response.text[:300]}"]
    expected = responses[status]
    wanted = [*expected.get("headers", {}), *PLANE_HEADERS.get(plane, ())]
    differences = [
        f"header {name}"
        for name in wanted
        if name.lower() not in {h.lower() for h in response.headers}
    ]
    text = response.content.strip()
    if "body" not in expected:
        if text and text != b"{}":
            differences.append("body: the example has none")
        return differences
    if not response.headers.get("content-type", "").startswith("application/json"):
        differences.append(f"content-type {response.headers.get('content-type')}")
        return differences
    return differences + shape_differences(expected["body"], response.json())
