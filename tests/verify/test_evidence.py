"""One judgement of evidence: the planes' rules, the credential-source table, and the
lifecycle's verdicts judged by the same rule as the check."""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential
from verify_world import World

from verify import probe
from verify.evidence import blob, keyvault
from verify.evidence.cells import Expectation
from verify.evidence.judge import judge, judge_cell, judge_identity
from verify.evidence.planes import PLANES
from verify.evidence.sources import EXPECTED_SOURCES
from verify.lifecycle.verdicts import old_token_refused
from verify.model import IdentityReport, ProbeResult, TargetReport, TokenReport, load_outputs

PRINCIPAL = "11111111-0000-0000-0000-000000000001"
TENANT = "22222222-0000-0000-0000-000000000002"


def _outputs():
    return load_outputs(
        {
            "tenant_id": TENANT,
            "subscription_id": "s",
            "resource_group_id": "/subscriptions/s/resourceGroups/rg",
            "vault": {"name": "kv", "id": "/x", "uri": "https://kv/"},
            "secrets": {},
            "secret_fingerprints": {"db": probe.fingerprint("v")},
            "blob_fingerprints": {"a/c/p": probe.fingerprint(b"v")},
        }
    )


def _report(source: str | None = "imds", **fields: object) -> IdentityReport:
    token = TokenReport(outcome="ok", credential_source=source)
    claims = {"oid": PRINCIPAL, "tid": TENANT, "aud": keyvault.AUDIENCE}
    return IdentityReport(selector="system", token=token, claims=claims, **fields)  # type: ignore[arg-type]


def _exp(target: str = "db", kind: str = "secret", expected: str = "denied") -> Expectation:
    return Expectation("web", "system", "system", PRINCIPAL, target, expected, kind=kind)  # type: ignore[arg-type]


def test_every_cell_kind_has_one_plane_built_from_the_probes_wire_codes() -> None:
    assert set(PLANES) == {"secret", "blob"}
    assert PLANES["secret"] is keyvault.PLANE and PLANES["blob"] is blob.PLANE
    assert keyvault.PLANE.denial == probe.KEYVAULT_DENIAL == (403, "ForbiddenByRbac")
    assert blob.PLANE.denial == probe.BLOB_DENIAL == (403, "AuthorizationPermissionMismatch")
    assert "https://vault.azure.net" in keyvault.AUDIENCES
    assert "https://storage.azure.com" in blob.AUDIENCES


# (outcome, status, code) as a probe may report them for a Key Vault read.
KEYVAULT_CASES = [
    ("forbidden", 403, "Forbidden/ForbiddenByRbac", True),
    ("forbidden", 403, "ForbiddenByRbac", True),
    ("forbidden", 403, "Forbidden/NotForbiddenByRbac", False),  # endswith() said yes
    ("forbidden", 403, "NotForbiddenByRbac", False),
    ("forbidden", 401, "Forbidden/ForbiddenByRbac", False),  # a 401 is about the token
    ("forbidden", 403, "Forbidden", False),  # firewall, policy: no inner code
    ("inconclusive", 403, "Forbidden/ForbiddenByRbac", False),
]


@pytest.mark.parametrize(("outcome", "status", "code", "proven"), KEYVAULT_CASES)
def test_the_lifecycle_refusal_uses_the_checks_denial_rule(
    outcome: str, status: int, code: str, proven: bool
) -> None:
    seen = TargetReport(outcome=outcome, http_status=status, error_code=code)  # type: ignore[arg-type]
    assert keyvault.PLANE.denial_proven(seen) is proven
    if status == 403:
        assert old_token_refused(seen) is proven
    judged = judge_cell(_exp(), _report(secrets={"db": seen}), _outputs(), False)
    assert judged.passed is proven


def test_a_401_carrying_the_rbac_code_is_not_a_refusal_of_the_old_token() -> None:
    seen = TargetReport(outcome="forbidden", http_status=401, error_code="ForbiddenByRbac")
    assert not old_token_refused(seen)


def test_a_404_without_the_planes_absence_code_is_inconclusive() -> None:
    proven = TargetReport(outcome="not_found", http_status=404, error_code="BlobNotFound")
    proxy = TargetReport(outcome="not_found", http_status=404, error_code="ResourceNotFound")
    assert blob.PLANE.observed(proven) == "not_found"
    assert blob.PLANE.observed(proxy) == "inconclusive"
    kv = TargetReport(outcome="not_found", http_status=404, error_code="SecretNotFound")
    assert keyvault.PLANE.observed(kv) == "not_found"


def test_both_planes_fingerprint_with_the_probes_one_function() -> None:
    outputs = _outputs()
    read = TargetReport(outcome="read", http_status=200, fingerprint=probe.fingerprint("v"))
    cell = judge_cell(_exp(expected="allowed"), _report(secrets={"db": read}), outputs, False)
    assert cell.passed and cell.fingerprint_match
    content = TargetReport(outcome="read", http_status=200, fingerprint=probe.fingerprint(b"v"))
    report = _report(secrets={}, blobs={"a/c/p": content})
    cell = judge_cell(_exp("a/c/p", "blob", "allowed"), report, outputs, False)
    assert cell.passed and cell.fingerprint_match and cell.target == "a/c/p"


def test_a_vm_token_from_another_credential_source_fails_naming_it() -> None:
    assert EXPECTED_SOURCES["vm"] == "imds"
    good = judge_identity(_exp(), _report("imds", secrets={}), TENANT)
    assert good.passed and good.credential_source == "imds"
    bad = judge_identity(_exp(), _report("app_service", secrets={}), TENANT)
    assert not bad.passed and bad.credential_source == "app_service"
    assert "'app_service'" in bad.detail and "vm 'web'" in bad.detail
    assert "must get its tokens from 'imds'" in bad.detail
    silent = judge_identity(_exp(), _report(None, secrets={}), TENANT)
    assert not silent.passed and "did not report which credential source" in silent.detail


def test_a_replayed_token_is_not_judged_by_its_source_again() -> None:
    replayed = judge_identity(_exp(), _report("stash", secrets={}), TENANT)
    assert replayed.passed


def test_an_unknown_host_kind_fails_instead_of_passing_unchecked() -> None:
    exp = Expectation("pod", "x", "system", PRINCIPAL, "db", "denied", host_kind="nowhere")
    judged = judge_identity(exp, _report("imds", secrets={}), TENANT)
    assert not judged.passed and "host kind 'nowhere'" in judged.detail


def test_a_wrong_storage_token_fails_the_identity() -> None:
    storage = TokenReport(outcome="ok", credential_source="imds")
    report = _report(
        secrets={},
        blob_token=storage,
        blob_claims={"oid": "someone-else", "aud": "https://vault.azure.net"},
    )
    judged = judge_identity(_exp("a/c/p", "blob"), report, TENANT)
    assert not judged.passed
    assert "storage token oid someone-else" in judged.detail
    assert "storage token aud https://vault.azure.net is not for Blob Storage" in judged.detail


# ---------------------------------------------------------------- the probe's source signal

ENVIRONMENTS = {
    "imds": {},
    "app_service": {"IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi", "IDENTITY_HEADER": "h"},
    "azure_arc": {"IDENTITY_ENDPOINT": "http://127.0.0.1:1/arc", "IMDS_ENDPOINT": "http://x"},
    "cloud_shell": {"MSI_ENDPOINT": "http://127.0.0.1:1/msi"},
}
CLEARED = (
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_TOKEN_CREDENTIALS",
)


@pytest.mark.parametrize("source", sorted(ENVIRONMENTS))
def test_the_source_is_read_from_the_credential_that_answered(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """azure-identity picks the managed-identity class from the environment; the probe
    names the one DefaultAzureCredential actually used (no token is requested here: the
    chain member that answered is set as azure-identity sets it after a success)."""
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in ENVIRONMENTS[source].items():
        monkeypatch.setenv(name, value)
    credential = DefaultAzureCredential(
        exclude_environment_credential=True,
        exclude_workload_identity_credential=True,
        exclude_cli_credential=True,
        exclude_developer_cli_credential=True,
        exclude_powershell_credential=True,
        exclude_visual_studio_code_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_broker_credential=True,
    )
    (managed,) = credential.credentials
    credential._successful_credential = managed  # what ChainedTokenCredential records
    assert probe.credential_source(credential) == source


def test_workload_identity_and_the_developer_credentials_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/t")
    monkeypatch.setenv("AZURE_CLIENT_ID", "c")
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    credential = DefaultAzureCredential()
    named = {type(c).__name__: c for c in credential.credentials}
    for name, source in (
        ("WorkloadIdentityCredential", "workload_identity"),
        ("EnvironmentCredential", "environment"),
        ("AzureCliCredential", "azure_cli"),
    ):
        credential._successful_credential = named[name]
        assert probe.credential_source(credential) == source
    assert probe.credential_source(object()) == "unknown:object"
    assert probe.credential_source(probe.StashedTokenCredential("t", 0)) == "stash"


# ---------------------------------------------------------------- one home for the audiences


@pytest.mark.parametrize("audience", [*keyvault.AUDIENCES, blob.AUDIENCE])
def test_the_sandbox_vault_accepts_exactly_key_vaults_audiences(
    world: World, audience: str
) -> None:
    """The sandbox's Key Vault takes its audiences from the evidence module: a token for
    each of them is judged by RBAC (200/403/404); a storage token is refused (401)."""
    token = world.sb.issue_token(world.vm_a.system_principal_id, audience)
    spec = probe.load_spec(
        {
            "vault_url": world.vault_url,
            "secrets": ["no-such-secret"],
            "ca_bundle": world.sb.ca_cert_path,
            "verify_challenge_resource": False,
            "budget_seconds": 5,
        }
    )
    deadline = probe.Deadline(5)
    plan = probe.RetryPlan(spec, deadline)
    credential = probe.StashedTokenCredential(token, 2**31)
    with probe._secret_client(spec, credential, deadline) as client:
        seen = probe.read_secret(client, "no-such-secret", plan, deadline, retry_forbidden=False)
    if audience in keyvault.AUDIENCES:
        assert seen["http_status"] in (403, 404), seen
    else:
        assert (seen["outcome"], seen["http_status"]) == ("inconclusive", 401), seen


def test_hidden_fingerprints_name_the_planes_own_output() -> None:
    outputs = _outputs().model_copy(update={"blob_fingerprints": None})
    content = TargetReport(outcome="read", http_status=200, fingerprint=probe.fingerprint(b"v"))
    report = _report(secrets={}, blobs={"a/c/p": content})
    probe_result = ProbeResult(probe_version=1, vault_url="https://kv/", identities=(report,))
    result = judge(outputs, [_exp("a/c/p", "blob", "allowed")], {"web": probe_result})
    (cell,) = result.cells
    assert not cell.passed and "`blob_fingerprints`" in cell.detail
    (error,) = result.errors
    assert "`blob_fingerprints`" in error and "secret_fingerprints" not in error
