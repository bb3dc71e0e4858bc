"""``python -m duragent``: the ``duragent`` command."""

import sys

from .durable.cli import main

sys.exit(main())
