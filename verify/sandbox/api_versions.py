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
from datetime import date
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
    """The versions one service or resource type accepts: exactly these, nothing else.

    Why no date range: a guessed "any date since the first release" accepted versions no
    service ever shipped (``2019-01-01`` for identities), which is what the lists exist to
    catch. Every list is complete from its sources (``data/README.md``).
    """

    versions: tuple[str, ...]

    def accepts(self, version: str) -> bool:
        return version in self.versions

    def shown(self) -> str:
        """As a resource provider's ``NoRegisteredProviderFound`` lists them: oldest first,
        ``", "``-separated (ARM's answer for virtualMachines, quoted in data/README.md)."""
        return ", ".join(sorted(self.versions))

    def shown_by_arm(self) -> str:
        """As ARM's own ``InvalidApiVersionParameter`` lists them: in the data's order (ARM's
        recorded order for Microsoft.Resources, not strictly sorted), ``","``-separated."""
        return ",".join(self.versions)


@cache
def _load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text())
    return data


def _entry(raw: dict[str, Any]) -> VersionList:
    return VersionList(tuple(raw["versions"]))


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

    A listed version is accepted as listed (ARM's own list holds ``2014-04``, not a date);
    anything else is refused: malformed, or one of ARM's own types (Microsoft.Resources),
    ``InvalidApiVersionParameter``; a provider's type, ``NoRegisteredProviderFound``. Types
    outside the data (not served) are not checked beyond presence.
    """
    known = arm_versions(resource_type) if resource_type else None
    if known is not None and known.accepts(version):
        return
    malformed = _ARM_VERSION.fullmatch(version) is None or _date(version[:10]) is None
    own = resource_type is not None and resource_type.lower().startswith(_ARM_OWN)
    if malformed or (own and known is not None):
        supported = f" The supported versions are '{known.shown_by_arm()}'." if known else ""
        raise SandboxError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid.{supported}",
        )
    if resource_type is None or known is None:
        return
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
