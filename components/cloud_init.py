"""cloud-init for the VMs: a venv holding exactly the probe's Python dependencies.

``PROBE_REQUIREMENTS`` is the one place these pins live: the cloud-init here installs
them, and the probe's docs and Run Command path refer to this constant.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Sequence

import yaml

# What verify/probe.py imports on the VM, nothing more.
PROBE_REQUIREMENTS: tuple[str, ...] = (
    "azure-identity>=1.27,<2",
    "azure-keyvault-secrets>=4.12,<5",
    "azure-storage-blob>=12.20,<13",  # the probe reads granted blobs too
)
PROBE_VENV = "/opt/mikit/venv"
PROBE_PYTHON = f"{PROBE_VENV}/bin/python"


def probe_cloud_config(
    requirements: Sequence[str] = PROBE_REQUIREMENTS, venv: str = PROBE_VENV
) -> str:
    """A ``#cloud-config`` document that creates ``venv`` and installs ``requirements``."""
    pip = [f"{venv}/bin/pip", "install", "--disable-pip-version-check", "--no-cache-dir"]
    document = {
        "package_update": True,
        "packages": ["python3-venv"],
        "runcmd": [
            ["python3", "-m", "venv", venv],
            [*pip, "--upgrade", "pip"],
            [*pip, *requirements],
            ["sh", "-c", f"echo ok > {shlex.quote(venv)}/.mikit-ready"],
        ],
    }
    return "#cloud-config\n" + str(yaml.safe_dump(document, sort_keys=False))


def as_custom_data(cloud_config: str) -> str:
    """Base64, as ``osProfile.customData`` requires."""
    return base64.b64encode(cloud_config.encode()).decode()
