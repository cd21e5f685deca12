"""``python -m verify.sandbox --stack-file FILE --json``: a stack's hosts, ready to be run as.

For each workload the command lists the variables the workload identity webhook injects and
the projected token file; a user's own code run locally with exactly that environment gets
that workload's tokens through the unchanged ``DefaultAzureCredential``. For each scale-set
instance it lists its own IMDS address.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt

# What a user's own pod code does: DefaultAzureCredential, unchanged, then say who it is.
POD_CODE = """
import json, jwt
from azure.identity import DefaultAzureCredential
token = DefaultAzureCredential().get_token("https://vault.azure.net/.default").token
claims = jwt.decode(token, options={"verify_signature": False})
print(json.dumps({"appid": claims["appid"], "oid": claims["oid"]}))
"""


def run_as(environment: dict[str, str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    done = subprocess.run(
        [sys.executable, "-c", POD_CODE],
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_stack_file_lists_workload_environments_and_instance_imds(
    stack_command: dict[str, Any],
) -> None:
    hosts = stack_command["hosts"]
    (web,) = hosts["scale_sets"].values()
    assert len(web["instances"]) == 2
    assert len({i["imds"] for i in web["instances"].values()}) == 2
    api, batch = hosts["workloads"]["api"], hosts["workloads"]["batch"]
    assert set(api["env"]) == {
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_FEDERATED_TOKEN_FILE",
        "AZURE_AUTHORITY_HOST",
    }
    assert api["env"]["AZURE_AUTHORITY_HOST"].startswith("https://")
    assert api["token_file"] == api["env"]["AZURE_FEDERATED_TOKEN_FILE"]
    claims = jwt.decode(Path(api["token_file"]).read_text(), options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:shop:api"
    assert claims["iss"].endswith("/")
    assert (batch["env"], batch["token_file"]) == ({}, None)
    platform = {"REQUESTS_CA_BUNDLE": api["ca_bundle"], "SSL_CERT_FILE": api["ca_bundle"]}
    as_api = run_as({**api["env"], **platform, "AZURE_POD_IDENTITY_AUTHORITY_HOST": api["imds"]})
    assert as_api["appid"] == api["env"]["AZURE_CLIENT_ID"]
    # (batch, with nothing injected, reaches its node's IMDS as the kubelet identity:
    # tests/sandbox/test_sandbox_fleet.py runs that with the same credential in-process.)
    assert batch["imds"] == api["imds"]
    # (The command stops cleanly on Ctrl-C: the stack_command fixture's end, conftest.py.)
