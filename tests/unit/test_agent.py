"""Agent: the durable tool loop on scripted models, a virtual clock and a real SQLite file.

What is checked: the loop itself (tools, parallel calls, errors the model sees, structured output,
max_turns), what replay means for an agent (the conversation is rebuilt from checkpoints, the model
is not called again, streaming happens once, an edited prompt is noticed), budgets and human review
(approve, edit, reject, time out, ask_human), and the review commands of the CLI.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, BeforeValidator, Field

from duragent.agents import (
    Agent,
    Budget,
    BudgetExceededError,
    MaxTurnsExceededError,
    OutputValidationError,
    PromptChangedError,
    ask_human,
    pending_reviews,
)
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, ToolResult, Usage
from duragent.agents.models import FunctionModel, ScriptedModel
from duragent.durable import DurableContext, Duration, LocalRuntime, VirtualClock
from duragent.prompts import PromptTemplate
from duragent.tools import tool

REPO = Path(__file__).resolve().parents[2]


# -- helpers ---------------------------------------------------------------------------------------
def drive(rt: LocalRuntime) -> None:
    """Run until idle without skipping time: a pending review stays pending (its timeout is days away)."""
    rt.run_until_idle(skip_time=False)


def only_execution(rt: LocalRuntime) -> str:
    rows = rt.list()
    assert len(rows) == 1
    return str(rows[0]["id"])


def reviews(rt: LocalRuntime) -> list[dict[str, Any]]:
    return pending_reviews(rt)


def answer(rt: LocalRuntime, callback_id: str, decision: dict[str, Any]) -> None:
    rt.send_callback_success(callback_id, json.dumps(decision))
    drive(rt)


def tool_results(request: ModelRequest) -> list[ToolResult]:
    """The tool results the model was sent in the last user message of a request."""
    last = request.messages[-1]
    assert last.role == "user"
    return [b for b in last.content if isinstance(b, ToolResult)]


def model_calls(rt: LocalRuntime, execution_id: str) -> int:
    return sum(1 for e in rt.history(execution_id)
               if e["EventType"] == "StepSucceeded" and e.get("SubType") == "ModelCall")


def error_type(rt: LocalRuntime, execution_id: str) -> str:
    info = rt.get(execution_id)
    assert info.status == "FAILED", info
    assert info.error is not None
    return str(info.error["ErrorType"])


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first.
        b: the second.
    """
    return a + b


# -- the loop --------------------------------------------------------------------------------------
def test_tool_loop_calls_tools_and_returns_the_final_answer(rt: LocalRuntime) -> None:
    model = ScriptedModel([ScriptedModel.tool_call("add", {"a": 2, "b": 3}, text="Let me add."),
                           ScriptedModel.tool_call("add", {"a": 5, "b": 10}),
                           "The answer is 15."])
    agent = Agent(model, tools=[add], system="You add numbers.", name="adder")

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        result = agent.run(ctx, "What is 2 + 3 + 10?")
        return {"output": result.output, "turns": result.turns, "roles": [m.role for m in result.messages],
                "tokens": result.usage.total_tokens, "paid": result.ledger.paid_calls}

    info = rt.run(handler, {})
    assert info.status == "SUCCEEDED", info.error
    assert info.result["output"] == "The answer is 15."
    assert info.result["turns"] == 3
    assert info.result["roles"] == ["user", "assistant", "user", "assistant", "user", "assistant"]
    assert info.result["paid"] == 3 and info.result["tokens"] > 0
    assert model.calls == 3
    # what the model was told, and what it got back
    first = model.requests[0]
    assert first.system == "You add numbers."
    assert [t.name for t in first.tools] == ["add"]
    assert first.tools[0].parameters["required"] == ["a", "b"]
    assert [r.content for r in tool_results(model.requests[1])] == ["5"]
    assert [r.content for r in tool_results(model.requests[2])] == ["15"]
    # each model call and each tool call is a step of its own
    names = [(e["EventType"], e.get("Name")) for e in rt.history(info.id) if e["EventType"] == "StepSucceeded"]
    assert names == [("StepSucceeded", "adder: model call 1"), ("StepSucceeded", "tool:add"),
                     ("StepSucceeded", "adder: model call 2"), ("StepSucceeded", "tool:add"),
                     ("StepSucceeded", "adder: model call 3")]
    assert model_calls(rt, info.id) == 3


def test_tool_calls_of_one_response_run_in_parallel_and_results_keep_call_order(rt: LocalRuntime) -> None:
    barrier = threading.Barrier(3, timeout=5)  # all three tools must be running at once to pass it
    finished: list[str] = []

    @tool
    def fetch(key: str, delay: float) -> str:
        """Fetch a value.

        Args:
            key: which value.
            delay: how long it takes.
        """
        barrier.wait()
        time.sleep(delay)
        finished.append(key)
        return f"value of {key}"

    model = ScriptedModel([ScriptedModel.tool_calls(("fetch", {"key": "slow", "delay": 0.2}, "c1"),
                                                    ("fetch", {"key": "medium", "delay": 0.1}, "c2"),
                                                    ("fetch", {"key": "fast", "delay": 0.0}, "c3")),
                           "done"])
    agent = Agent(model, tools=[fetch])
    info = rt.run(lambda event, ctx: agent.run(ctx, "fetch all three").output, {})
    assert info.status == "SUCCEEDED", info.error
    assert finished == ["fast", "medium", "slow"]  # they did finish in another order...
    results = tool_results(model.requests[1])
    assert [(r.tool_call_id, r.content) for r in results] == [  # ...but go back in call order
        ("c1", "value of slow"), ("c2", "value of medium"), ("c3", "value of fast")]


def test_tool_errors_and_invalid_arguments_become_error_results_the_model_sees(rt: LocalRuntime) -> None:
    @tool
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    model = ScriptedModel([
        ScriptedModel.tool_calls(("divide", {"a": 1, "b": 0}, "raises"), ("add", {"a": 1, "b": "many"}, "invalid"),
                                 ("add", {"a": 1}, "missing"), ("nope", {}, "unknown")),
        ScriptedModel.tool_call("divide", {"a": 1, "b": 4}, "fixed"),
        "a quarter"])
    agent = Agent(model, tools=[divide, add])
    info = rt.run(lambda event, ctx: agent.run(ctx, "divide").output, {})
    assert info.status == "SUCCEEDED", info.error
    assert info.result == "a quarter"
    results = {r.tool_call_id: r for r in tool_results(model.requests[1])}
    assert list(results) == ["raises", "invalid", "missing", "unknown"]
    assert all(r.is_error for r in results.values())
    assert "ZeroDivisionError" in results["raises"].content
    assert "b:" in results["invalid"].content and "integer" in results["invalid"].content
    assert "b:" in results["missing"].content and "required" in results["missing"].content.lower()
    assert "unknown tool 'nope'" in results["unknown"].content and "divide" in results["unknown"].content
    assert [(r.content, r.is_error) for r in tool_results(model.requests[2])] == [("0.25", False)]


class Weather(BaseModel):
    city: str
    celsius: float = Field(ge=-90, le=60)


def test_structured_output_is_validated_and_errors_are_fed_back(rt: LocalRuntime) -> None:
    model = ScriptedModel([
        ScriptedModel.tool_call("final_result", {"city": "Oslo", "celsius": 500}),  # out of range
        "not json at all",  # plain text where structured output is expected
        ScriptedModel.tool_call("final_result", {"city": "Oslo", "celsius": -3.5}),
    ])
    agent = Agent(model, output_type=Weather, output_retries=2)

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        result = agent.run(ctx, "Weather in Oslo?")
        assert isinstance(result.output, Weather)
        return result.output.model_dump()

    info = rt.run(handler, {})
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"city": "Oslo", "celsius": -3.5}
    assert "final_result" in [t.name for t in model.requests[0].tools]
    feedback = tool_results(model.requests[1])
    assert len(feedback) == 1 and feedback[0].is_error
    assert "celsius" in feedback[0].content and "less than or equal to 60" in feedback[0].content
    nudge = model.requests[2].messages[-1]
    assert nudge.role == "user" and "final_result" in "".join(
        b.text for b in nudge.content if isinstance(b, TextBlock))


def test_structured_output_as_json_text_is_accepted(rt: LocalRuntime) -> None:
    model = ScriptedModel(['{"city": "Lima", "celsius": 19}'])
    agent = Agent(model, output_type=Weather)
    info = rt.run(lambda event, ctx: agent.run(ctx, "Lima?").output.model_dump(), {})
    assert info.result == {"city": "Lima", "celsius": 19}


def test_structured_output_gives_up_after_bounded_retries(rt: LocalRuntime) -> None:
    model = ScriptedModel(default=ScriptedModel.tool_call("final_result", {"city": "Oslo"}))  # celsius missing
    agent = Agent(model, output_type=Weather, output_retries=2)
    info = rt.run(lambda event, ctx: agent.run(ctx, "Oslo?").output, {})
    assert error_type(rt, info.id).endswith("OutputValidationError")
    assert "failed validation 3 times" in info.error["ErrorMessage"]
    assert model.calls == 3  # the first try and two retries, then it stops paying
    assert issubclass(OutputValidationError, Exception)


def test_max_turns_stops_a_model_that_never_finishes(rt: LocalRuntime) -> None:
    model = ScriptedModel(default=ScriptedModel.tool_call("add", {"a": 1, "b": 1}))
    agent = Agent(model, tools=[add], max_turns=4, name="looper")
    info = rt.run(lambda event, ctx: agent.run(ctx, "loop").output, {})
    assert error_type(rt, info.id).endswith("MaxTurnsExceededError")
    assert "looper did not finish within 4 turns" in info.error["ErrorMessage"]
    assert model.calls == 4
    assert issubclass(MaxTurnsExceededError, Exception)


def _split_commas(value: Any) -> list[str]:
    return [part.strip() for part in value.split(",")]  # only strings: not idempotent


def test_tools_get_the_model_arguments_validated_once(rt: LocalRuntime) -> None:
    received: list[list[str]] = []

    @tool
    def tag(names: Annotated[list[str], BeforeValidator(_split_commas)]) -> str:
        """Tag people.

        Args:
            names: comma-separated names.
        """
        received.append(names)
        return "tagged " + " and ".join(names)

    model = ScriptedModel([ScriptedModel.tool_call("tag", {"names": "ann, bob"}), "ok"])
    info = rt.run(lambda event, ctx: Agent(model, tools=[tag]).run(ctx, "tag").output, {})
    assert info.status == "SUCCEEDED", info.error
    assert received == [["ann", "bob"]]
    assert [r.content for r in tool_results(model.requests[1])] == ["tagged ann and bob"]


# -- replay ----------------------------------------------------------------------------------------
def test_streaming_goes_to_on_text_on_the_first_execution_only(rt: LocalRuntime) -> None:
    model = ScriptedModel([ScriptedModel.tool_call("add", {"a": 1, "b": 2}, text="Adding one and two."),
                           "One and two make three."])
    agent = Agent(model, tools=[add])
    streamed: list[str] = []
    invocations: list[int] = []

    def handler(event: Any, ctx: DurableContext) -> str:
        invocations.append(1)
        result = agent.run(ctx, "1+2?", on_text=streamed.append)
        ctx.wait(Duration.from_minutes(5), name="later")  # suspends; the next invocation replays the agent
        return str(result.output)

    info = rt.run(handler, {})
    assert info.status == "SUCCEEDED" and len(invocations) == 2
    assert "".join(streamed) == "Adding one and two.One and two make three."
    assert len(streamed) > 2  # chunks, not whole messages
    assert model.calls == 2


def test_conversation_is_rebuilt_on_replay_without_calling_the_model(rt: LocalRuntime) -> None:
    model = ScriptedModel([ScriptedModel.tool_call("add", {"a": 20, "b": 22}), "42"])
    agent = Agent(model, tools=[add])
    seen: list[dict[str, Any]] = []

    def handler(event: Any, ctx: DurableContext) -> str:
        result = agent.run(ctx, "20+22?")
        seen.append({"messages": [m.model_dump() for m in result.messages], "paid": result.ledger.paid_calls,
                     "reused": result.ledger.reused_calls, "cost": result.cost_usd})
        ctx.wait(Duration.from_seconds(30), name="cool-off")
        return str(result.output)

    rt.start(handler, {})
    drive(rt)  # first invocation: runs the agent, then suspends on the wait
    assert model.calls == 2 and len(seen) == 1
    rt.run_until_idle()  # the wait elapses on the virtual clock; the handler replays from the top
    assert rt.get(only_execution(rt)).result == "42"
    assert model.calls == 2  # not one more request
    first, replayed = seen
    assert replayed["messages"] == first["messages"]
    assert (first["paid"], first["reused"]) == (2, 0)
    # paid counts each answered call once, whichever invocation paid it; reused: answered from
    # the journal this time instead of being paid again
    assert (replayed["paid"], replayed["reused"]) == (2, 2)
    assert replayed["cost"] == pytest.approx(first["cost"]) and first["cost"] > 0


PROMPT_V1 = "---\nname: helper\nvariables: [tone]\n---\nYou are a {tone} assistant.\n"
PROMPT_V2 = "---\nname: helper\nvariables: [tone]\n---\nYou are a {tone} assistant. Be brief.\n"


@tool(requires_approval=True)
def send_email(to: str, subject: str) -> str:
    """Send an email.

    Args:
        to: the recipient's address.
        subject: the subject line.
    """
    SENT.append({"to": to, "subject": subject})
    return f"sent to {to}"


SENT: list[dict[str, str]] = []


@pytest.fixture(autouse=True)
def _reset_sent() -> None:
    SENT.clear()


def _prompt_agent_handler(prompt_file: Path, model: ScriptedModel, on_change: str) -> Any:
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        system = PromptTemplate.from_string(prompt_file.read_text(), name="helper").render(tone="friendly")
        agent = Agent(model, tools=[send_email], system=system, on_prompt_change=on_change)  # type: ignore[arg-type]
        result = agent.run(ctx, "email bob")
        return {"output": result.output, "warnings": result.warnings}

    return handler


@pytest.mark.parametrize("on_change", ["fail", "warn"])
def test_a_prompt_edited_while_suspended_is_noticed(rt: LocalRuntime, tmp_path: Path, on_change: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    prompt_file = tmp_path / "helper.md"
    prompt_file.write_text(PROMPT_V1)
    model = ScriptedModel([ScriptedModel.tool_call("send_email", {"to": "bob@example.com", "subject": "hi"}),
                           "Sent."])
    rt.start(_prompt_agent_handler(prompt_file, model, on_change), {})
    drive(rt)
    (review,) = reviews(rt)  # suspended on the approval, after model call 1
    prompt_file.write_text(PROMPT_V2)  # someone edits the prompt while it waits
    with caplog.at_level(logging.WARNING):
        answer(rt, review["callback_id"], {"approved": True})
    execution_id = only_execution(rt)
    if on_change == "fail":
        assert error_type(rt, execution_id).endswith("PromptChangedError")
        message = rt.get(execution_id).error["ErrorMessage"]
        assert "model call #1" in message and "on_prompt_change='warn'" in message
        assert model.calls == 1
        assert issubclass(PromptChangedError, Exception)
    else:
        info = rt.get(execution_id)
        assert info.status == "SUCCEEDED", info.error
        assert info.result["output"] == "Sent."
        assert len(info.result["warnings"]) == 1 and "different system prompt" in info.result["warnings"][0]
        assert any("different system prompt" in r.getMessage() for r in caplog.records)
        assert model.requests[1].system == "You are a friendly assistant. Be brief."
        assert SENT == [{"to": "bob@example.com", "subject": "hi"}]


# -- budget ----------------------------------------------------------------------------------------
def _costly(reply: ModelResponse | str, tokens: int = 600) -> ModelResponse:
    response = ScriptedModel.reply(reply) if isinstance(reply, str) else reply
    return response.model_copy(update={"usage": Usage(input_tokens=tokens - 100, output_tokens=100)})


@pytest.mark.parametrize("approve", [True, False])
def test_budget_reached_suspends_on_a_human_decision(rt: LocalRuntime, approve: bool) -> None:
    model = ScriptedModel([_costly(ScriptedModel.tool_call("add", {"a": 1, "b": 1})),
                           _costly(ScriptedModel.tool_call("add", {"a": 2, "b": 2})),
                           _costly("four")])
    agent = Agent(model, tools=[add], budget=Budget(max_tokens=1000), name="spender")
    rt.start(lambda event, ctx: agent.run(ctx, "add things").output, {})
    drive(rt)
    assert model.calls == 2  # 1200 tokens spent after two calls: it asks before a third
    (review,) = reviews(rt)
    assert review["request"]["kind"] == "budget"
    assert "spender reached its budget" in review["request"]["title"] and "1200 tokens" in review["request"]["title"]
    if approve:
        answer(rt, review["callback_id"], {"approved": True})
        info = rt.get(only_execution(rt))
        assert info.status == "SUCCEEDED", info.error
        assert info.result == "four" and model.calls == 3
        assert reviews(rt) == []  # 1800 < 2000: a second budget's worth was enough
    else:
        answer(rt, review["callback_id"], {"approved": False, "feedback": "too expensive"})
        assert error_type(rt, only_execution(rt)).endswith("BudgetExceededError")
        assert model.calls == 2
        assert issubclass(BudgetExceededError, Exception)


def test_budget_in_dollars(rt: LocalRuntime) -> None:
    from duragent.agents import Price

    model = ScriptedModel(default=_costly(ScriptedModel.tool_call("add", {"a": 1, "b": 1}), tokens=1_000_000))
    agent = Agent(model, tools=[add], budget=Budget(max_usd=1.0), prices={"scripted": Price(1.0, 1.0)})
    rt.start(lambda event, ctx: agent.run(ctx, "spend").output, {})
    drive(rt)
    assert model.calls == 1  # one call costs $1: the next one needs a yes
    (review,) = reviews(rt)
    assert review["request"]["kind"] == "budget" and "$1.0000" in review["request"]["title"]


def test_a_budget_review_that_times_out_stops_the_agent(rt: LocalRuntime) -> None:
    model = ScriptedModel(default=_costly(ScriptedModel.tool_call("add", {"a": 1, "b": 1})))
    agent = Agent(model, tools=[add], budget=Budget(max_tokens=500), approval_timeout=Duration.from_hours(1))
    rt.start(lambda event, ctx: agent.run(ctx, "spend").output, {})
    rt.run_until_idle()  # the virtual clock skips to the review's timeout
    assert error_type(rt, only_execution(rt)).endswith("BudgetExceededError")
    assert model.calls == 1


# -- human review of tool calls ---------------------------------------------------------------------
def _email_agent(model: ScriptedModel, **kwargs: Any) -> Agent:
    return Agent(model, tools=[send_email], system="You send emails.", **kwargs)


def _email_script() -> ScriptedModel:
    def brain(request: ModelRequest) -> ModelResponse | str:
        results = [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]
        if not results:
            return ScriptedModel.tool_call("send_email", {"to": "all@example.com", "subject": "Launch!"},
                                           "call-1", text="Emailing everyone.")
        return f"Outcome: {results[-1].content}"

    return FunctionModel(brain, name="emailer")


def test_a_pending_approval_shows_what_is_asked(rt: LocalRuntime) -> None:
    model = _email_script()
    rt.start(lambda event, ctx: _email_agent(model).run(ctx, "announce the launch").output, {})
    drive(rt)
    (review,) = reviews(rt)
    assert review["execution_id"] == only_execution(rt)
    assert review["name"] == "approval:send_email"
    assert review["request"] == {"kind": "tool_approval", "title": "Run tool send_email?", "tool": "send_email",
                                 "arguments": {"to": "all@example.com", "subject": "Launch!"},
                                 "argument_schema": send_email.parameters, "tool_call_id": "call-1",
                                 "callback_id": review["callback_id"]}
    assert SENT == []
    assert rt.get(only_execution(rt)).status == "RUNNING"


def test_a_rejected_call_never_runs_and_the_model_reads_the_feedback(rt: LocalRuntime) -> None:
    model = _email_script()
    rt.start(lambda event, ctx: _email_agent(model).run(ctx, "announce the launch").output, {})
    drive(rt)
    (review,) = reviews(rt)
    answer(rt, review["callback_id"], {"approved": False, "feedback": "not before Monday"})
    info = rt.get(only_execution(rt))
    assert info.status == "SUCCEEDED", info.error
    assert SENT == []
    (result,) = tool_results(model.requests[-1])
    assert result.is_error and result.tool_call_id == "call-1"
    assert "rejected" in result.content and "not before Monday" in result.content
    assert "not before Monday" in info.result
    assert not any(e.get("Name") == "tool:send_email" for e in rt.history(info.id))


def test_an_edited_approval_runs_the_tool_with_the_edits_merged_and_tells_the_model(rt: LocalRuntime) -> None:
    model = _email_script()
    rt.start(lambda event, ctx: _email_agent(model).run(ctx, "announce the launch").output, {})
    drive(rt)
    (review,) = reviews(rt)
    answer(rt, review["callback_id"], {"approved": True, "edits": {"to": "team@example.com"}})
    info = rt.get(only_execution(rt))
    assert info.status == "SUCCEEDED", info.error
    assert SENT == [{"to": "team@example.com", "subject": "Launch!"}]  # the subject stays as proposed
    notice = 'A reviewer changed the arguments before running: to "all@example.com" -> "team@example.com".'
    assert info.result == f"Outcome: {notice}\nsent to team@example.com"
    # the conversation keeps the model's own call; its result says what ran instead
    call = model.requests[-1].messages[-2].content[-1]
    assert call.arguments == {"to": "all@example.com", "subject": "Launch!"}
    (result,) = tool_results(model.requests[-1])
    assert not result.is_error and result.content == f"{notice}\nsent to team@example.com"


def test_an_edit_the_agent_cannot_use_is_asked_again_and_nothing_runs(rt: LocalRuntime) -> None:
    """An edit sent around the operator paths (a raw callback answer) that does not fit the tool:
    the review is asked again, saying what was wrong; never taken for a yes or a no."""
    model = _email_script()
    rt.start(lambda event, ctx: _email_agent(model).run(ctx, "announce").output, {})
    drive(rt)
    (review,) = reviews(rt)
    answer(rt, review["callback_id"], {"approved": True, "edits": {"to": None}})
    assert SENT == [] and rt.get(only_execution(rt)).status == "RUNNING"
    (again,) = reviews(rt)
    assert again["name"] == "approval:send_email (again 2)"
    assert again["request"]["title"].startswith("Run tool send_email?\n(The previous answer did not fit: ")
    assert "to: None is not of type 'string'" in again["request"]["title"]
    answer(rt, again["callback_id"], {"approved": True})
    assert rt.get(only_execution(rt)).result == "Outcome: sent to all@example.com"
    assert SENT == [{"to": "all@example.com", "subject": "Launch!"}]


def test_several_gated_calls_in_one_response_are_reviewed_one_by_one(rt: LocalRuntime) -> None:
    model = ScriptedModel([ScriptedModel.tool_calls(("send_email", {"to": "a@example.com", "subject": "A"}, "a"),
                                                    ("send_email", {"to": "b@example.com", "subject": "B"}, "b")),
                           "reported"])
    rt.start(lambda event, ctx: _email_agent(model).run(ctx, "two emails").output, {})
    drive(rt)
    pending = {r["request"]["arguments"]["to"]: r for r in reviews(rt)}
    assert sorted(pending) == ["a@example.com", "b@example.com"]
    answer(rt, pending["a@example.com"]["callback_id"], {"approved": True})
    assert SENT == [{"to": "a@example.com", "subject": "A"}]
    assert rt.get(only_execution(rt)).status == "RUNNING" and len(reviews(rt)) == 1  # still waits for b
    answer(rt, pending["b@example.com"]["callback_id"], {"approved": False, "feedback": "not b"})
    assert rt.get(only_execution(rt)).status == "SUCCEEDED"
    assert SENT == [{"to": "a@example.com", "subject": "A"}]
    assert [(r.tool_call_id, r.is_error) for r in tool_results(model.requests[-1])] == [("a", False), ("b", True)]


def test_an_approval_that_times_out_is_a_rejection(rt: LocalRuntime, clock: VirtualClock) -> None:
    model = _email_script()
    agent = _email_agent(model, approval_timeout=Duration.from_hours(2))
    rt.start(lambda event, ctx: agent.run(ctx, "announce").output, {})
    start = clock.now()
    rt.run_until_idle()  # nobody answers; the virtual clock runs to the timeout
    info = rt.get(only_execution(rt))
    assert info.status == "SUCCEEDED", info.error
    assert clock.now() - start >= 2 * 3600
    assert SENT == []
    (result,) = tool_results(model.requests[-1])
    assert result.is_error and "timed out" in result.content


class Headcount(BaseModel):
    people: int
    vegetarian: int = 0


def test_ask_human_suspends_and_validates_the_answer(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        count = ask_human(ctx, "How many people are coming?", Headcount)
        assert isinstance(count, Headcount)
        note = ask_human(ctx, "Anything else?")
        return {"count": count.model_dump(), "note": note}

    rt.start(handler, {})
    drive(rt)
    (review,) = reviews(rt)
    request = review["request"]
    assert request["kind"] == "question" and request["question"] == "How many people are coming?"
    assert request["response_schema"]["properties"]["people"]["type"] == "integer"
    answer(rt, review["callback_id"], {"people": 12, "vegetarian": 3})
    (review,) = reviews(rt)
    assert "response_schema" not in review["request"]
    rt.send_callback_success(review["callback_id"], json.dumps("bring cake"))
    drive(rt)
    info = rt.get(only_execution(rt))
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"count": {"people": 12, "vegetarian": 3}, "note": "bring cake"}


# -- review from the command line ------------------------------------------------------------------
def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), *args], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, text=True, capture_output=True,
                          timeout=60)


def test_reviews_are_listed_approved_with_edits_and_rejected_from_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    model = _email_script()
    agent = _email_agent(model)

    def handler(event: Any, ctx: DurableContext) -> str:
        return str(agent.run(ctx, event["task"]).output)

    with LocalRuntime(db, clock=VirtualClock(start=time.time())) as rt:
        edited_id = rt.start(handler, {"task": "announce"}, execution_id="edited")
        rejected_id = rt.start(handler, {"task": "announce again"}, execution_id="rejected")
        drive(rt)

        listed = cli(db, "list", "--pending", "--json")
        assert listed.returncode == 0, listed.stderr
        items = {item["execution_id"]: item for item in json.loads(listed.stdout)["pending"]}
        assert set(items) == {edited_id, rejected_id}
        for item in items.values():
            assert item["kind"] == "tool_approval"
            assert item["title"] == "Run tool send_email?" and item["name"] == "approval:send_email"
            assert item["arguments"] == {"to": "all@example.com", "subject": "Launch!"}

        edit = json.dumps({"subject": "Launch (internal)"})  # partial: the recipient stays as proposed
        approved = cli(db, "approve", items[edited_id]["callback_id"], "--edit", edit, "--reviewer", "ann")
        assert approved.returncode == 0, approved.stderr
        assert "review approved" in approved.stdout
        rejected = cli(db, "reject", items[rejected_id]["callback_id"], "--feedback", "wrong audience")
        assert rejected.returncode == 0, rejected.stderr
        assert "review rejected" in rejected.stdout
        assert json.loads(cli(db, "list", "--pending", "--json").stdout)["pending"] == []

        drive(rt)
        assert rt.get(edited_id).result.endswith("\nsent to all@example.com")
        assert 'subject "Launch!" -> "Launch (internal)"' in rt.get(edited_id).result
        assert SENT == [{"to": "all@example.com", "subject": "Launch (internal)"}]
        assert rt.get(rejected_id).status == "SUCCEEDED"
        assert "wrong audience" in rt.get(rejected_id).result

        bad = cli(db, "approve", "no-such-callback")
        assert bad.returncode == 2 and "duragent: error:" in bad.stderr


def test_cli_show_prints_the_cost_ledger_of_an_agent_execution(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    model = ScriptedModel([ScriptedModel.tool_call("add", {"a": 1, "b": 2}), "3"])
    agent = Agent(model, tools=[add])
    with LocalRuntime(db, clock=VirtualClock(start=time.time())) as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "1+2").output, {})
    shown = cli(db, "show", info.id, "--json")
    assert shown.returncode == 0, shown.stderr
    ledger = json.loads(shown.stdout)["ledger"]
    assert ledger["paid"]["scripted:model"]["calls"] == 2
    assert ledger["total_usd"] > 0
    text = cli(db, "show", info.id).stdout
    assert "scripted:model" in text and "2 model calls" in text



def test_ask_human_asks_again_when_the_answer_does_not_validate(tmp_path: Path) -> None:
    class Shipping(BaseModel):
        carrier: str
        days: int

    def handler(event: dict, ctx: DurableContext) -> dict:
        return ask_human(ctx, "How should we ship?", Shipping, name="shipping").model_dump()

    rt = LocalRuntime(tmp_path / "ask.db", clock=VirtualClock())
    execution_id = rt.start(handler, {})
    rt.run_until_idle(skip_time=False)  # the 7-day review timeout must not fire
    [(_, first, callback_id)] = rt.pending_callbacks()
    rt.send_callback_success(callback_id, '{"carrier": "ups", "days": "soon"}')
    rt.run_until_idle(skip_time=False)  # the 7-day review timeout must not fire
    [(_, again, callback_id)] = rt.pending_callbacks()
    assert again.Id != first.Id  # a new question, recorded as such
    titles = [r["request"]["title"] for r in pending_reviews(rt)]
    assert "did not fit" in titles[0] and "days" in titles[0]
    rt.send_callback_success(callback_id, '{"carrier": "ups", "days": 2}')
    rt.run_until_idle(skip_time=False)  # the 7-day review timeout must not fire
    assert rt.get(execution_id).result == {"carrier": "ups", "days": 2}
