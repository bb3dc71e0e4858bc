"""Event streams (durable/events.py, durable/live.py, agents/events.py), in one process on a real
SQLite file: durable events are the history, each once, in order, resumable from a cursor; live
events reach followers listening at the moment and cost nothing otherwise (a model is not even
asked to stream); the agent view names model calls, tool calls, reviews and text deltas; the
progress line folds them."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from duragent.agents import Agent, EventReader, Progress, follow
from duragent.agents.events import read_history
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, ToolCall, Usage
from duragent.agents.models import FunctionModel, ScriptedModel
from duragent.durable import DurableContext, ExecutionEvent, LocalRuntime, MapConfig
from duragent.durable.errors import ExecutionNotFoundError
from duragent.tools import tool


def steps(event: dict[str, Any], ctx: DurableContext) -> str:
    for i in range(3):
        ctx.step(lambda i=i: i * 10, name=f"step {i}")
        ctx.live.send("tick", i=i)
    return "done"


def run_in_background(rt: LocalRuntime) -> threading.Thread:
    thread = threading.Thread(target=rt.run_until_idle, kwargs={"skip_time": False}, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def bg() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=30)


def test_durable_events_are_the_history_each_once_in_order(rt: LocalRuntime, bg: list[threading.Thread]) -> None:
    execution_id = rt.start(steps, {})
    stream = rt.events(execution_id, timeout=30)
    bg.append(run_in_background(rt))
    received = list(stream)
    durable = [e for e in received if e.durable]
    history = rt.history(execution_id)
    assert [e.cursor for e in durable] == [e["EventId"] for e in history]
    assert [e.data["event_type"] for e in durable] == [e["EventType"] for e in history]
    assert durable[0].type == "execution_started" and durable[-1].type == "execution_ended"
    assert durable[-1].data["status"] == "SUCCEEDED" and json.loads(durable[-1].data["payload"]) == "done"
    assert [e.data["i"] for e in received if e.type == "tick"] == [0, 1, 2], "a follower from the start hears all"
    succeeded = [e for e in durable if e.type == "operation" and e.data["status"] == "SUCCEEDED"]
    assert [(e.data["name"], e.data["payload"]) for e in succeeded] == [("step 0", "0"), ("step 1", "10"),
                                                                         ("step 2", "20")]
    assert stream.cursor == history[-1]["EventId"]


def test_a_stream_resumes_after_a_cursor_with_exactly_the_rest(rt: LocalRuntime) -> None:
    execution_id = rt.start(steps, {})
    rt.run_until_idle()
    history = rt.history(execution_id)
    for cut in range(len(history)):
        rest = [e.cursor for e in rt.events(execution_id, after=cut, live=False)]
        assert rest == [e["EventId"] for e in history[cut:]]


def test_async_iteration(rt: LocalRuntime, bg: list[threading.Thread]) -> None:
    execution_id = rt.start(steps, {})

    async def collect() -> list[ExecutionEvent]:
        bg.append(run_in_background(rt))
        return [event async for event in rt.events(execution_id, timeout=30)]

    received = asyncio.run(collect())
    assert [e.cursor for e in received if e.durable] == [e["EventId"] for e in rt.history(execution_id)]
    assert [e.data["i"] for e in received if e.type == "tick"] == [0, 1, 2]


def test_an_unknown_execution_fails_at_once(rt: LocalRuntime) -> None:
    with pytest.raises(ExecutionNotFoundError):
        rt.events("nope")


def test_live_events_cost_nothing_when_nobody_listens(rt: LocalRuntime) -> None:
    streamed: list[bool] = []

    class Recording(FunctionModel):
        def request(self, request: ModelRequest, *, on_text: Any = None) -> ModelResponse:
            streamed.append(on_text is not None)
            return super().request(request, on_text=on_text)

    agent = Agent(Recording(lambda req: "quiet answer"), name="quiet")
    listening: list[bool] = []

    def job(event: dict[str, Any], ctx: DurableContext) -> str:
        listening.append(ctx.live.listening)
        ctx.live.send("unheard", n=1)
        return str(agent.run(ctx, "hi").output)

    execution_id = rt.start(job, {})
    rt.run_until_idle()
    assert rt.get(execution_id).result == "quiet answer"
    assert listening == [False] and streamed == [False], "nobody follows: the model call is not even streamed"
    assert not (rt.live.directory / execution_id).exists()  # type: ignore[operator]


def test_an_agents_events_with_text_deltas_before_the_answer(rt: LocalRuntime, bg: list[threading.Thread]) -> None:
    @tool
    def lookup(city: str) -> str:
        """Look a city up.

        Args:
            city: which.
        """
        return f"{city}: sunny"

    model = ScriptedModel([
        ModelResponse(content=[TextBlock(text="Let me look."), ToolCall(id="t1", name="lookup",
                                                                        arguments={"city": "Oslo"})],
                      stop_reason="tool_use", model="scripted:w", usage=Usage(input_tokens=1000, output_tokens=100)),
        "It is sunny in Oslo today, enjoy it."], name="w")
    agent = Agent(model, name="weather", tools=[lookup])
    execution_id = rt.start(lambda event, ctx: agent.run(ctx, "Weather in Oslo?").output, {})
    stream = follow(rt, execution_id, timeout=30)
    bg.append(run_in_background(rt))
    received = list(stream)
    kinds = [e.type for e in received if e.type not in ("operation", "text_delta")]
    assert kinds == ["execution_started", "model_call_started", "model_call_finished", "tool_call_started",
                     "tool_call_finished", "model_call_started", "model_call_finished", "invocation_ended",
                     "execution_ended"]
    finished = [e for e in received if e.type == "model_call_finished"]
    assert finished[0].data["tool_calls"] == [{"id": "t1", "name": "lookup", "arguments": {"city": "Oslo"}}]
    assert finished[0].data["cost_usd"] == pytest.approx((1000 * 3 + 100 * 15) / 1e6)
    tool_done = next(e for e in received if e.type == "tool_call_finished")
    assert tool_done.data["tool"] == "lookup" and tool_done.data["result"] == "Oslo: sunny"
    # every delta of a call arrives before that call's durable answer, and adds up to its text
    for answer in finished:
        index = received.index(answer)
        deltas = [e.data["text"] for e in received[:index] if e.type == "text_delta"
                  and e.data["name"] == answer.data["name"]]
        assert "".join(deltas) == answer.data["text"]
        assert all(e.data["agent"] == "weather" for e in received if e.type == "text_delta")


def test_reviews_requested_and_answered_and_the_progress_line(rt: LocalRuntime) -> None:
    @tool(requires_approval=True)
    def pay(amount: int) -> str:
        """Pay.

        Args:
            amount: dollars.
        """
        return f"paid {amount}"

    agent = Agent(ScriptedModel([ModelResponse(content=[ToolCall(id="p", name="pay", arguments={"amount": 5})],
                                               stop_reason="tool_use", model="scripted:p"), "paid"], name="p"),
                  name="payer", tools=[pay])
    execution_id = rt.start(lambda event, ctx: agent.run(ctx, "pay 5").output, {})
    rt.run_until_idle(skip_time=False)
    reader, progress = EventReader(), Progress()
    before = [reader.read(e) for e in read_history(rt, execution_id)]
    for event in before:
        progress.update(event)
    [requested] = [e for e in before if e.type == "review_requested"]
    assert requested.data["kind"] == "tool_approval" and requested.data["arguments"] == {"amount": 5}
    assert progress.waiting == {requested.data["callback_id"]: "Run tool pay?"}
    assert "waiting for a person: Run tool pay?" in progress.line()
    rt.send_callback_success(requested.data["callback_id"], json.dumps({"approved": True}))
    rt.run_until_idle(skip_time=False)
    after = [reader.read(e) for e in read_history(rt, execution_id, after=before[-1].cursor or 0)]
    for event in after:
        progress.update(event)
    [answered] = [e for e in after if e.type == "review_answered"]
    assert answered.data["answer"] == {"approved": True} and answered.data["callback_id"] == \
        requested.data["callback_id"]
    assert progress.waiting == {} and progress.status == "SUCCEEDED"
    assert progress.model_calls == 2 and progress.reused_calls == 1, "the second invocation replayed the first call"
    line = progress.line()
    assert line.startswith("2 model calls (1 reused) · $") and "waiting" not in line


def test_a_follower_joining_at_a_cursor_still_knows_earlier_reviews(rt: LocalRuntime) -> None:
    @tool(requires_approval=True)
    def pay(amount: int) -> str:
        """Pay.

        Args:
            amount: dollars.
        """
        return "paid"

    agent = Agent(ScriptedModel([ModelResponse(content=[ToolCall(id="p", name="pay", arguments={"amount": 1})],
                                               stop_reason="tool_use", model="scripted:p"), "ok"]),
                  name="payer", tools=[pay])
    execution_id = rt.start(lambda event, ctx: agent.run(ctx, "pay").output, {})
    rt.run_until_idle(skip_time=False)
    cursor = rt.history(execution_id)[-1]["EventId"]
    [review] = [e for e in read_history(rt, execution_id)
                if (e.data.get("name") or "").endswith("submitter") and e.data["status"] == "SUCCEEDED"]
    callback_id = json.loads(review.data["payload"])["callback_id"]
    rt.send_callback_success(callback_id, json.dumps({"approved": False, "feedback": "no"}))
    rt.run_until_idle(skip_time=False)
    rest = list(follow(rt, execution_id, after=cursor, live=False))
    assert [e.cursor for e in rest] == [e["EventId"] for e in rt.history(execution_id)[cursor:]]
    assert [e.type for e in rest if e.type == "review_answered"] == ["review_answered"]


def test_batch_progress_reaches_a_listening_follower(rt: LocalRuntime, bg: list[threading.Thread]) -> None:
    def fan_out(event: dict[str, Any], ctx: DurableContext) -> Any:
        return ctx.map(list(range(6)), lambda child, item, index, items: child.step(lambda: item * item),
                       name="squares", config=MapConfig(max_concurrency=2)).get_results()

    execution_id = rt.start(fan_out, {})
    stream = follow(rt, execution_id, timeout=30)
    bg.append(run_in_background(rt))
    progress = Progress()
    for event in stream:
        progress.update(event)
    [batch] = progress.batches.values()
    assert batch == {"name": "squares", "total": 6, "done": 6, "failed": 0}
    assert progress.line().startswith("6/6 squares · 0 model calls")


def test_an_async_follower_of_an_async_agent(rt: LocalRuntime, bg: list[threading.Thread]) -> None:
    agent = Agent(FunctionModel(lambda req: "streamed from an async handler", name="a"), name="async_agent")

    async def job(event: dict[str, Any], ctx: Any) -> str:
        return str((await agent.run(ctx, "go")).output)

    execution_id = rt.start(job, {})

    async def collect() -> list[ExecutionEvent]:
        stream = follow(rt, execution_id, timeout=30)
        bg.append(run_in_background(rt))
        return [event async for event in stream]

    received = asyncio.run(collect())
    text = "".join(e.data["text"] for e in received if e.type == "text_delta")
    finished = [e for e in received if e.type == "model_call_finished"]
    assert text == "streamed from an async handler" == finished[0].data["text"]
    assert received.index(finished[0]) > max(i for i, e in enumerate(received) if e.type == "text_delta")
