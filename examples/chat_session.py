"""A support chat as a durable session: a triage agent answers, hands refunds over to a billing
agent (who keeps the conversation from then on), and older turns are summarized once the
conversation nears the model's window. Between messages the session is a few rows in SQLite: close
the terminal, kill the process, come back tomorrow; the conversation goes on.

Runs on Claude or GPT when ANTHROPIC_API_KEY or OPENAI_API_KEY is set (DURAGENT_DEMO_MODEL picks
the model), otherwise on scripted models that need no network.

Chat with it:
    duragent chat examples/chat_session.py:support          # prints the session id; /exit to leave
    duragent chat examples/chat_session.py:support --session <ID>   # the conversation so far, then go on
    duragent follow <ID>                                     # from another terminal: its events, live

Or run this file: `python examples/chat_session.py` holds a three-message conversation in-process.
"""

from __future__ import annotations

import os
import re
from typing import Any

from duragent.agents import Agent, CompactionPolicy, Session, conversation
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, ToolResult
from duragent.agents.models.scripted import FunctionModel, ScriptedModel
from duragent.tools import tool

REFUNDS: dict[str, int] = {}


@tool(at_most_once=True)
def refund(order: str, amount: int) -> str:
    """Refund an order.

    Args:
        order: the order id, e.g. "A-17".
        amount: dollars to refund.
    """
    REFUNDS[order] = REFUNDS.get(order, 0) + amount
    return f"refunded ${amount} on order {order}"


def _this_turn(request: ModelRequest) -> tuple[str, list[ToolResult]]:
    """What the customer said last, and the tool results since."""
    start = max(i for i, m in enumerate(request.messages)
                if m.role == "user" and any(isinstance(b, TextBlock) for b in m.content))
    said = " ".join(b.text for b in request.messages[start].content if isinstance(b, TextBlock))
    results = [b for m in request.messages[start:] for b in m.content if isinstance(b, ToolResult)]
    return said, results


def _triage_brain(request: ModelRequest) -> ModelResponse | str:
    said, _ = _this_turn(request)
    if re.search(r"refund|money back", said, re.IGNORECASE):
        return ScriptedModel.tool_call("transfer_to_billing", {}, text="Let me get billing for you.")
    turns = sum(1 for m in request.messages if m.role == "user" and any(isinstance(b, TextBlock) for b in m.content))
    return f"Happy to help (message {turns} of our chat). Ask me about an order, or for a refund."


def _billing_brain(request: ModelRequest) -> ModelResponse | str:
    said, results = _this_turn(request)
    done = [r for r in results if r.content.startswith("refunded")]
    if done:
        return f"Done: {done[-1].content}. Anything else?"
    order = re.search(r"\b([A-Z]-\d+)\b", said)
    if order:
        return ScriptedModel.tool_call("refund", {"order": order[1], "amount": 40})
    return "You're welcome!" if re.search(r"thank", said, re.IGNORECASE) else \
        "Which order should I refund? (an id like A-17)"


def _model(offline: Any) -> Any:
    if os.environ.get("ANTHROPIC_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "anthropic:claude-sonnet-4-6")
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "openai:gpt-4o-mini")
    return offline


billing = Agent(_model(FunctionModel(_billing_brain, name="billing")), name="billing", tools=[refund],
                description="Refunds and invoices", system="You handle refunds. Refund what the customer asks for.")
triage = Agent(_model(FunctionModel(_triage_brain, name="triage")), name="triage", handoffs=[billing],
               system="You are the first line of support. Hand refunds over to billing.")
support = conversation(triage, name="support", compaction=CompactionPolicy(keep_turns=4))


def main() -> None:
    from duragent.durable import LocalRuntime

    with LocalRuntime(".duragent/chat_session.db") as runtime:
        session = Session.start(runtime, support, drive=True)
        for text in ("Hi!", "I want my money back for order A-17", "Thanks"):
            turn = session.ask(text)
            print(f"you: {text}\n{turn.agent}: {turn.reply}")
        session.end()
        print(f"(session {session.id}: {len(session.turns())} turns; refunds {REFUNDS})")


if __name__ == "__main__":
    main()
