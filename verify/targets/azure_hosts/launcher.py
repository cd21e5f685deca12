"""The shell that starts the probe inside a container (an app's SCM container, a
Container Apps job, a Kubernetes Job): the same probe, its pinned dependencies, its result
between markers on stdout.

A VM gets the probe's dependencies from cloud-init; these hosts get them here: the host's
``python3`` when it already imports them, else a venv made once under ``venv`` with
:data:`components.cloud_init.PROBE_REQUIREMENTS` (outbound HTTPS to PyPI, or the host's
pip index, is needed the first time). The probe's source arrives either as a file the
caller put there or gzip+base64 in an environment variable; the spec is base64 in argv.
Nothing inbound: the probe finds the host's own identity through its environment.
"""

from __future__ import annotations

import base64
import gzip
import json
import shlex
from collections.abc import Mapping
from typing import Any

from components.cloud_init import PROBE_REQUIREMENTS
from verify.targets.probing import probe_source

#: The probe's venv inside a one-off container (its own /tmp, nobody else's).
CONTAINER_VENV = "/tmp/mikit-venv"  # noqa: S108
#: The environment variable carrying the probe's source (gzip+base64).
SOURCE_ENV = "MIKIT_PROBE_SOURCE_GZ_B64"
UNPACK = (
    "import base64, gzip, os, sys; sys.stdout.write(gzip.decompress("
    f"base64.b64decode(os.environ['{SOURCE_ENV}'])).decode())"
)
IMPORTS = "import azure.identity, azure.keyvault.secrets, azure.storage.blob"


def packed_source() -> str:
    """verify/probe.py, gzip+base64 (about a third of its size), for an env variable."""
    return base64.b64encode(gzip.compress(probe_source().encode("utf-8"), mtime=0)).decode()


def spec_b64(spec: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(dict(spec)).encode("utf-8")).decode("ascii")


def install_lines(venv: str) -> list[str]:
    """Pick ``$PY``: the host's python3 when it has the probe's imports, else the venv
    (made now if missing). Exits 3 with a message when there is no python3 at all."""
    pip = f"{shlex.quote(venv)}/bin/pip install -q --disable-pip-version-check"
    reqs = " ".join(shlex.quote(r) for r in PROBE_REQUIREMENTS)
    return [
        "set -u",
        'PY=""',
        f"if command -v python3 >/dev/null 2>&1 && python3 -c {shlex.quote(IMPORTS)} "
        "2>/dev/null; then PY=python3; fi",
        f'if [ -z "$PY" ] && [ -x {shlex.quote(venv)}/bin/python ]; then '
        f"PY={shlex.quote(venv)}/bin/python; fi",
        'if [ -z "$PY" ]; then',
        "  command -v python3 >/dev/null 2>&1 || "
        "{ echo 'MIKIT-PROBE no python3 in this container' >&2; exit 3; }",
        f"  python3 -m venv {shlex.quote(venv)} >&2 && {pip} {reqs} >&2 && "
        f"PY={shlex.quote(venv)}/bin/python",
        "fi",
        '[ -n "$PY" ] || { echo "MIKIT-PROBE the probe\'s dependencies did not install" >&2; '
        "exit 3; }",
    ]


def container_script(spec: Mapping[str, Any], venv: str = CONTAINER_VENV) -> str:
    """One ``sh -c`` script: dependencies, the probe from ``$MIKIT_PROBE_SOURCE_GZ_B64``,
    then the probe with ``spec``, its result gzip+base64 between markers."""
    return "\n".join(
        [
            *install_lines(venv),
            f'"$PY" -c {shlex.quote(UNPACK)} > /tmp/mikit-probe.py',
            f'exec "$PY" /tmp/mikit-probe.py --spec-b64 {spec_b64(spec)} --output gzip-b64',
        ]
    )
