"""An asyncio application that runs durable agents in its own process: it starts one research
execution per topic, streams each agent's text as it arrives, and answers the review each agent
asks for before it publishes, while ``runtime.serve()`` runs as a task beside it. No web
framework: the terminal is the interface.

Everything is ``async``: the handler (``await ctx...``), the agent (``await agent.run(ctx, ...)``),
its tools (``@tool async def``, the two searches of one response run at once), the text callback,
and the application's calls to the runtime (``astart``, ``wait_until_done``, ``asend_callback_success``),
none of which blocks the loop. Stop it at any point (Ctrl-C) and start it again with the same
``--db``: ``duragent worker`` or another run of this program finishes what was started, paying
for no finished model call twice.

Runs on Claude or GPT when ANTHROPIC_API_KEY or OPENAI_API_KEY is set (DURAGENT_DEMO_MODEL picks
the model), otherwise on a scripted model that needs no network. Published briefs land in
$DURAGENT_OUTBOX (default .duragent/outbox).

    python examples/async_agents.py                        # asks you to approve each brief
    python examples/async_agents.py --approve-all          # approves them by itself
    python examples/async_agents.py --topics "sqlite,wal"  # topics of your own
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from duragent.agents import Agent, pending_reviews
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, ToolResult
from duragent.agents.models.scripted import FunctionModel, ScriptedModel
from duragent.agents.review import Approve, Reject, ReviewRequest, encode_decision
from duragent.durable import AsyncDurableContext, LocalRuntime, durable_function
from duragent.tools import tool

SYSTEM = ("You write two-sentence briefs. Search the topic twice (its basics and its pitfalls, both at "
          "once), write the brief, publish it with publish_brief (a person reviews it first), and finish "
          "with one sentence saying whether it was published.")

STREAMS: dict[str, asyncio.Queue[str | None]] = {}
"""Execution id -> the queue its agent's text goes to, while this application watches it."""


def outbox() -> Path:
    return Path(os.environ.get("DURAGENT_OUTBOX", ".duragent/outbox"))


@tool
async def search(query: str) -> str:
    """Search notes on a subject.

    Args:
        query: what to look for.
    """
    await asyncio.sleep(0.2)  # stands for an HTTP call (httpx, aiohttp): the loop serves others meanwhile
    return f"notes on {query}: it keeps work safe across crashes; mind what you retry"


@tool(requires_approval=True, at_most_once=True)
async def publish_brief(title: str, text: str) -> str:
    """Publish a brief. A person approves each brief before it goes out.

    Args:
        title: a short title.
        text: the brief itself.
    """
    folder = outbox()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')}.md"
    await asyncio.to_thread(path.write_text, f"# {title}\n\n{text}\n")
    return f"published as {path.name}"


def _offline_brain(request: ModelRequest) -> ModelResponse | str:
    """Search twice at once, draft and publish, then say what happened."""
    prompt = "".join(b.text for b in request.messages[0].content if isinstance(b, TextBlock))
    topic = prompt.removeprefix("Brief on ").strip().rstrip(".")
    results = [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]
    if not results:
        return ScriptedModel.tool_calls(("search", {"query": f"{topic} basics"}),
                                        ("search", {"query": f"{topic} pitfalls"}),
                                        text=f"Researching {topic} from two angles at once. ")
    if len(results) == 2:
        brief = (f"{topic.capitalize()}: it keeps work safe across crashes. Its main pitfall is retrying "
                 "what should not be retried.")
        return ScriptedModel.tool_call("publish_brief", {"title": f"{topic} in brief", "text": brief},
                                       text=f"Here is the draft: {brief} ")
    outcome = results[-1]
    if outcome.is_error:
        return f"Not published: {outcome.content}"
    return f"Done: the brief was {outcome.content}."


def demo_model() -> Any:
    if os.environ.get("ANTHROPIC_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "anthropic:claude-sonnet-4-6")
    if os.environ.get("OPENAI_API_KEY"):
        return os.environ.get("DURAGENT_DEMO_MODEL", "openai:gpt-4o-mini")
    return FunctionModel(_offline_brain, name="offline-writer")


writer = Agent(demo_model(), tools=[search, publish_brief], system=SYSTEM, name="writer", max_turns=8)


@durable_function
async def brief(event: dict[str, Any], ctx: AsyncDurableContext) -> dict[str, Any]:
    stream = STREAMS.get(ctx.execution_id)  # None when another process resumes this execution

    async def on_text(delta: str) -> None:
        if stream is not None:
            await stream.put(delta)

    result = await writer.run(ctx, f"Brief on {event['topic']}.", on_text=on_text)
    return {"topic": event["topic"], "reply": result.output, "turns": result.turns}


# -- the application ---------------------------------------------------------------------------------
async def show_stream(label: str, queue: asyncio.Queue[str | None]) -> None:
    """Print an agent's text as it arrives, a line per delta, labelled by topic."""
    while (delta := await queue.get()) is not None:
        print(f"  [{label}] {delta.strip()}", flush=True)


async def review(runtime: LocalRuntime, approve_all: bool) -> None:
    """Answer each review as it appears (asks on the terminal unless ``approve_all``)."""
    answered: set[str] = set()
    while True:
        for item in await asyncio.to_thread(pending_reviews, runtime):
            request = item["request"] or {}
            if item["callback_id"] in answered or request.get("kind") != "tool_approval":
                continue
            arguments = request.get("arguments") or {}
            print(f"\n  review for {item['execution_id']}: publish {arguments.get('title')!r}?\n"
                  f"    {arguments.get('text')}", flush=True)
            approved = approve_all or (await asyncio.to_thread(input, "    approve? [Y/n] ")).strip().lower() \
                not in ("n", "no")
            decision = Approve() if approved else Reject(feedback="not now")
            answer = encode_decision(ReviewRequest.model_validate(request), decision)  # what `duragent approve` sends
            await runtime.asend_callback_success(item["callback_id"], answer)
            answered.add(item["callback_id"])
            print(f"    {'approved' if approved else 'rejected'}", flush=True)
        await asyncio.sleep(0.1)


async def main(db: Path, topics: list[str], approve_all: bool) -> list[dict[str, Any]]:
    runtime = LocalRuntime(db)
    worker = asyncio.create_task(runtime.serve(), name="duragent-worker")
    reviewer = asyncio.create_task(review(runtime, approve_all), name="reviewer")
    try:
        run = uuid.uuid4().hex[:6]
        ids = [f"brief-{re.sub(r'[^a-z0-9]+', '-', t.lower())}-{run}" for t in topics]
        printers = []
        for topic, execution_id in zip(topics, ids, strict=True):
            STREAMS[execution_id] = asyncio.Queue()
            printers.append(asyncio.create_task(show_stream(topic, STREAMS[execution_id])))
            await runtime.astart(brief, {"topic": topic}, execution_id=execution_id)
        print(f"started {len(ids)} executions in {db}; the worker task is serving them", flush=True)
        done = await asyncio.gather(*(runtime.wait_until_done(execution_id) for execution_id in ids))
        for execution_id in ids:
            STREAMS[execution_id].put_nowait(None)
        await asyncio.gather(*printers)
        return [{"id": info.id, "status": info.status, **(info.result or {"error": info.error})} for info in done]
    finally:
        for task in (reviewer, worker):
            task.cancel()
        await asyncio.gather(reviewer, worker, return_exceptions=True)
        runtime.close()


def cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=".duragent/async-agents.db")
    parser.add_argument("--topics", default="durable execution,write-ahead logging,idempotency keys")
    parser.add_argument("--approve-all", action="store_true", help="approve every brief without asking")
    args = parser.parse_args()
    topics = [t.strip() for t in args.topics.split(",") if t.strip()]
    results = asyncio.run(main(Path(args.db), topics, args.approve_all or not sys.stdin.isatty()))
    print()
    for result in results:
        print(f"{result['id']}: {result['status']}: {result.get('reply') or result.get('error')}")
    return 0 if all(r["status"] == "SUCCEEDED" for r in results) else 1


if __name__ == "__main__":
    sys.exit(cli())
