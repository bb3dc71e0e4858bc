"""``python -m duragent``: the ``duragent`` command."""

import sys

from .cli import main

sys.exit(main())
