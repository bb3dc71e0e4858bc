"""One connection to an MCP server for one agent run in one invocation, on the official SDK.

The SDK's client is an async context manager built on anyio task groups, which must be left in
the task that entered them; tool calls come from other tasks (parallel tool calls, a synchronous
handler's step bodies). So a *keeper* task of its own opens the ``mcp.Client``, holds it open
while the session lives and closes it when told: the process of a stdio server is stopped, an
HTTP session is ended. Calls are made from anywhere on the same event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from duragent.agents.messages import ToolSpec
from duragent.agents.toolsets import ToolsetSession

from .errors import MCPServerError

if TYPE_CHECKING:
    from .servers import MCPToolset

T = TypeVar("T")

log = logging.getLogger("duragent.tools.mcp")

CLOSE_TIMEOUT = 10.0
"""Seconds to wait for a connection to close (the SDK gives a stdio server 2 s, then kills it)."""

_MAX_PAGES = 100


class Refused:
    """The server answered a call with a protocol error instead of a result."""

    def __init__(self, message: str) -> None:
        self.message = message


class MCPSession(ToolsetSession):
    """Connects on first use; ``list_tools`` and ``call`` may then be awaited from any task of the loop."""

    def __init__(self, server: MCPToolset) -> None:
        self.server = server
        self._client: Any = None
        self._error: BaseException | None = None
        self._failure: MCPServerError | None = None
        self._keeper: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._names: dict[str, str] = {}
        """Offered name -> the server's name, for tools listed in this session."""
        self._secrets: list[str] = []
        """Header and env values of this connection, kept in memory to scrub them from messages."""

    # -- the two things a run asks -------------------------------------------------------------
    async def list_tools(self) -> list[ToolSpec]:
        """The tools the server offers the model now (allow/deny applied, names prefixed)."""
        client = await self._connect()
        tools = await self._guard(_all_tools(client), "list its tools", self.server.timeout)
        specs: list[ToolSpec] = []
        names: dict[str, str] = {}
        for tool in tools:
            if not self.server.offers(tool.name):
                continue
            offered = self.server.offered_name(tool.name)
            names[offered] = tool.name
            specs.append(ToolSpec(name=offered, description=tool.description or tool.title or "",
                                  parameters=dict(tool.input_schema)))
        self._names = names
        return specs

    async def call(self, offered: str, arguments: dict[str, Any]) -> Any:
        """The server's ``CallToolResult`` for one call, a ``Refused`` if it answered with a
        protocol error, or None if it no longer offers the tool. MCPServerError if it cannot be
        reached or does not answer within the toolset's ``timeout``."""
        client = await self._connect()
        name = self._server_name(offered)
        if name is None:
            await self.list_tools()  # a name the prefix alone does not explain: ask the server
            name = self._names.get(offered)
            if name is None:
                return None
        from mcp import MCPError

        try:
            return await self._guard(client.call_tool(name, arguments), f"answer a call of {name}",
                                     self.server.timeout)
        except MCPError as exc:
            return Refused(self._redact(exc.message))

    async def aclose(self) -> None:
        keeper, stop = self._keeper, self._stop
        if keeper is None or stop is None:
            return
        stop.set()
        self._keeper = self._stop = None
        try:
            await asyncio.wait_for(asyncio.shield(keeper), CLOSE_TIMEOUT)
        except asyncio.CancelledError:
            keeper.cancel()
            raise
        except Exception:  # noqa: BLE001 - the keeper recorded its own error; closing goes on
            pass
        if not keeper.done():  # a server that will not stop: cancel its connection outright
            keeper.cancel()

    # -- connecting ----------------------------------------------------------------------------
    async def _connect(self) -> Any:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._client is not None:
                return self._client
            if self._failure is not None:  # one attempt per session: a retry is the journal's job
                raise MCPServerError(str(self._failure))
            ready = asyncio.Event()
            self._stop = asyncio.Event()
            self._error = None
            self._keeper = asyncio.get_running_loop().create_task(self._hold(ready, self._stop))
            try:
                await asyncio.wait_for(ready.wait(), self.server.connect_timeout)
            except TimeoutError:
                self._keeper.cancel()
                self._failure = MCPServerError(f"{self.server.describe()} did not connect within "
                                               f"{self.server.connect_timeout:g} s")
                raise MCPServerError(str(self._failure)) from None
            if self._client is None:
                self._failure = MCPServerError(f"{self.server.describe()} is unavailable: "
                                               f"{self._explain(self._error)}")
                raise MCPServerError(str(self._failure)) from None
            return self._client

    async def _hold(self, ready: asyncio.Event, stop: asyncio.Event) -> None:
        """The keeper: open the client, hold it until ``stop``, close it (all in this one task)."""
        from mcp import Client, Implementation

        try:
            transport, self._secrets = self.server.transport()
            async with Client(transport, cache=None,
                              client_info=Implementation(name="duragent", version=_version())) as client:
                self._client = client
                ready.set()
                await stop.wait()
        except asyncio.CancelledError as exc:
            self._error = exc
            raise
        except BaseException as exc:  # noqa: BLE001 - reported to whoever waits for the connection
            self._error = exc
            log.debug("%s: connection ended with an error", self.server.describe(), exc_info=True)
        finally:
            self._client = None
            ready.set()

    async def _guard(self, call: Awaitable[T], what: str, timeout: float) -> T:
        """``call``'s value; a server that is gone or silent becomes an MCPServerError."""
        from mcp import MCPError
        from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

        try:
            return await asyncio.wait_for(call, timeout)
        except TimeoutError:
            raise MCPServerError(f"{self.server.describe()} did not {what} within {timeout:g} s") from None
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                raise MCPServerError(f"{self.server.describe()} closed the connection "
                                     f"({self._redact(exc.message)})") from None
            if exc.code == REQUEST_TIMEOUT:
                raise MCPServerError(f"{self.server.describe()} did not {what} in time") from None
            raise
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise MCPServerError(f"{self.server.describe()} failed to {what}: {self._explain(exc)}") from None

    def _server_name(self, offered: str) -> str | None:
        if offered in self._names:
            return self._names[offered]
        prefix = self.server.prefix
        if not offered.startswith(prefix):
            return None
        name = offered[len(prefix):]
        return name if self.server.offered_name(name) == offered and self.server.offers(name) else None

    def _explain(self, error: BaseException | None) -> str:
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]
        if error is None:
            return "the connection ended"
        message = getattr(error, "message", None) or str(error)
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
        return self._redact(text)

    def _redact(self, text: str) -> str:
        """No secret of the toolset (header values, env values, the full URL) in a message."""
        for secret in self._secrets:
            for value in (secret, secret.split()[-1] if secret.strip() else ""):  # "Bearer TOKEN": TOKEN too
                if len(value) >= 4:
                    text = text.replace(value, "***")
        return text


async def _all_tools(client: Any) -> list[Any]:
    tools: list[Any] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("duragent")
    except PackageNotFoundError:
        return "0"


__all__ = ["MCPSession", "Refused"]
