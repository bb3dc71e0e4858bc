"""``duragent mcp``: duragent as an MCP server, driven by the MCP SDK's own client, over stdio and
over streamable HTTP on 127.0.0.1 with a bearer token. The job is examples/approval_agent.py
(offline on its scripted model): the client starts it, sees its review, approves it with an
edit, and reads the result; answers that do not fit are refused with nothing recorded."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from duragent.durable import LocalRuntime

REPO = Path(__file__).resolve().parents[2]
TARGET = "examples/approval_agent.py:approval_agent"
QUESTION_TARGET = "tests.integration.mcp_jobs:trip_job"
KEY_VARS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "DURAGENT_DEMO_MODEL",
            "DURAGENT_DB", "DURAGENT_MCP_TOKEN")


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    return {**env, "PYTHONPATH": str(REPO), "DURAGENT_OUTBOX": str(tmp_path / "outbox"), **extra}


def data(result: Any) -> Any:
    """A tool result's structured content (every duragent mcp tool returns JSON)."""
    assert not result.is_error, result.content
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(block.text for block in result.content)


async def supervise(client: Any, db: Path, tmp_path: Path) -> None:
    """What another agent does with duragent's tools: start a job, answer its review, read the result."""
    names = {tool.name for tool in (await client.list_tools()).tools}
    assert {"list_functions", "start_execution", "get_execution", "list_executions", "list_pending", "approve",
            "reject", "answer", "stop_execution"} <= names
    functions = {f["name"]: f for f in data(await client.call_tool("list_functions", {}))["result"]}
    assert set(functions) == {"approval_agent", "trip_job"}
    assert "reviewed" in functions["approval_agent"]["description"]  # the example's docstring
    assert functions["trip_job"]["description"] == "Plans a trip: asks a person how many nights, then books them."

    started = data(await client.call_tool("start_execution", {
        "function": "approval_agent", "input": {"request": "Tell Ana that the launch moved to Tuesday"},
        "execution_id": "email-ana", "wait_seconds": 60}))
    assert started["id"] == "email-ana" and started["status"] == "RUNNING"
    [review] = started["waiting_for"]
    assert review["kind"] == "tool_approval" and review["tool"] == "send_email"
    assert review["arguments"]["to"] == "ana@example.com"

    pending = data(await client.call_tool("list_pending", {}))
    assert pending["total"] == 1 and pending["pending"][0]["callback_id"] == review["callback_id"]

    # answers that do not fit are refused, and nothing is recorded
    refused = error_text(await client.call_tool("approve", {"callback_id": review["callback_id"],
                                                            "edits": {"subject": 42}}))
    assert "subject" in refused
    refused = error_text(await client.call_tool("answer", {"callback_id": review["callback_id"], "value": "yes"}))
    assert "approval" in refused
    refused = error_text(await client.call_tool("start_execution", {"function": "os:system", "input": "ls"}))
    assert "not offered by this server" in refused and "approval_agent" in refused
    assert data(await client.call_tool("list_pending", {}))["total"] == 1

    approved = data(await client.call_tool("approve", {"callback_id": review["callback_id"],
                                                       "edits": {"subject": "Launch: Tuesday"}, "reviewer": "bot"}))
    assert approved["ok"] and approved["execution_id"] == "email-ana"
    done = data(await client.call_tool("get_execution", {"execution_id": "email-ana", "wait_seconds": 60}))
    assert done["status"] == "SUCCEEDED", done
    assert done["result"]["reply"].startswith("Done: the email was sent to ana@example.com")
    assert done["waiting_for"] == []
    [email] = sorted((tmp_path / "outbox").glob("*.eml"))
    assert email.read_text().startswith("To: ana@example.com\nSubject: Launch: Tuesday\n")
    listed = data(await client.call_tool("list_executions", {"status": "SUCCEEDED"}))
    assert [e["id"] for e in listed["executions"]] == ["email-ana"]

    # a question: answered with a value that must fit its schema (an integer here)
    trip = data(await client.call_tool("start_execution", {"function": QUESTION_TARGET, "input": {"city": "Bergen"},
                                                           "wait_seconds": 60}))
    [question] = trip["waiting_for"]
    assert question["kind"] == "question" and question["question"] == "How many nights in Bergen?"
    assert question["response_schema"]["type"] == "integer"
    assert "integer" in error_text(await client.call_tool("answer", {"callback_id": question["callback_id"],
                                                                     "value": "three"}))
    data(await client.call_tool("answer", {"callback_id": question["callback_id"], "value": 3}))
    booked = data(await client.call_tool("get_execution", {"execution_id": trip["id"], "wait_seconds": 60}))
    assert (booked["status"], booked["result"]) == ("SUCCEEDED", {"city": "Bergen", "nights": 3})

    # a rejection: the tool never runs, the model reads why
    again = data(await client.call_tool("start_execution", {
        "function": "approval_agent", "input": {"request": "Tell Ben that the launch moved"}, "wait_seconds": 60}))
    [review] = again["waiting_for"]
    data(await client.call_tool("reject", {"callback_id": review["callback_id"], "feedback": "Not before the PR"}))
    rejected = data(await client.call_tool("get_execution", {"execution_id": again["id"], "wait_seconds": 60}))
    assert rejected["status"] == "SUCCEEDED" and "Not before the PR" in rejected["result"]["reply"]
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1  # only Ana's email went out


def test_an_mcp_client_runs_and_supervises_a_job_over_stdio(tmp_path: Path) -> None:
    from mcp import Client, StdioServerParameters

    db = tmp_path / "mcp.db"
    parameters = StdioServerParameters(command=sys.executable, cwd=str(REPO), env=server_env(tmp_path),
                                       args=["-m", "duragent", "--db", str(db), "mcp", TARGET, QUESTION_TARGET])

    async def main() -> None:
        async with Client(parameters, cache=None) as client:
            await supervise(client, db, tmp_path)

    asyncio.run(asyncio.wait_for(main(), 180))
    with LocalRuntime(db) as rt:
        assert rt.get("email-ana").status == "SUCCEEDED"


class HTTPServe:
    def __init__(self, tmp_path: Path, db: Path, token: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "duragent", "--db", str(db), "mcp", "--http",
                                         "--port", "0", TARGET, QUESTION_TARGET], cwd=REPO, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True,
                                        env=server_env(tmp_path, DURAGENT_MCP_TOKEN=token))
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the first line names the URL (a condition, not a sleep)
        assert line.startswith("duragent mcp: streamable HTTP on http://127.0.0.1:"), \
            line + (self.process.stderr.read() if self.process.stderr else "")
        self.url = line.rsplit(" ", 1)[-1].strip()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def http_client(url: str, headers: dict[str, str]) -> Any:
    from contextlib import asynccontextmanager

    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    @asynccontextmanager
    async def transport() -> Any:
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                yield streams

    return Client(transport(), cache=None)


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 180))


def test_an_mcp_client_runs_and_supervises_a_job_over_http_with_a_bearer_token(tmp_path: Path) -> None:
    import httpx2

    db, token = tmp_path / "http.db", "duragent-mcp-TOKEN-3f9a6b2c1d"
    served = HTTPServe(tmp_path, db, token)
    try:
        async def main() -> None:
            async with http_client(served.url, {"Authorization": f"Bearer {token}"}) as client:
                await supervise(client, db, tmp_path)

        run(main)

        # no token, a wrong one, or a foreign Host: refused before any tool runs
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        plain = httpx2.post(served.url, json=body, headers={"Accept": "application/json, text/event-stream"})
        assert plain.status_code == 401
        wrong = httpx2.post(served.url, json=body, headers={"Authorization": "Bearer nope",
                                                            "Accept": "application/json, text/event-stream"})
        assert wrong.status_code == 401
        foreign = httpx2.post(served.url, json=body, headers={"Authorization": f"Bearer {token}", "Host": "evil.example",
                                                              "Accept": "application/json, text/event-stream"})
        assert foreign.status_code in (400, 403, 421)
    finally:
        served.close()
    assert token.encode() not in b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def test_duragent_mcp_refuses_a_host_that_is_not_loopback(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "duragent", "--db", str(tmp_path / "x.db"), "mcp", "--http",
                           "--host", "0.0.0.0", TARGET], cwd=REPO, env=server_env(tmp_path), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "not a loopback address" in done.stderr and done.stderr.count("\n") == 1
