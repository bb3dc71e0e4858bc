"""One module per suite; importing this package registers every handler."""

from . import (  # noqa: F401
               callback,
               child,
               invoke,
               map,
               parallel,
               plugin,
               step,
               wait,
               wait_for_callback,
               wait_for_condition,
)
