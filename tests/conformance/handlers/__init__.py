"""One module per suite; importing this package registers every handler."""

from . import (callback, child, step, wait, wait_for_callback)  # noqa: F401
