"""The Azure target's Run Command probe carries the blob URLs the stack exported.

``AzureTarget._probe_one`` builds the probe spec with :func:`build_spec` and ships it,
base64, inside the Run Command script; this follows one request through the same two
functions and reads the spec back out of the script, as the VM's shell would.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from verify.evidence.cells import Expectation
from verify.model import load_outputs
from verify.targets.azure import run_command_script
from verify.targets.base import ProbeRequest
from verify.targets.probing import build_spec, requests_for

RG = "/subscriptions/s/resourceGroups/rg"
ACCOUNT = f"{RG}/providers/Microsoft.Storage/storageAccounts/stdata01"
CONTAINER = f"{ACCOUNT}/blobServices/default/containers/reports"
KEY = "data/reports/q4/summary.csv"
URL = "https://stdata01.blob.core.windows.net/reports/q4/summary.csv"


def outputs() -> Any:
    return load_outputs(
        {
            "tenant_id": "t",
            "subscription_id": "s",
            "resource_group_id": RG,
            "vault": {"name": "kv", "id": f"{RG}/kv", "uri": "https://kv.vault.azure.net/"},
            "secrets": {"db": {"scope": f"{RG}/kv/secrets/db", "uri": "u"}},
            "storage_accounts": {
                "data": {
                    "name": "stdata01",
                    "id": ACCOUNT,
                    "blob_endpoint": "https://stdata01.blob.core.windows.net/",
                }
            },
            "blobs": {
                "data/reports/q4/summary.csv": {
                    "account": "data",
                    "container": "reports",
                    "name": "q4/summary.csv",
                    "scope": CONTAINER,
                    "url": URL,
                    "tags": {"class": "public"},
                }
            },
        }
    )


def test_run_command_spec_carries_the_blob_urls() -> None:
    exps = [
        Expectation("a", "system", "system", "p", "db", "allowed"),
        Expectation(
            "a", "system", "system", "p", "data/reports/q4/summary.csv", "denied", kind="blob"
        ),
    ]
    (request,) = requests_for(exps, ["db"])
    assert request.blobs == ("data/reports/q4/summary.csv",)
    assert request.expect == {"system": {"db": "allowed", "data/reports/q4/summary.csv": "denied"}}
    spec = build_spec(outputs(), request)
    script = run_command_script(spec, ["/opt/mikit/venv/bin/python3"])
    line = next(x for x in script if x.startswith('"$PY" - --spec-b64 '))
    shipped = json.loads(base64.b64decode(line.split()[3]))
    assert shipped["blobs"] == {"data/reports/q4/summary.csv": URL}
    assert shipped["expect"]["system"]["data/reports/q4/summary.csv"] == "denied"


def test_unknown_blob_keys_are_not_invented() -> None:
    request = ProbeRequest(host="a", selectors=("system",), secrets=("db",), blobs=("x/y/z",))
    assert build_spec(outputs(), request)["blobs"] == {}
