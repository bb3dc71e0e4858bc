"""Tools from MCP servers, durably: real MCP servers written with the official SDK
(tests/fakes/mcp_server.py) run as their own processes, over stdio and over streamable HTTP on
127.0.0.1 with a bearer token; agents use their tools through ``duragent.tools.mcp``.

Every call is counted on the server side (``calls.jsonl``), every server process start too
(``started.jsonl``), so "not called again" and "no process held" are facts about the server, not
about our own bookkeeping.
"""

from __future__ import annotations

import asyncio
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
from tenacity import stop_after_attempt, wait_fixed

from duragent.agents import Agent, ToolsChangedError, pending_reviews
from duragent.agents.messages import ModelRequest, ModelResponse, ToolResult
from duragent.agents.models import FunctionModel, ScriptedModel
from duragent.agents.review import Approve, Reject, ReviewRequest, encode_decision
from duragent.durable import AsyncDurableContext, DurableContext, LocalRuntime, RetryPolicy, VirtualClock
from duragent.tools import tool
from duragent.tools.mcp import MCPServerError, MCPServerHTTP, MCPServerStdio
from tests.integration import mcp_jobs
from tests.integration.mcp_jobs import REPO, notes_server, tool_call

TOKEN = "mcp-BEARER-CANARY-8c41f2"
ENV_SECRET = "mcp-ENV-CANARY-51d0e7"


# -- helpers -----------------------------------------------------------------------------------------
def calls(state: Path, tool_name: str | None = None) -> list[dict[str, Any]]:
    """The calls the server received (all processes), optionally of one tool."""
    path = state / "calls.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [e for e in entries if tool_name is None or e["tool"] == tool_name]


def starts(state: Path) -> list[dict[str, Any]]:
    path = state / "started.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive: it is only waiting to be reaped by its parent
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_for(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def store_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def tool_results(messages: list[Any]) -> list[ToolResult]:
    return [block for m in messages for block in m.content if isinstance(block, ToolResult)]


def server_tools(state: Path) -> dict[str, Any]:
    """The server's own listing, through the SDK's client (what the agent must offer, prefixed)."""
    from mcp import Client, StdioServerParameters

    async def listing() -> dict[str, Any]:
        parameters = StdioServerParameters(command=sys.executable, args=["-m", "tests.fakes.mcp_server", "stdio",
                                                                         str(state)], cwd=str(REPO))
        async with Client(parameters, cache=None) as client:
            return {t.name: t for t in (await client.list_tools()).tools}

    return asyncio.run(listing())


@pytest.fixture
def state(tmp_path: Path) -> Path:
    directory = tmp_path / "server"
    directory.mkdir()
    return directory


class HTTPServer:
    """tests/fakes/mcp_server.py over streamable HTTP in its own process, on a free port."""

    def __init__(self, state: Path, token: str = TOKEN) -> None:
        self.state = state
        self.token = token
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, port: int = 0) -> str:
        """Start (or restart, on ``port``) the server; its URL."""
        (self.state / "port").unlink(missing_ok=True)
        self.process = subprocess.Popen([sys.executable, "-m", "tests.fakes.mcp_server", "http", str(self.state),
                                         self.token, str(port)], cwd=REPO, stderr=subprocess.PIPE)
        wait_for(lambda: (self.state / "port").exists() or self.process.poll() is not None, "the HTTP MCP server")
        assert self.process.poll() is None, self.process.stderr.read().decode() if self.process.stderr else ""
        return f"http://127.0.0.1:{(self.state / 'port').read_text()}/mcp"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def http_server(state: Path) -> Iterator[HTTPServer]:
    server = HTTPServer(state)
    yield server
    server.stop()


# -- an agent uses a server's tools ------------------------------------------------------------------
def test_an_agent_uses_a_stdio_servers_tools_as_offered_by_the_server(state: Path, tmp_path: Path) -> None:
    script = ScriptedModel([
        tool_call("notes_write_note", {"name": "plan", "text": "ship it"}, "c1"),
        tool_call("notes_write_note", {"name": "plan"}, "c2"),           # misses a required argument
        tool_call("notes_stat_note", {"name": "plan"}, "c3"),            # structured content
        tool_call("notes_read_note", {"name": "missing"}, "c4"),         # the server reports isError
        tool_call("notes_hidden_admin", {}, "c5"),                       # denied: never offered
        "All done."], by_turn=True)
    agent = Agent(script, tools=[notes_server(state)], name="writer")
    with LocalRuntime(tmp_path / "a.db") as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "Write the plan.").messages, {})
        history = rt.history(info.id)
    assert info.status == "SUCCEEDED", info.error
    [start] = starts(state)  # one process for the whole run (one invocation), and it is gone now
    assert not alive(start["pid"])

    # what the model was offered: the server's names (prefixed), descriptions and schemas
    listing = server_tools(state)
    offered = {spec.name: spec for spec in script.requests[0].tools}
    assert set(offered) == {f"notes_{name}" for name in listing if name != "hidden_admin"}
    for name, original in listing.items():
        if name != "hidden_admin":
            assert offered[f"notes_{name}"].description == original.description
            assert offered[f"notes_{name}"].parameters == original.input_schema
    assert all(request.tools == script.requests[0].tools for request in script.requests)

    results = {r.tool_call_id: r for r in tool_results(agent_messages(info.result))}
    assert results["c1"].content == "wrote 7 characters to plan" and not results["c1"].is_error
    assert results["c2"].is_error and "text" in results["c2"].content  # refused before the server was asked
    assert json.loads(results["c3"].content) == {"name": "plan", "size": 7} and not results["c3"].is_error
    assert results["c4"].is_error and "no note named missing" in results["c4"].content
    assert results["c5"].is_error and "unknown tool" in results["c5"].content
    # the server saw exactly the calls that were valid and offered, once each
    assert [c["tool"] for c in calls(state)] == ["write_note", "stat_note", "read_note"]
    assert (state / "notes" / "plan").read_text() == "ship it"
    step_names = [e["Name"] for e in history if e["EventType"] == "StepSucceeded"]
    assert step_names[0] == "writer: tools of notes"
    assert [n for n in step_names if n.startswith("tool:")] == ["tool:notes_write_note", "tool:notes_stat_note",
                                                                 "tool:notes_read_note"]


def agent_messages(dumped: list[dict[str, Any]]) -> list[Any]:
    from duragent.agents.messages import Message

    return [Message.model_validate(m) for m in dumped]


def test_an_agent_uses_an_http_servers_tools_with_a_bearer_token_that_never_reaches_the_journal(
        state: Path, tmp_path: Path, http_server: HTTPServer) -> None:
    url = http_server.start()
    script = ScriptedModel([
        tool_call("write_note", {"name": "a", "text": "one"}, "c1"),
        tool_call("read_note", {"name": "a"}, "c2"),
        "Read it."], by_turn=True)
    server = MCPServerHTTP(url + f"?key={TOKEN}x", headers={"Authorization": f"Bearer {TOKEN}"}, name="notes",
                           allow=["write_note", "read_note"])
    agent = Agent(script, tools=[server], name="reader")
    db = tmp_path / "http.db"
    with LocalRuntime(db) as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "Note and read.").messages, {})
    assert info.status == "SUCCEEDED", info.error
    assert sorted(spec.name for spec in script.requests[0].tools) == ["read_note", "write_note"]  # allow list
    results = {r.tool_call_id: r.content for r in tool_results(agent_messages(info.result))}
    assert results == {"c1": "wrote 3 characters to a", "c2": "one"}
    assert [c["tool"] for c in calls(state)] == ["write_note", "read_note"]
    sent = [json.loads(line) for line in (state / "headers.jsonl").read_text().splitlines()]
    assert sent and all(h["token_ok"] for h in sent)  # the header went with every request
    assert TOKEN.encode() not in store_bytes(db)
    assert "Bearer" not in repr(server) and TOKEN not in repr(server)

    # a wrong token: the server refuses, the run fails clearly, and the token is not in the message
    wrong = "WRONG-token-0f9e8d7c"
    refused = Agent(ScriptedModel(["unused"]), tools=[MCPServerHTTP(url, headers={"Authorization": f"Bearer {wrong}"},
                                                                      name="notes")], name="refused")
    with LocalRuntime(db) as rt:
        failed = rt.run(lambda event, ctx: refused.run(ctx, "hi").output, {})
    assert failed.status == "FAILED"
    assert "MCP server 'notes'" in failed.error["ErrorMessage"] and "unavailable" in failed.error["ErrorMessage"]
    assert wrong not in json.dumps(failed.error)
    assert wrong.encode() not in store_bytes(db) and TOKEN.encode() not in store_bytes(db)


def test_env_given_to_a_stdio_server_reaches_the_process_only(state: Path, tmp_path: Path) -> None:
    agent = Agent(ScriptedModel([tool_call("notes_write_note", {"name": "k", "text": "v"}, "c1"), "ok"], by_turn=True),
                  tools=[notes_server(state, env={"NOTES_SECRET": ENV_SECRET})], name="env")
    db = tmp_path / "env.db"
    with LocalRuntime(db) as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "go").output, {})
    assert info.status == "SUCCEEDED", info.error
    assert [s["secret_env"] for s in starts(state)] == [ENV_SECRET]  # the server got it...
    assert ENV_SECRET.encode() not in store_bytes(db)                # ...the journal did not


# -- killed after a tool call, before the next model call --------------------------------------------
WORKER = """
import sys
from duragent.durable import LocalRuntime
LocalRuntime(sys.argv[1]).worker()
"""

RESUME = """
import sys, time
from duragent.durable import LocalRuntime
with LocalRuntime(sys.argv[1]) as rt:
    deadline = time.time() + 90  # the interrupted model call is retried after a 1 s durable delay
    while rt.get(sys.argv[2]).status == "RUNNING" and time.time() < deadline:
        if not rt.run_once():
            time.sleep(0.02)
    print(rt.get(sys.argv[2]).status)
"""


def test_sigkill_between_a_finished_mcp_call_and_the_next_model_call_does_not_call_the_tool_again(
        state: Path, tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    with LocalRuntime(db) as rt:
        execution_id = rt.start(mcp_jobs.note_once_job, {"state": str(state)}, execution_id="note-once")
    (state / "block").touch()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(db)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: (state / "model-2-entered").exists() or worker.poll() is not None, "model call 2")
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        if worker.stderr is not None:
            worker.stderr.close()
    assert worker.returncode == -signal.SIGKILL
    assert len(calls(state, "write_note")) == 1  # the call finished before the kill

    (state / "block").unlink()
    resumed = subprocess.run([sys.executable, "-c", RESUME, str(db), execution_id], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    assert resumed.stdout.strip() == "SUCCEEDED", resumed.stderr
    with LocalRuntime(db) as rt:
        info = rt.get(execution_id)
    assert info.result == {"output": "done after: wrote 7 characters to plan", "turns": 2}
    assert len(calls(state, "write_note")) == 1  # counted by the server: never called again
    # the resumed invocations replayed the listing and the call from the journal; they connected
    # only to check the tools before the model call ran again, and every server process is gone
    assert len(starts(state)) >= 2
    assert not any(alive(s["pid"]) for s in starts(state))


def test_sigkill_inside_an_at_most_once_mcp_call_never_calls_it_again(state: Path, tmp_path: Path) -> None:
    db = tmp_path / "amo.db"
    with LocalRuntime(db) as rt:
        execution_id = rt.start(mcp_jobs.slow_once_job, {"state": str(state)}, execution_id="slow-once")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(db)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: calls(state, "slow") or worker.poll() is not None, "the server to receive the call")
        assert worker.poll() is None, worker.stderr.read().decode() if worker.stderr else ""
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        if worker.stderr is not None:
            worker.stderr.close()
    resumed = subprocess.run([sys.executable, "-c", RESUME, str(db), execution_id], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    assert resumed.stdout.strip() == "SUCCEEDED", resumed.stderr
    with LocalRuntime(db) as rt:
        output = rt.get(execution_id).result["output"]
    assert output.startswith("error: ") and "interrupted" in output  # the model is told; nothing re-ran
    assert len(calls(state, "slow")) == 1


# -- approval through the review protocol ------------------------------------------------------------
def review_of(rt: LocalRuntime) -> tuple[str, ReviewRequest]:
    [pending] = pending_reviews(rt)
    return pending["callback_id"], ReviewRequest.model_validate(pending["request"])


def test_an_approval_gated_mcp_tool_suspends_holding_nothing_and_runs_once_after_approval(
        state: Path, tmp_path: Path) -> None:
    with LocalRuntime(tmp_path / "approve.db") as rt:
        execution_id = rt.start(mcp_jobs.mail_job, {"state": str(state)})
        rt.run_until_idle()
        assert rt.get(execution_id).status == "RUNNING"  # suspended, waiting for the reviewer
        callback_id, request = review_of(rt)
        assert request.tool == "notes_send_mail"
        assert request.arguments == {"to": "ops@example.com", "body": "deploy done"}
        assert request.argument_schema and "to" in request.argument_schema["properties"]  # the server's schema
        assert calls(state, "send_mail") == []
        assert starts(state) and not any(alive(s["pid"]) for s in starts(state))  # no process while it waits

        # an edit that breaks the server's schema is refused before anything is recorded
        with pytest.raises(Exception, match="to"):
            encode_decision(request, Approve(edits={"to": 42}))
        rt.send_callback_success(callback_id, encode_decision(request, Approve(edits={"body": "deploy done!"})))
        rt.run_until_idle()
        info = rt.get(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert [c["arguments"] for c in calls(state, "send_mail")] == [{"to": "ops@example.com", "body": "deploy done!"}]
    assert not any(alive(s["pid"]) for s in starts(state))


def test_a_rejected_mcp_tool_never_runs_and_the_model_reads_why(state: Path, tmp_path: Path) -> None:
    with LocalRuntime(tmp_path / "reject.db") as rt:
        execution_id = rt.start(mcp_jobs.mail_job, {"state": str(state)})
        rt.run_until_idle()
        callback_id, request = review_of(rt)
        rt.send_callback_success(callback_id, encode_decision(request, Reject(feedback="not on a Friday")))
        rt.run_until_idle()
        info = rt.get(execution_id)
        operations = rt.operations(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert calls(state, "send_mail") == []
    assert not any(op.Name == "tool:notes_send_mail" for op in operations)
    assert "The reviewer rejected this call; it was not run. Feedback: not on a Friday" in info.result["output"]


# -- the server changed while the execution waited ---------------------------------------------------
def replay_check(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "duragent", "replay-check", "--db", str(db)], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120)


def test_a_server_whose_tools_changed_while_the_execution_waited_is_reported_like_a_prompt_change(
        state: Path, tmp_path: Path) -> None:
    db = tmp_path / "changed.db"
    with LocalRuntime(db) as rt:
        execution_id = rt.start(mcp_jobs.mail_job, {"state": str(state)})
        rt.run_until_idle()
        callback_id, request = review_of(rt)

    check = replay_check(db)  # unchanged: the deploy gate passes
    assert check.returncode == 0, check.stdout + check.stderr

    (state / "variant").write_text("archive")  # the server is upgraded while the execution waits
    check = replay_check(db)
    assert check.returncode == 1, check.stdout + check.stderr
    assert "ToolsChangedError" in check.stdout and "notes changed its tools (added: notes_archive_note)" in check.stdout

    with LocalRuntime(db) as rt:
        rt.send_callback_success(callback_id, encode_decision(request, Approve()))
        rt.run_until_idle()
        info = rt.get(execution_id)
    assert info.status == "FAILED"
    assert info.error["ErrorType"] == ToolsChangedError.recorded_name
    assert "notes changed its tools (added: notes_archive_note)" in info.error["ErrorMessage"]
    assert len(calls(state, "send_mail")) == 1  # the approved call ran; the next model call did not


def test_with_on_prompt_change_warn_the_new_tools_are_offered_and_recorded(state: Path, tmp_path: Path) -> None:
    db = tmp_path / "warn.db"
    with LocalRuntime(db) as rt:
        execution_id = rt.start(mcp_jobs.mail_job, {"state": str(state), "on_change": "warn"})
        rt.run_until_idle()
        callback_id, request = review_of(rt)
        (state / "variant").write_text("archive")
        rt.send_callback_success(callback_id, encode_decision(request, Approve()))
        rt.run_until_idle()
        info = rt.get(execution_id)
        model_calls = [json.loads(op.StepDetails.Result) for op in rt.operations(execution_id)
                       if op.SubType == "ModelCall"]
    assert info.status == "SUCCEEDED", info.error
    assert "notes_archive_note" in info.result["output"]  # the model was offered the new tool
    [warning] = info.result["warnings"]
    assert "notes changed its tools (added: notes_archive_note)" in warning
    assert "toolsets" not in model_calls[0]  # the first call used the list recorded at the start
    assert "notes_archive_note" in {t["name"] for t in model_calls[1]["toolsets"]["notes"]}

    # the record is what replay goes by: the run replays to the same result, warnings included
    check = replay_check(db)
    assert check.returncode == 0, check.stdout + check.stderr


# -- a server that is down or does not answer --------------------------------------------------------
def test_a_server_that_goes_down_gives_a_tool_error_the_model_sees(state: Path, tmp_path: Path,
                                                                    http_server: HTTPServer) -> None:
    url = http_server.start()

    def answer(request: ModelRequest) -> ModelResponse | str:
        if len(request.messages) == 1:
            http_server.stop()  # the server dies between the listing and the call
            return tool_call("write_note", {"name": "a", "text": "x"}, "c1")
        return f"saw: {request.messages[-1].content[0].content}"  # type: ignore[union-attr]

    agent = Agent(FunctionModel(answer), tools=[MCPServerHTTP(url, headers={"Authorization": f"Bearer {TOKEN}"},
                                                              name="notes", connect_timeout=5)], name="down")
    with LocalRuntime(tmp_path / "down.db") as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "go").output, {})
    assert info.status == "SUCCEEDED", info.error
    assert info.result.startswith("saw: MCP server 'notes'") and "127.0.0.1" in info.result
    assert TOKEN not in info.result
    assert calls(state) == []


def test_a_server_that_does_not_answer_in_time_gives_a_tool_error(state: Path, tmp_path: Path) -> None:
    script = ScriptedModel([tool_call("notes_slow", {"seconds": 30}, "c1"), "gave up"], by_turn=True)
    agent = Agent(script, tools=[notes_server(state, timeout=1)], name="slow")
    with LocalRuntime(tmp_path / "slow.db") as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "go").messages, {})
    assert info.status == "SUCCEEDED", info.error
    [result] = tool_results(agent_messages(info.result))
    assert result.is_error and "did not answer a call of slow within 1 s" in result.content
    assert not any(alive(s["pid"]) for s in starts(state))  # the stuck server was stopped with the run


def test_with_retry_a_server_that_is_down_is_retried_durably(state: Path, tmp_path: Path,
                                                            http_server: HTTPServer) -> None:
    url = http_server.start()

    def answer(request: ModelRequest) -> ModelResponse | str:
        if len(request.messages) == 1:
            http_server.stop()
            return tool_call("write_note", {"name": "a", "text": "x"}, "c1")
        return f"saw: {request.messages[-1].content[0].content}"  # type: ignore[union-attr]

    clock = VirtualClock()
    retry = RetryPolicy(stop=stop_after_attempt(3), wait=wait_fixed(30))
    server = MCPServerHTTP(url, headers={"Authorization": f"Bearer {TOKEN}"}, name="notes", retry=retry)
    agent = Agent(FunctionModel(answer), tools=[server], name="patient")
    with LocalRuntime(tmp_path / "retry.db", clock=clock) as rt:
        execution_id = rt.start(lambda event, ctx: agent.run(ctx, "go").output, {})
        rt.run_until_idle(skip_time=False)
        assert rt.get(execution_id).status == "RUNNING"  # waiting for the retry, holding nothing
        failed = [e for e in rt.history(execution_id) if e["EventType"] == "StepFailed"]
        assert [e["Name"] for e in failed] == ["tool:write_note"]
        assert failed[0]["StepFailedDetails"]["RetryDetails"]["NextAttemptDelaySeconds"] == 30

        assert http_server.start(port=int(url.rsplit(":", 1)[1].split("/")[0])) == url  # back up
        rt.run_until_idle()
        info = rt.get(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == "saw: wrote 1 characters to a"
    assert len(calls(state, "write_note")) == 1


def test_a_server_that_cannot_start_fails_the_run_with_a_clear_error(tmp_path: Path) -> None:
    agent = Agent(ScriptedModel(["never asked"]), name="nostart",
                  tools=[MCPServerStdio(str(tmp_path / "no-such-server"), name="ghost")])
    with LocalRuntime(tmp_path / "nostart.db") as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "go").output, {})
    assert info.status == "FAILED"
    assert info.error["ErrorType"] == MCPServerError.recorded_name
    assert "MCP server 'ghost'" in info.error["ErrorMessage"] and "unavailable" in info.error["ErrorMessage"]


# -- both surfaces, parallel calls -------------------------------------------------------------------
@tool
def local_clock() -> str:
    """A local tool beside the MCP ones."""
    return "noon"


def _parallel_script() -> ScriptedModel:
    both = ModelResponse(content=[*tool_call("notes_write_note", {"name": "a", "text": "1"}, "p1").content,
                                  *tool_call("notes_write_note", {"name": "b", "text": "22"}, "p2").content,
                                  *tool_call("local_clock", {}, "p3").content],
                         stop_reason="tool_use", model="scripted:mcp")
    return ScriptedModel([both, "both written"], by_turn=True)


def test_parallel_mcp_calls_in_a_synchronous_handler_share_one_connection(state: Path, tmp_path: Path) -> None:
    agent = Agent(_parallel_script(), tools=[notes_server(state), local_clock], name="par")
    with LocalRuntime(tmp_path / "par.db") as rt:
        info = rt.run(lambda event, ctx: agent.run(ctx, "go").messages, {})
    assert info.status == "SUCCEEDED", info.error
    contents = {r.tool_call_id: r.content for r in tool_results(agent_messages(info.result))}
    assert contents == {"p1": "wrote 1 characters to a", "p2": "wrote 2 characters to b", "p3": "noon"}
    assert sorted(c["arguments"]["name"] for c in calls(state, "write_note")) == ["a", "b"]
    assert len(starts(state)) == 1


def test_an_async_agent_awaits_mcp_tools_on_its_own_loop(state: Path, tmp_path: Path) -> None:
    agent = Agent(_parallel_script(), tools=[notes_server(state), local_clock], name="apar")

    async def handler(event: dict[str, Any], ctx: AsyncDurableContext) -> list[Any]:
        result = await agent.run(ctx, "go")
        return [m.model_dump() for m in result.messages]

    with LocalRuntime(tmp_path / "apar.db") as rt:
        info = rt.run(handler, {})
    assert info.status == "SUCCEEDED", info.error
    contents = {r.tool_call_id: r.content for r in tool_results(agent_messages(info.result))}
    assert contents == {"p1": "wrote 1 characters to a", "p2": "wrote 2 characters to b", "p3": "noon"}
    assert len(calls(state, "write_note")) == 2 and len(starts(state)) == 1
    wait_for(lambda: not any(alive(s["pid"]) for s in starts(state)), "the server process to stop")


def test_a_sync_handler_reaching_an_mcp_agent_twice_opens_one_connection_per_run(state: Path,
                                                                                  tmp_path: Path) -> None:
    agent = Agent(ScriptedModel([tool_call("notes_read_note", {"name": "x"}, "r"), "ok"], by_turn=True),
                  tools=[notes_server(state)], name="twice")

    def handler(event: dict[str, Any], ctx: DurableContext) -> list[str]:
        (state / "notes").mkdir(exist_ok=True)
        (state / "notes" / "x").write_text("hello")
        return [agent.run(ctx, "first").output, agent.override(model=ScriptedModel(
            [tool_call("notes_read_note", {"name": "x"}, "r"), "again"], by_turn=True)).run(ctx, "second").output]

    with LocalRuntime(tmp_path / "twice.db") as rt:
        info = rt.run(handler, {})
    assert info.status == "SUCCEEDED", info.error
    assert info.result == ["ok", "again"]
    assert len(calls(state, "read_note")) == 2 and len(starts(state)) == 2
