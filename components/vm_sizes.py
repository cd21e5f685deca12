"""The VM sizes the components accept, from the list shipped in ``components/data``.

Azure answers an unknown or mistyped size only when the VM is created, minutes into a
deployment, and a previous-generation size (``Standard_B1s``: B-series v1, retiring
2028-11-15) deploys today and fails to scale or start later. The shipped list
(``vm_sizes.json``, with its sources) names the current x64 general-purpose series and
the previous ones still deployable; a size outside it is a ConfigError naming the
closest listed sizes.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Generation = Literal["current", "previous"]


@dataclass(frozen=True)
class VmSizeCatalog:
    default: str
    sizes: dict[str, tuple[str, Generation]]
    """Lower-cased size name -> (the name as Azure spells it, its generation)."""

    @classmethod
    @cache
    def shipped(cls) -> VmSizeCatalog:
        raw = json.loads(resources.files("components.data").joinpath("vm_sizes.json").read_text())
        sizes: dict[str, tuple[str, Generation]] = {}
        for generation in ("current", "previous"):
            for series in raw[generation].values():
                for name in series:
                    sizes[name.lower()] = (name, generation)
        return cls(raw["default"], sizes)

    def lookup(self, size: str) -> tuple[str, Generation] | None:
        """The canonical name and generation of ``size`` (case-insensitive), if listed."""
        return self.sizes.get(size.lower())

    def close_matches(self, size: str, n: int = 3) -> list[str]:
        """Listed sizes nearest to ``size``, current ones first."""
        names = sorted(self.sizes, key=lambda k: (self.sizes[k][1] != "current", k))
        found = difflib.get_close_matches(size.lower(), names, n=n, cutoff=0.6)
        return [self.sizes[k][0] for k in found]


DEFAULT_VM_SIZE = VmSizeCatalog.shipped().default
