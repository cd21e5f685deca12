"""Find (or install) the Azure CLI in an environment of its own, and run it at the sandbox.

azure-cli is about 370 MB of packages with pins of its own, so it is never a dependency of
this project: ``python -m uv tool install azure-cli==<AZ_VERSION>`` puts it in a cache
directory with its own interpreter environment (``.ci/run`` does that; so can a developer,
see docs/sandbox.md). The tests use, in order: ``$MIKIT_AZ``, the cached install, ``az`` on PATH.

Every command runs as docs/sandbox.md documents it, in a throw-away ``AZURE_CONFIG_DIR``, trusting
the sandbox CA through ``REQUESTS_CA_BUNDLE`` and "on" a VM through
``AZURE_POD_IDENTITY_AUTHORITY_HOST`` (az's ``login --identity`` is msal's
ManagedIdentityClient, which reads that variable; ``MSI_ENDPOINT``/``IDENTITY_ENDPOINT``
would switch it to App Service's protocol instead, so they are removed).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AZ_VERSION = "2.91.0"
AZ_HOME = Path(os.environ.get("MIKIT_AZ_HOME", Path.home() / ".cache" / "mikit" / "azure-cli"))
#: Variables that would point az (or msal inside it) at something other than the sandbox.
_FOREIGN = ("AZURE_", "MSI_", "IDENTITY_", "IMDS_", "ARM_", "REQUESTS_CA_BUNDLE")
COMMAND_TIMEOUT_SECONDS = 120


def az_executable() -> Path | None:
    """The az to test with, or None when there is none on this machine."""
    explicit = os.environ.get("MIKIT_AZ")
    if explicit:
        return Path(explicit) if Path(explicit).exists() else None
    cached = AZ_HOME / "bin" / "az"
    if cached.exists():
        return cached
    found = shutil.which("az")
    return Path(found) if found else None


def install() -> Path:
    """Install the pinned az into :data:`AZ_HOME` with uv's tool installer (``.ci/run``).

    Its own virtual environment under ``AZ_HOME/tools``, its executable in ``AZ_HOME/bin``;
    a second call finds it installed and returns at once.
    """
    env = dict(os.environ)
    env.update({"UV_TOOL_DIR": str(AZ_HOME / "tools"), "UV_TOOL_BIN_DIR": str(AZ_HOME / "bin")})
    subprocess.run(
        [sys.executable, "-m", "uv", "tool", "install", "--quiet", f"azure-cli=={AZ_VERSION}"],
        env=env,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return AZ_HOME / "bin" / "az"


@dataclass
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def check(self) -> Result:
        if self.returncode != 0:
            raise AssertionError(
                f"az {' '.join(self.args)} exited {self.returncode}:\n{self.stderr[-3000:]}"
            )
        return self


@dataclass
class Az:
    """One az "installation" pointed at one sandbox: its config dir and environment."""

    executable: Path
    config_dir: Path
    ca_bundle: str
    imds_host: str
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
        base.update(
            {
                "AZURE_CONFIG_DIR": str(self.config_dir),
                "REQUESTS_CA_BUNDLE": self.ca_bundle,
                "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.imds_host,
                "AZURE_CORE_COLLECT_TELEMETRY": "false",
                "AZURE_CORE_NO_COLOR": "true",
                "AZURE_CORE_SURVEY_MESSAGE": "false",
            }
        )
        self.env = base

    def __call__(self, *args: str) -> Result:
        done = subprocess.run(
            [str(self.executable), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return Result(args, done.returncode, done.stdout, done.stderr)


if __name__ == "__main__":
    # python tests/azcli/azcli_env.py --install: print the installed az's path
    if sys.argv[1:] != ["--install"]:
        sys.exit("usage: python tests/azcli/azcli_env.py --install")
    print(install())
