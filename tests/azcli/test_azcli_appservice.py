"""``az login --identity`` inside an app's environment: the Azure CLI (msal's
ManagedIdentityClient inside it) takes App Service's protocol from ``IDENTITY_ENDPOINT`` and
``IDENTITY_HEADER`` and gets the app's own tokens from the sandbox's identity endpoint."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jwt
import pytest
from azcli_env import Az, az_executable

from verify.sandbox import Sandbox

pytestmark = pytest.mark.azcli


def _az_on_app(sb: Sandbox, app_id: str, config_dir: Path) -> Az:
    """az in the app's environment, the sandbox registered in ``config_dir``."""
    executable = az_executable()
    assert executable is not None
    cli = Az(executable, config_dir, sb.ca_cert_path, "")
    cli.env.pop("AZURE_POD_IDENTITY_AUTHORITY_HOST", None)
    cli.env.update(sb.app_env(app_id))
    return cli


def test_az_login_identity_in_an_app_gets_the_apps_tokens(
    sb: Sandbox, registered: Callable[[Path], Path], tmp_path: Path
) -> None:
    shared = sb.state.create_identity("rg-cli", "id-app-shared")
    group = f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-cli"
    app_id = f"{group}/providers/Microsoft.Web/sites/app-cli"
    app = sb.state.create_or_update_app(
        app_id, kind="webapp", system_assigned=True, user_assigned=[shared.id]
    )
    assert app.system_principal_id is not None
    sb.state.create_role_assignment(
        f"/subscriptions/{sb.subscription_id}/resourceGroups/rg-cli",
        "Reader",
        app.system_principal_id,
    )
    az = _az_on_app(sb, app_id, registered(tmp_path / "azure-config-app"))
    az("login", "--identity").check()
    token = az("account", "get-access-token", "--resource", "https://vault.azure.net").check()
    claims = jwt.decode(token.json()["accessToken"], options={"verify_signature": False})
    assert claims["oid"] == app.system_principal_id
    # The user-assigned identity the app holds, by client ID (a fresh az profile: logging
    # out of a managed identity makes az look up login.microsoftonline.com).
    az = _az_on_app(sb, app_id, registered(tmp_path / "azure-config-uai"))
    az("login", "--identity", "--client-id", shared.client_id, "--allow-no-subscriptions").check()
    token = az("account", "get-access-token", "--resource", "https://vault.azure.net").check()
    claims = jwt.decode(token.json()["accessToken"], options={"verify_signature": False})
    assert claims["oid"] == shared.principal_id
