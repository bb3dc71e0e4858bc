"""Document jobs that tests/integration/test_cost_truth.py runs in real worker processes (imported
as ``tests.integration.cost_jobs:NAME``): one model call per document, then a summary, through a
real provider SDK pointed at the fake provider server by its own environment variables.

- ``documents_interactive``: one agent call per document, four at a time (``ctx.map``);
- ``documents_batch``: every document in one provider batch (``agents.batch.run_batch``);
- ``background_agent``: an agent on the OpenAI Responses API in background mode;
- ``cached_conversation``: a tool-using agent on Anthropic with prompt caching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from duragent.agents import Agent
from duragent.agents.batch import run_batch
from duragent.agents.models import OpenAIResponsesModel
from duragent.durable import DurableContext, MapConfig, durable_function
from duragent.tools import tool

SYSTEM = "You summarize one document in a sentence."


@durable_function
def documents_interactive(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    def summarize(child: DurableContext, doc: str, index: int, items: Any) -> dict[str, Any]:
        agent = Agent(event["model"], system=SYSTEM, name=f"doc {index}")
        result = agent.run(child, doc)
        return {"text": result.output, "paid": result.ledger.paid_calls, "lost": result.ledger.lost_calls}

    batch = ctx.map(event["docs"], summarize, name="documents",
                    config=MapConfig(max_concurrency=event.get("concurrency", 4)))
    done = [item.result for item in batch.all]
    summary = Agent(event["model"], name="summary", system="You combine summaries.").run(
        ctx, "\n".join(d["text"] for d in done))
    return {"documents": len(done), "summary": summary.output,
            "paid": sum(d["paid"] for d in done) + summary.ledger.paid_calls,
            "lost": sum(d["lost"] for d in done) + summary.ledger.lost_calls}


@durable_function
def documents_batch(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    results = run_batch(ctx, event["docs"], model=event["model"], system=SYSTEM, name="documents",
                        poll_every=event.get("poll_every", 1), retry_batches=event.get("retry_batches", 2))
    texts = [item.response.text if item.response is not None else f"ERROR {item.error_type}" for item in results.items]
    summary = Agent(event["model"], name="summary", system="You combine summaries.").run(ctx, "\n".join(texts))
    return {"documents": len(texts), "failed": len(results.failed), "batches": results.batches,
            "summary": summary.output, "batch_paid": results.ledger.paid_calls,
            "batch_usd": results.ledger.total_cost}


@durable_function
def background_agent(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    model = OpenAIResponsesModel(event["name"], background=True, poll_interval=0.02,
                                 max_wait=event.get("max_wait", 120))
    agent = Agent(model, name="researcher", system="You answer carefully.")
    streamed: list[str] = []
    result = agent.run(ctx, event["question"], on_text=streamed.append if event.get("stream") else None)
    return {"output": result.output, "paid": result.ledger.paid_calls, "lost": result.ledger.lost_calls,
            "streamed": "".join(streamed)}


@tool
def read_chapter(number: int) -> str:
    """Read one chapter of the book.

    Args:
        number: which chapter.
    """
    return f"Chapter {number}: " + ("The tide came in and the harbour filled with boats. " * 40)


@durable_function
def cached_conversation(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    agent = Agent(event["model"], tools=[read_chapter], name="reader",
                  system="You read books chapter by chapter. " + "Be thorough and precise. " * 60)
    result = agent.run(ctx, "Read chapters 1 to 3, then say what happens.")
    Path(event["directory"], "done").write_text("1")
    return {"output": result.output, "paid": result.ledger.paid_calls, "lost": result.ledger.lost_calls,
            "usage": result.usage.model_dump(), "usd": result.ledger.total_cost}
