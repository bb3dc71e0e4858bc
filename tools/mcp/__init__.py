"""Tools from MCP servers, durably: ``MCPServerStdio`` (a command) and ``MCPServerHTTP`` (a
streamable HTTP endpoint) are toolsets an ``Agent`` takes beside plain tools::

    from duragent import Agent
    from duragent.tools.mcp import MCPServerHTTP, MCPServerStdio

    files = MCPServerStdio("python", ["files_server.py"], prefix="files_", requires_approval=["delete"])
    search = MCPServerHTTP("https://search.example/mcp", headers={"Authorization": f"Bearer {token}"})
    agent = Agent("anthropic:claude-sonnet-4-6", tools=[files, search, my_tool])

The server's tools are listed once per run (a durable step) and offered with their names,
descriptions and JSON schemas; every call is a durable step whose result is checkpointed. Needs
the ``mcp`` extra: ``pip install 'duragent[mcp]'``.
"""

from duragent.agents.agent import ToolsChangedError

from .errors import MCPServerError
from .servers import MCPServerHTTP, MCPServerStdio, MCPToolset
from .tool import MCPTool

__all__ = ["MCPServerError", "MCPServerHTTP", "MCPServerStdio", "MCPTool", "MCPToolset", "ToolsChangedError"]
