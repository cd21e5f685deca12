"""The body of a Key Vault "set secret" request, checked field by field.

Why: the data plane used to read ``attributes`` and ``tags`` with ``.get`` on whatever JSON
arrived (a list gave 500) and dropped ``exp``/``nbf``. Key Vault's SetSecret body is
``{"value": str, "contentType": str?, "tags": {str: str}?, "attributes": {"enabled": bool?,
"nbf": int?, "exp": int?}?}`` (``SecretSetParameters`` / ``SecretAttributes`` in
azure-keyvault-secrets' generated models); anything else is 400 ``BadParameter``.
"""

from __future__ import annotations

from typing import Any

from verify.sandbox.bodies import BodyError, json_object
from verify.sandbox.keyvault.secret_rules import bad_parameter


def set_secret_fields(raw: bytes) -> dict[str, Any]:
    """Keyword arguments for ``SandboxState.set_secret`` (after the name), or SandboxError."""
    try:
        body = json_object(raw, empty_ok=False)
    except BodyError as exc:
        raise bad_parameter(exc.message) from exc
    value = body.get("value")
    if not isinstance(value, str):
        raise bad_parameter("Property 'value' is required and must be a string.")
    content_type = body.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        raise bad_parameter("Property 'contentType' must be a string.")
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
    ):
        raise bad_parameter("Property 'tags' must be an object of string values.")
    attributes = body.get("attributes")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        raise bad_parameter("Property 'attributes' must be an object.")
    enabled = attributes.get("enabled", True)
    if enabled is None:
        enabled = True
    if not isinstance(enabled, bool):
        raise bad_parameter("Property 'attributes.enabled' must be a boolean.")
    times: dict[str, int | None] = {}
    for claim in ("exp", "nbf"):
        stamp = attributes.get(claim)
        if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int)):
            raise bad_parameter(f"Property 'attributes.{claim}' must be an integer (IntDate).")
        times[claim] = stamp
    return {
        "value": value,
        "content_type": content_type,
        "tags": tags,
        "enabled": enabled,
        "expires": times["exp"],
        "not_before": times["nbf"],
    }
