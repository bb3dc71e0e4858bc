"""Agents are durable for real: the real anthropic/openai SDKs talk HTTP to a fake provider server
on 127.0.0.1 (tests/fakes/provider_server.py), configured only through the SDKs' own environment
variables (ANTHROPIC_BASE_URL / OPENAI_BASE_URL and the API keys); nothing inside an SDK is patched.

- Paid once: a worker process is SIGKILLed inside a tool call and a fresh worker finishes the job;
  the provider received exactly one request per distinct model call.
- Retryable provider errors (429 with Retry-After, 529, 500) are retried as durable step retries:
  the invocation suspends for the delay, and the SDK's own retries are off (one request per attempt).
- No secret in the store: a recognisable key never reaches the SQLite file, its WAL or the logs.
- Storage grows with each response, not with the conversation (a 200-turn tool loop).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest

from duragent.agents import Agent, ledger_from_history
from duragent.agents.messages import ModelRequest, ModelResponse, ToolCall, ToolResult
from duragent.agents.models import FunctionModel
from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.tools import tool
from tests.fakes.provider_server import FakeError, FakeToolCall, FakeUsage, ProviderServer, Reply
from tests.integration import agent_jobs
from tests.integration.crash_helpers import WORKER, kill_when, run_to_end, spawn, worker_env

pytestmark = pytest.mark.usefixtures("clean_env")

CANARY = "sk-ant-DURAGENT-CANARY-123456"
SPECS = {"anthropic": "anthropic:claude-test", "openai": "openai:gpt-test"}
PROVIDERS = list(SPECS)


# -- fixtures and helpers ----------------------------------------------------------------------------
def provider_env(provider: str, url: str, key: str = CANARY) -> dict[str, str]:
    """The SDK's own environment variables, pointing at the fake server."""
    if provider == "anthropic":
        return {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": key}
    return {"OPENAI_BASE_URL": url + "/v1", "OPENAI_API_KEY": key}


def use_provider(provider: str, server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in provider_env(provider, server.url).items():
        monkeypatch.setenv(name, value)


def model_call_successes(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in history if e["EventType"] == "StepSucceeded" and e.get("SubType") == "ModelCall"]


# -- paid once -------------------------------------------------------------------------------------
def markers(directory: Path, what: str) -> list[Path]:
    return sorted(directory.glob(f"{what}.*"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_worker_killed_inside_a_tool_call_resumes_without_paying_twice(
        provider: str, server: ProviderServer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    server.enqueue(
        Reply(text="Noting first.", tool_calls=[FakeToolCall("take_note", {"directory": str(work), "text": "Q3 up"})]),
        Reply(tool_calls=[FakeToolCall("slow_report", {"directory": str(work), "title": "Q3"})]),
        Reply(text="Done: the Q3 report is written."))
    db = tmp_path / "agent.db"
    with LocalRuntime(db) as rt:
        execution_id = rt.start(agent_jobs.paid_once_job, {"model": SPECS[provider], "directory": str(work)},
                                execution_id="paid-once")
    env = worker_env(provider_env(provider, server.url))

    worker = spawn(WORKER, db, env)
    killed_stderr = kill_when(worker, lambda: bool(markers(work, "report-entered")),
                              what="the worker never reached the slow tool", within=30, poll=0.005)
    assert server.request_count == 2  # two model calls were made (and paid) before the kill
    assert markers(work, "report-done") == []  # the kill landed inside the tool call

    (work / "release").touch()
    resumed = run_to_end(db, execution_id, env, within=60, timeout=90)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "SUCCEEDED", resumed.stderr

    with LocalRuntime(db) as rt:
        info = rt.get(execution_id)
        history = rt.history(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"output": "Done: the Q3 report is written.", "turns": 3}
    successes = model_call_successes(history)
    assert len(successes) == 3
    assert server.request_count == len(successes)  # no model call paid twice
    assert len({e["Id"] for e in successes}) == 3
    assert len(markers(work, "note")) == 1  # the finished tool call was not run again either
    assert len(markers(work, "report-entered")) == 2 and len(markers(work, "report-done")) == 1
    entered_pids = {p.suffix for p in markers(work, "report-entered")}
    assert len(entered_pids) == 2 and markers(work, "report-done")[0].suffix in entered_pids  # two processes
    # what the resumed model call was sent: the whole conversation, rebuilt from the journal
    last = server.requests[-1].body
    flat = json.dumps(last)
    assert "noted: Q3 up" in flat and "report 'Q3' written" in flat
    ledger = ledger_from_history(history)  # what `duragent show` reports: each call once, as the server billed it
    assert ledger.paid_calls == 3 and ledger.total_usage.total_tokens == 3 * (10 + 5)
    assert ledger.paid_calls + ledger.lost_calls == server.request_count  # the kill landed in a tool: none lost
    assert ledger.reused_calls == 2  # the two answers from before the kill, replayed by the resumed worker
    assert CANARY not in killed_stderr + resumed.stderr + resumed.stdout
    assert CANARY.encode() not in store_bytes(db)
    assert any(e["EventType"] == "InvocationCompleted"
               and (e["InvocationCompletedDetails"].get("Error") or {}).get("Payload", {}).get("ErrorType")
               == "Runtime.ExitError" for e in history)  # the killed invocation is on the record


# -- retries ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("provider", PROVIDERS)
def test_retryable_provider_errors_are_durable_retries(provider: str, server: ProviderServer, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    use_provider(provider, server, monkeypatch)
    server.enqueue(FakeError(429, "slow down", headers={"retry-after": "2"}), FakeError(529, "overloaded"),
                   FakeError(500, "oops"), Reply(text="Finally.", usage=FakeUsage(input_tokens=7, output_tokens=2)))
    agent = Agent(SPECS[provider], name="asker")
    with LocalRuntime(tmp_path / "retry.db", clock=VirtualClock()) as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "Say something.").output, {})
        history = rt.history(info.id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == "Finally."
    assert info.invocations == 4  # every retry was a suspension and a fresh invocation

    steps = [e for e in history if e.get("Name") == "asker: model call 1" and e["EventType"].startswith("Step")]
    assert [e["EventType"] for e in steps] == ["StepStarted", "StepFailed"] * 3 + ["StepStarted", "StepSucceeded"]
    failures = [e for e in steps if e["EventType"] == "StepFailed"]
    retry = [f["StepFailedDetails"]["RetryDetails"] for f in failures]
    assert [r["CurrentAttempt"] for r in retry] == [1, 2, 3]
    assert retry[0]["NextAttemptDelaySeconds"] == 2  # the provider's Retry-After, honoured
    assert all(r["NextAttemptDelaySeconds"] >= 1 for r in retry)
    kinds = [f["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] for f in failures]
    assert [k.rsplit(".", 1)[-1] for k in kinds] == ["ModelRateLimitError", "ModelOverloadedError",
                                                     "ModelOverloadedError"]
    # the invocation ended (suspended) between each failure and the next attempt
    position = {id(e): i for i, e in enumerate(history)}
    completed = [i for i, e in enumerate(history) if e["EventType"] == "InvocationCompleted"]
    starts = [e for e in steps if e["EventType"] == "StepStarted"]
    for failure, next_start in zip(failures, starts[1:], strict=True):
        assert any(position[id(failure)] < i < position[id(next_start)] for i in completed)
        assert next_start["EventTimestamp"] - failure["EventTimestamp"] >= \
            failure["StepFailedDetails"]["RetryDetails"]["NextAttemptDelaySeconds"]
    # the SDK's own retries are off: exactly one HTTP request per attempt
    assert server.request_count == len(starts) == 4


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_non_retryable_provider_error_fails_the_model_call_at_once(
        provider: str, server: ProviderServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_provider(provider, server, monkeypatch)
    server.enqueue(FakeError(401, "bad key"))
    agent = Agent(SPECS[provider], name="asker")
    with LocalRuntime(tmp_path / "auth.db", clock=VirtualClock()) as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "Say something.").output, {})
    assert info.status == "FAILED"
    assert "ModelAuthError" in info.error["ErrorType"]
    assert server.request_count == 1


# -- secrets ---------------------------------------------------------------------------------------
@tool
def lookup(topic: str) -> str:
    """Look a topic up.

    Args:
        topic: what to look up.
    """
    return f"{topic}: it is durable"


def store_bytes(db: Path) -> bytes:
    """The main file and the WAL as they are on disk, and every compressed journal row inflated
    (large rows are stored zlib-compressed: a secret in one would not show in the raw bytes)."""
    raw = b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))
    with sqlite3.connect(db) as conn:
        packed = [zlib.decompress(data) for (data,) in conn.execute("SELECT data FROM journal")
                  if isinstance(data, bytes)]
    conn.close()
    return raw + b"".join(packed)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_secret_reaches_the_store_or_the_logs(provider: str, server: ProviderServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                 capfd: pytest.CaptureFixture[str]) -> None:
    use_provider(provider, server, monkeypatch)
    server.enqueue(FakeError(429, "rate limited", headers={"retry-after": "1"}),
                   Reply(tool_calls=[FakeToolCall("lookup", {"topic": "duragent"})]),
                   FakeError(500, "internal"),
                   Reply(text="duragent is durable"))
    agent = Agent(SPECS[provider], tools=[lookup], name="secretive")
    db = tmp_path / "secrets.db"
    caplog.set_level(logging.DEBUG)  # everything any logger says, the SDKs' and httpx's included
    with LocalRuntime(db, clock=VirtualClock()) as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "What is duragent?").output, {})
        assert info.status == "SUCCEEDED", info.error
        assert info.result == "duragent is durable"
        while_open = store_bytes(db)  # the main file and the WAL, as they are on disk now
        history = json.dumps(rt.history(info.id))
        operations = json.dumps([op.to_wire() for op in rt.operations(info.id)], default=str)
    after_close = store_bytes(db)

    assert server.request_count == 4
    assert all(r.auth_headers for r in server.requests)  # the key was really sent, every time
    assert len(while_open) > 0 and b"duragent is durable" in while_open + after_close
    secrets = [CANARY, f"Bearer {CANARY}", "DURAGENT-CANARY"]
    for secret in secrets:
        assert secret.encode() not in while_open
        assert secret.encode() not in after_close
        assert secret not in history and secret not in operations
        assert secret not in caplog.text
    out, err = capfd.readouterr()
    assert "DURAGENT-CANARY" not in out + err
    assert "x-api-key" not in (while_open + after_close).decode("utf-8", "replace").lower()
    assert "authorization" not in history.lower()


# -- storage ---------------------------------------------------------------------------------------
TURNS = 200


def store_size(db: Path) -> int:
    """Bytes of journal the store holds: every row's data, as stored (large data compressed)."""
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM journal").fetchone()[0]
    conn.close()
    return int(stored)


def test_storage_grows_with_each_response_not_with_the_conversation(tmp_path: Path) -> None:
    db = tmp_path / "long.db"
    sizes: list[int] = []  # store size seen at the start of each model call

    @tool
    def record(entry: str, value: int) -> str:
        """Record an entry.

        Args:
            entry: what to record.
            value: its value.
        """
        return f"recorded {entry} = {value:06d}; the ledger now balances and nothing else changed"

    def brain(request: ModelRequest) -> ModelResponse | str:
        sizes.append(store_size(db))
        turn = sum(1 for m in request.messages if m.role == "assistant") + 1
        if turn > TURNS:
            return "All entries recorded."
        return ModelResponse(content=[ToolCall(id=f"call_{turn:06d}", name="record",
                                               arguments={"entry": f"entry-{turn:06d}", "value": turn})],
                             stop_reason="tool_use", model="")

    model = FunctionModel(brain, name="bookkeeper")
    agent = Agent(model, tools=[record], name="bookkeeper", max_turns=TURNS + 5)

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        result = agent.run(ctx, "Record 200 entries, one per turn.")
        results = [b for m in result.messages for b in m.content if isinstance(b, ToolResult)]
        return {"output": result.output, "turns": result.turns, "results": len(results)}

    with LocalRuntime(db, clock=VirtualClock(), durability="process") as rt:
        info = rt.run(handler, {})
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"output": "All entries recorded.", "turns": TURNS + 1, "results": TURNS}
    assert len(sizes) == TURNS + 1
    per_turn = [b - a for a, b in zip(sizes, sizes[1:], strict=False)]  # per_turn[i]: bytes of turn i + 1
    early = sum(per_turn[5:15]) / 10  # turns 6-15
    late = sum(per_turn[-10:]) / 10  # turns 191-200
    assert early > 0
    # The conversation at turn 200 is ~20 times longer than at turn 10; what each turn stores is not.
    assert late <= early * 1.05 + 16, (early, late)
    conversation_chars = sum(len(m.model_dump_json()) for m in model.requests[-1].messages)
    assert conversation_chars > 20 * late  # had the conversation been stored per turn, this would show
