"""What can go wrong talking to an MCP server."""

from __future__ import annotations

from duragent.tools.errors import ToolError


class MCPServerError(ToolError):
    """An MCP server could not be started or reached, lost the connection, or did not answer in
    time. In a tool call it is what the model sees (or what a durable retry retries)."""


__all__ = ["MCPServerError"]
