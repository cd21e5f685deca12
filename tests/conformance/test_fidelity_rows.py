"""Rules of docs/azure-fidelity.md that no other test held: each one, against the sandbox.

- A delegate whose delete condition reads ``@Resource[...]`` cannot delete an assignment that
  does not exist: nothing carries the attributes, so the condition cannot be evaluated (403).
- A federated credential whose issuer is not on loopback: Entra cannot fetch the issuer's
  keys from here, AADSTS50166 "Request to External OIDC endpoint failed."
- The app hosts' ARM rules in the shared model (sites, plans, container apps).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import requests

from bootstrap.conditions import constrain_role_assignments
from components.arm.errors import ArmError
from components.arm.memory import InMemoryArm
from components.arm.tokens import (
    PULUMI_APP_SERVICE_PLAN,
    PULUMI_CONTAINER_APP,
    PULUMI_MANAGED_ENVIRONMENT,
    PULUMI_RESOURCE_GROUP,
    PULUMI_WEB_APP,
    PULUMI_WEB_APP_FTP_ALLOWED,
)
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


# --------------------------------------------- app hosts in the shared ARM model


def _arm() -> tuple[InMemoryArm, str]:
    arm = InMemoryArm()
    group = f"/subscriptions/{arm.subscription_id}/resourceGroups/rg-apps"
    arm.create_or_update(PULUMI_RESOURCE_GROUP, group, {"location": "westeurope"})
    return arm, group


def _refused(call: Callable[[], object]) -> ArmError:
    with pytest.raises(ArmError) as refused:
        call()
    return refused.value


def test_app_hosts_refuse_what_arm_refuses() -> None:
    """A site needs its plan and a name no other site holds; a user-assigned identity must
    exist; a publishing-credentials policy needs its site; a container app needs its
    environment and may name in identitySettings only identities it holds."""
    arm, group = _arm()
    web, app = f"{group}/providers/Microsoft.Web", f"{group}/providers/Microsoft.App"
    missing_plan = _refused(
        lambda: arm.create_or_update(
            PULUMI_WEB_APP, f"{web}/sites/web-1", {"serverFarmId": f"{web}/serverfarms/none"}
        )
    )
    assert (missing_plan.status, missing_plan.code) == (404, "NotFound")
    assert missing_plan.message == "Cannot find ServerFarm with name none."
    arm.create_or_update(PULUMI_APP_SERVICE_PLAN, f"{web}/serverfarms/plan", {})
    site = {"serverFarmId": f"{web}/serverfarms/plan"}
    arm.create_or_update(PULUMI_WEB_APP, f"{web}/sites/web-1", site)
    other_group = group.replace("rg-apps", "rg-other")
    arm.create_or_update(PULUMI_RESOURCE_GROUP, other_group, {"location": "westeurope"})
    taken = _refused(
        lambda: arm.create_or_update(
            PULUMI_WEB_APP, f"{other_group}/providers/Microsoft.Web/sites/web-1", site
        )
    )
    assert (taken.status, taken.code) == (409, "Conflict")
    ghost = f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/ghost"
    no_identity = _refused(
        lambda: arm.create_or_update(
            PULUMI_WEB_APP,
            f"{web}/sites/web-2",
            {**site, "identity": {"type": "UserAssigned", "userAssignedIdentities": [ghost]}},
        )
    )
    assert (no_identity.status, no_identity.code) == (400, "FailedIdentityOperation")
    policy = _refused(
        lambda: arm.create_or_update(
            PULUMI_WEB_APP_FTP_ALLOWED,
            f"{web}/sites/none/basicPublishingCredentialsPolicies/ftp",
            {"allow": False},
        )
    )
    assert (policy.status, policy.code) == (404, "ResourceNotFound")
    no_env = _refused(
        lambda: arm.create_or_update(
            PULUMI_CONTAINER_APP,
            f"{app}/containerApps/ca-1",
            {"managedEnvironmentId": f"{app}/managedEnvironments/none"},
        )
    )
    assert (no_env.status, no_env.code) == (404, "ManagedEnvironmentNotFound")
    arm.create_or_update(PULUMI_MANAGED_ENVIRONMENT, f"{app}/managedEnvironments/env", {})
    foreign = _refused(
        lambda: arm.create_or_update(
            PULUMI_CONTAINER_APP,
            f"{app}/containerApps/ca-1",
            {
                "managedEnvironmentId": f"{app}/managedEnvironments/env",
                "configuration": {"identitySettings": [{"identity": "system"}]},
            },
        )
    )
    assert (foreign.status, foreign.code) == (400, "InvalidIdentitySettings")
