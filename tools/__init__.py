"""Tools for agents: ``@tool`` turns a typed function into a ``Tool`` with a name, a description
and a JSON schema of its arguments, validated by pydantic and run as a durable step.

    from duragent.tools import tool

    @tool
    def get_weather(city: str, days: int = 1) -> dict:
        '''Forecast for a city.

        Args:
            city: the city name, e.g. "Paris".
            days: how many days ahead.
        '''

Built-in tools live in ``tools.builtin`` (``http_get``, ``calculator``, ``current_time``).
"""

from .errors import ToolError, ToolValidationError
from .tool import Tool, tool

__all__ = ["Tool", "ToolError", "ToolValidationError", "tool"]
