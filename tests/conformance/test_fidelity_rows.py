"""Rules of docs/azure-fidelity.md that no other test held: each one, against the sandbox.

- A delegate whose delete condition reads ``@Resource[...]`` cannot delete an assignment that
  does not exist: nothing carries the attributes, so the condition cannot be evaluated (403).
- A federated credential whose issuer is not on loopback: Entra cannot fetch the issuer's
  keys from here, AADSTS50166 "Request to External OIDC endpoint failed."
"""

from __future__ import annotations

import uuid

import requests

from bootstrap.conditions import constrain_role_assignments
from components.roles import RoleCatalog
from verify.sandbox import Sandbox

ROLES = RoleCatalog.builtin()
ARM = "https://management.azure.com"
VAULT_SCOPE = "https://vault.azure.net/.default"


def test_a_delegate_cannot_delete_an_assignment_that_does_not_exist(sb: Sandbox) -> None:
    st = sb.state
    group = st.create_resource_group(f"rg-deleg-{uuid.uuid4().hex[:8]}")
    deployer = st.create_principal(f"deployer-{uuid.uuid4().hex[:6]}")
    allowed = [ROLES.get("Key Vault Reader").guid, ROLES.get("Key Vault Secrets User").guid]
    st.create_role_assignment(
        group.id,
        "Role Based Access Control Administrator",
        deployer.object_id,
        condition=constrain_role_assignments(allowed),
        condition_version="2.0",
    )
    missing = f"{group.id}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    response = requests.delete(
        f"{sb.arm_url}{missing}",
        params={"api-version": "2022-04-01"},
        headers={"Authorization": f"Bearer {sb.issue_token(deployer, ARM)}"},
        verify=sb.ca_cert_path,
        timeout=10,
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "AuthorizationFailed"


def test_a_federated_issuer_off_loopback_is_unreachable_aadsts50166(sb: Sandbox) -> None:
    st = sb.state
    group = st.create_resource_group(f"rg-fed-{uuid.uuid4().hex[:8]}")
    uai = st.create_identity(group.name, "id-remote-issuer")
    issuer = "https://token.actions.githubusercontent.com"
    subject = "repo:contoso/platform:ref:refs/heads/main"
    st.create_federated_credential(uai.id, "github-main", issuer, subject)
    assertion = sb.oidc.token("contoso/platform", iss=issuer)
    response = requests.post(
        sb.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": uai.client_id,
            "scope": VAULT_SCOPE,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        verify=sb.ca_cert_path,
        timeout=10,
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_request"
    assert body["error_codes"] == [50166]
    assert body["error_description"].startswith(
        f"AADSTS50166: Request to External OIDC endpoint failed. Issuer: '{issuer}'."
    )
