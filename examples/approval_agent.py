"""A tool-calling agent whose side effect waits for a human: it may look contacts up freely, but
every ``send_email`` call is reviewed first. While it waits, nothing runs and no process is held:
the execution is a few rows in SQLite until someone approves, edits or rejects the call.

Runs on Claude or GPT when ANTHROPIC_API_KEY or OPENAI_API_KEY is set (DURAGENT_DEMO_MODEL picks
the model), otherwise on a scripted model that needs no network. Sent emails land in
$DURAGENT_OUTBOX (default .duragent/outbox) as .eml files.

Run it:
    duragent run examples/approval_agent.py:approval_agent --input '{"request": "Tell Ana that the launch moved to Tuesday"}'
    duragent list --pending               # the review: tool, arguments and its callback id
    duragent approve <CALLBACK_ID>        # send it as drafted
    duragent approve <CALLBACK_ID> --edit '{"subject": "Launch moved"}'   # only what changes; the model is told
    duragent reject <CALLBACK_ID> --feedback "Not before the press release"   # the model reads why
    duragent worker --until-idle          # resumes the agent where it paused
    duragent show <EXECUTION_ID>          # result, operation tree and cost ledger
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from duragent.agents import Agent
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, ToolResult
from duragent.agents.models.scripted import FunctionModel, ScriptedModel
from duragent.durable import DurableContext, durable_function
from duragent.tools import ToolError, tool

CONTACTS = {"ana": "ana@example.com", "ben": "ben@example.com", "team": "team@example.com"}

SYSTEM = ("You are an assistant who sends short emails for the user. Look the recipient up with "
          "find_contact, then send one email with send_email. A person reviews every email before it is "
          "sent; if they reject it, do not send it again: tell the user what the reviewer said. Finish with "
          "one sentence saying what happened.")


def outbox() -> Path:
    return Path(os.environ.get("DURAGENT_OUTBOX", ".duragent/outbox"))


@tool
def find_contact(name: str) -> str:
    """Find a person's email address.

    Args:
        name: the person's first name, or "team".
    """
    address = CONTACTS.get(name.strip().lower())
    if address is None:
        raise ToolError(f"no contact named {name!r}; known: {', '.join(sorted(CONTACTS))}")
    return address


@tool(requires_approval=True, at_most_once=True)
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email. A person approves each email before it goes out.

    Args:
        to: the recipient's email address.
        subject: a short subject line.
        body: the text of the email.
    """
    folder = outbox()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{len(list(folder.glob('*.eml'))) + 1:03d}-{re.sub(r'[^a-z0-9]+', '-', to.lower())}.eml"
    path.write_text(f"To: {to}\nSubject: {subject}\n\n{body}\n")
    return f"sent to {to} (saved as {path.name})"


def _offline_brain(request: ModelRequest) -> ModelResponse | str:
    """Look the contact up, draft the email, then report what the reviewer decided."""
    prompt = "".join(b.text for b in request.messages[0].content if isinstance(b, TextBlock))
    results = [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]
    match = re.match(r"\s*(?:tell|email|ask)\s+(\w+)\s+(?:that\s+)?(.*)", prompt, flags=re.IGNORECASE | re.DOTALL)
    name, news = (match[1], match[2].strip().rstrip(".")) if match else ("team", prompt.strip())
    if not results:
        return ScriptedModel.tool_call("find_contact", {"name": name}, text=f"Looking up {name}.")
    if len(results) == 1:
        if results[0].is_error:
            return f"I could not send anything: {results[0].content}"
        subject = news[:1].upper() + news[1:60]
        body = f"Hi {name.capitalize()},\n\n{subject}.\n\nBest regards"
        return ScriptedModel.tool_call("send_email", {"to": results[0].content, "subject": subject, "body": body},
                                       text="Here is the draft; it goes out once it is approved.")
    outcome = results[-1]
    if outcome.is_error:
        return f"The email was not sent. {outcome.content}"
    text, note = outcome.content, ""
    if text.startswith("A reviewer changed"):  # the agent says so when a reviewer edited the call
        note, _, text = text.partition("\n")
        note = " " + note
    return f"Done: the email was {text}.{note}"


def demo_model() -> Any:
    if os.environ.get("ANTHROPIC_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "anthropic:claude-sonnet-4-6")
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "openai:gpt-4o-mini")
    return FunctionModel(_offline_brain, name="offline-assistant")


assistant = Agent(demo_model(), tools=[find_contact, send_email], system=SYSTEM, name="assistant", max_turns=8)


@durable_function
def approval_agent(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    request = str(event.get("request") or "Tell the team that the launch moved to Tuesday")
    result = assistant.run(ctx, request)
    return {"reply": result.output, "turns": result.turns, "cost_usd": round(result.cost_usd, 6)}
