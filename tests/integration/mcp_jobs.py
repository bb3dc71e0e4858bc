"""Agent handlers with MCP toolsets that tests/integration/test_mcp_tools.py runs in worker
processes and checks with ``duragent replay-check`` (targets ``tests.integration.mcp_jobs:NAME``).

The server is tests/fakes/mcp_server.py over stdio, its state directory given in the event; the
model is a ``FunctionModel`` answering by turn (so a process that restarts mid-conversation gets
the same next answer), which can be told to stop inside a model call until the test kills it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from duragent.agents import Agent
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, ToolCall
from duragent.agents.models import FunctionModel
from duragent.durable import DurableContext, durable_function
from duragent.tools.mcp import MCPServerStdio

REPO = Path(__file__).resolve().parents[2]


def notes_server(state: str | Path, **options: Any) -> MCPServerStdio:
    """The test MCP server over stdio, as a toolset named ``notes`` with the prefix ``notes_``."""
    options.setdefault("name", "notes")
    options.setdefault("prefix", "notes_")
    options.setdefault("deny", ["hidden_admin"])
    return MCPServerStdio(sys.executable, ["-m", "tests.fakes.mcp_server", "stdio", str(state)], cwd=REPO, **options)


def tool_call(name: str, arguments: dict[str, Any], call_id: str, text: str = "") -> ModelResponse:
    content: list[Any] = [TextBlock(text=text)] if text else []
    return ModelResponse(content=[*content, ToolCall(id=call_id, name=name, arguments=arguments)],
                         stop_reason="tool_use", model="scripted:mcp")


def turn_of(request: ModelRequest) -> int:
    """1 for the first model call of a run, 2 for the next... (counted from the conversation)."""
    return 1 + sum(1 for message in request.messages if message.role == "assistant")


# -- killed between a finished tool call and the next model call -------------------------------------
def _write_then_finish(state: Path) -> FunctionModel:
    def answer(request: ModelRequest) -> ModelResponse | str:
        turn = turn_of(request)
        if turn == 1:
            return tool_call("notes_write_note", {"name": "plan", "text": "ship it"}, "w1")
        block = state / "block"
        if block.exists():  # the test kills the worker here: the tool call is done, this call is not
            (state / "model-2-entered").touch()
            deadline = time.time() + 60
            while block.exists() and time.time() < deadline:
                time.sleep(0.01)
        last = request.messages[-1].content[0]
        return f"done after: {getattr(last, 'content', '')}"

    return FunctionModel(answer, name="mcp")


@durable_function
def note_once_job(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    state = Path(event["state"])
    agent = Agent(_write_then_finish(state), tools=[notes_server(state)], name="noter")
    result = agent.run(ctx, "Write the plan down.")
    return {"output": result.output, "turns": result.turns}


# -- waits for a reviewer, then carries on (the server may change meanwhile) --------------------------
def _mail_then_finish() -> FunctionModel:
    def answer(request: ModelRequest) -> ModelResponse | str:
        if turn_of(request) == 1:
            return tool_call("notes_send_mail", {"to": "ops@example.com", "body": "deploy done"}, "m1")
        offered = sorted(spec.name for spec in request.tools)
        said = getattr(request.messages[-1].content[0], "content", "")
        return f"finished ({said}); offered now: {', '.join(offered)}"

    return FunctionModel(answer, name="mcp")


@durable_function
def mail_job(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    agent = Agent(_mail_then_finish(), tools=[notes_server(event["state"], requires_approval=["send_mail"])],
                  name="mailer", on_prompt_change=event.get("on_change", "fail"))
    result = agent.run(ctx, "Tell ops the deploy is done.")
    return {"output": result.output, "warnings": result.warnings}


# -- a question for `duragent mcp` (tests/integration/test_mcp_server.py) -------------------------------
@durable_function
def trip_job(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    """Plans a trip: asks a person how many nights, then books them."""
    from duragent.agents import ask_human

    nights = ask_human(ctx, f"How many nights in {event.get('city', 'Oslo')}?", int)
    return {"city": event.get("city", "Oslo"), "nights": nights}


# -- killed inside an at-most-once call -------------------------------------------------------------
def _slow_then_report() -> FunctionModel:
    def answer(request: ModelRequest) -> ModelResponse | str:
        if turn_of(request) == 1:
            return tool_call("notes_slow", {"seconds": 5}, "s1")
        result = request.messages[-1].content[0]
        return f"{'error' if getattr(result, 'is_error', False) else 'ok'}: {getattr(result, 'content', '')}"

    return FunctionModel(answer, name="mcp")


@durable_function
def slow_once_job(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    agent = Agent(_slow_then_report(), tools=[notes_server(event["state"], at_most_once=["slow"])], name="careful")
    return {"output": agent.run(ctx, "Do the slow thing once.").output}
