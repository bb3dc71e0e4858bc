"""Agent handlers that tests/integration/test_agent_durability.py runs in real worker processes
(imported there as ``tests.integration.agent_jobs:NAME``, the target stored with each execution).

The model is a real provider SDK ("anthropic:..." or "openai:...") pointed at the fake provider
server through the SDK's own environment variables; the key is whatever the test put there.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from duragent.agents import Agent
from duragent.durable import AsyncDurableContext, DurableContext, MapConfig, durable_function
from duragent.tools import tool


def _mark(directory: str, what: str) -> None:
    path = Path(directory) / f"{what}.{os.getpid()}"
    path.write_text(str(time.time()))


@tool
def take_note(directory: str, text: str) -> str:
    """Write a note down.

    Args:
        directory: where notes go.
        text: the note.
    """
    _mark(directory, "note")
    return f"noted: {text}"


@tool
def slow_report(directory: str, title: str) -> str:
    """Produce a report; it takes a while.

    Args:
        directory: where the report goes.
        title: the report's title.
    """
    _mark(directory, "report-entered")  # the test kills the worker once it sees this
    release = Path(directory) / "release"
    deadline = time.time() + 60
    while not release.exists():
        if time.time() > deadline:
            raise TimeoutError("nobody released the report")
        time.sleep(0.01)
    _mark(directory, "report-done")
    return f"report {title!r} written"


@durable_function
def paid_once_job(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    agent = Agent(event["model"], tools=[take_note, slow_report], name="reporter",
                  system="You write reports. Take a note, then write the report, then say you are done.")
    result = agent.run(ctx, f"Write the quarterly report. Use directory {event['directory']!r}.")
    return {"output": result.output, "turns": result.turns}


# -- async agents (tests/integration/test_async_agents_http.py) ---------------------------------------
@tool
async def note_async(directory: str, text: str) -> str:
    """Write a note down.

    Args:
        directory: where notes go.
        text: the note.
    """
    _mark(directory, f"note-{text}")
    return f"noted: {text}"


@tool
async def report_async(directory: str, title: str) -> str:
    """Produce a report; it waits (without blocking the loop) until the test releases it.

    Args:
        directory: where the report goes.
        title: the report's title.
    """
    _mark(directory, f"report-entered-{title}")  # the test kills the worker once it sees these
    release = Path(directory) / "release"
    deadline = time.time() + 60
    while not release.exists():
        if time.time() > deadline:
            raise TimeoutError("nobody released the report")
        await asyncio.sleep(0.01)
    _mark(directory, f"report-done-{title}")
    return f"report {title!r} written"


@durable_function
async def async_team_job(event: dict[str, Any], ctx: AsyncDurableContext) -> dict[str, Any]:
    """One async agent per topic, all at once (a map of agents, each a tool loop)."""
    agent = Agent(event["model"], tools=[note_async, report_async], name="writer",
                  system="Take a note, then write the report, then say you are done.")

    async def write(child: AsyncDurableContext, topic: str, index: int, items: list[str]) -> str:
        result = await agent.run(child, f"Topic: {topic}. Use directory {event['directory']!r}.")
        return str(result.output)

    batch = await ctx.map(event["topics"], write, name="team", config=MapConfig(item_namer=lambda t, i: t))
    batch.throw_if_error()
    return {"outputs": batch.get_results()}
