"""``python -m fpsim``: the same as the ``fpsim`` command."""

import sys

from .cli import main

sys.exit(main())
