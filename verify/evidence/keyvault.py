"""Key Vault's evidence: a secret read with its fingerprint, or 403 ``ForbiddenByRbac``.

* audiences: ``https://vault.azure.net`` (with or without the slash) and Key Vault's
  application ID, which v2 tokens carry as ``aud``;
* denied: only a 403 whose inner error code is ``ForbiddenByRbac`` (RBAC evaluated the
  caller and found no role with the data action). A 401 (token refused, challenge
  failed), any other 403 (firewall, disabled secret, policy), a 5xx, a reset or a
  timeout says nothing about what the role assignments allow;
* absent: 404 ``SecretNotFound``;
* fingerprint: ``sha256:<hex>`` of the value's UTF-8 bytes, compared with the stack's
  ``secret_fingerprints``.
"""

from __future__ import annotations

from verify import probe
from verify.evidence.plane import Plane
from verify.model import TargetReport

AUDIENCE = "https://vault.azure.net"
#: Key Vault's first-party application ID (``aud`` of a v2 token).
APP_ID = "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"
AUDIENCES = (AUDIENCE, AUDIENCE + "/", APP_ID)


def service_code(seen: TargetReport) -> str | None:
    """The code Key Vault's rules read: the inner error code where the probe reported
    one (``Forbidden/ForbiddenByRbac``), else the error code."""
    return (seen.error_code or "").rsplit("/", 1)[-1] or None


PLANE = Plane(
    kind="secret",
    service="Key Vault",
    audiences=AUDIENCES,
    denial=probe.KEYVAULT_DENIAL,
    missing=probe.KEYVAULT_MISSING,
    denial_code=service_code,
    fingerprints_field="secret_fingerprints",
    value_word="value",
    bearer_label="vault token",
    observations=lambda report: report.secrets,
    token=lambda report: report.token,
    claims=lambda report: report.claims,
)
