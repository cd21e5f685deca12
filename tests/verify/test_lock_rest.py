"""The real-Azure target's management-lock calls with ARM faked at the HTTP boundary: the
requests sent to list the locks over a scope, put one back and delete one (URL,
api-version, body), what a listing keeps, and a 403 that names the permission without the
operator's token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_azure_hosts import SHARED_ID, TOKEN, Response, Session, assert_no_token, target

from verify.sandbox.api_versions import arm_versions
from verify.targets import locks
from verify.targets.azure_hosts.base import MissingPermissionError
from verify.targets.azure_hosts.rest import ARM_SCOPE
from verify.targets.base import LockInfo

RG = SHARED_ID.split("/providers/")[0]
SUB = "/".join(RG.split("/")[:3])
VERSION = "api-version=2020-05-01"
ARM = "https://management.azure.com"
SEGMENT = "/providers/Microsoft.Authorization/locks"


def lock_doc(scope: str, name: str, level: str = "CanNotDelete", **props: Any) -> dict[str, Any]:
    return {
        "id": f"{scope}{SEGMENT}/{name}",
        "name": name,
        "type": "Microsoft.Authorization/locks",
        "properties": {"level": level, **props},
    }


def test_the_api_version_is_one_the_sandbox_serves() -> None:
    listed = arm_versions("Microsoft.Authorization/locks")
    assert listed is not None and listed.accepts(locks.LOCKS_API_VERSION)


def test_listing_asks_the_scope_its_group_and_its_subscription_and_keeps_what_is_above() -> None:
    on_identity = lock_doc(SHARED_ID, "id-lock", notes="shared")
    on_group = lock_doc(RG, "rg-lock", "ReadOnly")
    below_group = lock_doc(f"{RG}/providers/Microsoft.Compute/virtualMachines/vm1", "vm-lock")
    on_sub = lock_doc(SUB, "sub-lock")
    page2 = f"{ARM}{SUB}{SEGMENT}?{VERSION}&$skiptoken=2"
    session = Session(
        [
            ("GET", f"{SHARED_ID}{SEGMENT}?", Response(200, {"value": [on_identity]})),
            ("GET", "skiptoken=2", Response(200, {"value": [on_sub]})),
            (
                "GET",
                f"{RG}{SEGMENT}?",
                Response(200, {"value": [on_identity, on_group, below_group]}),
            ),
            ("GET", f"{SUB}{SEGMENT}?", Response(200, {"value": [], "nextLink": page2})),
        ]
    )
    t = target(session)
    found = t.management_locks(SHARED_ID)
    assert [(x.name, x.scope, x.level, x.notes) for x in found] == [
        ("sub-lock", SUB, "CanNotDelete", None),
        ("rg-lock", RG, "ReadOnly", None),
        ("id-lock", SHARED_ID, "CanNotDelete", "shared"),
    ]  # the VM's lock is below the group, not above the identity: left out
    urls = [u for m, u, _ in session.calls if m == "GET"]
    assert urls == [
        f"{ARM}{SHARED_ID}{SEGMENT}?{VERSION}",
        f"{ARM}{RG}{SEGMENT}?{VERSION}",
        f"{ARM}{SUB}{SEGMENT}?{VERSION}",
        page2,
    ]
    kw = session.calls[0][2]
    assert kw["headers"]["Authorization"] == f"Bearer {TOKEN}" and kw["timeout"] <= 60
    assert t.credential.scopes[0] == ARM_SCOPE


def test_putting_a_lock_back_sends_its_level_notes_and_owners() -> None:
    lock = LockInfo(SHARED_ID, "id-lock", "CanNotDelete", "do not delete", ("app-1",))
    answer = lock_doc(
        SHARED_ID, "id-lock", notes="do not delete", owners=[{"applicationId": "app-1"}]
    )
    session = Session([("PUT", f"{SEGMENT}/id-lock", Response(201, answer))])
    made = target(session).create_lock(lock)
    assert made == lock
    ((method, url, kw),) = session.calls
    assert (method, url) == ("PUT", f"{ARM}{SHARED_ID}{SEGMENT}/id-lock?{VERSION}")
    assert kw["json"] == {
        "properties": {
            "level": "CanNotDelete",
            "notes": "do not delete",
            "owners": [{"applicationId": "app-1"}],
        }
    }


def test_a_lock_without_notes_is_put_back_without_them() -> None:
    session = Session([("PUT", "/rg-lock", Response(200, lock_doc(RG, "rg-lock", "ReadOnly")))])
    target(session).create_lock(LockInfo(RG, "rg-lock", "ReadOnly"))
    assert session.calls[0][2]["json"] == {"properties": {"level": "ReadOnly"}}


def test_deleting_a_lock_is_a_delete_of_its_id() -> None:
    session = Session([("DELETE", f"{SEGMENT}/id-lock", Response(200))])
    target(session).delete_lock(LockInfo(SHARED_ID, "id-lock", "CanNotDelete"))
    ((method, url, _),) = session.calls
    assert (method, url) == ("DELETE", f"{ARM}{SHARED_ID}{SEGMENT}/id-lock?{VERSION}")


@pytest.mark.parametrize(
    ("call", "method", "action"),
    [
        ("delete", "DELETE", "Microsoft.Authorization/locks/delete"),
        ("put", "PUT", "Microsoft.Authorization/locks/write"),
        ("list", "GET", "Microsoft.Authorization/locks/read"),
    ],
)
def test_a_403_names_the_lock_permission_and_never_the_token(
    call: str, method: str, action: str
) -> None:
    refused = Response(
        403, {"error": {"code": "AuthorizationFailed", "message": f"no; Bearer {TOKEN}"}}
    )
    t = target(Session([(method, SEGMENT, refused)]))
    lock = LockInfo(SHARED_ID, "id-lock", "CanNotDelete")
    with pytest.raises(MissingPermissionError) as info:
        if call == "delete":
            t.delete_lock(lock)
        elif call == "put":
            t.create_lock(lock)
        else:
            t.management_locks(SHARED_ID)
    assert info.value.action == action and info.value.status == 403
    assert action in str(info.value) and "AuthorizationFailed" in str(info.value)
    assert_no_token(str(info.value))


def test_docs_list_the_lock_permissions() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "verify.md").read_text()
    table = docs[docs.index("### Probing each kind of host") :]
    for action in locks.PERMISSIONS:
        assert f"`{action}`" in table, action
    assert "--keep-locks" in docs


@pytest.mark.parametrize(
    ("scope", "listed"),
    [
        (SHARED_ID, [SHARED_ID, RG, SUB]),
        (f"{SHARED_ID}/federatedIdentityCredentials/fic", [SHARED_ID, RG, SUB]),
        (
            f"{SHARED_ID}/providers/Microsoft.Authorization/roleAssignments/a1",
            [SHARED_ID, RG, SUB],
        ),
        (RG, [RG, SUB]),
        (SUB, [SUB]),
    ],
)
def test_a_child_or_extension_scope_is_listed_at_the_resource_above_it(
    scope: str, listed: list[str]
) -> None:
    """ARM lists a resource's locks with those below it; a lock on the identity refuses
    deleting its federated credential, and is found for it."""
    assert locks.scopes_over(scope) == listed
    session = Session(
        [("GET", f"{SHARED_ID}{SEGMENT}?", Response(200, {"value": [lock_doc(SHARED_ID, "l")]}))]
    )
    found = target(session).management_locks(scope)  # 404 elsewhere: nothing there
    assert [x.name for x in found] == (["l"] if scope.startswith(SHARED_ID) else [])
