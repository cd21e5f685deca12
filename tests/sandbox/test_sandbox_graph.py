"""The Microsoft Graph slice: servicePrincipals, directoryObjects, Graph's errors.

Tokens come from the real azure-identity ManagedIdentityCredential through a VM's IMDS
(the way the verifier's cleanup gets them on a VM), or straight from the issuer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.identity import ManagedIdentityCredential
from sandbox_world import OnVm, World

from verify.sandbox import Sandbox, SandboxConfig

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


def get(sb: Sandbox, path: str, token: str | None, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(
        sb.graph_url + path, headers=headers, verify=sb.ca_cert_path, timeout=10, **kwargs
    )


def post(sb: Sandbox, path: str, token: str, body: Any) -> requests.Response:
    return requests.post(
        sb.graph_url + path,
        headers={"Authorization": f"Bearer {token}"},
        json=body,
        verify=sb.ca_cert_path,
        timeout=10,
    )


def graph_token(sb: Sandbox) -> str:
    return sb.issue_token(sb.operator, "https://graph.microsoft.com")


def assert_graph_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    inner = error["innerError"]
    assert set(inner) == {"date", "request-id", "client-request-id"}
    assert response.headers["request-id"] == inner["request-id"]
    return error


def test_managed_identity_reads_a_service_principal_with_its_imds_graph_token(
    sb: Sandbox, world: World, on_vm: OnVm
) -> None:
    on_vm(world.vm_multi)
    credential = ManagedIdentityCredential(client_id=world.id_a.client_id, retry_total=0)
    token = credential.get_token(GRAPH_SCOPE).token
    response = get(sb, f"/v1.0/servicePrincipals/{world.id_b.principal_id}", token)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["@odata.context"] == f"{sb.graph_url}/v1.0/$metadata#servicePrincipals/$entity"
    assert doc["id"] == world.id_b.principal_id
    assert doc["appId"] == world.id_b.client_id
    assert doc["displayName"] == "id-b"
    assert doc["servicePrincipalType"] == "ManagedIdentity"
    assert doc["alternativeNames"] == ["isExplicit=True", world.id_b.id]
    assert doc["servicePrincipalNames"] == [world.id_b.client_id]


def test_system_identity_is_not_explicit_and_names_its_vm(sb: Sandbox, world: World) -> None:
    assert world.vm_sys.system_principal_id is not None
    doc = get(
        sb, f"/v1.0/servicePrincipals/{world.vm_sys.system_principal_id}", graph_token(sb)
    ).json()
    assert doc["alternativeNames"] == ["isExplicit=False", world.vm_sys.id]
    assert doc["servicePrincipalType"] == "ManagedIdentity"


def test_application_principal_is_of_type_application(sb: Sandbox) -> None:
    doc = get(sb, f"/v1.0/servicePrincipals/{sb.operator.object_id}", graph_token(sb)).json()
    assert doc["servicePrincipalType"] == "Application"
    assert doc["alternativeNames"] == []


def test_deleted_identity_is_request_resource_not_found(sb: Sandbox, world: World) -> None:
    token = graph_token(sb)
    sb.state.delete_identity(world.id_lone.id)
    response = get(sb, f"/v1.0/servicePrincipals/{world.id_lone.principal_id}", token)
    error = assert_graph_error(response, 404, "Request_ResourceNotFound")
    assert error["message"] == (
        f"Resource '{world.id_lone.principal_id}' does not exist or one of its queried "
        "reference-property objects are not present."
    )
    response = get(sb, f"/v1.0/directoryObjects/{world.id_lone.principal_id}", token)
    assert_graph_error(response, 404, "Request_ResourceNotFound")


def test_client_request_id_is_echoed(sb: Sandbox) -> None:
    missing = "00000000-0000-0000-0000-000000000001"
    response = get(
        sb,
        f"/v1.0/servicePrincipals/{missing}",
        graph_token(sb),
        params=None,
    )
    assert_graph_error(response, 404, "Request_ResourceNotFound")
    response = requests.get(
        f"{sb.graph_url}/v1.0/servicePrincipals/{missing}",
        headers={"Authorization": f"Bearer {graph_token(sb)}", "client-request-id": "abc-123"},
        verify=sb.ca_cert_path,
        timeout=10,
    )
    assert response.json()["error"]["innerError"]["client-request-id"] == "abc-123"


def test_object_id_that_is_not_a_guid_is_bad_request(sb: Sandbox) -> None:
    response = get(sb, "/v1.0/servicePrincipals/not-a-guid", graph_token(sb))
    error = assert_graph_error(response, 400, "Request_BadRequest")
    assert error["message"] == "Invalid object identifier 'not-a-guid'."


@pytest.mark.parametrize(
    ("flt", "field"),
    [
        ("appId eq '{client}'", "client"),
        ("servicePrincipalNames/any(c:c eq '{client}')", "client"),
        ("id eq '{object}'", "object"),
        ("displayName eq 'id-a'", None),
    ],
)
def test_list_filters_the_azure_cli_sends(
    sb: Sandbox, world: World, flt: str, field: str | None
) -> None:
    text = flt.format(client=world.id_a.client_id, object=world.id_a.principal_id)
    response = get(sb, "/v1.0/servicePrincipals", graph_token(sb), params={"$filter": text})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["@odata.context"] == f"{sb.graph_url}/v1.0/$metadata#servicePrincipals"
    ids = [sp["id"] for sp in doc["value"]]
    assert world.id_a.principal_id in ids
    if field is not None:
        assert ids == [world.id_a.principal_id]


def test_service_principal_names_do_not_match_an_object_id(sb: Sandbox, world: World) -> None:
    """az tries servicePrincipalNames first and falls back to getByIds for an object ID."""
    flt = f"servicePrincipalNames/any(c:c eq '{world.id_a.principal_id}')"
    response = get(sb, "/v1.0/servicePrincipals", graph_token(sb), params={"$filter": flt})
    assert response.json()["value"] == []


@pytest.mark.parametrize(
    "flt", ["startswith(displayName,'id')", "appId eq ''; drop", "accountEnabled eq true", ""]
)
def test_unknown_filter_is_refused_not_ignored(sb: Sandbox, world: World, flt: str) -> None:
    response = get(sb, "/v1.0/servicePrincipals", graph_token(sb), params={"$filter": flt})
    assert_graph_error(response, 400, "Request_UnsupportedQuery")


def test_get_by_ids_returns_the_known_ones_with_their_odata_type(sb: Sandbox, world: World) -> None:
    missing = "00000000-0000-0000-0000-0000000000aa"
    body = {
        "ids": [world.id_a.principal_id, missing, world.id_b.principal_id],
        "types": ["user", "group", "servicePrincipal", "directoryObjectPartnerReference"],
    }
    response = post(sb, "/v1.0/directoryObjects/getByIds", graph_token(sb), body)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["@odata.context"] == f"{sb.graph_url}/v1.0/$metadata#directoryObjects"
    assert [o["id"] for o in doc["value"]] == [world.id_a.principal_id, world.id_b.principal_id]
    assert {o["@odata.type"] for o in doc["value"]} == {"#microsoft.graph.servicePrincipal"}


def test_get_by_ids_with_only_user_types_finds_no_service_principal(
    sb: Sandbox, world: World
) -> None:
    body = {"ids": [world.id_a.principal_id], "types": ["user"]}
    response = post(sb, "/v1.0/directoryObjects/getByIds", graph_token(sb), body)
    assert response.json()["value"] == []


@pytest.mark.parametrize(
    "body", [{}, {"ids": "x"}, {"ids": [1]}, {"ids": ["a"] * 1001}, {"ids": [], "types": "user"}]
)
def test_get_by_ids_refuses_a_malformed_body(sb: Sandbox, body: Any) -> None:
    response = post(sb, "/v1.0/directoryObjects/getByIds", graph_token(sb), body)
    assert_graph_error(response, 400, "Request_BadRequest")


def test_directory_object_carries_odata_type(sb: Sandbox, world: World) -> None:
    doc = get(sb, f"/v1.0/directoryObjects/{world.id_a.principal_id}", graph_token(sb)).json()
    assert doc["@odata.type"] == "#microsoft.graph.servicePrincipal"
    assert doc["@odata.context"] == f"{sb.graph_url}/v1.0/$metadata#directoryObjects/$entity"
    assert doc["appId"] == world.id_a.client_id


def test_missing_token_is_invalid_authentication_token(sb: Sandbox, world: World) -> None:
    response = get(sb, f"/v1.0/servicePrincipals/{world.id_a.principal_id}", None)
    error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Access token is empty."


@pytest.mark.parametrize(
    "audience", ["https://vault.azure.net", "https://management.azure.com/", "https://other"]
)
def test_token_for_another_audience_is_refused(sb: Sandbox, world: World, audience: str) -> None:
    token = sb.issue_token(sb.operator, "https://graph.microsoft.com", aud=audience)
    response = get(sb, f"/v1.0/servicePrincipals/{world.id_a.principal_id}", token)
    error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Access token validation failure. Invalid audience."


@pytest.mark.parametrize(
    "audience",
    [
        "https://graph.microsoft.com",
        "https://graph.microsoft.com/",
        "00000003-0000-0000-c000-000000000000",
    ],
)
def test_every_graph_audience_is_accepted(sb: Sandbox, world: World, audience: str) -> None:
    token = sb.issue_token(sb.operator, audience)
    assert get(sb, f"/v1.0/servicePrincipals/{world.id_a.principal_id}", token).ok


def test_expired_token_is_refused(sb: Sandbox, world: World) -> None:
    token = sb.issue_token(sb.operator, "https://graph.microsoft.com", lifetime_seconds=-3600)
    response = get(sb, f"/v1.0/servicePrincipals/{world.id_a.principal_id}", token)
    assert_graph_error(response, 401, "InvalidAuthenticationToken")


def test_imds_issues_graph_tokens_for_the_graph_app_id(
    sb: Sandbox, world: World, on_vm: OnVm
) -> None:
    on_vm(world.vm_sys)
    token = ManagedIdentityCredential(retry_total=0).get_token(
        "00000003-0000-0000-c000-000000000000/.default"
    )
    response = get(sb, f"/v1.0/servicePrincipals/{world.id_a.principal_id}", token.token)
    assert response.status_code == 200, response.text


def test_directory_read_off_at_run_time_is_authorization_request_denied(
    sb: Sandbox, world: World
) -> None:
    token = graph_token(sb)
    path = f"/v1.0/servicePrincipals/{world.id_a.principal_id}"
    sb.graph_directory_read = False
    try:
        for response in (
            get(sb, path, token),
            get(sb, "/v1.0/servicePrincipals", token, params={"$filter": "id eq 'x'"}),
            post(sb, "/v1.0/directoryObjects/getByIds", token, {"ids": []}),
        ):
            error = assert_graph_error(response, 403, "Authorization_RequestDenied")
            assert error["message"] == "Insufficient privileges to complete the operation."
    finally:
        sb.graph_directory_read = True
    assert get(sb, path, token).status_code == 200


@pytest.fixture(scope="module")
def no_directory_read() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(graph_directory_read=False)) as sandbox:
        yield sandbox


def test_directory_read_off_in_config(no_directory_read: Sandbox) -> None:
    sb = no_directory_read
    response = get(sb, f"/v1.0/servicePrincipals/{sb.operator.object_id}", graph_token(sb))
    assert_graph_error(response, 403, "Authorization_RequestDenied")


def test_deleted_principal_token_refused_in_refuse_mode(sb: Sandbox, world: World) -> None:
    token = sb.issue_token(world.id_lone.principal_id, "https://graph.microsoft.com")
    sb.state.delete_identity(world.id_lone.id)
    path = f"/v1.0/servicePrincipals/{world.id_a.principal_id}"
    assert get(sb, path, token).status_code == 200  # "accept": the token lives until exp
    sb.faults.deleted_principal_tokens = "refuse"
    try:
        assert_graph_error(get(sb, path, token), 401, "InvalidAuthenticationToken")
    finally:
        sb.faults.deleted_principal_tokens = "accept"


def test_path_outside_the_slice_is_bad_request_after_auth(sb: Sandbox) -> None:
    assert_graph_error(get(sb, "/beta/servicePrincipals", None), 401, "InvalidAuthenticationToken")
    assert_graph_error(get(sb, "/v1.0/users", graph_token(sb)), 400, "BadRequest")


def test_graph_url_is_listed_in_endpoints(sb: Sandbox) -> None:
    assert sb.endpoints()["graph_url"] == sb.graph_url
    assert sb.graph_url.startswith("https://127.0.0.1:")
