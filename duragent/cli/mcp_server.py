"""``mcp``: duragent as an MCP server, so another agent or an MCP-capable desktop client can run
and supervise durable jobs over the operator API (``duragent.ops``).

    duragent mcp examples/approval_agent.py:approval_agent            # stdio (a client starts it)
    duragent mcp --http --port 8931 examples/approval_agent.py:approval_agent   # streamable HTTP

Its tools start an execution of one of the functions named at start (TARGETs), show an
execution's status and result, list what waits for a person (reviews and questions), and approve,
reject or answer it: the same checks as ``duragent approve`` (the review protocol), so an answer
that does not fit is refused with nothing recorded. A worker runs the store's executions in the
background (``--no-worker`` when a ``duragent worker`` already does).

Over HTTP it listens on loopback only and every request needs ``Authorization: Bearer TOKEN``
(``$DURAGENT_MCP_TOKEN``, or one made up at start and printed); requests naming another host are
refused (DNS rebinding).
"""

from __future__ import annotations

import argparse
import hmac
import inspect
import ipaddress
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from duragent.durable.errors import DurableError, HandlerNotFoundError
from duragent.durable.local import LocalRuntime
from duragent.durable.model import ExecutionStatus
from duragent.durable.registry import function_name
from duragent.ops import LocalOperator, values

from .common import EXIT_OK, CliError
from .running import absolute_target, load_target, open_runtime

MAX_WAIT = 300.0
"""The longest a tool waits for an execution to finish or pause (seconds)."""

INSTRUCTIONS = (
    "duragent runs durable jobs (functions and AI agents that survive crashes and pause for people). "
    "list_functions shows what you may start; start_execution starts one (wait_seconds waits for it to "
    "finish or pause); get_execution shows status, result and what it waits for; list_pending lists the "
    "reviews and questions that wait for an answer; approve, reject and answer answer them by callback_id.")


class Offered:
    """The functions this server may start: by name, or by the TARGET given at start."""

    def __init__(self, targets: list[str]) -> None:
        self.functions: dict[str, tuple[Callable[..., Any], str]] = {}
        self.targets: dict[str, str] = {}
        for target in targets:
            fn = load_target(target)
            name = function_name(fn)
            if name in self.functions and self.functions[name][1] != absolute_target(target):
                raise CliError(f"two TARGETs are functions named {name!r}; give one of them another name with "
                               "@durable_function(name=...)")
            self.functions[name] = (fn, absolute_target(target))
            self.targets[target] = name

    def find(self, function: str) -> tuple[Callable[..., Any], str]:
        name = self.targets.get(function, function)
        if name not in self.functions:
            offered = ", ".join(sorted(self.functions)) or "none (start duragent mcp with TARGETs)"
            raise HandlerNotFoundError(f"function {function!r} is not offered by this server; offered: {offered}")
        return self.functions[name]

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": name, "target": target, "description": _description(fn)}
                for name, (fn, target) in sorted(self.functions.items())]


def _description(fn: Callable[..., Any]) -> str:
    """The function's docstring, else its module's first paragraph (an example's docstring says what it does)."""
    text = inspect.getdoc(getattr(fn, "__wrapped__", fn))
    if not text:
        module = sys.modules.get(getattr(getattr(fn, "__wrapped__", fn), "__module__", ""), None)
        text = (inspect.getdoc(module) or "") if module is not None else ""
        text = text.split("\n\n", 1)[0]
    return " ".join(text.split())


def build_server(runtime: LocalRuntime, offered: Offered) -> Any:
    """The MCP server: its tools over a ``LocalOperator`` on ``runtime``."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    ops = LocalOperator(runtime)
    server: Any = MCPServer("duragent", instructions=INSTRUCTIONS)

    def refuse(exc: Exception) -> ToolError:
        return ToolError(" ".join(str(exc).split()))

    def pending_of(execution_id: str) -> list[dict[str, Any]]:
        return [item.to_dict() for item in ops.pending(execution_id=execution_id, limit=100).items]

    def settle(execution_id: str, wait_seconds: float) -> dict[str, Any]:
        """The execution once it has finished or paused, or ``wait_seconds`` have passed."""
        deadline = time.monotonic() + min(max(float(wait_seconds), 0.0), MAX_WAIT)
        while True:
            row = runtime.service.execution(execution_id)
            # runnable: waiting for a worker; invocation_id: a worker is running it now
            busy = row["status"] == ExecutionStatus.RUNNING.value and (row["runnable"] or row["invocation_id"])
            if not busy or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        execution = ops.get(execution_id).to_dict()
        execution["waiting_for"] = pending_of(execution_id) if execution["status"] == "RUNNING" else []
        return execution

    @server.tool()
    def list_functions() -> list[dict[str, Any]]:
        """The durable functions this server may start: name, target and what each does."""
        return offered.describe()

    @server.tool()
    def start_execution(function: str, input: Any = None, execution_id: str | None = None,
                        wait_seconds: float = 0.0) -> dict[str, Any]:
        """Start an execution of a function from list_functions. `input` is its JSON event;
        `execution_id` makes the start idempotent (the same id and input return the same execution);
        `wait_seconds` (up to 300) waits for it to finish or pause for a person."""
        try:
            fn, target = offered.find(function)
            if execution_id is not None:
                values.execution_id(execution_id)
            values.check_value(input, "the input")
            started = runtime.start(fn, {} if input is None else input, execution_id, target=target)
            return settle(started, wait_seconds)
        except (DurableError, ValueError) as exc:
            raise refuse(exc) from None

    @server.tool()
    def get_execution(execution_id: str, wait_seconds: float = 0.0) -> dict[str, Any]:
        """An execution's status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, STOPPED), result or error,
        and the reviews and questions it waits for. `wait_seconds` (up to 300) waits for it to
        finish or pause first."""
        try:
            values.execution_id(execution_id)
            return settle(execution_id, wait_seconds)
        except (DurableError, ValueError) as exc:
            raise refuse(exc) from None

    @server.tool()
    def list_executions(status: str | None = None, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        """Executions, newest first, `limit` per page from `cursor` (a page's next_cursor), with a total."""
        try:
            return ops.list_executions(status=status, limit=limit, cursor=cursor).to_dict("executions")
        except (DurableError, ValueError) as exc:
            raise refuse(exc) from None

    @server.tool()
    def list_pending(execution_id: str | None = None, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        """What waits for a person, oldest first: tool approvals (tool, arguments and their JSON
        schema), questions (and the answer's schema), budget reviews; each with its callback_id."""
        try:
            return ops.pending(execution_id=execution_id, limit=limit, cursor=cursor).to_dict("pending")
        except (DurableError, ValueError) as exc:
            raise refuse(exc) from None

    @server.tool()
    def approve(callback_id: str, edits: dict[str, Any] | None = None, reviewer: str | None = None) -> dict[str, Any]:
        """Approve a tool call or budget review. `edits` changes only the arguments it names (it must
        fit the tool's schema once merged); the model is told what changed."""
        try:
            return ops.approve(callback_id, edits=edits or None, reviewer=reviewer).to_dict()
        except (DurableError, ValueError) as exc:
            raise refuse(exc) from None

    @server.tool()
    def reject(callback_id: str, feedback: str, reviewer: str | None = None) -> dict[str, Any]:
        """Reject a tool call or budget review; the tool never runs and the model reads `feedback`."""
        try:
            return ops.reject(callback_id, feedback, reviewer=reviewer).to_dict()
        except (DurableError, ValueError) as exc:
            raise refuse(exc) from None

    @server.tool()
    def answer(callback_id: str, value: Any) -> dict[str, Any]:
        """Answer a question (`value` must fit its answer schema) or complete a plain callback."""
        try:
            return ops.answer(callback_id, value).to_dict()
        except (DurableError, ValueError) as exc:
            raise refuse(exc) from None

    @server.tool()
    def stop_execution(execution_id: str) -> dict[str, Any]:
        """Stop a running execution for good."""
        try:
            return ops.stop(execution_id).to_dict()
        except (DurableError, ValueError) as exc:
            raise refuse(exc) from None

    return server


# -- serving --------------------------------------------------------------------------------------
def _http_app(server: Any, token: str, port: int) -> Any:
    """The streamable HTTP app behind a bearer-token check and the SDK's Host/Origin check."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"]
    security = TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                         allowed_origins=[f"http://{h}" for h in hosts])
    app = server.streamable_http_app(transport_security=security)
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            sent = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(sent, expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body",
                            "body": b"send Authorization: Bearer TOKEN (the token duragent mcp printed)"})
                return
        await app(scope, receive, send)

    return guarded


def _serve_http(server: Any, host: str, port: int, token: str, token_from_env: bool) -> None:
    import anyio
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise CliError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass --port 0 to pick a "
                       "free port") from None
    sock.listen(64)
    bound = sock.getsockname()[1]
    web = uvicorn.Server(uvicorn.Config(_http_app(server, token, bound), log_level="warning", lifespan="on"))
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"duragent mcp: streamable HTTP on http://{shown}:{bound}/mcp", flush=True)
    shown_token = "the one in $DURAGENT_MCP_TOKEN" if token_from_env else token
    print(f"token: {shown_token}  (send it as 'Authorization: Bearer TOKEN')", flush=True)
    anyio.run(lambda: web.serve(sockets=[sock]))


def _loopback(host: str) -> str:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if host != "localhost" and (address is None or not address.is_loopback):
        raise CliError(f"--host {host!r} is not a loopback address; duragent mcp serves 127.0.0.1 or ::1 only")
    return "127.0.0.1" if host == "localhost" else str(address)


def cmd_mcp(args: argparse.Namespace) -> int:
    """Serve the MCP tools until the client disconnects (stdio) or Ctrl-C (HTTP)."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise CliError("duragent mcp needs the MCP SDK; pip install 'duragent[mcp]'") from None
    host = _loopback(args.host)
    if args.http and not 0 <= args.port <= 65535:
        raise CliError(f"--port {args.port} is not a port; use 1-65535, or 0 for a free one")
    token_from_env = bool(os.environ.get("DURAGENT_MCP_TOKEN"))
    token = os.environ.get("DURAGENT_MCP_TOKEN") or secrets.token_urlsafe(32)
    if len(token) < 16:
        raise CliError("$DURAGENT_MCP_TOKEN is shorter than 16 characters; use a long random token")
    offered = Offered(args.targets)
    with open_runtime(args) as runtime:
        server = build_server(runtime, offered)
        stop = threading.Event()
        worker = None if args.no_worker else threading.Thread(target=runtime.worker, args=(stop,), daemon=True,
                                                               name="duragent-mcp-worker")
        if worker is not None:
            worker.start()
        try:
            if args.http:
                _serve_http(server, host, args.port, token, token_from_env)
            else:
                print(f"duragent mcp: serving {len(offered.functions)} function(s) over stdio", file=sys.stderr)
                server.run("stdio")
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
            runtime.wake()
            if worker is not None:
                worker.join(timeout=30)
    return EXIT_OK


def add_parser(command: Callable[..., argparse.ArgumentParser]) -> None:
    p = command("mcp", cmd_mcp, "serve duragent's operator tools over MCP (stdio, or --http on loopback with a "
                "token): start executions of the TARGETs, show them, answer their reviews and questions")
    p.add_argument("targets", nargs="*", metavar="TARGET",
                   help="functions the MCP client may start (path/to/file.py:func or package.module:func)")
    p.add_argument("--http", action="store_true", help="serve streamable HTTP on loopback instead of stdio")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (127.0.0.1 or ::1)")
    p.add_argument("--port", type=int, default=0, help="port for --http (0 picks a free one; it is printed)")
    p.add_argument("--no-worker", action="store_true",
                   help="do not run executions here (a `duragent worker` on the same store does)")
