"""The examples run end to end, offline on their scripted models, through LocalRuntime (reviews
answered programmatically) and through the `duragent` commands their docstrings show; and with an
API key set they really use the provider's SDK (here pointed at the fake provider server).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from duragent.agents import pending_reviews
from duragent.agents.review import Approve, ReviewRequest, encode_decision
from duragent.durable import LocalRuntime, VirtualClock
from tests.fakes.provider_server import ProviderServer, Reply

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
KEY_VARS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "DURAGENT_DEMO_MODEL")


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No provider key: the examples pick their scripted models. Emails go to a tmp outbox."""
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DURAGENT_OUTBOX", str(tmp_path / "outbox"))


def load_example(name: str) -> ModuleType:
    """A fresh import of examples/NAME.py (its model is chosen at import, from the environment)."""
    spec = importlib.util.spec_from_file_location(f"example_{name}_{time.monotonic_ns()}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[LocalRuntime]:
    runtime = LocalRuntime(tmp_path / "examples.db", clock=VirtualClock())
    yield runtime
    runtime.close()


def drive(rt: LocalRuntime) -> None:
    rt.run_until_idle(skip_time=False)  # reviews stay pending; their timeouts are days away


def outbox(tmp_path: Path) -> list[str]:
    return [p.read_text() for p in sorted((tmp_path / "outbox").glob("*.eml"))]


# -- prompt chaining -------------------------------------------------------------------------------
def test_prompt_chain_outlines_drafts_and_polishes(rt: LocalRuntime) -> None:
    example = load_example("prompt_chain")
    info = rt.run(example.prompt_chain, {"topic": "durable execution"})
    assert info.status == "SUCCEEDED", info.error
    result = info.result
    assert result["outline"].splitlines() == ["1. What durable execution is", "2. Why durable execution matters",
                                              "3. How to start with durable execution"]
    assert result["draft"].count("\n\n") == 2  # one paragraph per point
    assert result["final"].startswith("# Durable execution, briefly\n\n")
    assert result["final"].endswith(result["draft"])
    assert 0 < result["words"] <= 250
    names = [e.get("Name") for e in rt.history(info.id) if e["EventType"] == "ContextSucceeded"]
    assert names == ["outline", "draft", "polish"]


def test_prompt_chain_gate_stops_a_draft_that_is_too_long(rt: LocalRuntime) -> None:
    example = load_example("prompt_chain")
    info = rt.run(example.prompt_chain, {"topic": "durable execution", "max_words": 20})
    assert info.status == "FAILED"
    assert info.error["ErrorType"].endswith("GateFailedError")
    assert "gate after 'draft'" in info.error["ErrorMessage"]
    assert not any(e.get("Name") == "polish" for e in rt.history(info.id))


def test_prompt_chain_uses_the_real_sdk_when_a_key_is_set(rt: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    with ProviderServer() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-example-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        example = load_example("prompt_chain")
        assert example.MODEL == "anthropic:claude-sonnet-4-6"
        server.enqueue(Reply(text="1. One\n2. Two\n3. Three"), Reply(text="Short prose about it."),
                       Reply(text="# Title\n\nShort prose about it."))
        info = rt.run(example.prompt_chain, {"topic": "queues"})
    assert info.status == "SUCCEEDED", info.error
    assert info.result["final"] == "# Title\n\nShort prose about it."
    assert [r.body["model"] for r in server.requests] == ["claude-sonnet-4-6"] * 3
    # each system prompt goes as one text block carrying a prompt-cache breakpoint
    assert [r.body["system"] for r in server.requests] == [
        [{"type": "text", "text": prompt, "cache_control": {"type": "ephemeral"}}]
        for prompt in (example.OUTLINER, example.DRAFTER, example.POLISHER)]


# -- approval agent --------------------------------------------------------------------------------
def test_approval_agent_sends_the_approved_and_edited_email(rt: LocalRuntime, tmp_path: Path) -> None:
    example = load_example("approval_agent")
    execution_id = rt.start(example.approval_agent, {"request": "Tell Ana that the launch moved to Tuesday"})
    drive(rt)
    assert outbox(tmp_path) == []  # nothing is sent before a person says so
    (review,) = pending_reviews(rt)
    request = review["request"]
    assert request["kind"] == "tool_approval" and request["tool"] == "send_email"
    assert request["arguments"]["to"] == "ana@example.com"
    assert request["arguments"]["subject"] == "The launch moved to Tuesday"
    answer = encode_decision(ReviewRequest.model_validate(request),
                             Approve(edits={"subject": "Launch moved to Tuesday (internal)"}))
    rt.send_callback_success(review["callback_id"], answer)
    drive(rt)
    info = rt.get(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result["reply"] == ("Done: the email was sent to ana@example.com (saved as 001-ana-example-com.eml). "
                                    "A reviewer changed the arguments before running: subject \"The launch moved to "
                                    "Tuesday\" -> \"Launch moved to Tuesday (internal)\".")
    assert info.result["turns"] == 3
    (email,) = outbox(tmp_path)
    assert email.startswith("To: ana@example.com\nSubject: Launch moved to Tuesday (internal)\n\nHi Ana,")


def test_approval_agent_reports_a_rejection_and_sends_nothing(rt: LocalRuntime, tmp_path: Path) -> None:
    example = load_example("approval_agent")
    execution_id = rt.start(example.approval_agent, {"request": "Tell Ben that the budget is approved"})
    drive(rt)
    (review,) = pending_reviews(rt)
    rt.send_callback_success(review["callback_id"],
                             json.dumps({"approved": False, "feedback": "Wait for the finance sign-off"}))
    drive(rt)
    info = rt.get(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert "not sent" in info.result["reply"] and "Wait for the finance sign-off" in info.result["reply"]
    assert outbox(tmp_path) == []


def cli(*args: str, db: Path, outbox_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and k != "DURAGENT_DB"}
    env.update(PYTHONPATH=str(REPO), DURAGENT_OUTBOX=str(outbox_dir))
    return subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


def test_approval_agent_through_the_cli_as_its_docstring_says(tmp_path: Path) -> None:
    db, box = tmp_path / "cli.db", tmp_path / "outbox"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = cli(*args, db=db, outbox_dir=box)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    started = run("run", "examples/approval_agent.py:approval_agent", "--id", "email-ana",
                  "--input", json.dumps({"request": "Tell Ana that the launch moved to Tuesday"}))
    assert "RUNNING (suspended)" in started.stdout
    (item,) = json.loads(run("list", "--pending", "--json").stdout)["pending"]
    assert item["execution_id"] == "email-ana" and item["kind"] == "tool_approval"
    assert item["arguments"]["to"] == "ana@example.com"
    # the run printed the commands that answer this pause
    assert f"approve: duragent --db {db} approve {item['callback_id']}" in started.stdout
    assert f"reject: duragent --db {db} reject {item['callback_id']} --feedback TEXT" in started.stdout
    run("approve", item["callback_id"], "--edit", '{"subject": "Launch: Tuesday"}')  # only what changes
    run("worker", "--until-idle")
    shown: dict[str, Any] = json.loads(run("show", "email-ana", "--json").stdout)
    assert shown["status"] == "SUCCEEDED"
    assert shown["result"]["reply"].startswith("Done: the email was sent to ana@example.com")
    assert 'subject "The launch moved to Tuesday" -> "Launch: Tuesday"' in shown["result"]["reply"]
    assert shown["ledger"]["paid"]["scripted:offline-assistant"]["calls"] == 3
    (email,) = sorted(box.glob("*.eml"))  # the proposed recipient and body, the edited subject
    assert email.read_text().startswith("To: ana@example.com\nSubject: Launch: Tuesday\n\nHi Ana,")


# -- evaluator-optimizer ---------------------------------------------------------------------------
def test_evaluator_optimizer_revises_until_the_rubric_passes(rt: LocalRuntime) -> None:
    example = load_example("evaluator_optimizer")
    info = rt.run(example.evaluator_optimizer_job, {"product": "duragent"})
    assert info.status == "SUCCEEDED", info.error
    result = info.result
    assert result["rounds"] == 2 and result["passed"] is True
    assert result["tagline"] == "duragent: agents whose work survives crashes, paid for once."
    first, second = result["evaluations"]
    assert first["passed"] is False
    assert "words" in first["feedback"] and "crashes" in first["feedback"] and "exclamation" in first["feedback"]
    assert second == {"passed": True, "feedback": ""}
    assert example.check(result["tagline"]).passed
    names = [e.get("Name") for e in rt.history(info.id) if e["EventType"] == "ContextSucceeded"]
    assert names == ["generate 1", "evaluate 1", "generate 2", "evaluate 2"]


def test_evaluator_optimizer_stops_after_max_rounds(rt: LocalRuntime) -> None:
    example = load_example("evaluator_optimizer")
    info = rt.run(example.evaluator_optimizer_job, {"product": "duragent", "max_rounds": 1})
    assert info.status == "SUCCEEDED", info.error
    assert info.result["rounds"] == 1 and info.result["passed"] is False


# -- async agents ----------------------------------------------------------------------------------
def test_async_agents_streams_reviews_and_publishes_as_its_docstring_says(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS and k != "DURAGENT_DB"}
    env.update(PYTHONPATH=str(REPO), DURAGENT_OUTBOX=str(tmp_path / "outbox"))
    db = tmp_path / "async.db"
    done = subprocess.run([sys.executable, "examples/async_agents.py", "--db", str(db), "--approve-all",
                           "--topics", "sqlite,wal"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for topic in ("sqlite", "wal"):
        assert f"[{topic}] Researching {topic}" in out  # streamed while the worker task ran
        assert f"publish '{topic} in brief'?" in out
        assert (tmp_path / "outbox" / f"{topic}-in-brief.md").read_text().startswith(f"# {topic} in brief")
    assert out.count("approved") == 2
    with LocalRuntime(db) as rt:
        rows = rt.list()
        assert sorted(r["status"] for r in rows) == ["SUCCEEDED", "SUCCEEDED"]
        searches = [e for r in rows for e in rt.history(r["id"])
                    if e["EventType"] == "StepSucceeded" and e.get("Name") == "tool:search"]
    assert len(searches) == 4  # two per agent, run at once


def test_async_agents_uses_the_async_sdk_when_a_key_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from tests.fakes.provider_server import FakeToolCall

    with ProviderServer() as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-example-test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        example = load_example("async_agents")
        server.enqueue(Reply(text="Searching.", tool_calls=[FakeToolCall("search", {"query": "queues basics"}),
                                                             FakeToolCall("search", {"query": "queues pitfalls"})]),
                       Reply(tool_calls=[FakeToolCall("publish_brief", {"title": "Queues", "text": "They queue."})]),
                       Reply(text="Published."))
        results = asyncio.run(example.main(tmp_path / "sdk.db", ["queues"], approve_all=True))
    assert [(r["status"], r["reply"]) for r in results] == [("SUCCEEDED", "Published.")]
    assert [r.headers.get("x-stainless-async") for r in server.requests] == ["async:asyncio"] * 3
    assert all(r.body["stream"] is True for r in server.requests)  # the text was streamed to the app
    assert (tmp_path / "outbox" / "queues.md").read_text() == "# Queues\n\nThey queue.\n"


# -- an agent on an MCP server written in the example ----------------------------------------------
def test_mcp_files_summarizes_the_folder_through_its_own_mcp_server(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "files"
    monkeypatch.setenv("DURAGENT_FILES", str(folder))
    done = subprocess.run([sys.executable, "-m", "duragent", "--db", str(tmp_path / "mcp.db"), "run",
                           "examples/mcp_files.py:mcp_files", "--id", "tidy"], cwd=REPO, capture_output=True,
                          text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if k not in KEY_VARS}, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stdout + done.stderr
    example = load_example("mcp_files")
    summary = (folder / "summary.md").read_text()
    for name, text in example.SAMPLES.items():  # every note read through the server, one line each
        assert f"- **{name.removesuffix('.md')}**: {text}" in summary
    with LocalRuntime(tmp_path / "mcp.db") as rt:
        info = rt.get("tidy")
        tools_run = [e["Name"] for e in rt.history("tidy") if e["EventType"] == "StepSucceeded"
                     and e["Name"].startswith("tool:")]
    assert info.status == "SUCCEEDED", info.error
    assert info.result["reply"] == "I summarized 3 notes into summary.md (wrote 257 characters to summary.md)."
    assert tools_run == ["tool:list_files", "tool:read_file", "tool:read_file", "tool:read_file", "tool:write_file"]


# -- a durable chat session ---------------------------------------------------------------------
def test_chat_session_hands_a_refund_to_billing_and_goes_on(rt: LocalRuntime) -> None:
    from duragent.agents import Session

    example = load_example("chat_session")
    session = Session.start(rt, example.support)
    replies = []
    for text in ("Hi!", "I want my money back for order A-17", "Thanks"):
        drive(rt)
        session.send(text, timeout=5)
        drive(rt)
        turn = session.turns()[-1]
        replies.append((turn.agent, turn.reply))
    assert replies == [("triage", "Happy to help (message 1 of our chat). Ask me about an order, or for a refund."),
                       ("billing", "Done: refunded $40 on order A-17. Anything else?"),
                       ("billing", "You're welcome!")]
    assert example.REFUNDS == {"A-17": 40}


def test_chat_session_through_duragent_chat_as_its_docstring_says(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    first = subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), "chat", "examples/chat_session.py:support"],
                           input="I want a refund for order B-2\n/exit\n", cwd=REPO, capture_output=True, text=True,
                           timeout=120, env={k: v for k, v in os.environ.items() if k not in KEY_VARS})
    assert first.returncode == 0, first.stderr
    assert "billing: Done: refunded $40 on order B-2. Anything else?" in first.stdout
    session_id = first.stdout.split("(session ", 1)[1].split(";", 1)[0]
    again = subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), "chat", "examples/chat_session.py:support",
                            "--session", session_id], input="Thanks\n/end\n", cwd=REPO, capture_output=True, text=True,
                           timeout=120, env={k: v for k, v in os.environ.items() if k not in KEY_VARS})
    assert again.returncode == 0, again.stderr
    assert "you: I want a refund for order B-2" in again.stdout and "billing: You're welcome!" in again.stdout
    assert f"(session {session_id} ended)" in again.stdout
