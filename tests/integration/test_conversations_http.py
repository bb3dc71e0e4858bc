"""Conversations for real: the anthropic and openai SDKs talk HTTP to the fake provider server on
127.0.0.1 (tests/fakes/provider_server.py), configured only through their own environment
variables; sessions, workers and followers are separate processes, killed with SIGKILL.

- A 3-turn session across processes: one per turn, one killed between turns 2 and 3, another
  killed inside turn 3's tool call and a fourth that finishes it: no turn paid twice, and the
  model sees the whole conversation every time.
- A handoff across providers: the second agent is sent the conversation so far.
- A parent's budget suspends on what its sub-agent spent.
- A follower process gets every durable event of an execution exactly once although the worker
  and the follower itself are killed mid-way, and the text of each model call as it streams.
- Compaction, triggered by a small configured window, with the sizes the provider reports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from duragent.agents import Session, ledger_from_history, pending_reviews
from duragent.agents.compaction import SUMMARY_PREFIX
from duragent.durable import LocalRuntime
from tests.fakes.provider_server import FakeToolCall, FakeUsage, ProviderServer, Reply
from tests.integration import conversation_jobs

REPO = Path(__file__).resolve().parents[2]
KEY = "sk-test-conversations"
MODELS = {"anthropic": "anthropic:claude-test", "openai": "openai:gpt-4o-test"}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "OPENAI_", "CONVERSATION_")) or \
                name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as fake:
        yield fake


def sdk_env(server: ProviderServer, model: str = MODELS["anthropic"], other: str = MODELS["openai"]) -> dict[str, str]:
    return {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": KEY, "OPENAI_BASE_URL": server.url + "/v1",
            "OPENAI_API_KEY": KEY, "CONVERSATION_MODEL": model, "CONVERSATION_OTHER_MODEL": other}


def process_env(server: ProviderServer, **models: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "CONVERSATION_"))}
    return {**base, "PYTHONPATH": str(REPO), **sdk_env(server, **models)}


def wait_for(condition: Any, what: str, timeout: float = 60.0, process: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited ({process.returncode}): "
                                 f"{process.stderr.read() if process.stderr else ''}")
        assert time.monotonic() < deadline, f"timed out waiting: {what}"
        time.sleep(0.01)


def request_texts(body: Any) -> str:
    return json.dumps(body)


# -- a session across processes -------------------------------------------------------------------------
TURN = """
import json, sys, time
from duragent.agents import Session
from duragent.durable import LocalRuntime
from tests.integration.conversation_jobs import assistant_chat
db, session_id, text, linger = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "linger"
rt = LocalRuntime(db)
try:
    session = Session(rt, session_id, drive=True)
except Exception:
    session = Session.start(rt, assistant_chat, session_id, drive=True)
turn = session.ask(text, timeout=60)
print(json.dumps(turn.model_dump(mode="json")), flush=True)
if linger:  # killed here by the test, between turns
    time.sleep(120)
"""

FINISH = """
import json, sys
from duragent.agents import Session
from duragent.durable import LocalRuntime
rt = LocalRuntime(sys.argv[1])
session = Session(rt, sys.argv[2], drive=True)
assert session.busy, "the killed turn is still running"
print(json.dumps(session.wait(timeout=60).model_dump(mode="json")), flush=True)
"""


@pytest.mark.parametrize("provider", list(MODELS))
def test_a_session_across_processes_and_kills_pays_each_turn_once(provider: str, server: ProviderServer,
                                                                   tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    server.enqueue(
        Reply(text="Hello! How can I help?"),
        Reply(text="Noted: the Q3 numbers are up 4%."),
        Reply(text="Filing it now.", tool_calls=[FakeToolCall("file_report", {"directory": str(work), "title": "Q3"})]),
        Reply(text="Filed the Q3 report, with the 4% you gave me."))
    db, session_id = tmp_path / "chat.db", "support-1"
    env = process_env(server, model=MODELS[provider])

    def turn(text: str, linger: bool = False) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", TURN, str(db), session_id, text,
                                 "linger" if linger else "exit"], cwd=REPO, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    first = turn("Hi there")
    out, err = first.communicate(timeout=90)
    assert first.returncode == 0, err
    assert json.loads(out)["reply"] == "Hello! How can I help?"

    second = turn("Q3 numbers are up 4%", linger=True)
    assert second.stdout is not None
    line = second.stdout.readline()
    assert json.loads(line)["reply"] == "Noted: the Q3 numbers are up 4%.", second.stderr.read() if second.stderr else ""
    second.send_signal(signal.SIGKILL)  # between turns 2 and 3
    second.wait(timeout=10)
    assert second.returncode == -signal.SIGKILL

    third = turn("Please file the Q3 report")
    wait_for(lambda: list(work.glob("report-entered.*")), "turn 3 reaches its tool", process=third)
    third.send_signal(signal.SIGKILL)  # inside turn 3, after its first model call was checkpointed
    third.wait(timeout=10)
    assert server.request_count == 3
    (work / "release").touch()
    finish = subprocess.run([sys.executable, "-c", FINISH, str(db), session_id], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=90)
    assert finish.returncode == 0, finish.stderr
    last = json.loads(finish.stdout)
    assert (last["number"], last["reply"]) == (3, "Filed the Q3 report, with the 4% you gave me.")

    assert server.request_count == 4, "no model call was paid twice"
    with LocalRuntime(db) as rt:
        history = rt.history(session_id)
        session = Session(rt, session_id)
        assert [t.reply for t in session.turns()] == ["Hello! How can I help?", "Noted: the Q3 numbers are up 4%.",
                                                      "Filed the Q3 report, with the 4% you gave me."]
        assert session.inbox is not None and rt.get(session_id).status == "RUNNING", "waiting for turn 4"
    calls = [e for e in history if e["EventType"] == "StepSucceeded" and e.get("SubType") == "ModelCall"]
    assert len(calls) == 4 and len({e["Id"] for e in calls}) == 4
    crashes = [e for e in history if e["EventType"] == "InvocationCompleted"
               and (e["InvocationCompletedDetails"].get("Error") or {}).get("Payload", {}).get("ErrorType")
               == "Runtime.ExitError"]
    assert len(crashes) == 1, "the kill inside turn 3 is on the record"
    assert len(list(work.glob("report-done.*"))) == 1
    # the model saw the whole conversation each time, rebuilt from the journal in a new process
    last_request = request_texts(server.requests[-1].body)
    for said in ("Hi there", "Hello! How can I help?", "Q3 numbers are up 4%", "Noted: the Q3 numbers are up 4%.",
                 "Please file the Q3 report", "report 'Q3' filed"):
        assert said in last_request, said
    third_turn_first_call = request_texts(server.requests[2].body)
    assert "Noted: the Q3 numbers are up 4%." in third_turn_first_call


# -- a handoff across providers ----------------------------------------------------------------------------
def test_a_handoff_to_another_provider_sends_it_the_conversation(server: ProviderServer, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sdk_env(server).items():
        monkeypatch.setenv(name, value)
    server.enqueue(Reply(text="Let me get billing for you.", tool_calls=[FakeToolCall("transfer_to_billing", {})]),
                   Reply(text="Billing here: order A-7 is refunded."),
                   Reply(text="Billing again: within five days."))
    with LocalRuntime(tmp_path / "desk.db") as rt:
        session = Session.start(rt, conversation_jobs.desk, drive=True)
        first = session.ask("I want a refund for order A-7", timeout=60)
        second = session.ask("How long will it take?", timeout=60)
    assert (first.agent, first.reply) == ("billing", "Billing here: order A-7 is refunded.")
    assert (second.agent, second.reply) == ("billing", "Billing again: within five days.")
    paths = [r.path for r in server.requests]
    assert paths == ["/v1/messages", "/v1/chat/completions", "/v1/chat/completions"]
    triage_tools = [t["name"] for t in server.requests[0].body["tools"]]
    assert triage_tools == ["transfer_to_billing"]
    handed = server.requests[1].body
    assert handed["messages"][0] == {"role": "system", "content": "You handle refunds."}
    roles = [m["role"] for m in handed["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]
    assert handed["messages"][1]["content"] == "I want a refund for order A-7"
    assert "Let me get billing for you." in json.dumps(handed["messages"][2])
    assert "Transferred to billing" in handed["messages"][3]["content"]
    assert "Billing here: order A-7 is refunded." in request_texts(server.requests[2].body)


# -- a parent budget and its sub-agent ---------------------------------------------------------------------
def test_a_parent_budget_suspends_on_its_sub_agents_spend(server: ProviderServer, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sdk_env(server).items():
        monkeypatch.setenv(name, value)
    server.enqueue(
        Reply(tool_calls=[FakeToolCall("researcher", {"input": "market size of durable agents"})]),
        # the sub-agent's answer costs $0.60 at the gpt-4o price ($2.5 in, $10 out per million)
        Reply(text="About 3 billion.", usage=FakeUsage(input_tokens=200_000, output_tokens=10_000)),
        Reply(text="The market is about 3 billion."))
    with LocalRuntime(tmp_path / "budget.db") as rt:
        execution_id = rt.start(conversation_jobs.research_job, {"question": "How big is the market?"})
        rt.run_until_idle(skip_time=False)
        assert rt.get(execution_id).status == "RUNNING"
        [review] = pending_reviews(rt)
        assert review["name"] == "lead: budget 1" and review["request"]["kind"] == "budget"
        assert "$0.6" in review["request"]["title"]
        assert server.request_count == 2, "the lead stopped before its next model call"
        rt.send_callback_success(review["callback_id"], json.dumps({"approved": True}))
        rt.run_until_idle(skip_time=False)
        info = rt.get(execution_id)
        bill = ledger_from_history(rt.history(execution_id))
    assert info.status == "SUCCEEDED", info.error
    assert info.result["output"] == "The market is about 3 billion."
    assert info.result["cost"] == pytest.approx(0.6, abs=0.01), "the lead's ledger holds its sub-agent's spend"
    assert bill.paid_calls == 3 and bill.total_cost == pytest.approx(info.result["cost"])
    assert server.request_count == 3
    assert server.requests[1].path == "/v1/chat/completions"


# -- a follower across kills ---------------------------------------------------------------------------------
FOLLOW = """
import json, sys
from duragent.agents import follow
from duragent.durable import LocalRuntime
stream = follow(LocalRuntime(sys.argv[1]), sys.argv[2], after=int(sys.argv[3]), timeout=90)
print(json.dumps({"ready": True}), flush=True)
for event in stream:
    print(json.dumps(event.to_dict()), flush=True)
"""

WORKER = """
import sys
from duragent.durable import LocalRuntime
LocalRuntime(sys.argv[1]).worker()
"""


def test_a_follower_gets_every_durable_event_once_across_kills(server: ProviderServer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    story = "Once upon a time, a durable agent survived every crash."
    server.enqueue(Reply(text=story, chunks=[story[:10], story[10:30], story[30:]],
                         tool_calls=[FakeToolCall("wait_for_release", {"directory": str(work)})]),
                   Reply(text="The end, written after the crash.", chunks=["The end, ", "written after the crash."]))
    db = tmp_path / "followed.db"
    with LocalRuntime(db) as rt:
        execution_id = rt.start(conversation_jobs.followed_job, {"directory": str(work)})
    env = process_env(server)
    seen = tmp_path / "seen.jsonl"

    def follower(after: int) -> subprocess.Popen[str]:
        process = subprocess.Popen([sys.executable, "-c", FOLLOW, str(db), execution_id, str(after)], cwd=REPO,
                                   env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None
        assert json.loads(process.stdout.readline()) == {"ready": True}, process.stderr
        return process

    def worker() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", WORKER, str(db)], cwd=REPO, env=env, text=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def copy(process: subprocess.Popen[str], until: Any) -> list[dict[str, Any]]:
        """Read the follower's events into ``seen`` (as a client would persist them) until ``until``."""
        assert process.stdout is not None
        got = []
        with seen.open("a") as out:
            for line in process.stdout:
                event = json.loads(line)
                out.write(line)
                out.flush()
                got.append(event)
                if until(event):
                    break
        return got

    first_follower = follower(0)
    first_worker = worker()
    first = copy(first_follower, lambda e: e["type"] == "tool_call_started")
    wait_for(lambda: list(work.glob("waiting.*")), "the worker waits inside the tool", process=first_worker)
    first_worker.send_signal(signal.SIGKILL)
    first_follower.send_signal(signal.SIGKILL)  # the client crashes too
    first_worker.wait(timeout=10)
    first_follower.wait(timeout=10)
    cursor = max(e["cursor"] for e in first if e["cursor"] is not None)

    second_follower = follower(cursor)  # reconnects after the last event it persisted
    (work / "release").touch()
    second_worker = worker()
    try:
        second = copy(second_follower, lambda e: e["type"] == "execution_ended")
    finally:
        second_worker.send_signal(signal.SIGKILL)
        second_worker.wait(timeout=10)
        second_follower.wait(timeout=30)

    with LocalRuntime(db) as rt:
        history = rt.history(execution_id)
        assert rt.get(execution_id).result == "The end, written after the crash."
    cursors = [e["cursor"] for e in first + second if e["cursor"] is not None]
    assert cursors == [e["EventId"] for e in history], "every durable event exactly once, in order"
    assert any(e["type"] == "invocation_ended" and e.get("crashed") for e in second), "the kill shows"
    # the text of each model call reached the follower listening at the time, before its answer
    first_text = "".join(e["text"] for e in first if e["type"] == "text_delta")
    second_text = "".join(e["text"] for e in second if e["type"] == "text_delta")
    assert first_text == story and second_text == "The end, written after the crash."
    answers = [e for e in first + second if e["type"] == "model_call_finished"]
    assert [a["text"] for a in answers] == [story, "The end, written after the crash."]
    assert server.request_count == 2 and all(r.body.get("stream") for r in server.requests)


# -- compaction --------------------------------------------------------------------------------------------
def test_compaction_from_a_small_window_and_the_sizes_the_provider_reports(server: ProviderServer, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sdk_env(server).items():
        monkeypatch.setenv(name, value)
    server.enqueue(
        Reply(text="Got it: apples.", usage=FakeUsage(input_tokens=300, output_tokens=20)),
        Reply(text="Got it: pears.", usage=FakeUsage(input_tokens=800, output_tokens=20)),  # past 80% of the window
        Reply(text="The user likes apples and pears.", usage=FakeUsage(input_tokens=200, output_tokens=12)),
        Reply(text="Plums too, noted.", usage=FakeUsage(input_tokens=150, output_tokens=10)))
    with LocalRuntime(tmp_path / "compact.db") as rt:
        session = Session.start(rt, conversation_jobs.small_window, drive=True)
        session.ask("I like apples", timeout=60)
        session.ask("I like pears", timeout=60)
        third = session.ask("I like plums", timeout=60)
        conversation = session.messages()
        compactions = [op for op in rt.operations(session.id) if (op.Name or "").startswith("compaction before")]
    assert third.reply == "Plums too, noted."
    assert len(server.requests) == 4
    summary_request = server.requests[2].body
    assert "You compress conversations" in request_texts(summary_request["system"])  # text, or cache-marked blocks
    assert "I like apples" in request_texts(summary_request) and "I like pears" not in request_texts(summary_request)
    turn_three = request_texts(server.requests[3].body)
    assert SUMMARY_PREFIX in turn_three and "The user likes apples and pears." in turn_three
    assert "I like apples" not in turn_three and "I like pears" in turn_three and "I like plums" in turn_three
    [record] = compactions
    assert record.Name == "compaction before turn 3" and record.Status.value == "SUCCEEDED"
    assert json.loads(record.ContextDetails.Result)["tokens_before"] == 820  # what the provider reported
    assert conversation[0].content[0].text.startswith(SUMMARY_PREFIX)  # type: ignore[union-attr]
