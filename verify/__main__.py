"""``python -m verify``: the verifier's command line (see :mod:`verify.cli`)."""

import gc
import sys

# The imports and the deploy allocate ~0.5 M objects that live as long as the run: the
# cyclic collector stays off until the deploy is done, when verify.cli freezes them (the
# sandbox and preflight commands turn it back on at once).
gc.disable()

from verify.cli import main  # noqa: E402

sys.exit(main())
