"""The access matrix and the sandbox agree on every app cell.

The built-in sandbox stack has a web app (system identity + the shared one), a Function
app (the shared identity only: its code gets ``AZURE_CLIENT_ID``) and a container app
(system identity, the shared one hidden from its code by the lifecycle ``None``). Then:

* every app row of the exported matrix is tried the way the app's code would: a token
  from that app's own identity endpoint (``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``,
  selected by client ID for a user-assigned identity), then the read with the real
  SecretClient / BlobClient. "allowed" reads the stack's fingerprint, "denied" is the
  plane's 403, "no_identity" is the endpoint's 500 refusal;
* the verifier's check passes with the probe run in each app's environment, every app
  token reported from ``app_service``;
* access nobody granted to an app fails the check on exactly the cells it opens.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets import SecretClient
from azure.storage.blob import BlobClient

from verify import probe
from verify.evidence import blob as blob_plane
from verify.evidence import keyvault, references
from verify.model import AccessCell, StackOutputs
from verify.runner import check_report
from verify.sandbox.appservice.errors import NO_IDENTITY
from verify.targets.sandbox import SandboxTarget


@pytest.fixture
def deployed(deployed_target: SandboxTarget) -> SandboxTarget:
    """The worker's deployment of the built-in sandbox stack, fresh for each test."""
    return deployed_target


class _Bearer:
    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, 2**31 - 1)


def _app_token(target: SandboxTarget, row: AccessCell) -> tuple[int, dict[str, Any]]:
    """What the app's code gets from its identity endpoint for this row's identity."""
    outputs = target.outputs()
    app = outputs.app_hosts[row.host]
    env = target.sandbox.app_env(app.id)
    resource = blob_plane.AUDIENCE if row.kind == "blob" else keyvault.AUDIENCE
    params = {"api-version": "2019-08-01", "resource": resource}
    if row.identity != "system":
        params["client_id"] = outputs.identities[row.identity].client_id
    request = urllib.request.Request(
        env["IDENTITY_ENDPOINT"] + "?" + urllib.parse.urlencode(params),
        headers={"X-IDENTITY-HEADER": env["IDENTITY_HEADER"]},
    )
    context = ssl.create_default_context(cafile=target.sandbox.ca_cert_path)
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _read(target: SandboxTarget, row: AccessCell, token: str) -> tuple[str, str]:
    outputs, sb = target.outputs(), target.sandbox
    try:
        if row.kind == "blob":
            client = BlobClient.from_blob_url(
                outputs.blobs[row.target].url,
                credential=_Bearer(token),
                retry_total=0,
                **sb.blob_client_kwargs(),
            )
            with client:
                content = client.download_blob().readall()
        else:
            secrets = SecretClient(
                outputs.vault.uri, _Bearer(token), retry_total=0, **sb.keyvault_client_kwargs()
            )
            with secrets:
                content = (secrets.get_secret(row.target).value or "").encode()
    except HttpResponseError as exc:
        code = getattr(exc, "error_code", None)  # Blob: AuthorizationPermissionMismatch
        if code is None and exc.error is not None:  # Key Vault: the inner code
            code = (exc.error.innererror or {}).get("code") or exc.error.code
        return "denied", f"{exc.status_code} {code}"
    return "allowed", "sha256:" + hashlib.sha256(content).hexdigest()


def _app_rows(outputs: StackOutputs) -> list[AccessCell]:
    return [c for c in outputs.access_matrix if c.host_kind == "app"]


def test_matrix_and_the_apps_endpoints_agree_on_every_app_cell(deployed: SandboxTarget) -> None:
    outputs = deployed.outputs()
    rows = _app_rows(outputs)
    targets = len(outputs.secrets) + len(outputs.blobs)
    # web: system + shared; func: shared; jobs: system + shared (hidden from its code)
    holders = {(c.host, c.identity) for c in rows}
    assert holders == {
        ("app:web", "system"),
        ("app:web", "shared"),
        ("app:func", "shared"),
        ("app:jobs", "system"),
        ("app:jobs", "shared"),
    }
    assert len(rows) == len(holders) * targets
    fingerprints = {**(outputs.secret_fingerprints or {}), **(outputs.blob_fingerprints or {})}
    seen = {"allowed": 0, "denied": 0, "no_identity": 0}
    for row in rows:
        where = f"{row.host}/{row.identity} {row.kind} {row.target}"
        status, body = _app_token(deployed, row)
        if row.expected == "no_identity":
            assert (status, body.get("message")) == (500, NO_IDENTITY), where
            seen["no_identity"] += 1
            continue
        assert status == 200 and isinstance(body["expires_on"], str), where
        observed, evidence = _read(deployed, row, body["access_token"])
        assert observed == row.expected, f"{where}: matrix {row.expected}, sandbox {evidence}"
        if observed == "allowed":
            assert evidence == fingerprints[row.target], where
        else:
            denial = (blob_plane.PLANE if row.kind == "blob" else keyvault.PLANE).denial
            assert evidence == f"{denial[0]} {denial[1]}", where
        seen[observed] += 1
    allowed = {(c.host, c.identity, c.target) for c in rows if c.expected == "allowed"}
    assert ("app:web", "system", "app-db-password") in allowed  # its reference's grant
    assert ("app:jobs", "system", "reports-token") in allowed
    assert ("app:func", "shared", "api-key") in allowed  # the shared identity's grant
    assert ("app:web", "shared", "api-key") in allowed
    assert all(n > 0 for n in seen.values()), seen
    # the hidden identity is granted what the shared identity is: only its lifecycle hides it
    hidden = {c.target for c in rows if (c.host, c.identity) == ("app:jobs", "shared")}
    assert hidden == {c.target for c in rows if (c.host, c.identity) == ("app:func", "shared")}


def test_check_probes_each_app_through_its_identity_endpoint(deployed: SandboxTarget) -> None:
    run = check_report(deployed, "sandbox")
    assert run.check is not None and run.passed, run.check.failures
    app_cells = [c for c in run.check.cells if c.host_kind == "app"]
    assert len(app_cells) == len(_app_rows(deployed.outputs()))
    assert {c.observed for c in app_cells} == {"read", "forbidden", "no_identity"}
    sources = {
        (i.host, i.identity): i.credential_source
        for i in run.check.identities
        if i.host_kind == "app"
    }
    assert sources[("app:web", "system")] == sources[("app:func", "shared")] == "app_service"
    # the hidden identity: refused by the endpoint, so no token and no source
    assert sources[("app:jobs", "shared")] is None
    refused = [c for c in app_cells if c.observed == "no_identity"]
    assert refused and all(c.host == "app:jobs" for c in refused)


def test_access_nobody_granted_to_an_app_fails_on_exactly_that_cell(
    deployed: SandboxTarget,
) -> None:
    outputs = deployed.outputs()
    st = deployed.sandbox.state
    web = outputs.apps["web"].system_principal_id
    assert web is not None
    extra = st.create_role_assignment(
        outputs.secrets["break-glass"].scope, "Key Vault Secrets User", web
    )
    try:
        run = check_report(deployed, "sandbox")
    finally:
        st.delete_role_assignment(extra.id)
    assert run.check is not None
    failed = [(c.host, c.identity, c.target) for c in run.check.cells if not c.passed]
    assert failed == [("app:web", "system", "break-glass")]
    assert all("access nobody granted" in c.detail for c in run.check.cells if not c.passed)


def test_the_probe_names_the_identity_endpoints_refusal_no_identity() -> None:
    """The endpoint's 500 ``{statusCode, message}`` for an identity the app's code does
    not hold is "no identity", not an outage (IMDS says that with a 400)."""

    def refused(message: str) -> dict[str, object]:
        body = json.dumps({"statusCode": 500, "message": message, "correlationId": "c"})
        http = SimpleNamespace(status_code=500, headers={}, text=lambda: body)
        trace = probe.ImdsTrace()
        trace.hook(SimpleNamespace(http_response=http))
        return probe.classify_token_error(RuntimeError("managed identity failed"), trace)

    assert NO_IDENTITY.startswith(probe.APP_SERVICE_NO_IDENTITY)
    no_identity = refused(NO_IDENTITY)
    assert no_identity["outcome"] == "no_identity"
    assert no_identity["error_code"] == "identity_endpoint_http_500"
    assert refused("The managed identity endpoint failed.")["outcome"] == "unreachable"


def test_check_reads_each_reference_status_and_a_removed_grant_fails_both_ways(
    deployed: SandboxTarget,
) -> None:
    """The reference is checked twice: ARM's status, and the resolving identity's read from
    inside the app (its matrix cell). A grant removed behind the stack's back fails both."""
    outputs = deployed.outputs()
    assert references.reference_problems(deployed, outputs, outputs.access_matrix) == (2, [])
    st = deployed.sandbox.state
    web = outputs.apps["web"].system_principal_id
    (grant,) = [
        a
        for a in st.role_assignments(principal_id=web)
        if a.scope == outputs.secrets["app-db-password"].scope
    ]
    st.delete_role_assignment(grant.id)
    try:
        # The grant stays removed for the whole check, so any propagation wait ends in the
        # same failure: a short one still retries the 403 (the app path's give-up) without
        # sitting out the sandbox's 15 s default.
        run = check_report(deployed, "sandbox", propagation_wait=0.5)
    finally:
        st.create_role_assignment(grant.scope, "Key Vault Secrets User", web or "")
    assert run.check is not None and not run.check.passed
    assert run.check.errors == [
        "app 'app:web' Key Vault reference DB_PASSWORD: expected Resolved, "
        "ARM reports AccessToKeyVaultDenied"
    ]
    failed = [(c.host, c.identity, c.target) for c in run.check.cells if not c.passed]
    assert failed == [("app:web", "system", "app-db-password")]
    (denied,) = [c for c in run.check.cells if not c.passed]
    assert denied.attempts >= 2 and denied.waited_ms > 0  # the 403 was retried, then given up


def test_a_target_that_cannot_read_reference_statuses_says_so(deployed: SandboxTarget) -> None:
    class Blind:
        name = "elsewhere"

    checked, problems = references.reference_problems(
        Blind(), deployed.outputs(), deployed.outputs().access_matrix
    )
    assert checked == 0
    assert problems == [
        "app 'app:func': Key Vault reference statuses not checked: target elsewhere cannot "
        "read configreferences/appsettings",
        "app 'app:web': Key Vault reference statuses not checked: target elsewhere cannot "
        "read configreferences/appsettings",
    ]


def test_the_function_apps_host_storage_is_deployed_and_its_identity_may_write_there(
    deployed: SandboxTarget,
) -> None:
    """The sandbox deploy takes the Function app's host storage: its dedicated account and
    Storage Blob Data Owner for the identity the host uses, which the Blob plane's RBAC
    honours (the host writes its lock and key blobs); another app's identity gets nothing."""
    outputs = deployed.outputs()
    host = outputs.apps["func"].host_storage
    assert host is not None and host.identity == "shared"
    sb = deployed.sandbox
    assert sb.arm.get(host.account_id) is not None
    assert sb.state.storage_account(host.account_name) is not None
    assignment = sb.arm.get(host.assignment_id)
    assert assignment is not None
    assert assignment["properties"]["principalId"] == outputs.identities["shared"].principal_id
    blob = f"{host.account_id}/blobServices/default/containers/azure-webjobs-hosts/blobs/locks/x"
    write = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
    assert sb.rbac.check_data_action(host.principal_id, write, blob).allowed
    other = outputs.apps["web"].system_principal_id
    assert other is not None
    assert not sb.rbac.check_data_action(other, write, blob).allowed
