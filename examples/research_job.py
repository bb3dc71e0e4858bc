"""The demo's agent job: research several topics in parallel, then write a brief and publish it
behind a human approval. Every model call and tool call is a durable step.

Runs on a real provider when ANTHROPIC_API_KEY or OPENAI_API_KEY is set; otherwise on a scripted
model that needs no network (and takes a moment per call, like real inference).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from duragent.agents import Agent
from duragent.agents.messages import ModelRequest, TextBlock, ToolResult
from duragent.agents.models.scripted import FunctionModel, ScriptedModel
from duragent.durable import DurableContext, MapConfig, durable_function
from duragent.tools import tool

KNOWLEDGE = {
    "durable execution": "Durable execution checkpoints each step of a program so that after a crash it "
                         "replays from the journal instead of redoing finished work.",
    "human in the loop": "Human review pauses a workflow until a person approves, edits or rejects an "
                         "action; a durable pause holds no process while it waits.",
    "llm cost control": "Caching finished model calls and resuming instead of restarting keeps a long "
                        "agent job from paying twice for the same inference.",
}

BRIEFS_DIR = Path(os.environ.get("DURAGENT_BRIEFS_DIR", ".duragent/briefs"))


@tool
def lookup(topic: str) -> str:
    """Look a topic up in the team's knowledge base.

    Args:
        topic: the topic to look up, in a few words.
    """
    return KNOWLEDGE.get(topic.lower().strip(), f"No entry for {topic!r}; say what is generally known.")


@tool(requires_approval=True, at_most_once=True)
def publish_brief(title: str, body: str) -> str:
    """Publish the brief to the team's wiki. A human must approve this first.

    Args:
        title: a short title.
        body: the brief, in Markdown.
    """
    BRIEFS_DIR.mkdir(parents=True, exist_ok=True)
    path = BRIEFS_DIR / (title.lower().replace(" ", "-")[:60] + ".md")
    path.write_text(f"# {title}\n\n{body}\n")
    return f"published to {path}"


def _scripted_brain(request: ModelRequest) -> object:
    """What the offline model says: look things up, then summarise; draft, then publish."""
    time.sleep(float(os.environ.get("DURAGENT_DEMO_LATENCY", "0.4")))  # inference takes time
    last = request.messages[-1]
    results = [b for b in last.content if isinstance(b, ToolResult)]
    prompt = next(b.text for b in request.messages[0].content if isinstance(b, TextBlock))
    if "researcher" in (request.system or ""):
        topic = prompt.split(":", 1)[-1].strip()
        if not results:
            return ScriptedModel.tool_call("lookup", {"topic": topic})
        return f"{topic.capitalize()}: {results[0].content}"
    if not results:
        notes = prompt.split("Notes:", 1)[-1].strip()
        return ScriptedModel.tool_call("publish_brief", {"title": "Why durable agents",
                                                         "body": notes},
                                       text="Here is the draft; publishing it needs your approval.")
    if results[0].is_error:
        return f"The brief was not published: {results[0].content}"
    return f"Done: the brief was {results[0].content}."


def demo_model() -> object:
    if os.environ.get("ANTHROPIC_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "anthropic:claude-sonnet-4-6")
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "openai:gpt-4o-mini")
    return FunctionModel(_scripted_brain, name="offline-demo")


MODEL = demo_model()

researcher = Agent(MODEL, name="researcher", tools=[lookup], max_turns=6,  # type: ignore[arg-type]
                   system="You are a researcher. Use the lookup tool once, then answer in two sentences.")
writer = Agent(MODEL, name="writer", tools=[publish_brief], max_turns=6,  # type: ignore[arg-type]
               system="You are a technical writer. Draft a short brief from the notes, then publish it "
                      "with the publish_brief tool, then confirm in one sentence.")


def research_topic(ctx: DurableContext, topic: str, index: int, topics: list[str]) -> str:
    return str(researcher.run(ctx, f"Research this topic: {topic}").output)


@durable_function
def research_job(event: dict, ctx: DurableContext) -> dict:
    topics = event.get("topics") or list(KNOWLEDGE)
    notes = ctx.map(topics, research_topic, name="research",
                    config=MapConfig(max_concurrency=2, item_namer=lambda t, i: f"research: {t}"))
    notes.throw_if_error()
    joined = "\n".join(f"- {n}" for n in notes.get_results())
    outcome = writer.run(ctx, f"Write a brief titled 'Why durable agents'. Notes:\n{joined}")
    return {"topics": topics, "notes": notes.get_results(), "outcome": outcome.output}
