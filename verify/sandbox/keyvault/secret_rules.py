"""Key Vault's limits on a secret, checked wherever a secret is written or named.

From Microsoft's "About Azure Key Vault secrets" and "About keys, secrets and certificates"
(object identifiers): a name is 1-127 letters, digits and hyphens; a value is at most 25 KB
(stored as octets, so measured in UTF-8 bytes); ``contentType`` at most 255 characters; at
most 15 tags, each name and value at most 512 characters. Key Vault answers a bad name with
400 ``BadParameter`` "The request URI contains an invalid name: <name>" (the text clients
report); the other limits are 400 ``BadParameter`` too.

Both the state (``set_secret``) and the data plane call these, so a secret the sandbox holds
is always one Key Vault would hold.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from verify.sandbox.state.records import SandboxError

SECRET_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")
MAX_VALUE_BYTES = 25 * 1024
MAX_CONTENT_TYPE_CHARS = 255
MAX_TAGS = 15
MAX_TAG_CHARS = 512


def bad_parameter(message: str) -> SandboxError:
    return SandboxError(400, "BadParameter", message)


def check_name(name: str) -> None:
    if not SECRET_NAME.fullmatch(name):
        raise bad_parameter(f"The request URI contains an invalid name: {name}")


def check_secret(
    name: str,
    value: str,
    content_type: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """SandboxError(400, BadParameter) naming the first limit the secret breaks."""
    check_name(name)
    size = len(value.encode("utf-8"))
    if size > MAX_VALUE_BYTES:
        raise bad_parameter(
            f"The secret value is {size} bytes; Key Vault stores at most {MAX_VALUE_BYTES} "
            "bytes (25 KB) per secret."
        )
    if content_type is not None and len(content_type) > MAX_CONTENT_TYPE_CHARS:
        raise bad_parameter(
            f"contentType is {len(content_type)} characters; the limit is {MAX_CONTENT_TYPE_CHARS}."
        )
    tags = tags or {}
    if len(tags) > MAX_TAGS:
        raise bad_parameter(f"{len(tags)} tags given; a secret has at most {MAX_TAGS}.")
    for tag, tag_value in tags.items():
        if len(tag) > MAX_TAG_CHARS or len(tag_value) > MAX_TAG_CHARS:
            raise bad_parameter(
                f"Tag '{tag[:40]}': names and values are at most {MAX_TAG_CHARS} characters."
            )
