"""Durable chat sessions (agents/session.py) and compaction (agents/compaction.py) on scripted
models, a virtual clock and a real SQLite file: a session answers each message and suspends; the
model sees the whole conversation; a handoff sticks for the next turns; a failed turn is recorded
and the session goes on; older turns are compacted near the window (recorded, applied on replay);
the journal grows with each turn's content, not with the conversation's square."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from duragent.agents import (
    Agent,
    CompactionPolicy,
    Session,
    SessionError,
    conversation,
)
from duragent.agents.compaction import SUMMARY_PREFIX, cut_point
from duragent.agents.errors import ModelBadRequestError
from duragent.agents.events import EventReader, read_history
from duragent.agents.messages import Message, ModelRequest, ModelResponse, TextBlock, ToolCall
from duragent.agents.models import FunctionModel
from duragent.durable import Duration, LocalRuntime, UsageError, VirtualClock


def texts(request: ModelRequest) -> list[str]:
    return [b.text for m in request.messages for b in m.content if isinstance(b, TextBlock)]


def say(session: Session, rt: LocalRuntime, text: str) -> Any:
    """Send a message and run the session's invocations here (the virtual clock does not move)."""
    rt.run_until_idle(skip_time=False)  # the session reaches its inbox
    session.send(text, timeout=5)
    rt.run_until_idle(skip_time=False)
    return session.turns()[-1]


echo_model = FunctionModel(lambda req: f"reply to {texts(req)[-1]!r} after {len(req.messages)} messages", name="e")
echo = Agent(echo_model, name="echo", system="Be brief.")
echo_chat = conversation(echo, name="echo_chat")


def test_a_session_answers_each_message_and_suspends(rt: LocalRuntime) -> None:
    session = Session.start(rt, echo_chat, "chat-1")
    rt.run_until_idle(skip_time=False)
    assert rt.get("chat-1").status == "RUNNING" and session.inbox is not None, "suspended, waiting"
    first = say(session, rt, "hello")
    assert (first.number, first.reply, first.agent) == (1, "reply to 'hello' after 1 messages", "echo")
    second = say(session, rt, "and again")
    assert second.reply == "reply to 'and again' after 3 messages"
    third = say(session, rt, "last")
    assert [t.number for t in session.turns()] == [1, 2, 3]
    request = echo_model.requests[-1]
    assert texts(request) == ["hello", first.reply, "and again", second.reply, "last"], "the whole conversation"
    assert [m.role for m in session.messages()] == ["user", "assistant"] * 3
    assert session.messages()[-1].content == [TextBlock(text=third.reply)]
    session.end(timeout=5)
    rt.run_until_idle(skip_time=False)
    assert rt.get("chat-1").result == {"turns": 3, "ended": "by request"}
    with pytest.raises(SessionError, match="has ended"):
        session.send("anyone?", timeout=1)


def test_reopening_a_session_continues_it(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with LocalRuntime(db, clock=VirtualClock()) as rt:
        say(Session.start(rt, echo_chat, "chat-2"), rt, "first")
    with LocalRuntime(db, clock=VirtualClock()) as rt:
        again = Session(rt, "chat-2")
        assert [t.user for t in again.turns()] == ["first"]
        assert again.inbox is not None, "the reopened client finds the open inbox from the events"
        assert say(again, rt, "second").reply.endswith("after 3 messages")


def test_a_session_seeded_with_a_provider_style_history(rt: LocalRuntime) -> None:
    seed = [{"role": "user", "content": "my name is Ada"}, {"role": "assistant", "content": "hi Ada"}]
    session = Session.start(rt, echo_chat, history=seed)
    rt.run_until_idle(skip_time=False)
    say(session, rt, "what is my name?")
    assert texts(echo_model.requests[-1]) == ["my name is Ada", "hi Ada", "what is my name?"]


def test_a_handoff_sticks_for_the_next_turns(rt: LocalRuntime) -> None:
    billing_model = FunctionModel(lambda req: f"billing answers {texts(req)[-1]!r}", name="b")
    billing = Agent(billing_model, name="billing")
    triage_model = FunctionModel(lambda req: ModelResponse(content=[ToolCall(id="h", name="transfer_to_billing")],
                                                           stop_reason="tool_use", model="scripted:t"), name="t")
    triage = Agent(triage_model, name="triage", handoffs=[billing])
    session = Session.start(rt, conversation(triage, name="desk"))
    rt.run_until_idle(skip_time=False)
    first = say(session, rt, "refund please")
    assert (first.agent, first.reply) == ("billing", "billing answers 'refund please'")
    second = say(session, rt, "how long?")
    assert second.agent == "billing" and triage_model.calls == 1, "billing keeps the conversation"
    assert texts(billing_model.requests[-1])[0] == "refund please"


def test_a_failed_turn_is_recorded_and_the_session_goes_on(rt: LocalRuntime) -> None:
    def flaky(request: ModelRequest) -> ModelResponse | str:
        if texts(request)[-1] == "break":
            raise ModelBadRequestError("the model refused this request")
        return f"fine after {len(request.messages)} messages"

    session = Session.start(rt, conversation(Agent(FunctionModel(flaky), name="flaky"), name="flaky_chat"))
    rt.run_until_idle(skip_time=False)
    say(session, rt, "hello")
    failed = say(session, rt, "break")
    assert failed.reply is None and "the model refused this request" in (failed.error or "")
    after = say(session, rt, "still there?")
    assert after.reply == "fine after 3 messages", "the failed turn left the conversation as it was"


def test_an_idle_session_ends_after_its_timeout(rt: LocalRuntime) -> None:
    chat = conversation(echo, name="short_lived", idle_timeout=Duration.from_days(30))
    session = Session.start(rt, chat)
    rt.run_until_idle(skip_time=False)
    say(session, rt, "hi")
    rt.run_until_idle(skip_time=True)  # thirty days pass at once
    assert rt.get(session.id).result == {"turns": 1, "ended": "idle"}


def test_an_unusable_inbox_answer_is_not_a_message(rt: LocalRuntime) -> None:
    session = Session.start(rt, echo_chat)
    rt.run_until_idle(skip_time=False)
    assert session.inbox is not None
    rt.send_callback_success(session.inbox, json.dumps({"unexpected": [1, 2]}))
    rt.run_until_idle(skip_time=False)
    session = Session(rt, session.id)
    assert session.turns() == [] and session.inbox is not None, "still waiting for a real message"
    assert say(session, rt, "real").number == 1


def test_a_message_must_be_text(rt: LocalRuntime) -> None:
    session = Session.start(rt, echo_chat)
    with pytest.raises(UsageError):
        session.send("   ")


# -- compaction ------------------------------------------------------------------------------------
def test_compaction_near_a_small_window_is_recorded_and_applied(rt: LocalRuntime) -> None:
    summaries: list[ModelRequest] = []

    def model(request: ModelRequest) -> ModelResponse | str:
        if request.system and request.system.startswith("You compress"):
            summaries.append(request)
            return "SUMMARY: the user talked about apples and pears."
        return f"noted ({len(request.messages)} messages) " + "x" * 200

    agent = Agent(FunctionModel(model, name="c"), name="keeper")
    chat = conversation(agent, name="compacting", compaction=CompactionPolicy(context_window=400, threshold=0.5,
                                                                                 keep_turns=1))
    session = Session.start(rt, chat)
    rt.run_until_idle(skip_time=False)
    for word in ("apples", "pears", "plums", "figs"):
        say(session, rt, f"I like {word} " + "y" * 100)
    assert summaries, "a small window made the session compact"
    transcript = texts(summaries[0])[0]
    assert "I like apples" in transcript and "noted" in transcript
    reader = EventReader()
    compacted = [reader.read(e) for e in read_history(rt, session.id)]
    records = [e for e in compacted if e.type == "compacted"]
    assert records and records[0].data["summary"] == "SUMMARY: the user talked about apples and pears."
    assert records[0].data["window"] == 400 and records[0].data["summarized_messages"] >= 2
    # the last turn's request: the summary opens it, the old turns are gone
    last_request = [r for r in agent.model.requests if r.system is None][-1]  # type: ignore[attr-defined]
    flat = texts(last_request)
    assert flat[0].startswith(SUMMARY_PREFIX) and not any("I like apples" in t for t in flat)
    assert flat[-1].startswith("I like figs")
    assert session.messages()[0].content[0].text.startswith(SUMMARY_PREFIX)  # type: ignore[union-attr]
    # the summaries were model calls: in the ledger like any other, and made once
    calls = [e for e in rt.history(session.id) if e.get("SubType") == "ModelCall" and e["EventType"] == "StepSucceeded"]
    assert sum(1 for e in calls if e["Name"] == "summarize") == len(summaries)


def test_cut_points_keep_whole_turns() -> None:
    turn = [Message.user("q"), Message(role="assistant", content=[ToolCall(id="1", name="t")]),
            Message(role="user", content=[]), Message(role="assistant", content=[TextBlock(text="a")])]
    conversation_ = turn * 3
    assert cut_point(conversation_, 1) == 8 and cut_point(conversation_, 2) == 4
    assert cut_point(conversation_, 5) == 8, "fewer turns than asked: keep the last one"
    assert cut_point(turn, 1) == 0, "one turn: nothing older to summarize"
    with pytest.raises(UsageError):
        CompactionPolicy(threshold=1.5)


# -- storage -----------------------------------------------------------------------------------------
def test_the_journal_grows_with_each_turn_not_with_the_conversation(tmp_path: Path) -> None:
    agent = Agent(FunctionModel(lambda req: "an answer of a steady size " * 4, name="s"), name="steady")
    chat = conversation(agent, name="steady_chat", compaction=None)
    sizes = []
    with LocalRuntime(tmp_path / "grow.db", clock=VirtualClock()) as rt:
        session = Session.start(rt, chat)
        rt.run_until_idle(skip_time=False)
        for i in range(60):
            say(session, rt, f"message number {i:03d} of a steady size")
            sizes.append(_stored_bytes(rt, session.id))
    per_turn = [b - a for a, b in zip(sizes, sizes[1:], strict=False)]
    early, late = sum(per_turn[:10]) / 10, sum(per_turn[-10:]) / 10
    assert late < early * 1.25, f"bytes per turn grew from {early:.0f} to {late:.0f}"


def _stored_bytes(rt: LocalRuntime, execution_id: str) -> int:
    with rt.store.transaction(write=False) as tx:
        stored = tx.conn.execute("SELECT COALESCE(SUM(LENGTH(data) + COALESCE(LENGTH(x), 0)), 0) FROM journal "
                                 "WHERE (k >> 32) = (SELECT num FROM executions WHERE id = ?)",
                                 (execution_id,)).fetchone()[0]
    return int(stored)
