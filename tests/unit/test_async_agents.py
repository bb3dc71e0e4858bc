"""Agents, tools and patterns in ``async def`` handlers: ``await agent.run(ctx, prompt)``, async
tools, parallel tool calls as tasks, async streaming callbacks, human review and the patterns,
on scripted models (offline). The same agent code serves sync handlers: twins leave the same journal.
The real async SDK clients over HTTP are in tests/integration/test_async_agents_http.py."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from duragent.agents import Agent, ask_human
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, ToolResult
from duragent.agents.models import FunctionModel, ScriptedModel
from duragent.agents.patterns import (
    Evaluation,
    Link,
    chain,
    evaluator_optimizer,
    orchestrator_workers,
    route,
    sectioning,
    vote,
)
from duragent.durable import AsyncDurableContext, DurableContext, Duration, LocalRuntime, VirtualClock
from duragent.tools import tool
from tests.journals import comparable, first_difference
from tests.unit.test_patterns import PLAN, _worker_brain, pause, pausing, prompt_of

# -- tools of every kind -----------------------------------------------------------------------------
THREADS: dict[str, set[int]] = {}
IN_FLIGHT = {"now": 0, "peak": 0}


def _enter(name: str) -> None:
    THREADS.setdefault(name, set()).add(threading.get_ident())


@tool
async def price(sku: str) -> str:
    """Look up a price.

    Args:
        sku: the product.
    """
    _enter("price")
    IN_FLIGHT["now"] += 1
    IN_FLIGHT["peak"] = max(IN_FLIGHT["peak"], IN_FLIGHT["now"])
    for _ in range(5):  # stays in flight long enough for its sibling calls to start
        await asyncio.sleep(0)
    IN_FLIGHT["now"] -= 1
    return f"{sku} costs {len(sku)}"


@tool
def stock(sku: str) -> str:
    """Look up the stock of a product (a blocking call).

    Args:
        sku: the product.
    """
    _enter("stock")
    return f"{sku}: 3 left"


@tool
async def slow(seconds: float) -> str:
    """Take a while.

    Args:
        seconds: how long.
    """
    await asyncio.sleep(seconds)
    return "done"


slow_limited = tool(name="slow_limited", timeout=0.05)(slow.fn)


@tool
async def nap(ctx: AsyncDurableContext, minutes: int) -> str:
    """Wait a few minutes durably, then note it.

    Args:
        minutes: how long.
    """
    await ctx.wait(Duration.from_minutes(minutes), name="nap")
    return await ctx.step(lambda: _noted(f"napped {minutes}"), name="note")


async def _noted(text: str) -> str:
    await asyncio.sleep(0)
    return text


def parallel_brain(final: str) -> Any:
    """Turn 1: three tool calls at once (price, price, stock); turn 2: a final answer."""

    def brain(request: ModelRequest) -> ModelResponse | str:
        if not any(isinstance(b, ToolResult) for m in request.messages for b in m.content):
            return ScriptedModel.tool_calls(("price", {"sku": "ab"}), ("price", {"sku": "abc"}),
                                            ("stock", {"sku": "ab"}), text="Looking.")
        results = [b.content for m in request.messages for b in m.content if isinstance(b, ToolResult)]
        return f"{final}: " + "; ".join(results)

    return brain


def run(rt: LocalRuntime, handler: Any, event: Any = None) -> Any:
    info = rt.run(handler, event if event is not None else {})
    assert info.status == "SUCCEEDED", info.error
    return info


# -- the loop --------------------------------------------------------------------------------------
def test_await_agent_run_with_parallel_async_and_sync_tools_and_async_streaming(rt: LocalRuntime) -> None:
    THREADS.clear()
    IN_FLIGHT.update(now=0, peak=0)
    model = FunctionModel(parallel_brain("Prices"), name="shop")
    agent = Agent(model, tools=[price, stock], name="shop")
    streamed: list[str] = []

    async def on_text(delta: str) -> None:
        await asyncio.sleep(0)
        streamed.append(delta)

    async def handler(event: Any, ctx: AsyncDurableContext) -> dict[str, Any]:
        loop_thread = threading.get_ident()
        result = await agent.run(ctx, "What do ab and abc cost?", on_text=on_text)
        return {"output": result.output, "turns": result.turns, "loop": loop_thread}

    info = run(rt, handler)
    assert info.result["output"] == "Prices: ab costs 2; abc costs 3; ab: 3 left"
    assert info.result["turns"] == 2
    assert IN_FLIGHT["peak"] == 2  # the two async calls were in flight together, on the loop
    assert THREADS["price"] == {info.result["loop"]}
    assert THREADS["stock"] != {info.result["loop"]}  # a blocking tool runs in a worker thread
    assert "".join(streamed) == "Looking." + info.result["output"]
    assert model.calls == 2


def test_an_async_agent_leaves_the_journal_of_its_sync_twin(tmp_path: Path) -> None:
    histories = []
    for surface in ("sync", "async"):
        agent = Agent(FunctionModel(parallel_brain("Prices"), name="shop"), tools=[price, stock], name="shop")
        if surface == "sync":
            def handler(event: Any, ctx: DurableContext, agent: Agent = agent) -> Any:
                return agent.run(ctx, "What do ab and abc cost?").output
        else:
            async def handler(event: Any, ctx: AsyncDurableContext, agent: Agent = agent) -> Any:  # type: ignore[misc]
                return (await agent.run(ctx, "What do ab and abc cost?")).output
        with LocalRuntime(tmp_path / f"{surface}.db", clock=VirtualClock()) as rt:
            info = run(rt, handler)
            histories.append((info.result, rt.history(info.id)))
    (sync_result, sync_history), (async_result, async_history) = histories
    assert sync_result == async_result
    # the three tool calls run concurrently (threads on one side, tasks on the other)
    assert first_difference(comparable(sync_history, any_order=True), comparable(async_history, any_order=True)) \
        is None


def test_a_durable_async_tool_suspends_and_resumes_without_paying_twice(rt: LocalRuntime) -> None:
    def brain(request: ModelRequest) -> ModelResponse | str:
        results = [b.content for m in request.messages for b in m.content if isinstance(b, ToolResult)]
        return results[0] if results else ScriptedModel.tool_call("nap", {"minutes": 5})

    model = FunctionModel(brain, name="sleepy")
    agent = Agent(model, tools=[nap], name="sleepy")
    invocations = 0

    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        nonlocal invocations
        invocations += 1
        return (await agent.run(ctx, "Take a nap.")).output

    info = run(rt, handler)
    assert info.result == "napped 5"
    assert invocations == 2 and model.calls == 2  # suspended in the tool; the first call not paid again


def test_tools_of_one_kind_serve_the_other_surface(rt: LocalRuntime) -> None:
    """A sync durable tool (pause) in an async agent, an async durable tool (nap) and an async
    plain tool (price) in a sync agent."""
    def brain(request: ModelRequest) -> ModelResponse | str:
        done = [b.content for m in request.messages for b in m.content if isinstance(b, ToolResult)]
        if not done:
            return ScriptedModel.tool_calls(("pause", {"minutes": 1}), ("nap", {"minutes": 2}),
                                            ("price", {"sku": "xyz"}))
        return " | ".join(done)

    expected = "waited 1 minutes | napped 2 | xyz costs 3"

    async def async_handler(event: Any, ctx: AsyncDurableContext) -> Any:
        agent = Agent(FunctionModel(brain, name="mixed"), tools=[pause, nap, price], name="mixed")
        return (await agent.run(ctx, "go")).output

    def sync_handler(event: Any, ctx: DurableContext) -> Any:
        agent = Agent(FunctionModel(brain, name="mixed"), tools=[pause, nap, price], name="mixed")
        return agent.run(ctx, "go").output

    assert run(rt, async_handler).result == expected
    assert run(rt, sync_handler).result == expected


def test_an_async_tool_that_times_out_tells_the_model(rt: LocalRuntime) -> None:
    def brain(request: ModelRequest) -> ModelResponse | str:
        results = [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]
        return f"{results[0].is_error}: {results[0].content}" if results else \
            ScriptedModel.tool_call("slow_limited", {"seconds": 5})

    agent = Agent(FunctionModel(brain), tools=[slow_limited], name="impatient")

    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        return (await agent.run(ctx, "go")).output

    assert run(rt, handler).result == "True: tool 'slow_limited' did not finish within 0.05 s"


def test_a_model_with_only_a_sync_request_streams_to_an_async_handler_in_order(rt: LocalRuntime) -> None:
    class Blocking:
        """A user's own model: a blocking request() and nothing else."""

        model_id = "custom:blocking"

        def __init__(self) -> None:
            self.threads: set[int] = set()

        def request(self, request: ModelRequest, *, on_text: Any = None) -> ModelResponse:
            self.threads.add(threading.get_ident())
            for word in ("one ", "two ", "three"):
                if on_text is not None:
                    on_text(word)
            return ScriptedModel.reply("one two three")

    model = Blocking()
    seen: list[tuple[str, int]] = []

    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        loop_thread = threading.get_ident()
        result = await Agent(model, name="custom").run(ctx, "count", on_text=lambda d: seen.append(
            (d, threading.get_ident())))
        return {"output": result.output, "loop": loop_thread}

    info = run(rt, handler)
    assert info.result["output"] == "one two three"
    assert [d for d, _ in seen] == ["one ", "two ", "three"]
    assert {t for _, t in seen} == {info.result["loop"]}  # delivered on the loop
    assert info.result["loop"] not in model.threads  # the blocking call ran in a worker thread


# -- human review ------------------------------------------------------------------------------------
@tool(requires_approval=True)
async def send_email(to: str, body: str) -> str:
    """Send an email.

    Args:
        to: the recipient.
        body: the text.
    """
    return f"sent to {to}: {body}"


def test_an_approval_in_an_async_agent_suspends_until_a_reviewer_answers(rt: LocalRuntime) -> None:
    def brain(request: ModelRequest) -> ModelResponse | str:
        results = [b.content for m in request.messages for b in m.content if isinstance(b, ToolResult)]
        return results[0] if results else ScriptedModel.tool_call("send_email", {"to": "ana", "body": "hi"})

    model = FunctionModel(brain, name="mailer")

    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        answer = await ask_human(ctx, "Which greeting?", name="greeting")
        agent = Agent(model, tools=[send_email], name="mailer")
        return {"greeting": answer, "output": (await agent.run(ctx, "Email Ana")).output}

    execution_id = rt.start(handler, {})
    rt.run_until_idle(skip_time=False)
    [(_, _, question)] = rt.pending_callbacks()
    rt.send_callback_success(question, json.dumps("hello"))
    rt.run_until_idle(skip_time=False)
    [(_, op, review)] = rt.pending_callbacks()
    rt.send_callback_success(review, json.dumps({"approved": True, "edits": {"body": "hello"}}))
    rt.run_until_idle(skip_time=False)
    info = rt.get(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"greeting": "hello",  # the model is told what the reviewer changed
                           "output": 'A reviewer changed the arguments before running: body "hi" -> "hello".\n'
                                     "sent to ana: hello"}
    assert model.calls == 2


# -- patterns ----------------------------------------------------------------------------------------
def test_chain_and_route_with_async_agents(rt: LocalRuntime) -> None:
    outline = FunctionModel(lambda r: "1. Why\n2. How", name="outline")
    draft = FunctionModel(pausing(lambda r: "draft of " + prompt_of(r).split("\n", 1)[1]), name="draft")
    links = [Link("outline", Agent(outline, name="outliner"), lambda topic: f"Outline {topic}"),
             Link("draft", Agent(draft, tools=[pause], name="drafter"), lambda text: f"Draft:\n{text}",
                  gate=lambda text: text.startswith("draft"))]
    router = Agent(ScriptedModel(["Billing."], name="router"), name="router")
    routed: Counter[str] = Counter()

    async def billing(ctx: AsyncDurableContext, request: str) -> str:
        routed["billing"] += 1
        return await ctx.step(lambda: _noted(f"refund for {request}"), name="refund")

    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        chained = await chain(ctx, links, "durability")
        chosen, answer = await route(ctx, router, {"billing": billing, "general": billing}, "invoice 7")
        return {"chain": chained.output, "route": [chosen, answer]}

    info = run(rt, handler)
    assert info.result == {"chain": "draft of 1. Why\n2. How", "route": ["billing", "refund for invoice 7"]}
    assert (outline.calls, draft.calls) == (1, 2)  # the pause replayed the chain; no call repeated
    assert routed["billing"] == 1


def test_sectioning_vote_orchestrator_and_evaluator_with_async_agents(rt: LocalRuntime) -> None:
    pros = FunctionModel(pausing(lambda r: "fast"), name="pros")
    cons = FunctionModel(lambda r: "new", name="cons")
    voters = FunctionModel(pausing(lambda r: "Yes"), name="voter")
    orchestrator = Agent(ScriptedModel([ScriptedModel.tool_call("final_result", PLAN.model_dump())]),
                         output_type=type(PLAN), name="orchestrator")
    worker_model = FunctionModel(_worker_brain, name="worker")

    def judge(request: ModelRequest) -> ModelResponse:
        good = "v2" in prompt_of(request)
        return ScriptedModel.tool_call("final_result", Evaluation(passed=good, feedback="more").model_dump())

    generator = Agent(FunctionModel(lambda r: "v2" if "feedback" in prompt_of(r) else "v1", name="gen"),
                      name="generator")
    evaluator = Agent(FunctionModel(judge, name="judge"), output_type=Evaluation, name="evaluator")

    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        sections = await sectioning(ctx, {"pros": (Agent(pros, tools=[pause], name="pros"), "pros?"),
                                          "cons": (Agent(cons, name="cons"), "cons?")})
        winner, tally = await vote(ctx, Agent(voters, tools=[pause], name="voter"), "ok?", voters=3)
        pieces = await orchestrator_workers(ctx, orchestrator, Agent(worker_model, tools=[pause], name="worker"),
                                            "Explain duragent")
        optimized = await evaluator_optimizer(ctx, generator, evaluator, "write", max_rounds=3)
        return {"sections": sections, "vote": [winner, dict(tally)], "pieces": pieces,
                "optimized": [optimized.output, optimized.rounds]}

    info = run(rt, handler)
    assert info.result == {"sections": {"pros": "fast", "cons": "new"}, "vote": ["Yes", {"yes": 3}],
                           "pieces": ["notes on storage", "notes on replay", "notes on review"],
                           "optimized": ["v2", 2]}
    assert (pros.calls, cons.calls, voters.calls, worker_model.calls) == (2, 1, 6, 4)  # nothing paid twice


def test_a_sync_handler_still_refuses_nothing_it_accepted_before(rt: LocalRuntime) -> None:
    """agent.run(ctx, prompt) in a sync handler is the contract: it returns the result, not an awaitable."""
    agent = Agent(ScriptedModel(["plain"]), name="plain")
    info = run(rt, lambda event, ctx: agent.run(ctx, "hi").output)
    assert info.result == "plain"


@pytest.mark.parametrize("surface", ["sync", "async"])
def test_streaming_happens_once_and_replays_quietly(rt: LocalRuntime, surface: str) -> None:
    model = ScriptedModel(["a streamed answer"], name="streamer")
    agent = Agent(model, name="streamer")
    deltas: list[str] = []

    if surface == "sync":
        def handler(event: Any, ctx: DurableContext) -> Any:
            output = agent.run(ctx, "go", on_text=deltas.append).output
            ctx.wait(5)
            return output
    else:
        async def handler(event: Any, ctx: AsyncDurableContext) -> Any:  # type: ignore[misc]
            output = (await agent.run(ctx, "go", on_text=deltas.append)).output
            await ctx.wait(5)
            return output

    info = run(rt, handler)
    assert info.result == "a streamed answer" and info.invocations == 2
    assert "".join(deltas) == "a streamed answer" and model.calls == 1
    assert all(isinstance(b, TextBlock) for b in model.requests[0].messages[0].content)
