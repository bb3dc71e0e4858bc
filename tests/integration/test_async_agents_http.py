"""Async agents for real: ``AsyncAnthropic`` and ``AsyncOpenAI`` talk HTTP to the fake provider server
on 127.0.0.1 (tests/fakes/provider_server.py), configured only through the SDKs' own environment
variables; nothing inside an SDK is patched.

- A tool loop with async tools, the parallel tool calls of one response running at once on the
  loop, and streaming to an async callback; the requests really came from the async clients.
- Paid once: a worker serving an async map of async agents is SIGKILLed while some agents are
  inside a tool call and one has finished; a fresh worker finishes the job, and every model call
  and tool call that had finished was paid (run) exactly once.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from duragent.agents import Agent
from duragent.durable import AsyncDurableContext, LocalRuntime, VirtualClock
from duragent.tools import tool
from tests.fakes.provider_server import FakeToolCall, ProviderServer, RecordedRequest, Reply
from tests.integration import agent_jobs
from tests.integration.crash_helpers import SERVE, kill_when, run_to_end, spawn, worker_env
from tests.integration.test_agent_durability import CANARY, PROVIDERS, SPECS, provider_env, store_bytes

pytestmark = pytest.mark.usefixtures("clean_env")


# -- a tool loop with parallel async tools and streaming -------------------------------------------------
IN_FLIGHT: dict[str, int] = {"now": 0, "peak": 0}


@tool
async def weather(city: str) -> str:
    """Today's weather.

    Args:
        city: where.
    """
    IN_FLIGHT["now"] += 1
    IN_FLIGHT["peak"] = max(IN_FLIGHT["peak"], IN_FLIGHT["now"])
    await asyncio.sleep(0.05)  # I/O: the sibling call runs meanwhile
    IN_FLIGHT["now"] -= 1
    return f"{city}: sunny"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_sdk_tool_loop_with_parallel_async_tools_and_streaming(
        provider: str, server: ProviderServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in provider_env(provider, server.url).items():
        monkeypatch.setenv(name, value)
    IN_FLIGHT.update(now=0, peak=0)
    server.enqueue(Reply(text="Checking both cities.", tool_calls=[FakeToolCall("weather", {"city": "Oslo"}),
                                                                    FakeToolCall("weather", {"city": "Lima"})],
                         chunks=["Checking ", "both ", "cities."]),
                   Reply(text="Oslo and Lima are sunny.", chunks=["Oslo and Lima ", "are sunny."]))
    agent = Agent(SPECS[provider], tools=[weather], name="forecaster")
    streamed: list[str] = []

    async def on_text(delta: str) -> None:
        streamed.append(delta)

    async def handler(event: Any, ctx: AsyncDurableContext) -> dict[str, Any]:
        result = await agent.run(ctx, "Weather in Oslo and Lima?", on_text=on_text)
        return {"output": result.output, "turns": result.turns, "tokens": result.usage.total_tokens}

    with LocalRuntime(tmp_path / "loop.db", clock=VirtualClock()) as rt:
        info = rt.run(handler, {})
        history = rt.history(info.id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"output": "Oslo and Lima are sunny.", "turns": 2, "tokens": 2 * 15}
    assert streamed == ["Checking ", "both ", "cities.", "Oslo and Lima ", "are sunny."]
    assert IN_FLIGHT["peak"] == 2  # both tool calls of the first response were in flight at once
    assert server.request_count == 2
    assert all(r.headers.get("x-stainless-async") == "async:asyncio" for r in server.requests)  # the async clients
    assert all(r.body.get("stream") is True for r in server.requests)
    second = json.dumps(server.requests[1].body)
    assert "Oslo: sunny" in second and "Lima: sunny" in second
    tools = [e for e in history if e["EventType"] == "StepSucceeded" and e.get("Name") == "tool:weather"]
    assert len(tools) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_async_sdk_without_streaming_and_retryable_errors(
        provider: str, server: ProviderServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes.provider_server import FakeError

    for name, value in provider_env(provider, server.url).items():
        monkeypatch.setenv(name, value)
    server.enqueue(FakeError(429, "slow down", headers={"retry-after": "2"}), Reply(text="Fine."))
    agent = Agent(SPECS[provider], name="asker")

    async def handler(event: Any, ctx: AsyncDurableContext) -> str:
        return str((await agent.run(ctx, "Say something.")).output)

    with LocalRuntime(tmp_path / "retry.db", clock=VirtualClock()) as rt:
        info = rt.run(handler, {})
    assert info.status == "SUCCEEDED", info.error
    assert info.result == "Fine." and info.invocations == 2  # the 429 was a durable retry
    assert server.request_count == 2 and "stream" not in server.requests[0].body


# -- paid once, after a SIGKILL in the middle of a map of async agents ----------------------------------
TOPICS = ["alpha", "beta", "gamma"]


def team_responder(directory: str) -> Any:
    """Each agent's next reply, by its topic and how many turns it has had: a note, then (except
    alpha, which finishes at once) a slow report, then done."""

    def respond(request: RecordedRequest) -> Reply:
        messages = request.body["messages"]
        topic = next(t for t in TOPICS if f"Topic: {t}." in json.dumps(messages))
        turn = sum(1 for m in messages if m.get("role") == "assistant") + 1
        if turn == 1:
            return Reply(tool_calls=[FakeToolCall("note_async", {"directory": directory, "text": topic})])
        if turn == 2 and topic != "alpha":
            return Reply(tool_calls=[FakeToolCall("report_async", {"directory": directory, "title": topic})])
        return Reply(text=f"{topic}: done")

    return respond


def files(directory: Path, what: str) -> list[Path]:
    return sorted(directory.glob(f"{what}.*"))


def item_finished(db: Path, execution_id: str, name: str) -> bool:
    with LocalRuntime(db) as rt:
        return any(e["EventType"] == "ContextSucceeded" and e.get("Name") == name for e in rt.history(execution_id))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sigkill_in_a_map_of_async_agents_then_resume_pays_every_finished_call_once(
        provider: str, server: ProviderServer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    server.responder = team_responder(str(work))
    db = tmp_path / "team.db"
    with LocalRuntime(db) as rt:
        execution_id = rt.start(agent_jobs.async_team_job, {"model": SPECS[provider], "directory": str(work),
                                                            "topics": TOPICS}, execution_id="team")
    env = worker_env(provider_env(provider, server.url))

    worker = spawn(SERVE, db, env)
    killed_stderr = kill_when(worker, lambda: bool(files(work, "report-entered-beta")
                                                   and files(work, "report-entered-gamma")
                                                   and item_finished(db, execution_id, "alpha")),
                              what="the agents never reached the state to kill them in", within=60, poll=0.01)
    assert server.request_count == 6  # alpha: 2 calls (finished); beta, gamma: 2 each, now inside a tool
    assert files(work, "report-done-beta") == files(work, "report-done-gamma") == []

    (work / "release").touch()
    resumed = run_to_end(db, execution_id, env, within=60, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "SUCCEEDED", resumed.stderr

    with LocalRuntime(db) as rt:
        info = rt.get(execution_id)
        history = rt.history(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"outputs": [f"{t}: done" for t in TOPICS]}
    model_calls = [e for e in history if e["EventType"] == "StepSucceeded" and e.get("SubType") == "ModelCall"]
    assert len(model_calls) == 2 + 3 + 3
    assert server.request_count == len(model_calls)  # no model call paid twice
    for topic in TOPICS:  # the finished tool calls were not run again; the interrupted ones were, once
        assert len(files(work, f"note-{topic}")) == 1
    for topic in ("beta", "gamma"):
        entered = files(work, f"report-entered-{topic}")
        assert len(entered) == 2 and len({p.suffix for p in entered}) == 2  # once per process
        assert len(files(work, f"report-done-{topic}")) == 1
    assert all(r.headers.get("x-stainless-async") == "async:asyncio" for r in server.requests)
    assert CANARY not in killed_stderr + resumed.stderr + resumed.stdout
    assert CANARY.encode() not in store_bytes(db)
