"""One module per suite; importing this package registers every handler."""

from . import (callback, child, invoke, map, parallel, plugin, step, wait, wait_for_callback,  # noqa: F401
               wait_for_condition)
