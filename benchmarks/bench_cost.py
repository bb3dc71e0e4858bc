"""8. Cost: dollars per 1,000 documents in each mode, from the provider's bill (the fake provider
server's, which the real anthropic SDK talks to) and from duragent's ledger, side by side.

A document is one model call (about 1,900 tokens of document and a 1,100-token system prompt shared
by all, 200 tokens out) on Anthropic Sonnet-4 list prices; then one summary call. Modes:

- interactive: one agent call per document, four at a time (``ctx.map``), nothing goes wrong;
- interactive, 5 crashes: the same, with the worker dying five times just after an answer came
  back and before it was checkpointed (the answer is billed and lost; the call is sent again);
- interactive, prompt cache: the server plays Anthropic's prompt caching; the shared system prompt
  is written once and read by every other document;
- batch: every document in one Message Batch (``agents.batch.run_batch``), at half price.

Quick mode: 200 documents, scaled to 1,000; full mode: 1,000. The ledger must equal the bill
(``ledger/bill``, info); the dollars are informational (no target). The clock is virtual, so
the batch's hours of polling take no time.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from duragent.agents import Agent
from duragent.agents.batch import run_batch
from duragent.agents.messages import ModelRequest, ModelResponse, Usage
from duragent.agents.models.anthropic import AnthropicModel
from duragent.agents.models.base import TextCallback
from duragent.agents.usage import DEFAULT_PRICES, agent_ledger
from duragent.durable import DurableContext, LocalRuntime, MapConfig, VirtualClock
from tests.fakes.provider_server import FakeUsage, ProviderServer, RecordedRequest, Reply

from ._common import Result, main

MODEL = "claude-sonnet-4-bench"
PRICE = DEFAULT_PRICES["anthropic:claude-sonnet-4"]
SYSTEM = "You summarize business documents for an executive audience. " + \
    "Keep the figures exact, name the owners of each action, and flag every risk you see. " * 50
CRASHES = 5


class Crash(BaseException):
    """The worker dies: nothing in the engine catches it."""


def documents(n: int) -> list[str]:
    rng = random.Random(7)
    words = ["revenue", "margin", "churn", "pipeline", "hiring", "audit", "supplier", "forecast", "risk", "launch"]
    return [f"Document {i}: " + " ".join(rng.choice(words) for _ in range(1100)) for i in range(n)]


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


def answer(request: RecordedRequest) -> Reply:
    body = request.body if isinstance(request.body, dict) else {}
    text = json.dumps({k: body.get(k) for k in ("system", "messages", "params")}, sort_keys=True)
    return Reply(text="A summary. " * 70, usage=FakeUsage(input_tokens=tokens(text), output_tokens=200))


class CrashingModel:
    """An Anthropic model whose worker dies right after chosen answers arrive (billed, unsaved)."""

    def __init__(self, inner: AnthropicModel, crash_on: set[int]) -> None:
        self.inner = inner
        self.crash_on = crash_on
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def request(self, request: ModelRequest, *, on_text: TextCallback | None = None) -> ModelResponse:
        response = self.inner.request(request, on_text=on_text)
        self.calls += 1
        if self.calls in self.crash_on:
            self.crash_on.discard(self.calls)
            raise Crash()
        return response


def interactive(docs: list[str], model: Any) -> Any:
    def job(event: Any, ctx: DurableContext) -> int:
        def summarize(child: DurableContext, doc: str, index: int, items: Any) -> str:
            return str(Agent(model, system=SYSTEM, name=f"doc {index}").run(child, doc).output)

        done = ctx.map(docs, summarize, name="documents", config=MapConfig(max_concurrency=4)).get_results()
        Agent(model, name="summary").run(ctx, "\n".join(done)[:4000])
        return len(done)

    return job


def batch(docs: list[str]) -> Any:
    def job(event: Any, ctx: DurableContext) -> int:
        results = run_batch(ctx, docs, model=f"anthropic:{MODEL}", system=SYSTEM, name="documents", poll_every=60)
        Agent(f"anthropic:{MODEL}", name="summary").run(
            ctx, "\n".join(i.response.text for i in results.items if i.response)[:4000])
        return len(results.items)

    return job


def bill_usd(server: ProviderServer) -> float:
    return sum(PRICE.cost(Usage(input_tokens=b.usage.input_tokens, output_tokens=b.usage.output_tokens,
                                cache_read_tokens=b.usage.cache_read_tokens,
                                cache_write_tokens=b.usage.cache_write_tokens), batch=b.batch)
               for b in server.billed())


def run_mode(name: str, docs: list[str], workdir: Path) -> dict[str, Any]:
    with ProviderServer(responder=answer, prompt_cache=name == "interactive, prompt cache", batch_polls=3) as server:
        os.environ.update({"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "bench-key"})
        clock = VirtualClock()
        with LocalRuntime(workdir / f"{name.replace(' ', '_').replace(',', '')}.db", clock=clock) as rt:
            if name == "batch":
                handler = batch(docs)
            elif name.startswith("interactive, 5"):
                crash_on = set(random.Random(11).sample(range(1, len(docs)), CRASHES))
                handler = interactive(docs, CrashingModel(AnthropicModel(MODEL), crash_on))
            else:
                handler = interactive(docs, AnthropicModel(MODEL))
            execution_id = rt.start(handler, {})
            crashes = 0
            while rt.get(execution_id).status == "RUNNING":
                try:
                    rt.run_until_idle()
                except Crash:
                    crashes += 1
                    clock.advance(rt.lease_seconds + 1)  # the dead worker's lease lapses
            info = rt.get(execution_id)
            assert info.status == "SUCCEEDED", info.error
            ledger = agent_ledger(rt.operations(execution_id), history=rt.history(execution_id))
        assert ledger is not None
        return {"bill_usd": bill_usd(server), "ledger_usd": ledger.total_cost, "requests": len(server.billed()),
                "ledger_calls": ledger.billed_calls, "lost": ledger.lost_calls, "crashes": crashes,
                "batches": server.counts["POST /v1/messages/batches"]}


def run(mode: str, workdir: Path) -> list[Result]:
    n = 200 if mode == "quick" else 1000
    docs = documents(n)
    scale = 1000 / n
    results: list[Result] = []
    baseline: float | None = None
    for name in ("interactive", "interactive, 5 crashes", "interactive, prompt cache", "batch"):
        got = run_mode(name, docs, workdir)
        per_1000 = got["bill_usd"] * scale
        baseline = baseline or per_1000
        results.append(Result("cost", f"$ per 1,000 documents, {name}", per_1000, "$",
                              note=f"{got['ledger_usd'] / got['bill_usd']:.4f} ledger/bill; {got['requests']} billed "
                                   f"requests for {n} documents + 1 summary ({got['lost']} lost in flight, "
                                   f"{got['crashes']} crashes); {per_1000 / baseline:.2f}x interactive",
                              extra=got))
    return results


if __name__ == "__main__":
    main(run, "cost")
