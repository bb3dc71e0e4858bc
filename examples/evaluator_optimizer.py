"""Evaluator-optimizer: a writer drafts, an evaluator grades the draft against a rubric, and its
feedback drives the next draft, until the draft passes (or the rounds run out).

Every draft and every evaluation is an agent run in its own child context: resuming an interrupted
job skips the rounds that finished, so no draft or grade is asked for (or paid for) twice.

Runs on Claude or GPT when ANTHROPIC_API_KEY or OPENAI_API_KEY is set (DURAGENT_DEMO_MODEL picks
the model), otherwise on scripted models that need no network (the offline evaluator applies the
rubric in code).

Run it:
    duragent run examples/evaluator_optimizer.py:evaluator_optimizer_job \
        --input '{"product": "duragent", "max_rounds": 3}'
    duragent show <EXECUTION_ID>          # "generate 1", "evaluate 1", "generate 2", ... and the ledger
"""

from __future__ import annotations

import os
from typing import Any

from duragent.agents import Agent
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock
from duragent.agents.models.scripted import FunctionModel, ScriptedModel
from duragent.agents.patterns import Evaluation, evaluator_optimizer
from duragent.durable import DurableContext, durable_function

MAX_WORDS = 12
RUBRIC = [f"at most {MAX_WORDS} words", "says that work survives crashes", "no exclamation marks"]

WRITER = "You write product taglines. Answer with the tagline only, on one line."
EVALUATOR = ("You are a strict copy editor. Grade the candidate tagline against every rubric item. Call "
             "final_result with passed=true only if it meets all of them; otherwise passed=false and feedback "
             "that names each unmet item and says how to fix it.\n\nRubric:\n"
             + "\n".join(f"- {item}" for item in RUBRIC))


def _prompt(request: ModelRequest) -> str:
    return "".join(b.text for b in request.messages[0].content if isinstance(b, TextBlock))


def _offline_writer(request: ModelRequest) -> str:
    prompt = _prompt(request)
    product = prompt.split("for ", 1)[-1].split(".", 1)[0].split(",", 1)[0].strip() or "it"
    if "Reviewer feedback" not in prompt:
        return (f"{product}: the agent framework that remembers everything it did and picks up right where "
                "it left off, every single time!")
    return f"{product}: agents whose work survives crashes, paid for once."


def check(tagline: str) -> Evaluation:
    """The rubric, as code (what the offline evaluator does)."""
    problems = []
    if len(tagline.split()) > MAX_WORDS:
        problems.append(f"it has {len(tagline.split())} words; cut it to {MAX_WORDS} or fewer")
    if "crash" not in tagline.lower():
        problems.append("say that the work survives crashes")
    if "!" in tagline:
        problems.append("drop the exclamation mark")
    return Evaluation(passed=not problems, feedback="; ".join(problems))


def _offline_evaluator(request: ModelRequest) -> ModelResponse:
    candidate = _prompt(request).split("Candidate:\n", 1)[-1].split("\n\nDoes it pass?", 1)[0].strip()
    return ScriptedModel.tool_call("final_result", check(candidate).model_dump())


def demo_model(offline: Any) -> Any:
    if os.environ.get("ANTHROPIC_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "anthropic:claude-sonnet-4-6")
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "openai:gpt-4o-mini")
    return FunctionModel(offline)


writer = Agent(demo_model(_offline_writer), system=WRITER, name="writer", max_turns=2)
evaluator = Agent(demo_model(_offline_evaluator), system=EVALUATOR, output_type=Evaluation, name="evaluator",
                  max_turns=4)


@durable_function
def evaluator_optimizer_job(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    product = str(event.get("product") or "duragent")
    task = (f"Write a tagline for {product}, a library that makes AI agents durable: every step is "
            f"checkpointed, so a crashed job resumes without redoing or re-paying finished work.")
    result = evaluator_optimizer(ctx, writer, evaluator, task, max_rounds=int(event.get("max_rounds") or 3))
    return {"tagline": result.output, "rounds": result.rounds, "passed": result.evaluations[-1].passed,
            "evaluations": [e.model_dump() for e in result.evaluations]}
