"""Verifier: proves from inside each VM that identities read exactly the secrets granted to them."""

import time

#: When the first verifier module was imported (``python -m verify`` and ``mikit-verify``
#: both import this package first): the CLI reports the imports before ``main`` as the
#: "imports" phase, so every second of a run is in some phase.
STARTED = time.monotonic()
