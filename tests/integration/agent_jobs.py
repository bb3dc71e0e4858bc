"""Agent handlers that tests/integration/test_agent_durability.py runs in real worker processes
(imported there as ``tests.integration.agent_jobs:NAME``, the target stored with each execution).

The model is a real provider SDK ("anthropic:..." or "openai:...") pointed at the fake provider
server through the SDK's own environment variables; the key is whatever the test put there.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from duragent.agents import Agent
from duragent.durable import DurableContext, durable_function
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
