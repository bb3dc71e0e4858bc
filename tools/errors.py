"""Errors about tool calls. Both are meant to be shown to the model, so their messages say what
was wrong and how to fix it.

    DurableError                 (durable.errors)
    └── ToolError                a tool call failed; the message is what the model sees
        └── ToolValidationError  the arguments did not fit the tool's schema

Mistakes in *defining* a tool (``*args``, a bad name) raise ``durable.UsageError`` at decoration.
"""

from __future__ import annotations

from typing import Any

from duragent.durable.errors import DurableError


class ToolError(DurableError):
    """Raise from a tool to report a failure to the model in your own words (no type prefix)."""


class ToolValidationError(ToolError):
    """The model's arguments do not fit the tool's schema.

    ``errors`` lists ``{"field": ..., "message": ...}`` per problem; ``str(error)`` is a message
    written for the model so that it can correct the call.
    """

    def __init__(self, message: str, *, tool_name: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.tool_name = tool_name
        self.errors = list(errors or [])
