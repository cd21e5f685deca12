"""The environment the platform gives an app's process, for code run locally.

For each app of a deployed stack: ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` (Container
Apps also ``MSI_ENDPOINT``) pointing at that app's own endpoint, ``AZURE_CLIENT_ID`` where
the kit sets it, the app's plain settings, each Key Vault reference resolved as the
platform resolves it (the secret's value when the resolving identity may read it, else,
for App Service, the literal reference text), the sandbox CA bundle
(``REQUESTS_CA_BUNDLE``, ``SSL_CERT_FILE``) and the vault and blob URLs to use. Exported
into a shell, a user's own application code gets exactly that app's tokens and secrets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from components.keyvault_refs import RESOLVED
from verify.sandbox.sandbox import Sandbox

#: ``(site id) -> [ApiKVReference documents]``: the deploy backend's statuses.
Statuses = Callable[[str], list[dict[str, Any]]]


def app_environments(
    sb: Sandbox, outputs: Mapping[str, Any], statuses: Statuses
) -> dict[str, dict[str, Any]]:
    """Per app key: ``kind``, ``name``, ``id``, ``env``, ``vault_url``, ``blob_urls`` and
    ``key_vault_references`` (setting -> status)."""
    vault_url = str((outputs.get("vault") or {}).get("uri") or "")
    vault = sb.state.vault(str((outputs.get("vault") or {}).get("name") or ""))
    identities = outputs.get("identities") or {}
    blob_urls = {
        key: str(account.get("blob_endpoint") or "")
        for key, account in (outputs.get("storage_accounts") or {}).items()
    }
    out: dict[str, dict[str, Any]] = {}
    for key, app in (outputs.get("apps") or {}).items():
        if sb.state.app(str(app["id"])) is None:
            continue
        env = sb.app_env(str(app["id"]))
        default = app.get("default_identity")
        if default and default in identities:
            env["AZURE_CLIENT_ID"] = str(identities[default]["client_id"])
        references: dict[str, str] = {}
        if app["kind"] == "containerapp":
            # Secrets are fetched by the identity each names; an unreadable one fails the
            # revision on Azure, so the variable is left out here.
            for setting, secret in sorted((app.get("key_vault_references") or {}).items()):
                principal = _principal(app, identities, app.get("key_vault_reference_identity"))
                allowed = (
                    vault is not None
                    and principal is not None
                    and sb.rbac.check_data_action(
                        principal,
                        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                        vault.secret_scope(secret),
                    ).allowed
                )
                value = sb.state.get_secret(vault.name, secret) if vault and allowed else None
                references[setting] = RESOLVED if value is not None else "AccessToKeyVaultDenied"
                if value is not None:
                    env[setting] = value.value
        else:
            for row in statuses(str(app["id"])):
                setting, status = row["name"], row["properties"]["status"]
                references[setting] = status
                secret = row["properties"].get("secretName")
                value = (
                    sb.state.get_secret(vault.name, secret)
                    if vault and secret and status == RESOLVED
                    else None
                )
                # Unresolved, the app sees the literal reference.
                env[setting] = value.value if value is not None else row["properties"]["reference"]
        out[key] = {
            "kind": app["kind"],
            "name": app["name"],
            "id": app["id"],
            "env": env,
            "vault_url": vault_url,
            "blob_urls": blob_urls,
            "key_vault_references": references,
        }
    return out


def _principal(app: Mapping[str, Any], identities: Mapping[str, Any], chosen: Any) -> str | None:
    if chosen in (None, "system"):
        return app.get("system_principal_id")
    identity = identities.get(chosen)
    return str(identity["principal_id"]) if identity else None
