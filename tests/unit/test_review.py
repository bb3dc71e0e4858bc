"""The review protocol (agents.review): typed requests and decisions, the one rule for what a review
is, every refusal of a decision that does not fit, and what the agent does with an answer: a partial
edit merged over the proposed arguments and the model told what changed, an unfit answer asked
again (never a silent yes or no), through real Agent runs on a virtual clock and a real SQLite file;
and the operator commands of the CLI refusing, with exit 2 and nothing recorded, what would not fit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import AfterValidator, BaseModel, TypeAdapter

from duragent.agents import Agent, Budget, BudgetExceededError, ask_human, pending_reviews
from duragent.agents.messages import ModelRequest, ModelResponse, ToolCall, ToolResult, Usage
from duragent.agents.models import FunctionModel, ScriptedModel
from duragent.agents.review import (
    Answer,
    Approve,
    Decision,
    Reject,
    ReviewError,
    ReviewRequest,
    describe_changes,
    encode_decision,
    merge_edits,
    pause_hint,
    read_decision,
    review_request,
)
from duragent.durable import DurableContext, LocalRuntime, UsageError, VirtualClock
from duragent.tools import tool

REPO = Path(__file__).resolve().parents[2]
PAID: list[tuple[str, int, str]] = []


@pytest.fixture(autouse=True)
def _reset_paid() -> None:
    PAID.clear()


@tool(requires_approval=True)
def pay(to: str, amount: int, memo: str = "") -> str:
    """Pay someone.

    Args:
        to: who gets the money.
        amount: euros.
        memo: a note for the statement.
    """
    PAID.append((to, amount, memo))
    return f"paid {amount} to {to}"


class Headcount(BaseModel):
    people: int
    vegetarian: int = 0


TOOL = ReviewRequest(kind="tool_approval", title="Run tool pay?", tool="pay", arguments={"to": "ann", "amount": 100},
                     argument_schema=pay.parameters, tool_call_id="c1", callback_id="cb-1")
TYPED = ReviewRequest(kind="question", title="How many?", question="How many?",
                      response_schema=TypeAdapter(Headcount).json_schema())
TEXT = ReviewRequest(kind="question", title="Which city?", question="Which city?")
BUDGET = ReviewRequest(kind="budget", title="agent reached its budget. Continue?", question="Spent $1.")


# -- what a review is -------------------------------------------------------------------------------
def test_a_review_is_a_submitter_record_that_is_a_review_request() -> None:
    for request in (TOOL, TYPED, TEXT, BUDGET):
        assert review_request(request.model_dump(exclude_none=True)) == request
    assert review_request({"kind": "question", "title": "x", "added_later": 1}) is not None  # newer fields pass
    for record in (None, "approve", [TOOL.model_dump()], {"approved": True}, {"kind": "payment", "title": "x"},
                   {"kind": "question"}, {"kind": "tool_approval", "title": "x", "arguments": [1, 2]}):
        assert review_request(record) is None, record


# -- encode_decision: refusals ----------------------------------------------------------------------
WITHOUT_RECIPIENT = TOOL.model_copy(update={"arguments": {"amount": 100}})

REFUSALS: list[tuple[ReviewRequest, Decision, str]] = [
    (TEXT, Approve(), "the question takes an answer, not an approval"),
    (TYPED, Reject(feedback="no"), "the question takes an answer, not a rejection"),
    (TOOL, Answer(value={"approved": True}), "the review of pay takes an approval or a rejection, not an answer"),
    (BUDGET, Answer(value=True), "the budget review takes an approval or a rejection, not an answer"),
    (BUDGET, Approve(edits={"more": 1}), "the budget review takes no edits"),
    (TOOL, Reject(feedback=""), "a rejection needs feedback"),
    (TOOL, Reject(feedback="  \n "), "a rejection needs feedback"),
    (BUDGET, Reject(feedback=""), "a rejection needs feedback"),
    (TOOL, Approve(edits={"amont": 10}), "Additional properties are not allowed ('amont' was unexpected)"),
    (TOOL, Approve(edits={"amount": "ten"}), "amount: 'ten' is not of type 'integer'"),
    (TOOL, Approve(edits={"to": None}), "to: None is not of type 'string'"),
    (WITHOUT_RECIPIENT, Approve(edits={"amount": 10}), "'to' is a required property"),
    (TYPED, Answer(value={"people": "many"}), "people: 'many' is not of type 'integer'"),
    (TYPED, Answer(value={"vegetarian": 2}), "'people' is a required property"),
    (TEXT, Answer(value={"approved": True}), "the question expects text, got {\"approved\": true}"),
    (TEXT, Answer(value=3), "the question expects text"),
]


@pytest.mark.parametrize(("request_", "decision", "problem"), REFUSALS,
                         ids=[f"{r.kind}-{type(d).__name__}-{i}" for i, (r, d, _) in enumerate(REFUSALS)])
def test_a_decision_that_does_not_fit_is_refused_saying_what_would(request_: ReviewRequest, decision: Decision,
                                                                    problem: str) -> None:
    with pytest.raises(ReviewError) as refused:
        encode_decision(request_, decision)
    message = str(refused.value)
    assert problem in message
    assert refused.value.problem in message and len(message) > len(refused.value.problem) + 2  # and what is right
    assert isinstance(refused.value, UsageError)


def test_a_refused_edit_says_what_the_tool_takes() -> None:
    with pytest.raises(ReviewError) as refused:
        encode_decision(TOOL, Approve(edits={"amount": "ten"}))
    assert "pay takes to (string, required), amount (integer, required), memo (string)" in str(refused.value)
    with pytest.raises(ReviewError) as refused:
        encode_decision(TYPED, Answer(value=[]))
    assert 'the answer is JSON matching this schema: {"properties":{"people":{"type":"integer"}' in str(refused.value)


# -- encode_decision: what is sent ------------------------------------------------------------------
def test_what_is_sent_for_each_decision() -> None:
    assert json.loads(encode_decision(TOOL, Approve())) == {"approved": True}
    assert json.loads(encode_decision(TOOL, Approve(edits={}))) == {"approved": True}  # an empty edit is none
    edited = json.loads(encode_decision(TOOL, Approve(edits={"amount": 10}, reviewer=" ann ")))
    assert edited == {"approved": True, "edits": {"amount": 10}, "reviewer": "ann"}
    assert merge_edits(TOOL.arguments, edited["edits"]) == {"to": "ann", "amount": 10}
    assert json.loads(encode_decision(TOOL, Approve(edits={"memo": "rent"}))) == {"approved": True,
                                                                                  "edits": {"memo": "rent"}}
    assert json.loads(encode_decision(TOOL, Reject(feedback="  too much \n", reviewer="  "))) == {
        "approved": False, "feedback": "too much"}
    assert json.loads(encode_decision(BUDGET, Approve())) == {"approved": True}
    assert json.loads(encode_decision(TYPED, Answer(value={"people": 3}))) == {"people": 3}
    assert encode_decision(TEXT, Answer(value="Paris")) == '"Paris"'
    # a request recorded before argument schemas were: only the agent can check the edit
    legacy = TOOL.model_copy(update={"argument_schema": None})
    assert json.loads(encode_decision(legacy, Approve(edits={"amont": 1}))) == {"approved": True,
                                                                               "edits": {"amont": 1}}


def test_merge_replaces_only_the_named_arguments() -> None:
    proposed = {"to": "ann", "amount": 100, "meta": {"a": 1, "b": 2}}
    assert merge_edits(proposed, {"amount": 10}) == {"to": "ann", "amount": 10, "meta": {"a": 1, "b": 2}}
    assert merge_edits(proposed, {"meta": {"a": 5}}) == {"to": "ann", "amount": 100, "meta": {"a": 5}}
    assert merge_edits(proposed, None) == proposed and merge_edits(None, {"x": 1}) == {"x": 1}
    assert proposed["amount"] == 100  # the proposal itself is never changed


# -- read_decision: the agent accepts exactly what the operator paths send ----------------------------
@pytest.mark.parametrize(("request_", "decision"), [
    (TOOL, Approve()), (TOOL, Approve(edits={"amount": 10}, reviewer="ann")), (TOOL, Reject(feedback="no")),
    (BUDGET, Approve()), (BUDGET, Reject(feedback="enough", reviewer="bo")),
    (TYPED, Answer(value={"people": 3})), (TEXT, Answer(value="Paris")),
])
def test_the_agent_reads_back_what_was_encoded(request_: ReviewRequest, decision: Decision) -> None:
    assert read_decision(request_, json.loads(encode_decision(request_, decision))) == decision


@pytest.mark.parametrize(("answer", "problem"), [
    (True, 'must be a JSON object with "approved": true or false, got true'),
    ("approve", 'got "approve"'),
    (None, "got null"),
    ({"approve": True}, "got {\"approve\": true}"),
    ({"approved": "yes"}, 'got {"approved": "yes"}'),
    ({"approved": True, "arguments": {"to": "bo"}, "extra": 1}, "unknown keys ['extra']"),
    ({"approved": False}, "a rejection needs feedback"),
    ({"approved": False, "feedback": " "}, "a rejection needs feedback"),
    ({"approved": False, "feedback": 7}, '"feedback" must be text'),
    ({"approved": True, "feedback": "fine"}, "an approval of the review of pay carries no feedback"),
    ({"approved": False, "feedback": "no", "edits": {"amount": 1}}, "a rejection of the review of pay carries no edits"),
    ({"approved": True, "edits": [1]}, '"edits" must be a JSON object, got [1]'),
    ({"approved": True, "edits": {"amount": "ten"}}, "amount: 'ten' is not of type 'integer'"),
    ({"approved": True, "reviewer": 5}, '"reviewer" must be text'),
])
def test_the_agent_refuses_any_other_answer_to_a_tool_review(answer: Any, problem: str) -> None:
    with pytest.raises(ReviewError) as refused:
        read_decision(TOOL, answer)
    assert problem in str(refused.value)


def test_answers_recorded_before_edits_existed_are_read_as_edits() -> None:
    assert read_decision(TOOL, {"approved": True, "arguments": {"amount": 5}}) == Approve(edits={"amount": 5})


# -- telling the model -------------------------------------------------------------------------------
def test_the_model_is_told_what_a_reviewer_changed() -> None:
    proposed = {"to": "ann", "amount": 100}
    assert describe_changes(proposed, {"to": "ann", "amount": 10}) == \
        "A reviewer changed the arguments before running: amount 100 -> 10."
    assert describe_changes(proposed, {"to": "bo", "amount": 100, "memo": "rent"}) == \
        'A reviewer changed the arguments before running: to "ann" -> "bo"; memo (unset) -> "rent".'
    assert describe_changes(proposed, {"to": "ann"}) == \
        "A reviewer changed the arguments before running: amount 100 -> (unset)."
    assert describe_changes({"flag": 1}, {"flag": True}) == \
        "A reviewer changed the arguments before running: flag 1 -> true."
    assert describe_changes(proposed, dict(proposed)) is None


# -- the command for each pause ---------------------------------------------------------------------
def test_each_pause_gets_the_command_that_answers_it() -> None:
    approve, reject = pause_hint(TOOL, "CB").splitlines()
    assert approve.startswith("approve: duragent approve CB [--edit JSON]")
    assert """--edit '{"to": "ann"}' changes only what it names""" in approve
    assert reject.startswith(" reject: duragent reject CB --feedback TEXT")
    approve, reject = pause_hint(BUDGET, "CB").splitlines()
    assert approve == "approve: duragent approve CB" and "--edit" not in reject
    answer, shape = pause_hint(TYPED, "CB").splitlines()
    assert answer == "answer: duragent answer CB JSON"
    assert shape.strip() == ('the answer is JSON matching this schema: {"properties":{"people":{"type":"integer"},'
                             '"vegetarian":{"default":0,"type":"integer"}},"required":["people"],"type":"object"}')
    assert "a JSON string such as '\"yes, go ahead\"'" in pause_hint(TEXT, "CB")
    succeed, fail = pause_hint(None, "CB").splitlines()
    assert succeed == "answer: duragent callback succeed CB --result JSON"
    assert fail.strip() == "or: duragent callback fail CB --error-message TEXT"
    aws = pause_hint(TOOL, "CB", lambda rest: f"duragent {rest.replace(' ', ' --aws ', 1)}")
    assert "duragent approve --aws CB" in aws and "duragent reject --aws CB --feedback TEXT" in aws
    assert "duragent approve 'a b'" in pause_hint(TOOL, "a b")  # quoted for the shell


# -- through the agent --------------------------------------------------------------------------------
def drive(rt: LocalRuntime) -> None:
    rt.run_until_idle(skip_time=False)  # a pending review stays pending (its timeout is days away)


def send(rt: LocalRuntime, review: dict[str, Any], decision: Decision) -> None:
    rt.send_callback_success(review["callback_id"],
                             encode_decision(ReviewRequest.model_validate(review["request"]), decision))
    drive(rt)


def results_in(request: ModelRequest) -> list[ToolResult]:
    return [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]


def calls_in(request: ModelRequest) -> list[ToolCall]:
    return [b for m in request.messages for b in m.content if isinstance(b, ToolCall)]


def test_a_partial_edit_runs_with_the_merged_arguments_and_replays_consistently(rt: LocalRuntime) -> None:
    model = ScriptedModel([ScriptedModel.tool_call("pay", {"to": "ann", "amount": 100}, "c1"),
                           ScriptedModel.tool_call("pay", {"to": "bo", "amount": 7}, "c2"),
                           "Paid both."])
    agent = Agent(model, tools=[pay], name="payer")
    execution_id = rt.start(lambda event, ctx: agent.run(ctx, "pay ann and bo").output, {})
    drive(rt)
    (first,) = pending_reviews(rt)
    assert first["request"]["argument_schema"] == pay.parameters and first["request"]["tool_call_id"] == "c1"
    send(rt, first, Approve(edits={"amount": 10}))
    assert PAID == [("ann", 10, "")]
    notice = "A reviewer changed the arguments before running: amount 100 -> 10."
    (told,) = results_in(model.requests[1])
    assert told.tool_call_id == "c1" and not told.is_error and told.content == f"{notice}\npaid 10 to ann"
    (second,) = pending_reviews(rt)
    send(rt, second, Approve())  # this invocation replays the first review and its tool step
    info = rt.get(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == "Paid both."
    assert PAID == [("ann", 10, ""), ("bo", 7, "")]  # nothing ran twice
    last = model.requests[2]
    # the conversation holds the model's own calls, and results that say what actually ran
    assert [c.arguments for c in calls_in(last)] == [{"to": "ann", "amount": 100}, {"to": "bo", "amount": 7}]
    assert [r.content for r in results_in(last)] == [f"{notice}\npaid 10 to ann", "paid 7 to bo"]


def test_edits_of_parallel_calls_are_told_to_the_right_call(rt: LocalRuntime) -> None:
    model = ScriptedModel([ScriptedModel.tool_calls(("pay", {"to": "ann", "amount": 1}, "a"),
                                                    ("pay", {"to": "bo", "amount": 2}, "b")), "done"])
    agent = Agent(model, tools=[pay])
    rt.start(lambda event, ctx: agent.run(ctx, "pay both").output, {})
    drive(rt)
    pending = {r["request"]["tool_call_id"]: r for r in pending_reviews(rt)}
    send(rt, pending["b"], Approve(edits={"memo": "rent"}))
    send(rt, pending["a"], Approve())
    assert sorted(PAID) == [("ann", 1, ""), ("bo", 2, "rent")]
    results = {r.tool_call_id: r.content for r in results_in(model.requests[-1])}
    assert results == {"a": "paid 1 to ann",
                       "b": 'A reviewer changed the arguments before running: memo (unset) -> "rent".\npaid 2 to bo'}


@tool(requires_approval=True)
def notify(address: Annotated[str, AfterValidator(lambda v: v if "@" in v else _bad_address(v))]) -> str:
    """Notify someone.

    Args:
        address: an email address.
    """
    PAID.append((address, 0, "notified"))
    return f"notified {address}"


def _bad_address(value: str) -> str:
    raise ValueError(f"{value!r} is not an email address")


def test_an_edit_the_schema_allows_but_the_tool_refuses_is_asked_again(rt: LocalRuntime) -> None:
    model = ScriptedModel([ScriptedModel.tool_call("notify", {"address": "ann@example.com"}, "n1"), "ok"])
    agent = Agent(model, tools=[notify])
    rt.start(lambda event, ctx: agent.run(ctx, "notify ann").output, {})
    drive(rt)
    (review,) = pending_reviews(rt)
    send(rt, review, Approve(edits={"address": "nobody"}))  # a string: the JSON schema cannot tell
    assert PAID == []
    (again,) = pending_reviews(rt)
    assert "'nobody' is not an email address" in again["request"]["title"]
    send(rt, again, Approve(edits={"address": "bo@example.com"}))
    assert PAID == [("bo@example.com", 0, "notified")]


def test_answers_that_never_fit_end_as_a_call_not_run(rt: LocalRuntime) -> None:
    model = ScriptedModel([ScriptedModel.tool_call("pay", {"to": "ann", "amount": 100}, "c1"), "gave up"])
    agent = Agent(model, tools=[pay])
    execution_id = rt.start(lambda event, ctx: agent.run(ctx, "pay ann").output, {})
    drive(rt)
    titles = []
    for raw in ('"yes"', '{"approved": false}', "true"):  # as a raw `callback succeed` could send them
        (review,) = pending_reviews(rt)
        titles.append(review["request"]["title"])
        assert rt.get(execution_id).status == "RUNNING" and PAID == []
        rt.send_callback_success(review["callback_id"], raw)
        drive(rt)
    assert titles[0] == "Run tool pay?"
    assert 'did not fit: an answer to the review of pay must be a JSON object with "approved"' in titles[1]
    assert "did not fit: a rejection needs feedback" in titles[2]
    assert rt.get(execution_id).result == "gave up" and PAID == []
    (result,) = results_in(model.requests[-1])
    assert result.is_error and result.content.startswith("This call was not run: no usable review answer arrived")
    assert "rejected" not in result.content  # nobody rejected it


def _costly(reply: ModelResponse | str) -> ModelResponse:
    response = ScriptedModel.reply(reply) if isinstance(reply, str) else reply
    return response.model_copy(update={"usage": Usage(input_tokens=500, output_tokens=100)})


def test_a_budget_review_reads_answers_through_the_protocol(rt: LocalRuntime) -> None:
    model = ScriptedModel(default=_costly(ScriptedModel.tool_call("add_one", {"n": 1})))

    @tool
    def add_one(n: int) -> int:
        """Add one.

        Args:
            n: a number.
        """
        return n + 1

    agent = Agent(model, tools=[add_one], budget=Budget(max_tokens=500), name="spender")
    execution_id = rt.start(lambda event, ctx: agent.run(ctx, "count").output, {})
    drive(rt)
    for raw in ('{"approved": true, "edits": {"max": 9}}', '"yes"', '{"approved": false}'):
        (review,) = pending_reviews(rt)
        assert review["request"]["kind"] == "budget"
        rt.send_callback_success(review["callback_id"], raw)
        drive(rt)
    info = rt.get(execution_id)
    assert info.status == "FAILED" and info.error["ErrorType"] == BudgetExceededError.recorded_name
    assert "no usable answer to the budget review arrived (a rejection needs feedback)" in info.error["ErrorMessage"]
    assert model.calls == 1

    second_model = ScriptedModel(default=_costly(ScriptedModel.tool_call("add_one", {"n": 1})))
    agent2 = Agent(second_model, tools=[add_one], budget=Budget(max_tokens=500), name="again")
    second = rt.start(lambda event, ctx: agent2.run(ctx, "count").output, {})
    drive(rt)
    (review,) = [r for r in pending_reviews(rt) if r["execution_id"] == second]
    send(rt, review, Reject(feedback="that is enough"))
    assert "declined to continue: that is enough" in rt.get(second).error["ErrorMessage"]


def test_a_text_question_takes_text(rt: LocalRuntime) -> None:
    execution_id = rt.start(lambda event, ctx: ask_human(ctx, "Which city?", name="city"), {})
    drive(rt)
    (review,) = pending_reviews(rt)
    assert review["request"] == {"kind": "question", "title": "Which city?", "question": "Which city?",
                                 "callback_id": review["callback_id"]}
    rt.send_callback_success(review["callback_id"], '{"approved": true}')  # not an answer to a question
    drive(rt)
    (again,) = pending_reviews(rt)
    assert again["name"] == "city (again 2)" and "expects text" in again["request"]["title"]
    send(rt, again, Answer(value="Lisbon"))
    assert rt.get(execution_id).result == "Lisbon"


# -- the CLI -------------------------------------------------------------------------------------------
def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), *args], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, text=True, capture_output=True, timeout=60)


def test_the_cli_answers_through_the_protocol_and_refuses_what_does_not_fit(tmp_path: Path) -> None:
    db = tmp_path / "cli.db"

    def brain(request: ModelRequest) -> ModelResponse | str:
        results = results_in(request)
        return ScriptedModel.tool_call("pay", {"to": "ann", "amount": 100}, "c1") if not results \
            else f"Outcome: {results[-1].content}"

    agent = Agent(FunctionModel(brain, name="payer"), tools=[pay])

    def paying(event: Any, ctx: DurableContext) -> str:
        return str(agent.run(ctx, "pay ann").output)

    def asking(event: Any, ctx: DurableContext) -> int:
        return ask_human(ctx, "How many?", Headcount, name="headcount").people

    def plain(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_callback(lambda callback_id: None, name="webhook")

    with LocalRuntime(db, clock=VirtualClock(start=time.time())) as rt:
        for handler, execution_id in ((paying, "paying"), (asking, "asking"), (plain, "plain")):
            rt.start(handler, {}, execution_id=execution_id)
        drive(rt)
        pending = {item["execution_id"]: item["callback_id"] for item in pending_reviews(rt)}
        history = {e: len(rt.history(e)) for e in pending}

        refusals = [
            (("approve", pending["paying"], "--edit", '{"amount": "ten"}'),
             "amount: 'ten' is not of type 'integer'; pay takes to (string, required), amount (integer, required)"),
            (("approve", pending["paying"], "--edit", '{"amont": 10}'), "'amont' was unexpected"),
            (("approve", pending["paying"], "--edit", "[10]"), "--edit must be a JSON object"),
            (("reject", pending["paying"], "--feedback", "  "), "a rejection needs feedback"),
            (("callback", "succeed", pending["paying"], "--result", '{"approved": true, "edits": {"to": 1}}'),
             "to: 1 is not of type 'string'"),
            (("callback", "succeed", pending["paying"], "--result", "true"), 'must be a JSON object with "approved"'),
            (("approve", pending["asking"]), "the question takes an answer, not an approval"),
            (("reject", pending["asking"], "--feedback", "no"), "the question takes an answer, not a rejection"),
            (("callback", "succeed", pending["asking"], "--result", '{"people": "a few"}'),
             "people: 'a few' is not of type 'integer'"),
            (("approve", pending["plain"]), f"callback {pending['plain']} is not a review, so it cannot be approved"),
        ]
        for args, needle in refusals:
            done = cli(db, *args)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert done.stderr.startswith("duragent: error: ") and needle in done.stderr, (args, done.stderr)
            assert done.stderr.count("\n") == 1  # one line
        assert {e: len(rt.history(e)) for e in pending} == history  # nothing was recorded
        assert len(pending_reviews(rt)) == 3

        approved = cli(db, "approve", pending["paying"], "--edit", '{"amount": 10}', "--reviewer", "ann")
        assert approved.returncode == 0, approved.stderr
        answered = cli(db, "callback", "succeed", pending["asking"], "--result", '{"people": 4}')
        assert answered.returncode == 0, answered.stderr
        again = cli(db, "reject", pending["paying"], "--feedback", "too late")
        assert again.returncode == 2 and "has already completed" in again.stderr  # answered once, and only once
        drive(rt)
        assert PAID == [("ann", 10, "")]
        assert rt.get("paying").result == \
            "Outcome: A reviewer changed the arguments before running: amount 100 -> 10.\npaid 10 to ann"
        assert rt.get("asking").result == 4
