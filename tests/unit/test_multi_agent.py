"""Multi-turn input, handoffs, agents as tools and quick runs, on scripted models, a virtual clock
and a real SQLite file.

What is checked: a run continues a conversation and says what it added; a handoff goes on with the
other agent's instructions and tools over the same conversation, durably; an agent called as a tool
runs in its own child context, its spend lands in the caller's ledger (reused on replay, never
paid twice) and counts against the caller's budget, which suspends for a person and continues from
the same count on replay; quick runs work outside durable functions and say what they cannot do.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from duragent.agents import Agent, AgentError, Budget, pending_reviews
from duragent.agents.messages import (
    Message,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolCall,
    ToolResult,
    Usage,
)
from duragent.agents.models import FunctionModel, ScriptedModel
from duragent.durable import AsyncDurableContext, DurableContext, LocalRuntime, UsageError
from duragent.tools import tool


def call(name: str, call_id: str = "c1", **arguments: Any) -> ModelResponse:
    return ModelResponse(content=[ToolCall(id=call_id, name=name, arguments=arguments)], stop_reason="tool_use",
                         model="scripted:test")


def texts(request: ModelRequest) -> list[str]:
    return [b.text for m in request.messages for b in m.content if isinstance(b, TextBlock)]


def drive(rt: LocalRuntime) -> None:
    rt.run_until_idle(skip_time=False)


# -- multi-turn input --------------------------------------------------------------------------------
def test_a_run_continues_a_history_and_returns_what_it_added(rt: LocalRuntime) -> None:
    model = FunctionModel(lambda req: f"answer {len(req.messages)}")
    agent = Agent(model, name="chat")
    seen: dict[str, Any] = {}

    def job(event: dict[str, Any], ctx: DurableContext) -> Any:
        first = agent.run(ctx, "What is 2+2?")
        second = agent.run(ctx, "And doubled?", history=first.messages)
        third = agent.run(ctx, history=[*second.messages, {"role": "user", "content": "provider-style follow-up"}])
        seen.update(first=first, second=second, third=third)
        return [m.model_dump(mode="json") for m in third.new_messages]

    execution_id = rt.start(job, {})
    drive(rt)
    assert rt.get(execution_id).status == "SUCCEEDED"
    first, second, third = seen["first"], seen["second"], seen["third"]
    assert [len(r.new_messages) for r in (first, second, third)] == [2, 2, 1]  # the third question was history
    assert second.messages[:2] == first.messages and second.history_length == 2
    assert texts(model.requests[2]) == ["What is 2+2?", "answer 1", "And doubled?", "answer 3",
                                        "provider-style follow-up"]
    assert third.output == "answer 5"


def test_a_history_that_does_not_end_with_a_question_is_refused() -> None:
    agent = Agent(FunctionModel(lambda req: "x"), name="chat")
    with pytest.raises(UsageError, match="nothing to answer"):
        agent.run_sync(history=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])


# -- handoffs ------------------------------------------------------------------------------------------
def test_a_handoff_continues_the_conversation_with_the_other_agent(rt: LocalRuntime) -> None:
    @tool
    def refund(order: str) -> str:
        """Refund an order.

        Args:
            order: the order id.
        """
        return f"refunded {order}"

    billing_model = ScriptedModel([call("refund", order="A-1"), "Your refund for A-1 is on its way."])
    billing = Agent(billing_model, name="billing", system="You handle billing.", tools=[refund],
                    description="Refunds and invoices")
    triage_model = ScriptedModel([ModelResponse(content=[TextBlock(text="Passing you to billing."),
                                                         ToolCall(id="h1", name="transfer_to_billing")],
                                                stop_reason="tool_use", model="scripted:test")])
    triage = Agent(triage_model, name="triage", system="You route requests.", handoffs=[billing])
    holder: dict[str, Any] = {}

    def job(event: dict[str, Any], ctx: DurableContext) -> Any:
        result = triage.run(ctx, "Please refund order A-1")
        holder["result"] = result
        return result.output

    execution_id = rt.start(job, {})
    drive(rt)
    assert rt.get(execution_id).result == "Your refund for A-1 is on its way."
    offered = {t.name: t.description for t in triage_model.requests[0].tools}
    assert offered == {"transfer_to_billing": "Refunds and invoices"}
    first_billing = billing_model.requests[0]
    assert first_billing.system == "You handle billing." and [t.name for t in first_billing.tools] == ["refund"]
    assert texts(first_billing) == ["Please refund order A-1", "Passing you to billing."]
    handed = first_billing.messages[-1].content[0]
    assert isinstance(handed, ToolResult) and "Transferred to billing" in handed.content
    assert holder["result"].last_agent is billing
    names = [e["Name"] for e in rt.history(execution_id) if e["EventType"] == "StepSucceeded"]
    assert names == ["triage: model call 1", "billing: model call 2", "tool:refund", "billing: model call 3"]
    openings = {op.Name: ModelResponse.model_validate_json(op.StepDetails.Result).opening  # type: ignore[union-attr]
                for op in rt.operations(execution_id) if op.SubType == "ModelCall"}
    assert openings["triage: model call 1"] is not None and openings["triage: model call 1"].system == \
        "You route requests."
    took_over = openings["billing: model call 2"]  # what the console shows billing began from
    assert took_over is not None and (took_over.system, took_over.prompt) == ("You handle billing.",
                                                                              "Please refund order A-1")
    assert openings["billing: model call 3"] is None
    # replay rebuilds the same run without calling either model again
    holder.clear()
    calls = (triage_model.calls, billing_model.calls)
    job({}, _replay_context(rt, execution_id))
    assert holder["result"].last_agent is billing and (triage_model.calls, billing_model.calls) == calls


def _replay_context(rt: LocalRuntime, execution_id: str) -> DurableContext:
    """A context over the recorded journal of a finished execution (a read-only replay)."""
    from duragent.durable.state import ExecutionState

    state = ExecutionState(arn=f"x/{execution_id}", token="t", operations=rt.operations(execution_id),
                           service=rt.service, now=rt.clock.now)
    state.read_only = True
    return DurableContext(state)


def test_a_handoff_tool_name_must_not_clash_with_a_tool() -> None:
    @tool
    def transfer_to_billing() -> str:
        """Clash."""
        return ""

    with pytest.raises(UsageError, match="already taken"):
        Agent(FunctionModel(lambda r: ""), tools=[transfer_to_billing],
              handoffs=[Agent(FunctionModel(lambda r: ""), name="billing")])


# -- agents as tools -------------------------------------------------------------------------------------
EXPENSIVE = Usage(input_tokens=100_000, output_tokens=10_000)  # $0.45 at the scripted price ($3 / $15)


def researcher(cost: Usage = EXPENSIVE, calls: int = 1) -> Agent:
    def answer(request: ModelRequest) -> ModelResponse:
        done = sum(1 for m in request.messages if m.role == "assistant")
        if done + 1 < calls:
            return ModelResponse(content=[ToolCall(id=f"n{done}", name="note", arguments={})], stop_reason="tool_use",
                                 usage=cost, model="scripted:research")
        return ModelResponse(content=[TextBlock(text=f"found: {texts(request)[0]}")], stop_reason="end_turn",
                             usage=cost, model="scripted:research")

    @tool
    def note() -> str:
        """Take a note."""
        return "noted"

    return Agent(FunctionModel(answer), name="researcher", tools=[note], description="Finds things out")


def test_an_agent_as_a_tool_runs_durably_and_its_spend_rolls_up(rt: LocalRuntime) -> None:
    sub = researcher()
    boss_model = ScriptedModel([
        ModelResponse(content=[ToolCall(id="a", name="researcher", arguments={"input": "topic A"}),
                               ToolCall(id="b", name="researcher", arguments={"input": "topic B"})],
                      stop_reason="tool_use", model="scripted:boss"),
        "summary done"], name="boss")
    boss = Agent(boss_model, name="boss", tools=[sub.as_tool()])
    ledgers: list[Any] = []

    def job(event: dict[str, Any], ctx: DurableContext) -> Any:
        result = boss.run(ctx, "research A and B")
        ledgers.append(result.ledger)
        return result.output

    execution_id = rt.start(job, {})
    drive(rt)
    assert rt.get(execution_id).result == "summary done"
    results = [b for b in boss_model.requests[1].messages[-1].content if isinstance(b, ToolResult)]
    assert [r.content for r in results] == ["found: topic A", "found: topic B"]
    assert all(r.spend is None for r in results), "the spend never reaches the conversation"
    ledger = ledgers[-1]
    assert ledger.paid_calls == 4 and ledger.reused_calls == 0
    assert set(ledger.paid) == {"scripted:boss", "scripted:research"}
    assert ledger.paid["scripted:research"].calls == 2
    assert ledger.total_cost == pytest.approx(2 * 0.45 + ledger.paid["scripted:boss"].cost)
    contexts = [e["Name"] for e in rt.history(execution_id) if e["EventType"] == "ContextSucceeded"]
    assert contexts.count("agent:researcher") == 2
    # replayed, the sub-runs are read back from their checkpoints: every call reused, the bill the same
    job({}, _replay_context(rt, execution_id))
    assert ledgers[-1].reused_calls == 4 and ledgers[-1].paid_calls == 4
    assert ledgers[-1].total_cost == pytest.approx(ledger.total_cost)


def test_a_sub_agents_spend_suspends_the_parents_budget(rt: LocalRuntime) -> None:
    sub = researcher(calls=4)  # $0.45 a call
    boss_model = ScriptedModel([call("researcher", input="dig"), "all done"])
    boss = Agent(boss_model, name="boss", tools=[sub.as_tool()], budget=Budget(max_usd=1.0))

    def job(event: dict[str, Any], ctx: DurableContext) -> Any:
        result = boss.run(ctx, "go")
        return {"output": result.output, "cost": result.ledger.total_cost}

    execution_id = rt.start(job, {})
    drive(rt)
    # three research calls ($1.35) pass the boss's $1: the sub-agent asks the boss's reviewer
    # before its fourth
    pending = pending_reviews(rt)
    assert len(pending) == 1 and pending[0]["request"]["kind"] == "budget"
    assert pending[0]["name"] == "boss: budget 1 (researcher)"
    assert "spent by researcher" in pending[0]["request"]["title"]
    assert sum(1 for e in rt.history(execution_id) if e.get("SubType") == "ModelCall"
               and e["EventType"] == "StepSucceeded") == 4
    rt.send_callback_success(pending[0]["callback_id"], json.dumps({"approved": True}))
    drive(rt)
    # the approval holds for the boss too: it continues to its answer without asking again
    info = rt.get(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result["output"] == "all done" and info.result["cost"] > 1.0
    assert pending_reviews(rt) == []


def test_a_refused_budget_in_a_sub_agent_stops_the_parent(rt: LocalRuntime) -> None:
    boss = Agent(ScriptedModel([call("researcher", input="dig"), "never"]), name="boss",
                 tools=[researcher(calls=3).as_tool()], budget=Budget(max_usd=0.5))
    execution_id = rt.start(lambda event, ctx: boss.run(ctx, "go").output, {})
    drive(rt)
    [review] = pending_reviews(rt)
    rt.send_callback_success(review["callback_id"], json.dumps({"approved": False, "feedback": "too dear"}))
    drive(rt)
    info = rt.get(execution_id)
    assert info.status == "FAILED" and info.error is not None
    assert info.error["ErrorType"] == "duragent.BudgetExceededError" and "too dear" in info.error["ErrorMessage"]


def test_a_failing_sub_agent_is_an_error_result_the_caller_can_react_to(rt: LocalRuntime) -> None:
    def fail(request: ModelRequest) -> ModelResponse:
        return ModelResponse(content=[ToolCall(id="x", name="note", arguments={})], stop_reason="tool_use",
                             model="scripted:research")

    looping = Agent(FunctionModel(fail), name="looper", max_turns=2, tools=[researcher().tools["note"]])
    boss_model = ScriptedModel([call("looper", input="x"), "recovered"])
    boss = Agent(boss_model, name="boss", tools=[looping.as_tool()])
    execution_id = rt.start(lambda event, ctx: boss.run(ctx, "go").output, {})
    drive(rt)
    assert rt.get(execution_id).result == "recovered"
    [result] = [b for b in boss_model.requests[1].messages[-1].content if isinstance(b, ToolResult)]
    assert result.is_error and "did not finish within 2 turns" in result.content


def test_agent_tools_work_in_async_handlers(rt: LocalRuntime) -> None:
    sub = researcher(cost=Usage(input_tokens=10, output_tokens=1))
    boss = Agent(ScriptedModel([call("researcher", input="async topic"), "ok"]), name="boss", tools=[sub.as_tool()])

    async def job(event: dict[str, Any], ctx: AsyncDurableContext) -> Any:
        result = await boss.run(ctx, "go")
        return [result.output, result.ledger.paid_calls]

    execution_id = rt.start(job, {})
    drive(rt)
    assert rt.get(execution_id).result == ["ok", 3]


# -- quick runs ----------------------------------------------------------------------------------------
def test_quick_runs_outside_a_durable_function() -> None:
    agent = Agent(FunctionModel(lambda req: f"echo {texts(req)[-1]}"), name="echo")
    result = agent.run_sync("hello")
    assert result.output == "echo hello" and result.ledger.paid_calls == 1
    assert agent.run(None, "again", history=result.messages).output == "echo again"
    streamed: list[str] = []
    agent.run_sync("streamed", on_text=streamed.append)
    assert "".join(streamed) == "echo streamed"
    assert "in-memory" in (Agent.run_sync.__doc__ or "")


def test_a_quick_run_on_a_running_loop_is_awaited() -> None:
    agent = Agent(FunctionModel(lambda req: "from a thread"), name="echo")

    async def main() -> Any:
        return (await agent.run(None, "hi")).output

    assert asyncio.run(main()) == "from a thread"


def test_a_quick_run_cannot_wait_for_a_person_and_says_so() -> None:
    @tool(requires_approval=True)
    def delete_everything() -> str:
        """Dangerous."""
        return "gone"

    agent = Agent(ScriptedModel([call("delete_everything")]), name="careful", tools=[delete_everything])
    with pytest.raises(AgentError, match="waits for a person.*approval:delete_everything"):
        agent.run_sync("clean up")


def test_a_prompt_where_the_context_belongs_is_explained() -> None:
    agent = Agent(FunctionModel(lambda req: "x"))
    with pytest.raises(UsageError, match="run_sync"):
        agent.run("hello")  # type: ignore[call-overload]


def test_quick_run_errors_surface_as_themselves() -> None:
    agent = Agent(ScriptedModel([call("missing_tool")] * 3), name="lost", max_turns=2)
    with pytest.raises(AgentError, match="did not finish within 2 turns"):
        agent.run_sync("go")


def test_messages_are_json_ready() -> None:
    result = Agent(FunctionModel(lambda req: "ok"), name="x").run_sync("q")
    assert json.loads(json.dumps([m.model_dump(mode="json") for m in result.new_messages]))[0]["role"] == "user"
    assert isinstance(result.new_messages[0], Message)

