"""The probe's blob reads on the sandbox: outcomes, the evidence rule, and what it prints.

Only 403 ``AuthorizationPermissionMismatch`` may become ``forbidden``; a 403
``AuthorizationFailure``, a 401, a 5xx or a reset is ``inconclusive`` and can never pass a
"denied" cell. The content is never in the result, only its SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

import pytest
from verify_world import ProbeRunner, World

from verify import probe
from verify.evidence.blob import PLANE as BLOB
from verify.evidence.cells import Expectation
from verify.evidence.judge import judge_cell
from verify.model import IdentityReport, TargetReport, TokenReport, load_outputs
from verify.sandbox import Fault

ACCOUNT, CONTAINER = "stprobetest01", "config"
CONTENT = b"TOKEN=blob-secret-content-4471"


@pytest.fixture(scope="module")
def blobs(world: World) -> Iterator[dict[str, str]]:
    """Two blobs: vm-a's system identity reads ``config/a.txt`` only."""
    st = world.sb.state
    account = st.create_storage_account("rg-test", ACCOUNT)
    st.create_container(ACCOUNT, CONTAINER)
    st.put_blob(ACCOUNT, CONTAINER, "a.txt", CONTENT)
    st.put_blob(ACCOUNT, CONTAINER, "dir/b.txt", b"other")
    grant = st.create_role_assignment(
        account.container_scope(CONTAINER),
        "Storage Blob Data Reader",
        world.vm_a.system_principal_id,
    )
    grant_cond = st.create_role_assignment(
        account.id,
        "Storage Blob Data Reader",
        world.shared.principal_id,
        condition=(
            "((!(ActionMatches{'Microsoft.Storage/storageAccounts/blobServices/containers/"
            "blobs/read'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/"
            "containers/blobs:path] StringEquals 'a.txt'))"
        ),
        condition_version="2.0",
    )
    base = world.sb.blob_url(ACCOUNT)
    yield {
        f"{ACCOUNT}/{CONTAINER}/a.txt": f"{base}/{CONTAINER}/a.txt",
        f"{ACCOUNT}/{CONTAINER}/dir/b.txt": f"{base}/{CONTAINER}/dir/b.txt",
        f"{ACCOUNT}/{CONTAINER}/missing.txt": f"{base}/{CONTAINER}/missing.txt",
    }
    st.delete_role_assignment(grant.id)
    st.delete_role_assignment(grant_cond.id)


def _blobs_of(result: dict[str, object], selector: str = "system") -> dict[str, dict[str, object]]:
    ident = next(i for i in result["identities"] if i["selector"] == selector)  # type: ignore[attr-defined]
    return ident["blobs"]  # type: ignore[no-any-return]


def test_reads_fingerprints_and_denials(
    world: World, run_probe: ProbeRunner, blobs: dict[str, str]
) -> None:
    result = run_probe(world.vm_a, ["system", world.shared.client_id], blobs=blobs)
    system = _blobs_of(result)
    a, b, missing = (f"{ACCOUNT}/{CONTAINER}/{n}" for n in ("a.txt", "dir/b.txt", "missing.txt"))
    assert system[a]["outcome"] == "read"
    assert system[a]["fingerprint"] == "sha256:" + hashlib.sha256(CONTENT).hexdigest()
    assert system[b]["outcome"] == "read"
    assert (system[missing]["outcome"], system[missing]["error_code"]) == (
        "not_found",
        "BlobNotFound",
    )
    shared = _blobs_of(result, world.shared.client_id)
    assert shared[a]["outcome"] == "read"  # the condition admits this path only
    assert (shared[b]["outcome"], shared[b]["http_status"], shared[b]["error_code"]) == (
        "forbidden",
        403,
        "AuthorizationPermissionMismatch",
    )
    ident = next(i for i in result["identities"] if i["selector"] == "system")
    assert ident["blob_claims"]["aud"] == "https://storage.azure.com"
    assert ident["blob_claims"]["oid"] == world.vm_a.system_principal_id
    text = json.dumps(result)
    assert CONTENT.decode() not in text and "other" not in text


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(service="blob", status=403), "AuthorizationFailure"),
        (Fault(service="blob", status=503), "ServerBusy"),
        (Fault(service="blob", status=500), "InternalError"),
        (Fault(service="blob", kind="reset"), "ServiceResponseError"),
    ],
)
def test_faults_are_inconclusive_never_forbidden(
    world: World, run_probe: ProbeRunner, blobs: dict[str, str], fault: Fault, code: str
) -> None:
    key = f"{ACCOUNT}/{CONTAINER}/dir/b.txt"
    with world.sb.faults.injected(fault):
        result = run_probe(
            world.vm_a,
            [world.shared.client_id],
            blobs={key: blobs[key]},
            expect={world.shared.client_id: {key: "denied"}},
        )
    seen = _blobs_of(result, world.shared.client_id)[key]
    assert (seen["outcome"], seen["error_code"]) == ("inconclusive", code)
    assert result["passed"] is False  # an expected denial is not shown by a fault


def test_401_with_a_token_for_another_audience_is_inconclusive(
    world: World, blobs: dict[str, str]
) -> None:
    token = world.sb.issue_token(world.vm_a.system_principal_id, "https://vault.azure.net")
    spec = probe.load_spec(
        {
            "vault_url": world.vault_url,
            "secrets": [],
            "blobs": blobs,
            "ca_bundle": world.sb.ca_cert_path,
            "budget_seconds": 5,
        }
    )
    deadline = probe.Deadline(5)
    credential = probe.StashedTokenCredential(token, 2**31)
    key = f"{ACCOUNT}/{CONTAINER}/a.txt"
    seen = probe.read_blob(blobs[key], credential, spec, probe.RetryPlan(spec, deadline), deadline)
    assert (seen["outcome"], seen["http_status"], seen["error_code"]) == (
        "inconclusive",
        401,
        "InvalidAuthenticationInfo",
    )


def test_spec_errors_name_the_field() -> None:
    base = {"vault_url": "https://kv.vault.azure.net/", "secrets": []}
    with pytest.raises(probe.SpecError, match="non-empty without blobs"):
        probe.load_spec(base)
    with pytest.raises(probe.SpecError, match="must be '<account>/<container>/<path>'"):
        probe.load_spec({**base, "blobs": {"acct": "https://x/acct/c/p"}})
    with pytest.raises(probe.SpecError, match=r"blobs\['a/c/p'\]"):
        probe.load_spec({**base, "blobs": {"a/c/p": "http://plain/a/c/p"}})


def test_check_counts_only_the_mismatch_code_as_denied() -> None:
    outputs = load_outputs(
        {
            "tenant_id": "t",
            "subscription_id": "s",
            "resource_group_id": "/subscriptions/s/resourceGroups/rg",
            "vault": {"name": "kv", "id": "/x", "uri": "https://kv/"},
            "secrets": {},
            "blob_fingerprints": {"a/c/p": "sha256:" + "0" * 64},
        }
    )
    exp = Expectation("vm", "system", "system", "p", "a/c/p", "denied", kind="blob")
    token = TokenReport(outcome="ok")

    def cell(seen: TargetReport) -> tuple[str, bool]:
        report = IdentityReport(selector="system", token=token, secrets={}, blobs={"a/c/p": seen})
        judged = judge_cell(exp, report, outputs, allow_unverified_values=False)
        return judged.observed, judged.passed

    proven = TargetReport(
        outcome="forbidden", http_status=403, error_code="AuthorizationPermissionMismatch"
    )
    firewall = TargetReport(outcome="forbidden", http_status=403, error_code="AuthorizationFailure")
    assert BLOB.denial_proven(proven) and not BLOB.denial_proven(firewall)
    assert cell(proven) == ("forbidden", True)
    assert cell(firewall) == ("inconclusive", False)  # an older probe's label is not trusted
    allowed = Expectation("vm", "system", "system", "p", "a/c/p", "allowed", kind="blob")
    wrong = TargetReport(outcome="read", http_status=200, fingerprint="sha256:" + "1" * 64)
    report = IdentityReport(selector="system", token=token, secrets={}, blobs={"a/c/p": wrong})
    judged = judge_cell(allowed, report, outputs, allow_unverified_values=False)
    assert not judged.passed and "fingerprint differs" in judged.detail
