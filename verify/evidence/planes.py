"""Cell kind -> its data plane: adding a data plane is its module and one entry here."""

from __future__ import annotations

from verify.evidence import blob, keyvault
from verify.evidence.plane import Plane

PLANES: dict[str, Plane] = {plane.kind: plane for plane in (keyvault.PLANE, blob.PLANE)}
