"""The real-Azure target's app reads and changes (exists, delete, system identity on/off,
Key Vault reference statuses) with ARM faked at the HTTP boundary: the request each
sends, the user-assigned identities an identity change keeps, 404, the bounded wait on a
delete, and a 403 that names the permission without the operator's token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_azure_hosts import (
    APP_ID,
    CA_ID,
    SHARED_ID,
    TOKEN,
    Clock,
    Response,
    Session,
    assert_no_token,
    target,
)

from verify.sandbox.api_versions import arm_versions
from verify.targets import sandbox
from verify.targets.azure_hosts import app_changes
from verify.targets.azure_hosts.base import HostProbeError, HostTimeoutError, MissingPermissionError
from verify.targets.azure_hosts.rest import ARM_SCOPE

OTHER_ID = APP_ID.replace("Microsoft.Web/sites/app-web", "Microsoft.ManagedIdentity/x/uai-other")
SITES = "api-version=2024-11-01"


def site(identity: dict[str, Any] | None) -> dict[str, Any]:
    return {"id": APP_ID, "name": "app-web", "identity": identity}


def held(type_: str, *ids: str) -> dict[str, Any]:
    return {
        "type": type_,
        "principalId": "p",
        "userAssignedIdentities": {i: {"principalId": "x", "clientId": "y"} for i in ids},
    }


def test_the_api_versions_are_the_sandbox_s_and_listed() -> None:
    assert app_changes.SITES_API_VERSION == sandbox.APP_API_VERSION
    for kind, version in (
        ("Microsoft.Web/sites", app_changes.SITES_API_VERSION),
        ("Microsoft.App/containerApps", app_changes.CONTAINER_APPS_API_VERSION),
    ):
        listed = arm_versions(kind)
        assert listed is not None and listed.accepts(version), (kind, version)


def test_app_exists_is_a_get_and_404_is_false() -> None:
    session = Session([("GET", APP_ID, Response(200, site(None)))])
    t = target(session)
    assert t.app_exists("app:web") is True
    method, url, kw = session.calls[0]
    assert (method, url) == ("GET", f"https://management.azure.com{APP_ID}?{SITES}")
    assert kw["headers"]["Authorization"] == f"Bearer {TOKEN}" and kw["timeout"] <= 60
    assert t.credential.scopes == [ARM_SCOPE]
    assert target(Session([])).app_exists("web") is False  # the fake answers 404


def test_a_container_app_is_read_at_the_container_apps_version() -> None:
    session = Session([("GET", CA_ID, Response(200, {"id": CA_ID}))])
    assert target(session).app_exists("app:jobs")
    assert f"api-version={app_changes.CONTAINER_APPS_API_VERSION}" in session.calls[0][1]


def test_disabling_the_system_identity_keeps_every_user_assigned_one() -> None:
    session = Session(
        [
            (
                "GET",
                APP_ID,
                Response(200, site(held("SystemAssigned, UserAssigned", SHARED_ID, OTHER_ID))),
            ),
            ("PATCH", APP_ID, Response(200, site(held("UserAssigned", SHARED_ID, OTHER_ID)))),
        ]
    )
    target(session).set_app_system_identity("app:web", False)
    (patch,) = session.called("PATCH", APP_ID)
    assert patch["json"] == {
        "identity": {
            "type": "UserAssigned",
            "userAssignedIdentities": {SHARED_ID: {}, OTHER_ID: {}},
        }
    }
    assert session.calls[-1][1] == f"https://management.azure.com{APP_ID}?{SITES}"


def test_enabling_the_system_identity_of_an_app_without_user_assigned_ones() -> None:
    session = Session(
        [("GET", APP_ID, Response(200, site(None))), ("PATCH", APP_ID, Response(200, site(None)))]
    )
    target(session).set_app_system_identity("web", True)
    assert session.called("PATCH", APP_ID)[0]["json"] == {"identity": {"type": "SystemAssigned"}}


def test_a_container_app_identity_change_uses_microsoft_app_s_spelling_and_waits() -> None:
    op = "https://management.azure.com/operations/op-1"
    polls = iter([Response(200, {"status": "InProgress"}), Response(200, {"status": "Succeeded"})])
    session = Session(
        [
            ("GET", CA_ID, Response(200, {"identity": held("UserAssigned", SHARED_ID)})),
            ("PATCH", CA_ID, Response(202, None, {"Azure-AsyncOperation": op})),
            ("GET", op, lambda m, u, k: next(polls)),
        ]
    )
    target(session, polling_interval=0.0).set_app_system_identity("app:jobs", True)
    body = session.called("PATCH", CA_ID)[0]["json"]
    assert body["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert body["identity"]["userAssignedIdentities"] == {SHARED_ID: {}}
    assert len(session.called("GET", op)) == 2


def test_delete_waits_for_the_operation_through_its_location() -> None:
    location = "https://management.azure.com/operationresults/del-1"
    polls = iter([Response(202), Response(202), Response(200)])
    session = Session(
        [
            ("DELETE", APP_ID, Response(202, None, {"Location": location})),
            ("GET", location, lambda m, u, k: next(polls)),
        ]
    )
    target(session, polling_interval=0.0).delete_app("app:web")
    assert session.calls[0][:2] == ("DELETE", f"https://management.azure.com{APP_ID}?{SITES}")
    assert len(session.called("GET", location)) == 3


def test_deleting_an_app_already_gone_is_done() -> None:
    session = Session([])
    target(session).delete_app("app:jobs")
    assert [m for m, _, _ in session.calls] == ["DELETE"]


def test_a_delete_that_never_finishes_is_bounded() -> None:
    location = "https://management.azure.com/operationresults/del-2"
    session = Session(
        [
            ("DELETE", APP_ID, Response(202, None, {"Location": location})),
            ("GET", location, Response(202)),
        ]
    )
    ctx = target(session).host_context()
    clock = Clock()
    ctx.clock, ctx.sleep = clock, clock.sleep
    with pytest.raises(HostTimeoutError, match="deleting app app-web did not finish within 600"):
        app_changes.delete_app(ctx, "app:web")


def test_a_failed_operation_raises() -> None:
    op = "https://management.azure.com/operations/op-2"
    session = Session(
        [
            ("DELETE", CA_ID, Response(202, None, {"Azure-AsyncOperation": op})),
            ("GET", op, Response(200, {"status": "Failed"})),
        ]
    )
    with pytest.raises(HostProbeError, match="deleting app ca-jobs: the operation ended Failed"):
        target(session, polling_interval=0.0).delete_app("app:jobs")


def test_key_vault_reference_statuses_read_configreferences() -> None:
    body = {
        "value": [
            {"name": "API_KEY", "properties": {"status": "Resolved"}},
            {"name": "DB", "properties": {"status": "AccessToKeyVaultDenied"}},
        ]
    }
    session = Session([("GET", "/config/configreferences/appsettings", Response(200, body))])
    statuses = target(session).key_vault_reference_statuses("app:web")
    assert statuses == {"API_KEY": "Resolved", "DB": "AccessToKeyVaultDenied"}
    assert session.calls[0][1] == (
        f"https://management.azure.com{APP_ID}/config/configreferences/appsettings?{SITES}"
    )


@pytest.mark.parametrize(
    ("call", "routes", "action"),
    [
        ("exists", [("GET", APP_ID)], "Microsoft.Web/sites/read"),
        ("delete", [("DELETE", APP_ID)], "Microsoft.Web/sites/delete"),
        ("identity", [("PATCH", APP_ID)], "Microsoft.Web/sites/write"),
        ("references", [("GET", "configreferences")], "Microsoft.Web/sites/config/Read"),
        ("delete_ca", [("DELETE", CA_ID)], "Microsoft.App/containerApps/delete"),
        ("identity_ca", [("PATCH", CA_ID)], "Microsoft.App/containerApps/write"),
    ],
)
def test_a_403_names_the_permission_and_never_the_token(
    call: str, routes: list[tuple[str, str]], action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = Response(403, {"error": {"code": "AuthorizationFailed", "message": TOKEN}})
    session = Session(
        [(m, part, refused) for m, part in routes]
        + [("GET", APP_ID, Response(200, site(None))), ("GET", CA_ID, Response(200, {}))]
    )
    t = target(session)
    run = {
        "exists": lambda: t.app_exists("app:web"),
        "delete": lambda: t.delete_app("app:web"),
        "identity": lambda: t.set_app_system_identity("app:web", False),
        "references": lambda: t.key_vault_reference_statuses("app:web"),
        "delete_ca": lambda: t.delete_app("app:jobs"),
        "identity_ca": lambda: t.set_app_system_identity("app:jobs", False),
    }[call]
    with pytest.raises(MissingPermissionError) as info:
        run()
    message = str(info.value)
    assert action in message and "(403)" in message
    out = capsys.readouterr()
    assert_no_token(message, out.out, out.err)


def test_docs_list_the_app_change_permissions() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "verify.md").read_text()
    table = docs[docs.index("### Probing each kind of host") :]
    for action in app_changes.PERMISSIONS:
        assert f"`{action}`" in table, action
