"""``python -m foresail``: the same entry point as the ``foresail`` command."""

import sys

from foresail.cli import main

sys.exit(main())
