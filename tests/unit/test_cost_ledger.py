"""The cost ledger tells the truth about the bill (issue 14), in one process on a virtual clock:
a crash is a BaseException that nothing in the engine catches, as in test_tokens_and_leases.

- A model call is sent-marked: a crash mid-call leaves its START, the next invocation counts the
  attempt as interrupted, sends the call again at once and books the lost attempt as "paid, lost
  in flight", estimated at the retry's usage. Provider errors are not lost calls.
- The durable layer carries the count of interrupted attempts across other failures.
- The books (paid, lost, reused), batch and cache pricing, the history and operations views agree,
  and the OpenTelemetry spans carry the model call's and the run's numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from duragent.agents import Agent, Ledger, Price, ledger_from_history
from duragent.agents.errors import ModelAuthError, ModelRateLimitError
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, Usage
from duragent.agents.models import FunctionModel
from duragent.agents.models.anthropic_cache import PromptCaching, place_cache_breakpoints
from duragent.agents.usage import agent_ledger, replayed_model_calls
from duragent.durable import (
    DurableContext,
    LocalRuntime,
    RetryPolicy,
    StepConfig,
    StepSemantics,
    VirtualClock,
    step_context,
)
from duragent.durable.otel import TracingPlugin
from duragent.tools import tool

PRICE = Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
PRICES = {"scripted": PRICE}


class Crash(BaseException):
    """Stands in for the process dying: nothing in the engine catches it."""


@tool
def lookup(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: what to look up.
    """
    return f"{topic}: durable"


def usage_of(turn: int) -> Usage:
    return Usage(input_tokens=100 * turn, output_tokens=10 * turn)


def resume(rt: LocalRuntime, clock: VirtualClock, execution_id: str) -> None:
    """Let the dead invocation's lease lapse and run the execution on."""
    clock.advance(rt.lease_seconds + 1)
    rt.run_until_idle()


# -- the sent marker --------------------------------------------------------------------------------
def test_a_call_lost_in_flight_is_booked_as_paid_and_lost(tmp_path: Path) -> None:
    sent: list[int] = []
    crash_on = {2}  # the first attempt of the second model call dies after the request went out

    def brain(request: ModelRequest) -> ModelResponse:
        turn = sum(1 for m in request.messages if m.role == "assistant") + 1
        sent.append(turn)
        if turn in crash_on:
            crash_on.discard(turn)
            raise Crash()
        if turn == 1:
            return FunctionModel.tool_call("lookup", {"topic": "ledgers"}).model_copy(update={"usage": usage_of(1)})
        return ModelResponse(content=[TextBlock(text="Ledgers are durable.")], stop_reason="end_turn",
                             usage=usage_of(turn), model="")

    agent = Agent(FunctionModel(brain, name="model"), tools=[lookup], prices=PRICES)
    seen: list[Any] = []

    def handler(event: Any, ctx: DurableContext) -> str:
        result = agent.run(ctx, "What are ledgers?")
        seen.append(result.ledger)
        return str(result.output)

    clock = VirtualClock()
    with LocalRuntime(tmp_path / "lost.db", clock=clock) as rt:
        execution_id = rt.start(handler, {})
        with pytest.raises(Crash):
            rt.run_until_idle()
        resume(rt, clock, execution_id)
        info = rt.get(execution_id)
        history = rt.history(execution_id)
        ops = rt.operations(execution_id)
    assert info.status == "SUCCEEDED" and info.result == "Ledgers are durable."
    assert sent == [1, 2, 2]  # three requests went out: two answered, one lost with the crash

    [ledger] = seen
    assert (ledger.paid_calls, ledger.lost_calls, ledger.reused_calls) == (2, 1, 1)
    assert ledger.billed_calls == len(sent)
    model = "scripted:model"
    assert ledger.lost[model].usage == usage_of(2)  # estimated at the retry's usage
    assert ledger.total_cost == pytest.approx(PRICE.cost(usage_of(1)) + 2 * PRICE.cost(usage_of(2)))
    assert ledger.saved_cost == pytest.approx(PRICE.cost(usage_of(1)))  # turn 1 was reused, not paid again

    # the interrupted attempt is on the record; the answer carries the count
    failures = [e for e in history if e["EventType"] == "StepFailed" and e.get("SubType") == "ModelCall"]
    assert [f["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] for f in failures] == \
        ["duragent.StepInterruptedError"]
    from_history = ledger_from_history(history, PRICES)
    from_ops = agent_ledger(ops, PRICES, history=history)
    assert from_ops is not None
    for view in (from_history, from_ops):  # what `duragent show` and the console compute
        assert view.to_dict() == ledger.to_dict()
    assert replayed_model_calls(history) == {next(e["Id"] for e in history
                                                  if e["EventType"] == "StepSucceeded" and e.get("SubType") == "ModelCall")}


def test_a_call_whose_retry_never_answered_is_still_booked_as_lost(tmp_path: Path) -> None:
    attempts: list[int] = []

    def brain(request: ModelRequest) -> ModelResponse:
        attempts.append(1)
        if len(attempts) <= 2:
            raise Crash()
        raise ModelAuthError("the key was revoked", status_code=401)

    agent = Agent(FunctionModel(brain, name="model"), prices=PRICES)
    clock = VirtualClock()
    with LocalRuntime(tmp_path / "dead.db", clock=clock) as rt:
        execution_id = rt.start(lambda event, ctx: agent.run(ctx, "hi").output, {})
        for _ in range(2):
            with pytest.raises(Crash):
                rt.run_until_idle()
            clock.advance(rt.lease_seconds + 1)
        rt.run_until_idle()
        assert rt.get(execution_id).status == "FAILED"
        ops = rt.operations(execution_id)
        history = rt.history(execution_id)
    ledger = agent_ledger(ops, PRICES, history=history)
    assert ledger is not None and (ledger.paid_calls, ledger.lost_calls) == (0, 2)  # the 401 was not billed
    assert ledger_from_history(history, PRICES).lost_calls == 2


def test_provider_errors_are_failed_calls_not_lost_ones(tmp_path: Path) -> None:
    attempts: list[int] = []

    def brain(request: ModelRequest) -> ModelResponse | str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ModelRateLimitError("slow down", status_code=429, retry_after=1)
        return "fine"

    agent = Agent(FunctionModel(brain, name="model"), prices=PRICES)
    with LocalRuntime(tmp_path / "429.db", clock=VirtualClock()) as rt:
        info = rt.run(lambda event, ctx: {"lost": agent.run(ctx, "hi").ledger.lost_calls}, {})
        history = rt.history(info.id)
    assert info.result == {"lost": 0} and len(attempts) == 2
    assert ledger_from_history(history).lost_calls == 0


def test_the_count_of_interrupted_attempts_survives_other_failures(tmp_path: Path) -> None:
    """crash, error, crash, success: the last attempt knows two attempts were interrupted."""
    plan = ["crash", "error", "crash", "ok"]
    seen: list[tuple[int, int]] = []

    def pay() -> str:
        context = step_context()
        seen.append((context.attempt, context.interrupted_attempts))
        what = plan[len(seen) - 1]
        if what == "crash":
            raise Crash()
        if what == "error":
            raise ValueError("declined")
        return "paid"

    config = StepConfig(semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
                        retry=RetryPolicy.exponential(max_attempts=6, initial_delay=1, jitter=False))
    clock = VirtualClock()
    with LocalRuntime(tmp_path / "count.db", clock=clock) as rt:
        execution_id = rt.start(lambda event, ctx: ctx.step(pay, name="pay", config=config), {})
        for _ in range(2):
            with pytest.raises(Crash):
                rt.run_until_idle()
            clock.advance(rt.lease_seconds + 1)
        rt.run_until_idle()
        assert rt.get(execution_id).result == "paid"
    # attempts 1 and 3 crashed (each then recorded as an interrupted attempt of its own)
    assert [interrupted for _, interrupted in seen] == [0, 1, 1, 2]


# -- the books ----------------------------------------------------------------------------------------
def response(usage: Usage, *, batch: bool = False, lost: int = 0, model: str = "scripted:x") -> ModelResponse:
    return ModelResponse(content=[TextBlock(text="ok")], stop_reason="end_turn", usage=usage, model=model,
                         batch=batch, lost_in_flight=lost)


def test_the_books_and_their_prices() -> None:
    ledger = Ledger(prices=PRICES)
    cached = Usage(input_tokens=10, output_tokens=20, cache_read_tokens=1000, cache_write_tokens=400)
    ledger.record(response(cached))
    ledger.record(response(Usage(input_tokens=1000, output_tokens=100), batch=True))
    ledger.record(response(Usage(input_tokens=500, output_tokens=50), lost=2), replayed=True)
    cache_cost = (10 * 3.0 + 20 * 15.0 + 1000 * 0.3 + 400 * 3.75) / 1e6  # reads and writes at their own rates
    batch_cost = (1000 * 3.0 + 100 * 15.0) / 1e6 / 2  # the batch rate: half
    answer_cost = (500 * 3.0 + 50 * 15.0) / 1e6
    assert ledger.paid_cost == pytest.approx(cache_cost + batch_cost + answer_cost)
    assert ledger.lost_cost == pytest.approx(2 * answer_cost)
    assert ledger.saved_cost == pytest.approx(answer_cost)
    assert ledger.total_cost == pytest.approx(ledger.paid_cost + ledger.lost_cost)
    assert (ledger.paid_calls, ledger.lost_calls, ledger.reused_calls, ledger.billed_calls) == (3, 2, 1, 5)
    assert ledger.total_usage.input_tokens == 10 + 1000 + 500 + 2 * 500
    data = ledger.to_dict()
    assert data["calls"] == {"paid": 3, "lost_in_flight": 2, "reused": 1}
    assert data["paid"]["scripted:x"]["batch_calls"] == 1
    assert data["lost_usd"] == pytest.approx(2 * answer_cost, abs=1e-6)
    text = ledger.format()
    assert "lost in flight" in text and "(1 batch)" in text and "reused 1 of them" in text and "billed $" in text
    merged = Ledger(prices=PRICES)
    merged.merge(ledger)
    merged.merge(ledger)
    assert merged.billed_calls == 10 and merged.total_cost == pytest.approx(2 * ledger.total_cost)


# -- prompt caching -------------------------------------------------------------------------------------------
def test_cache_breakpoints_go_on_tools_system_and_a_conversation_with_history() -> None:
    one = {"model": "m", "system": "Be brief.", "tools": [{"name": "a"}, {"name": "b"}],
           "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    marked = place_cache_breakpoints(one, PromptCaching())
    eph = {"type": "ephemeral"}
    assert marked["system"] == [{"type": "text", "text": "Be brief.", "cache_control": eph}]
    assert marked["tools"] == [{"name": "a"}, {"name": "b", "cache_control": eph}]
    assert marked["messages"] == one["messages"]  # one message: nothing would read its cache
    assert one["system"] == "Be brief."  # the input is not changed

    long = {**one, "messages": [*one["messages"], {"role": "assistant", "content": [{"type": "text", "text": "yo"}]},
                                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}]}]}
    marked = place_cache_breakpoints(long, PromptCaching(ttl="1h", tools=False))
    hour = {"type": "ephemeral", "ttl": "1h"}
    assert marked["messages"][-1]["content"][-1]["cache_control"] == hour
    assert marked["system"][0]["cache_control"] == hour and "cache_control" not in marked["tools"][-1]
    assert place_cache_breakpoints(long, None) is long


# -- OpenTelemetry -------------------------------------------------------------------------------------------
def test_spans_carry_each_model_calls_cost_and_the_runs_ledger(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    crash_on = {1}

    def brain(request: ModelRequest) -> ModelResponse:
        if crash_on:
            crash_on.clear()
            raise Crash()
        return ModelResponse(content=[TextBlock(text="done")], stop_reason="end_turn", usage=usage_of(3), model="")

    agent = Agent(FunctionModel(brain, name="model"), prices=PRICES, name="traced")
    clock = VirtualClock()
    with LocalRuntime(tmp_path / "otel.db", clock=clock, plugins=[TracingPlugin(provider)]) as rt:
        execution_id = rt.start(lambda event, ctx: agent.run(ctx, "go").output, {})
        with pytest.raises(Crash):
            rt.run_until_idle()
        resume(rt, clock, execution_id)
        assert rt.get(execution_id).status == "SUCCEEDED"
    spans = exporter.get_finished_spans()
    [paid] = [s for s in spans if s.name.startswith("durable.attempt") and "gen_ai.usage.input_tokens" in s.attributes]
    assert paid.attributes["gen_ai.request.model"] == "scripted:model"
    assert paid.attributes["gen_ai.usage.input_tokens"] == 300
    assert paid.attributes["duragent.model_call.lost_in_flight"] == 1
    assert paid.attributes["duragent.model_call.cost_usd"] == pytest.approx(PRICE.cost(usage_of(3)))
    [run] = [s for s in spans if s.name == "durable.invocation" and "duragent.ledger.paid_calls" in s.attributes]
    assert run.attributes["duragent.agent.name"] == "traced"
    assert (run.attributes["duragent.ledger.paid_calls"], run.attributes["duragent.ledger.lost_calls"]) == (1, 1)
    assert run.attributes["duragent.ledger.total_usd"] == pytest.approx(2 * PRICE.cost(usage_of(3)))
