"""A real MCP server for the tests, written with the official SDK (``MCPServer``), run as its own
process over stdio or streamable HTTP on 127.0.0.1:

    python -m tests.fakes.mcp_server stdio DIR
    python -m tests.fakes.mcp_server http DIR TOKEN [PORT]  # writes the port it listens on to DIR/port

DIR is the server's state: every call appends one JSON line to ``DIR/calls.jsonl`` (so tests
count calls on the server side, across processes), every process start one to
``DIR/started.jsonl`` (with the ``NOTES_SECRET`` it was given), ``DIR/notes/`` is a small file store, and
``DIR/variant`` (if present) changes the tools it offers (a server upgraded while an execution
waited). Over HTTP every request must carry ``Authorization: Bearer TOKEN``; each request's
headers are appended to ``DIR/headers.jsonl`` (names only, and whether the token matched).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel


class FileInfo(BaseModel):
    name: str
    size: int


def build(state: Path) -> MCPServer:
    server: MCPServer = MCPServer("notes")
    notes = state / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    variant = (state / "variant").read_text().strip() if (state / "variant").exists() else ""

    def log(tool: str, **arguments: Any) -> None:
        with (state / "calls.jsonl").open("a") as out:
            out.write(json.dumps({"tool": tool, "arguments": arguments, "pid": os.getpid(), "at": time.time()}) + "\n")

    @server.tool()
    def write_note(name: str, text: str) -> str:
        """Write a note (replaces a note of the same name)."""
        log("write_note", name=name, text=text)
        (notes / name).write_text(text)
        return f"wrote {len(text)} characters to {name}"

    @server.tool()
    def read_note(name: str) -> str:
        """Read a note."""
        log("read_note", name=name)
        path = notes / name
        if not path.exists():
            raise ToolError(f"no note named {name}")  # an isError result the model reads
        return path.read_text()

    @server.tool()
    def stat_note(name: str) -> FileInfo:
        """Size of a note, as structured content."""
        log("stat_note", name=name)
        return FileInfo(name=name, size=len((notes / name).read_text()))

    @server.tool()
    def send_mail(to: str, body: str) -> str:
        """Send an email (a side effect that must happen once)."""
        log("send_mail", to=to, body=body)
        return f"mail sent to {to}"

    @server.tool()
    def slow(seconds: float) -> str:
        """Take a while to answer."""
        log("slow", seconds=seconds)
        time.sleep(seconds)
        return "finally"

    @server.tool()
    def hidden_admin() -> str:
        """A tool the tests deny."""
        log("hidden_admin")
        return "should never be called"

    if variant == "archive":  # the upgraded server: one more tool
        @server.tool()
        def archive_note(name: str) -> str:
            """Archive a note."""
            log("archive_note", name=name)
            return f"archived {name}"

    return server


def serve_http(server: MCPServer, state: Path, token: str, port: int = 0) -> None:
    import anyio
    import uvicorn

    app = server.streamable_http_app()
    expected = f"Bearer {token}".encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            with (state / "headers.jsonl").open("a") as out:
                out.write(json.dumps({"names": sorted(k.decode() for k in headers),
                                      "token_ok": headers.get(b"authorization") == expected}) + "\n")
            if headers.get(b"authorization") != expected:
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain")]})
                await send({"type": "http.response.body", "body": b"missing or wrong bearer token"})
                return
        await app(scope, receive, send)

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # back up on the same port at once
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    port = sock.getsockname()[1]
    config = uvicorn.Config(guarded, log_level="warning", lifespan="on")
    web = uvicorn.Server(config)

    async def main() -> None:
        ready = state / "port.tmp"
        ready.write_text(str(port))
        ready.rename(state / "port")  # the tests wait for this file
        await web.serve(sockets=[sock])

    anyio.run(main)


def main(argv: list[str]) -> None:
    mode, state = argv[0], Path(argv[1])
    state.mkdir(parents=True, exist_ok=True)
    with (state / "started.jsonl").open("a") as out:  # every process start, for the tests to count
        out.write(json.dumps({"pid": os.getpid(), "mode": mode,
                              "secret_env": os.environ.get("NOTES_SECRET", "")}) + "\n")
    server = build(state)
    if mode == "stdio":
        server.run("stdio")
    else:
        serve_http(server, state, argv[2], int(argv[3]) if len(argv) > 3 else 0)


if __name__ == "__main__":
    main(sys.argv[1:])
