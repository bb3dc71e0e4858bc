"""Sessions, handoffs and sub-agents that tests/integration/test_conversations_http.py runs in real
processes (imported as ``tests.integration.conversation_jobs:NAME``, the target stored with each
execution). Models are real provider SDKs pointed at the fake provider server through their own
environment variables; ``CONVERSATION_MODEL`` picks the provider ("anthropic:..." or "openai:...").
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from duragent.agents import Agent, Budget, CompactionPolicy, conversation
from duragent.durable import DurableContext, durable_function
from duragent.tools import tool

MODEL = os.environ.get("CONVERSATION_MODEL", "anthropic:claude-test")
OTHER_MODEL = os.environ.get("CONVERSATION_OTHER_MODEL", "openai:gpt-4o-test")  # priced like gpt-4o


def _mark(directory: str, what: str) -> None:
    (Path(directory) / f"{what}.{os.getpid()}").write_text(str(time.time()))


@tool
def file_report(directory: str, title: str) -> str:
    """File a report; it takes a while.

    Args:
        directory: where the report goes.
        title: the report's title.
    """
    _mark(directory, "report-entered")  # the test kills the process once it sees this
    deadline = time.time() + 60
    while not (Path(directory) / "release").exists():
        if time.time() > deadline:
            raise TimeoutError("nobody released the report")
        time.sleep(0.01)
    _mark(directory, "report-done")
    return f"report {title!r} filed"


assistant = Agent(MODEL, name="assistant", system="You are a helpful assistant.", tools=[file_report])
assistant_chat = conversation(assistant, name="assistant_chat")

# -- a handoff across providers ---------------------------------------------------------------------
billing = Agent(OTHER_MODEL, name="billing", system="You handle refunds.", description="Refunds and invoices")
triage = Agent(MODEL, name="triage", system="Route the customer.", handoffs=[billing])
desk = conversation(triage, name="desk")

# -- compaction --------------------------------------------------------------------------------------
keeper = Agent(MODEL, name="keeper", system="Remember what the user says.")
small_window = conversation(keeper, name="small_window",
                            compaction=CompactionPolicy(context_window=1_000, threshold=0.8, keep_turns=1))

# -- a parent budget and a sub-agent ------------------------------------------------------------------
researcher = Agent(OTHER_MODEL, name="researcher", system="Research thoroughly.", description="Finds facts")
lead = Agent(MODEL, name="lead", system="Delegate research.", tools=[researcher.as_tool()],
             budget=Budget(max_usd=0.5))


@durable_function
def research_job(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    result = lead.run(ctx, event["question"])
    return {"output": result.output, "paid": result.ledger.paid_calls, "cost": round(result.ledger.total_cost, 6)}


# -- a job to follow ----------------------------------------------------------------------------------
@tool
def wait_for_release(directory: str) -> str:
    """Wait until the test says so.

    Args:
        directory: where the release file appears.
    """
    _mark(directory, "waiting")
    deadline = time.time() + 60
    while not (Path(directory) / "release").exists():
        if time.time() > deadline:
            raise TimeoutError("never released")
        time.sleep(0.01)
    return "released"


narrator = Agent(MODEL, name="narrator", tools=[wait_for_release], system="Narrate.")


@durable_function
def followed_job(event: dict[str, Any], ctx: DurableContext) -> str:
    for i in range(3):
        ctx.step(lambda i=i: i, name=f"warm-up {i}")
    return str(narrator.run(ctx, f"Tell the story, then wait in {event['directory']!r}.").output)


# -- an agent named directly as a chat target (duragent chat module:careful) ----------------------------
@tool(requires_approval=True)
def send_refund(order: str, amount: int) -> str:
    """Send a refund.

    Args:
        order: the order id.
        amount: dollars.
    """
    return f"refunded {amount} on {order}"


careful = Agent(MODEL, name="careful", tools=[send_refund], system="Refund when asked.")
