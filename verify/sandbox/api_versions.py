"""api-versions: each sandbox service accepts only the versions the real service offers.

Why: the sandbox answered ``api-version=1999-01-01`` and ``0.1-bogus`` like a real version,
so a client pinned to a version Azure never shipped passed here and failed on Azure. The
lists are data (``data/api_versions.json``, sources in ``data/README.md``), taken from
Microsoft's REST API specifications and the clients generated from them.

One call per service, raising :class:`~verify.sandbox.records.SandboxError` in the shape
that service answers with:

- ARM: :func:`check_arm` (``resource_type`` from :func:`arm_resource_type`) -> 400
  ``InvalidApiVersionParameter`` for a malformed version or one of ARM's own types
  (Microsoft.Resources), else 400 ``NoRegisteredProviderFound`` with ARM's message naming
  the supported versions;
- Key Vault data plane: :func:`check_keyvault` -> 400 ``BadParameter`` "The specified
  version (x) is not recognized. Consider using the latest supported version (y).".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from verify.sandbox.records import SandboxError

DATA = Path(__file__).with_name("data") / "api_versions.json"
_ARM_VERSION = re.compile(r"(?P<date>\d{4}-\d{2}-\d{2})(?:-(?:preview|beta|alpha|privatepreview))?")
#: ARM's own resource types (no resource provider behind them): an unknown version is
#: ``InvalidApiVersionParameter`` rather than ``NoRegisteredProviderFound``.
_ARM_OWN = ("microsoft.resources/",)


@dataclass(frozen=True)
class VersionList:
    """The versions one service or resource type accepts."""

    versions: tuple[str, ...]
    complete: bool
    earliest: str | None = None

    def accepts(self, version: str, today: date) -> bool:
        if version in self.versions:
            return True
        if self.complete or self.earliest is None:
            return False
        match = _ARM_VERSION.fullmatch(version)
        stamp = _date(match.group("date")) if match else None
        floor = _date(self.earliest[:10])
        return stamp is not None and floor is not None and floor <= stamp <= today

    def shown(self) -> str:
        """Newest first, as ARM lists them."""
        return ", ".join(sorted(self.versions, reverse=True))


@cache
def _load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    return data


def _entry(raw: dict[str, Any]) -> VersionList:
    return VersionList(tuple(raw["versions"]), bool(raw["complete"]), raw.get("earliest"))


def arm_versions(resource_type: str) -> VersionList | None:
    """The accepted versions of one ARM resource type (case-insensitive), or None."""
    for name, raw in _load()["arm"].items():
        if name.lower() == resource_type.lower():
            return _entry(raw)
    return None


def keyvault_versions() -> VersionList:
    return _entry(_load()["keyvault"])


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _today() -> date:
    return datetime.now(UTC).date()


def arm_resource_type(path: str) -> str | None:
    """The ARM resource type a request path addresses (``Namespace/type[/child...]``).

    ``/subscriptions/{s}`` and ``/subscriptions/{s}/resourceGroups/{g}`` are ARM's own
    types; otherwise the last ``/providers/{Namespace}/{type}/{name}/{child}/...`` decides.
    """
    parts = [p for p in path.split("/") if p]
    lowered = [p.lower() for p in parts]
    if "providers" in lowered:
        cut = len(lowered) - 1 - lowered[::-1].index("providers")
        rest = parts[cut + 1 :]
        if len(rest) < 2:
            return None
        return "/".join([rest[0], *rest[1::2]])
    if lowered[:1] == ["subscriptions"]:
        if len(parts) <= 2:
            return "Microsoft.Resources/subscriptions"
        if lowered[2] == "resourcegroups":
            return "Microsoft.Resources/resourceGroups"
    return None


def check_arm(resource_type: str | None, version: str, location: str) -> None:
    """SandboxError(400) in ARM's words when ``version`` is not one ``resource_type`` offers.

    Types outside the data (not served, or not listed) are not checked beyond presence.
    """
    if _ARM_VERSION.fullmatch(version) is None or _date(version[:10]) is None:
        known = arm_versions(resource_type) if resource_type else None
        supported = f" The supported versions are '{known.shown()}'." if known else ""
        raise SandboxError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid.{supported}",
        )
    if resource_type is None:
        return
    known = arm_versions(resource_type)
    if known is None or known.accepts(version, _today()):
        return
    if resource_type.lower().startswith(_ARM_OWN):
        raise SandboxError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{known.shown()}'.",
        )
    type_ = resource_type.partition("/")[2]
    raise SandboxError(
        400,
        "NoRegisteredProviderFound",
        f"No registered resource provider found for location '{location}' and API version "
        f"'{version}' for type '{type_}'. The supported api-versions are '{known.shown()}'. "
        f"The supported locations are '{location}'.",
    )


def check_keyvault(version: str) -> None:
    """SandboxError(400, BadParameter) in Key Vault's words for an unknown version."""
    data = _load()["keyvault"]
    if version not in data["versions"]:
        raise SandboxError(
            400,
            "BadParameter",
            f"The specified version ({version}) is not recognized. Consider using the latest "
            f"supported version ({data['latest']}).",
        )
