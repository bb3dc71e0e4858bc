"""An agent whose tools come from an MCP server: a small filesystem server, written below with the
official MCP SDK and started by the agent itself over stdio (``python examples/mcp_files.py serve
ROOT``), lists, reads and writes the files of one folder. The agent summarizes the notes it finds
there into ``summary.md``.

Every tool call is a durable step: kill the worker halfway and resume it, and no file is read or
written twice. ``delete_file`` waits for a reviewer (the same review as a local tool's), and
``write_file`` is at-most-once. The server process runs only while the agent needs it: a
suspended execution holds no process.

Needs the MCP SDK: ``pip install 'duragent[mcp]'``. Runs on Claude or GPT when ANTHROPIC_API_KEY
or OPENAI_API_KEY is set (DURAGENT_DEMO_MODEL picks the model), otherwise on a scripted model that
needs no network. The folder is $DURAGENT_FILES (default .duragent/files), filled with three
sample notes when empty.

Run it:
    duragent run examples/mcp_files.py:mcp_files
    duragent run examples/mcp_files.py:mcp_files --input '{"task": "Summarize the notes into summary.md"}'
    cat .duragent/files/summary.md
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from duragent.agents import Agent
from duragent.agents.messages import ModelRequest, ModelResponse, ToolCall, ToolResult
from duragent.agents.models.scripted import FunctionModel, ScriptedModel
from duragent.durable import DurableContext, durable_function

SAMPLES = {
    "monday.md": "Standup: the importer is fixed. Ana reviews the billing change.",
    "tuesday.md": "Launch moved to Thursday. Ben writes the release notes.",
    "wednesday.md": "Billing change merged. Release notes drafted; Ana proofreads them.",
}

SYSTEM = ("You keep a folder of notes tidy. Use list_files to see the folder, read_file to read a file, "
          "and write_file to save your work. Never delete a file unless asked. Finish with one sentence "
          "saying what you did.")


def folder() -> Path:
    return Path(os.environ.get("DURAGENT_FILES", ".duragent/files")).resolve()


# -- the MCP server (a separate process: `python examples/mcp_files.py serve ROOT`) ------------------
def serve(root: Path) -> None:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server: MCPServer = MCPServer("files", instructions=f"The files of {root.name}/")

    def inside(path: str) -> Path:
        target = (root / path).resolve()
        if target != root and root not in target.parents:
            raise ToolError(f"{path!r} is outside the folder; use paths like 'notes.md'")
        return target

    @server.tool()
    def list_files(path: str = ".") -> list[str]:
        """List the files in a folder (relative paths, sorted)."""
        base = inside(path)
        return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file())

    @server.tool()
    def read_file(path: str) -> str:
        """Read a text file."""
        target = inside(path)
        if not target.is_file():
            raise ToolError(f"no file {path!r}; list_files shows what there is")
        return target.read_text()

    @server.tool()
    def write_file(path: str, content: str) -> str:
        """Create or replace a text file."""
        target = inside(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        return f"wrote {len(content)} characters to {path}"

    @server.tool()
    def delete_file(path: str) -> str:
        """Delete a file."""
        inside(path).unlink()
        return f"deleted {path}"

    server.run("stdio")


# -- the agent ---------------------------------------------------------------------------------------
def files_server(root: Path) -> Any:
    """The server above as a toolset: started by the agent, over stdio, when a run needs it."""
    from duragent.tools.mcp import MCPServerStdio

    return MCPServerStdio(sys.executable, [str(Path(__file__).resolve()), "serve", str(root)], name="files",
                          requires_approval=["delete_file"], at_most_once=["write_file", "delete_file"])


def seed_folder(root: str) -> list[str]:
    """Put the sample notes in an empty folder (a step: done once, whatever happens later)."""
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    if not any(path.iterdir()):
        for name, text in SAMPLES.items():
            (path / name).write_text(text + "\n")
    return sorted(p.name for p in path.iterdir())


def _offline_brain(request: ModelRequest) -> ModelResponse | str:
    """List the folder, read every note, write a summary of them, say so."""
    calls = {b.id: b for m in request.messages for b in m.content if isinstance(b, ToolCall)}
    results = [(calls[b.tool_call_id], b) for m in request.messages for b in m.content if isinstance(b, ToolResult)]
    if not results:
        return _call("list_files", {}, "Let me see what is in the folder.")
    listing = next(r for c, r in results if c.name == "list_files")
    notes = [name for name in _names(listing.content) if name.endswith(".md") and name != "summary.md"]
    read = {c.arguments["path"]: r.content for c, r in results if c.name == "read_file"}
    unread = [name for name in notes if name not in read]
    if unread:
        return _call("read_file", {"path": unread[0]})
    written = [r for c, r in results if c.name == "write_file"]
    if not written:
        lines = [f"- **{name.removesuffix('.md')}**: {read[name].strip()}" for name in notes]
        return _call("write_file", {"path": "summary.md", "content": "# Summary of the notes\n\n" + "\n".join(lines) + "\n"},
                     f"I read {len(notes)} notes; saving the summary.")
    if written[-1].is_error:
        return f"I could not save the summary: {written[-1].content}"
    return f"I summarized {len(notes)} notes into summary.md ({written[-1].content})."


def _call(name: str, arguments: dict[str, Any], text: str = "") -> ModelResponse:
    return ScriptedModel.tool_call(name, arguments, text=text)


def _names(listing: str) -> list[str]:
    import json

    try:
        names = json.loads(listing)
    except ValueError:
        return listing.split()
    if isinstance(names, dict):
        names = names.get("result", [])
    return [str(n) for n in names]


def demo_model() -> Any:
    if os.environ.get("ANTHROPIC_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "anthropic:claude-sonnet-4-6")
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "openai:gpt-4o-mini")
    return FunctionModel(_offline_brain, name="offline-librarian")


@durable_function
def mcp_files(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    task = str(event.get("task") or "Summarize the notes in the folder into summary.md, one line per note.")
    root = str(event.get("folder") or folder())
    ctx.step(seed_folder, root, name="seed folder")
    librarian = Agent(demo_model(), tools=[files_server(Path(root))], system=SYSTEM, name="librarian", max_turns=12)
    result = librarian.run(ctx, task)
    return {"reply": result.output, "turns": result.turns, "folder": root}


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "serve":
    serve(Path(sys.argv[2]).resolve())
