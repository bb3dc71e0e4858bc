"""Prompt chaining: outline → draft → polish, with a gate after each link that can stop the chain.

Each link is an agent run in a child context of its own, so a job interrupted after the outline (a
crash, a deploy, a laptop lid) resumes at the draft: the outline is not asked for, or paid for, again.

Runs on Claude or GPT when ANTHROPIC_API_KEY or OPENAI_API_KEY is set (DURAGENT_DEMO_MODEL picks
the model), otherwise on a scripted model that needs no network.

Run it:
    duragent run examples/prompt_chain.py:prompt_chain --input '{"topic": "durable execution"}'
    duragent show <EXECUTION_ID>          # one child context per link, and the cost ledger
    duragent history <EXECUTION_ID>
A gate that fails ends the execution FAILED with GateFailedError, for example a word limit the
draft cannot meet:
    duragent run examples/prompt_chain.py:prompt_chain --input '{"topic": "durable execution", "max_words": 20}'
"""

from __future__ import annotations

import os
import re
from typing import Any

from duragent.agents import Agent
from duragent.agents.messages import ModelRequest, TextBlock
from duragent.agents.models.scripted import FunctionModel
from duragent.agents.patterns import Link, chain
from duragent.durable import DurableContext, durable_function

OUTLINER = ("You outline short explainers. Answer with exactly three numbered points (\"1. ...\"), one per "
            "line, and nothing else.")
DRAFTER = ("You write short explainers. Write one paragraph per point of the outline you are given, in plain "
           "prose, without headings or lists.")
POLISHER = ("You are an editor. Give the explainer a Markdown title line ('# ...') and tighten the prose; "
            "keep the paragraphs; answer with the finished text only.")


def _prompt(request: ModelRequest) -> str:
    return "".join(b.text for b in request.messages[0].content if isinstance(b, TextBlock))


def _offline_brain(request: ModelRequest) -> str:
    """What the offline model writes: an outline, one sentence per point, then a title on top."""
    prompt = _prompt(request)
    topic = prompt.split("Topic:", 1)[-1].split("\n", 1)[0].strip() or "the topic"
    system = request.system or ""
    if system == OUTLINER:
        return f"1. What {topic} is\n2. Why {topic} matters\n3. How to start with {topic}"
    if system == DRAFTER:
        points = re.findall(r"^\d+\.\s*(.+)$", prompt, flags=re.MULTILINE)
        sentences = {
            "What": "is a way to write programs whose progress survives crashes and restarts.",
            "Why": "saves repeated work: finished steps are never redone, so nothing is paid for twice.",
            "How": "begins with one function whose steps are checkpointed, run on a local store.",
        }
        paragraphs = []
        for point in points:
            first = point.split(" ", 1)[0]
            paragraphs.append(f"{point}: {topic} {sentences.get(first, 'is worth a look.')}")
        return "\n\n".join(paragraphs)
    draft = prompt.split("Draft:\n", 1)[-1].strip()
    return f"# {topic[:1].upper()}{topic[1:]}, briefly\n\n{draft}"


def demo_model() -> Any:
    if os.environ.get("ANTHROPIC_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "anthropic:claude-sonnet-4-6")
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "openai:gpt-4o-mini")
    return FunctionModel(_offline_brain, name="offline-chain")


MODEL = demo_model()
outliner = Agent(MODEL, system=OUTLINER, name="outliner", max_turns=2)
drafter = Agent(MODEL, system=DRAFTER, name="drafter", max_turns=2)
polisher = Agent(MODEL, system=POLISHER, name="polisher", max_turns=2)


def words(text: str) -> int:
    return len(text.split())


def has_three_points(outline: str) -> bool:
    return len(re.findall(r"^\s*\d+[.)]\s+\S", outline, flags=re.MULTILINE)) >= 3


@durable_function
def prompt_chain(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    topic = str(event.get("topic") or "durable execution")
    max_words = int(event.get("max_words") or 250)
    links = [
        Link("outline", outliner, lambda _: f"Outline a short explainer.\nTopic: {topic}", gate=has_three_points),
        Link("draft", drafter, lambda outline: f"Write the explainer from this outline.\nTopic: {topic}\n\n{outline}",
             gate=lambda draft: 0 < words(draft) <= max_words),
        Link("polish", polisher, lambda draft: f"Edit this explainer.\nTopic: {topic}\n\nDraft:\n{draft}",
             gate=lambda text: text.lstrip().startswith("#") and words(text) <= max_words + 20),
    ]
    result = chain(ctx, links, topic)
    return {"topic": topic, "outline": result.outputs["outline"], "draft": result.outputs["draft"],
            "final": result.output, "words": words(str(result.output))}
