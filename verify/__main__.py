"""``python -m verify``: the verifier's command line (see :mod:`verify.cli`)."""

import sys

from verify.cli import main

sys.exit(main())
