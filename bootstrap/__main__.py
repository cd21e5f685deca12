"""Entry point of the bootstrap stack (``pulumi up`` in this directory).

Reads and checks the whole config first, so a bad value fails before anything is created.
"""

from bootstrap.config import from_pulumi_config
from bootstrap.program import build, export

config = from_pulumi_config()
export(config, build(config))
