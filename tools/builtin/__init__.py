"""Built-in tools. Each is a plain tool, so its result is checkpointed by ``Tool.run``: a
replayed agent sees the same page, number or time as the first run.

- ``http_get(url, max_bytes=, timeout_s=)``: fetch a page (http/https only, size-capped, deadline).
- ``calculator(expression)``: safe arithmetic on the syntax tree.
- ``current_time(timezone="UTC")``: the time now, ISO 8601.
"""

from .calculator import calculator
from .clock import current_time
from .http import http_get

__all__ = ["calculator", "current_time", "http_get"]
