"""The stack program: read the ``mikit`` stack config, build the topology, export it.

Everything else lives in ``components`` so it can be unit-tested; every config key is in
docs/stack-config.md.
"""

import pulumi

from components.role_lookup import default_role_resolver
from components.stack_config import load
from components.topology import Topology

resolver = default_role_resolver()
config, secret_values = load(pulumi.Config("mikit"), resolver)
for name, value in Topology(config, secret_values, resolver).exports().items():
    pulumi.export(name, value)
