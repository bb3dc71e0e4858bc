"""Which MCP server to use and which of its tools to offer: ``MCPServerStdio`` (a command) and
``MCPServerHTTP`` (a streamable HTTP endpoint). Both are toolsets: pass them in
``Agent(tools=[...])`` beside plain tools.

Nothing here connects: a session per agent run and invocation does (session.py), when the run
first needs the server. Secrets given here (``env``, ``headers``) are used to connect and never
written anywhere: not in the journal, not in a repr, not in an error message.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from duragent.agents.messages import ToolSpec
from duragent.agents.toolsets import Toolset
from duragent.durable import RetryPolicy, UsageError

from .session import MCPSession
from .tool import MCPTool

_INVALID = re.compile(r"[^A-Za-z0-9_-]")

Headers = Mapping[str, str] | Callable[[], Mapping[str, str]]


class MCPToolset(Toolset):
    """The tools of one MCP server, as an agent is to see them.

    Args:
        name: names the server in the journal and in messages (default: from the command or URL);
            unique per agent.
        prefix: put before every tool name the model sees (``"files_"``), to avoid clashes.
        allow: offer only these tools (server names); None offers all.
        deny: never offer these tools (server names).
        requires_approval: True, or the tools (server names) a reviewer must approve call by call,
            through the same review protocol as ``@tool(requires_approval=True)``.
        at_most_once: True, or the tools (server names) never called again after a crash may have
            interrupted a call (their side effects must not happen twice). Default: at least once.
        timeout: seconds one tool call may take before it counts as the server not answering.
        connect_timeout: seconds to connect (start the process, handshake) before the server counts as down.
        retry: durable retry while the server is down or does not answer, for calls and for the
            run's first listing; None (default): a failed call is an error result the model sees,
            and a server down when the run first lists it fails the run.
    """

    def __init__(self, *, name: str, prefix: str = "", allow: Collection[str] | None = None,
                 deny: Collection[str] = (), requires_approval: bool | Collection[str] = False,
                 at_most_once: bool | Collection[str] = False, timeout: float = 120.0,
                 connect_timeout: float = 30.0, retry: RetryPolicy | None = None) -> None:
        if importlib.util.find_spec("mcp") is None:
            raise UsageError("MCP toolsets need the MCP SDK: pip install 'duragent[mcp]'")
        if not name:
            raise UsageError("an MCP toolset needs a non-empty name=")
        if prefix and _INVALID.search(prefix):
            raise UsageError(f"prefix {prefix!r} is invalid: use characters from A-Z a-z 0-9 _ -")
        for label, value in (("timeout", timeout), ("connect_timeout", connect_timeout)):
            if value <= 0:
                raise UsageError(f"{label} must be positive seconds, got {value!r}")
        for label, names in (("allow", allow), ("deny", deny), ("requires_approval", requires_approval),
                             ("at_most_once", at_most_once)):
            if isinstance(names, str):
                raise UsageError(f"{label}= takes a collection of tool names, got the string {names!r}; "
                                 f"write {label}=[{names!r}]")
        self.name = name
        self.prefix = prefix
        self.allow = None if allow is None else frozenset(allow)
        self.deny = frozenset(deny)
        self.requires_approval = requires_approval if isinstance(requires_approval, bool) \
            else frozenset(requires_approval)
        self.at_most_once = at_most_once if isinstance(at_most_once, bool) else frozenset(at_most_once)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retry = retry

    # -- what is offered -----------------------------------------------------------------------
    def offers(self, tool_name: str) -> bool:
        """Whether the server's tool ``tool_name`` is offered to the model (allow/deny lists)."""
        return (self.allow is None or tool_name in self.allow) and tool_name not in self.deny

    def offered_name(self, tool_name: str) -> str:
        """The name the model calls a server tool by: prefixed, and fit for every provider."""
        return _INVALID.sub("_", f"{self.prefix}{tool_name}")[:64]

    def approval_required(self, offered: str) -> bool:
        """Whether calls of the tool offered as ``offered`` wait for a reviewer."""
        return self._flag(self.requires_approval, offered)

    def call_at_most_once(self, offered: str) -> bool:
        """Whether the tool offered as ``offered`` is never called again after an interrupted call."""
        return self._flag(self.at_most_once, offered)

    def _flag(self, setting: bool | frozenset[str], offered: str) -> bool:
        return setting if isinstance(setting, bool) else any(self.offered_name(n) == offered for n in setting)

    # -- Toolset -------------------------------------------------------------------------------
    def session(self) -> MCPSession:
        return MCPSession(self)

    def tool(self, spec: ToolSpec, session: Callable[[], Any]) -> MCPTool:
        return MCPTool(self, spec, session)

    # -- how to connect (session.py calls these) -------------------------------------------------
    def transport(self) -> tuple[Any, list[str]]:
        """The SDK's view of the server (StdioServerParameters, or a transport context manager),
        and the secret values it carries, which must never appear in a message."""
        raise NotImplementedError

    def describe(self) -> str:
        """The server in messages and logs (no secrets)."""
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class MCPServerStdio(MCPToolset):
    """An MCP server run as a subprocess speaking over stdin/stdout: ``MCPServerStdio("python",
    ["files_server.py"])`` or ``MCPServerStdio("npx", ["-y", "@modelcontextprotocol/server-filesystem", "/data"])``.

    The process is started when a run first needs it in an invocation and stopped when the run
    stops there. ``env`` is added to the SDK's default environment (PATH, HOME and the like; not
    the whole environment of this process), so pass what the server needs, API keys included:
    they reach the process only.
    """

    def __init__(self, command: str, args: Sequence[str] = (), *, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, name: str | None = None, **options: Any) -> None:
        if not command:
            raise UsageError("MCPServerStdio needs the command that starts the server")
        if isinstance(args, str):
            raise UsageError(f"args= takes a list of arguments, got the string {args!r}")
        super().__init__(name=name or _command_name(command, args), **options)
        self.command = command
        self.args = list(args)
        self._env = dict(env) if env is not None else None
        self.cwd = cwd

    def transport(self) -> tuple[Any, list[str]]:
        from mcp import StdioServerParameters

        parameters = StdioServerParameters(command=self.command, args=self.args, env=self._env,
                                           cwd=str(self.cwd) if self.cwd is not None else None)
        return parameters, list((self._env or {}).values())

    def describe(self) -> str:
        return f"MCP server {self.name!r} ({Path(self.command).name})"


class MCPServerHTTP(MCPToolset):
    """An MCP server over streamable HTTP: ``MCPServerHTTP("https://host/mcp", headers={"Authorization":
    f"Bearer {token}"})``. ``headers`` may be a function returning them, called at each connection
    (a token read when needed, never kept)."""

    def __init__(self, url: str, *, headers: Headers | None = None, name: str | None = None,
                 **options: Any) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"MCPServerHTTP needs an http(s) URL like https://host/mcp, got {_public_url(url)!r}")
        super().__init__(name=name or parts.hostname, **options)
        self.url = url
        self._headers = headers

    def headers(self) -> dict[str, str]:
        headers = self._headers() if callable(self._headers) else self._headers
        return dict(headers or {})

    def transport(self) -> tuple[Any, list[str]]:
        headers = self.headers()
        parts = urlsplit(self.url)
        secrets = [*headers.values(), *(value for _, value in parse_qsl(parts.query)), parts.password or ""]
        return _http_transport(self.url, headers, self.connect_timeout, self.timeout), secrets

    def describe(self) -> str:
        return f"MCP server {self.name!r} ({_public_url(self.url)})"


def _http_transport(url: str, headers: dict[str, str], connect_timeout: float,
                    timeout: float) -> AbstractAsyncContextManager[Any]:
    from contextlib import asynccontextmanager

    import httpx2  # the MCP SDK's HTTP client
    from mcp.client.streamable_http import streamable_http_client

    @asynccontextmanager
    async def transport() -> Any:
        limits = httpx2.Timeout(connect_timeout, read=max(timeout, connect_timeout))
        async with httpx2.AsyncClient(headers=headers, timeout=limits) as client:
            async with streamable_http_client(url, http_client=client) as streams:
                yield streams

    return transport()


def _command_name(command: str, args: Sequence[str]) -> str:
    """``python files_server.py`` -> ``files_server``; ``python -m pkg.server`` -> ``server``;
    ``npx -y @scope/server-x /data`` -> ``server-x``; ``my-server`` -> ``my-server``."""
    for arg in args:
        if arg.startswith("-"):
            continue
        last = arg.rstrip("/").rsplit("/", 1)[-1]
        if "/" not in arg and "." in last and not last.endswith((".py", ".js", ".mjs", ".ts")):
            return last.rsplit(".", 1)[-1] or Path(command).name  # a module path: pkg.server
        return Path(last).stem or Path(command).name
    return Path(command).name


def _public_url(url: str) -> str:
    """The URL without credentials, query or fragment (tokens hide there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


__all__ = ["MCPServerHTTP", "MCPServerStdio", "MCPToolset"]
