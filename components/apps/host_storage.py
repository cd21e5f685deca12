"""A Function app's host storage (``AzureWebJobsStorage``) reached with a managed identity.

The Functions host does not start without host storage: it keeps its locks, timers and
keys in blobs of the account ``AzureWebJobsStorage`` names. The usual value is a connection
string with the account key; the kit uses Microsoft's identity-based form instead
("Connecting to host storage with an identity" in the Azure Functions developer guide,
learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity,
and the ``AzureWebJobsStorage__*`` entries of "App settings reference for Azure Functions"):

* ``AzureWebJobsStorage__accountName``: the account, whose blob, queue and table endpoints
  the host derives in the public cloud;
* with a user-assigned identity, ``AzureWebJobsStorage__credential=managedidentity`` and
  ``AzureWebJobsStorage__clientId=<its client ID>`` (without them the host asks for the
  system identity);
* a role assignment of **Storage Blob Data Owner** to that identity at the account's scope:
  the role Microsoft lists for "No extension (host only)" (blob coordination and the
  default key store). Queue and table roles are needed only by the blob trigger, Durable
  Functions and the diagnostic-event table, none of which the kit configures; an app that
  uses them grants those roles itself.

The account the component creates is a dedicated one (``components.storage.StorageAccount``:
shared-key access off, public blob access off, TLS 1.2, HTTPS only; public network access on,
since an app without VNet integration reaches it over its public endpoint), named from the
app's name (:func:`host_storage_account_name`). The identity is chosen like the kit's other
per-app identity choices (:mod:`components.apps.identities`): the system identity when it
is on, else the app's only user-assigned identity; with several and no system identity the
caller must name one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import pulumi

from components import armid, validation
from components.apps.identities import SYSTEM, HasClientId, check_held, shown
from components.errors import NOT_SET, ConfigError
from components.identity import ManagedIdentities

#: The built-in role Microsoft names for host-only use of identity-based host storage.
HOST_STORAGE_ROLE = "Storage Blob Data Owner"
#: Every app setting of the host storage connection starts with this name.
SETTING_PREFIX = "AzureWebJobsStorage"
ACCOUNT_NAME_SETTING = "AzureWebJobsStorage__accountName"
CREDENTIAL_SETTING = "AzureWebJobsStorage__credential"
CLIENT_ID_SETTING = "AzureWebJobsStorage__clientId"
MANAGED_IDENTITY = "managedidentity"

_STORAGE_ACCOUNT_TYPE = "microsoft.storage/storageaccounts"


def host_storage_account_name(app_name: str) -> str:
    """``st`` + up to 16 of the app name's letters and digits + 6 hex of its SHA-256: 3-24
    lower-case letters and digits as Azure requires, the same for the same app name (so a
    re-run adopts the same account) and distinct for names that only differ past the cut
    or in their hyphens. Site names are global, so the derived name is too, in practice."""
    letters = re.sub(r"[^a-z0-9]", "", app_name.lower())
    digest = hashlib.sha256(app_name.lower().encode()).hexdigest()[:6]
    return f"st{letters[:16]}{digest}"


def owns_setting(name: str) -> bool:
    """Whether app setting ``name`` belongs to the host storage connection (App Service
    setting names are compared ignoring case)."""
    return name.lower() == SETTING_PREFIX.lower() or name.lower().startswith(
        SETTING_PREFIX.lower() + "__"
    )


def _account_name_of(account_id: str) -> str:
    return account_id.rstrip("/").rsplit("/", 1)[-1]


def check_account_id(value: pulumi.Input[str], field: str) -> None:
    """A plain-string account ID must be a ``Microsoft.Storage/storageAccounts`` ID."""
    if not isinstance(value, str):
        return
    parsed = armid.parse(value, field)
    if (parsed.resource_type or "").lower() != _STORAGE_ACCOUNT_TYPE:
        raise ConfigError(
            field,
            value,
            "is not the ID of a storage account",
            "pass /subscriptions/<sub>/resourceGroups/<rg>/providers/"
            "Microsoft.Storage/storageAccounts/<name> (e.g. StorageAccount.id)",
        )


@dataclass(frozen=True)
class HostStoragePlan:
    """What the app's host storage will be, decided before any resource exists.

    ``account_id`` None: the component creates account ``account_name``. ``identity``:
    :data:`SYSTEM` or the user-assigned identity's ID; ``client_id`` None for the system
    identity."""

    account_name: pulumi.Input[str]
    account_id: pulumi.Input[str] | None
    identity: pulumi.Input[str]
    client_id: pulumi.Input[str] | None

    def settings(self) -> dict[str, pulumi.Input[str]]:
        out: dict[str, pulumi.Input[str]] = {ACCOUNT_NAME_SETTING: self.account_name}
        if self.client_id is not None:
            out[CREDENTIAL_SETTING] = MANAGED_IDENTITY
            out[CLIENT_ID_SETTING] = self.client_id
        return out

    def principal_id(self, site_identity: pulumi.Output[Any]) -> pulumi.Output[str]:
        """The chosen identity's principal, as the site reports it (the system
        ``principalId``, or the user-assigned map's entry for the identity)."""
        if self.client_id is None:
            return site_identity.apply(lambda i: _field(i, "principal_id", "principalId"))
        return pulumi.Output.all(site_identity, self.identity).apply(
            lambda pair: _user_assigned_principal(pair[0], str(pair[1]))
        )


def _field(obj: Any, attribute: str, key: str) -> str:
    return str(_get(obj, attribute, key) or "")


def _get(obj: Any, attribute: str, key: str) -> Any:
    """``attribute`` of an azure-native output type, or its key in the plain dict the
    type becomes inside ``Output.all`` (snake_case) or in ARM's JSON (camelCase)."""
    if obj is None:
        return None
    if type(obj) is not dict:
        return getattr(obj, attribute, None)
    return obj.get(attribute, obj.get(key))


def _user_assigned_principal(identity: Any, identity_id: str) -> str:
    held = _get(identity, "user_assigned_identities", "userAssignedIdentities") or {}
    for key, entry in held.items():
        if key.lower() == identity_id.lower():
            return _field(entry, "principal_id", "principalId")
    return ""


def plan_host_storage(
    *,
    app_name: str,
    identities: ManagedIdentities,
    account_id: pulumi.Input[str] | None,
    account_name: str | None,
    chosen: HasClientId | str | None,
    default_identity: HasClientId | None,
) -> HostStoragePlan:
    """Check the caller's choices against what the app holds and decide the plan.

    Errors name the ``FunctionAppArgs`` field, the value and the fix."""
    if account_id is not None and account_name is not None:
        raise ConfigError(
            "host_storage_account_name",
            account_name,
            "is set together with host_storage_account_id",
            "give host_storage_account_id (an existing account) or host_storage_account_name "
            "(the name of the account the component creates), not both",
        )
    name: pulumi.Input[str]
    if account_id is not None:
        check_account_id(account_id, "host_storage_account_id")
        name = pulumi.Output.from_input(account_id).apply(_account_name_of)
    else:
        name = validation.storage_account_name(
            account_name or host_storage_account_name(app_name),
            "host_storage_account_name",
        )
    if not identities.system_assigned and not identities.user_assigned_ids:
        raise ConfigError(
            "identities",
            "(none)",
            "gives the Function app no identity, so its host could reach its storage "
            "(AzureWebJobsStorage) only with an account key",
            "turn on system_assigned, or give it a user-assigned identity",
        )
    purpose = "the Functions host's storage (AzureWebJobsStorage)"
    if isinstance(chosen, str):
        check_held(identities, chosen, "host_storage_identity", purpose)
        if chosen != SYSTEM:
            raise ConfigError(
                "host_storage_identity",
                chosen,
                "is an identity ID, but the host also needs its client ID",
                "pass the UserAssignedIdentity itself (it has id and client_id), or 'system'",
            )
        return HostStoragePlan(name, account_id, SYSTEM, None)
    if chosen is not None:
        check_held(identities, chosen.id, "host_storage_identity", purpose)
        return HostStoragePlan(name, account_id, chosen.id, chosen.client_id)
    if identities.system_assigned:
        return HostStoragePlan(name, account_id, SYSTEM, None)
    if len(identities.user_assigned_ids) > 1:
        raise ConfigError(
            "host_storage_identity",
            NOT_SET,
            "is not set, but the app holds several user-assigned identities and no system "
            "identity, so the Functions host cannot know which one reaches its storage",
            "pass host_storage_identity=<the UserAssignedIdentity the host uses>",
        )
    only = identities.user_assigned_ids[0]
    if default_identity is None or not check_same(only, default_identity.id):
        raise ConfigError(
            "host_storage_identity",
            NOT_SET,
            "is not set, and the client ID of the app's only identity (a user-assigned one) "
            f"is not known ({shown(only)})",
            "pass host_storage_identity=<the UserAssignedIdentity> (or default_identity)",
        )
    return HostStoragePlan(name, account_id, default_identity.id, default_identity.client_id)


def check_same(held: pulumi.Input[str], other: pulumi.Input[str]) -> bool:
    if held is other:
        return True
    return isinstance(held, str) and isinstance(other, str) and held.lower() == other.lower()
