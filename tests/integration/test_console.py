"""The local web console (``duragent ui``), over real HTTP against a store with a real agent
execution suspended on a tool approval. The console only reads and answers reviews; the test's
own runtime plays the worker that resumes the execution afterwards."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from duragent.agents import Agent
from duragent.agents.human import ask_human
from duragent.agents.messages import ModelRequest, ModelResponse, ToolResult
from duragent.agents.models.scripted import ScriptedModel
from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.durable.console import ConsoleServer
from duragent.tools import tool

REPO = Path(__file__).resolve().parents[2]
EVIL_NAME = "<script>alert('pwned')</script> launch"
SENT: list[dict[str, str]] = []


@tool(requires_approval=True)
def send_email(to: str, subject: str) -> str:
    """Send an email.

    Args:
        to: the recipient's address.
        subject: the subject line.
    """
    SENT.append({"to": to, "subject": subject})
    return f"sent to {to}"


def _brain(request: ModelRequest) -> ModelResponse | str:
    """Asks to email everyone; once a tool result is back, reports it."""
    results = [b for m in request.messages for b in m.content if isinstance(b, ToolResult)]
    if not results:
        return ScriptedModel.tool_call("send_email", {"to": "all@example.com", "subject": "Launch!"}, "call-1",
                                       text="Emailing everyone.")
    return f"Outcome: {results[-1].content}"


@dataclass
class Setup:
    rt: LocalRuntime
    console: ConsoleServer
    model: ScriptedModel
    execution_id: str

    def resume(self) -> None:
        """The worker's part: run what the answer made runnable (a pending review never times out here)."""
        self.rt.run_until_idle(skip_time=False)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    SENT.clear()
    db = tmp_path / "store.db"
    model = ScriptedModel(_brain, name="emailer")
    agent = Agent(model, tools=[send_email], system="You send emails.")

    def announce(event: Any, ctx: DurableContext) -> str:
        return str(agent.run(ctx, "announce the launch").output)

    rt = LocalRuntime(db, clock=VirtualClock())
    execution_id = rt.start(announce, {"topic": "launch"}, name=EVIL_NAME)
    rt.run_until_idle(skip_time=False)  # skipping time would run the 7-day approval into its timeout
    assert rt.get(execution_id).status == "RUNNING" and SENT == []
    console = ConsoleServer(LocalRuntime(db)).start()  # its own connection, as a separate process would
    try:
        yield Setup(rt, console, model, execution_id)
    finally:
        console.close()
        rt.close()


def request(console: ConsoleServer, path: str, body: Any = None, *, token: str | None = "header",
            raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """(status, decoded body, headers). ``token``: "header", "query", None, or a literal wrong token."""
    all_headers = dict(headers or {})
    if token == "header":
        all_headers["Authorization"] = f"Bearer {console.token}"
    elif token == "query":
        path += ("&" if "?" in path else "?") + f"token={console.token}"
    elif token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        all_headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(console.base_url + path, data=data, headers=all_headers,
                                 method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            status, payload, got = response.status, response.read(), response.headers
    except urllib.error.HTTPError as exc:
        status, payload, got = exc.code, exc.read(), exc.headers
    if got.get("Content-Type", "").startswith("application/json"):
        return status, json.loads(payload), got
    return status, payload.decode(), got


def get_json(console: ConsoleServer, path: str) -> Any:
    status, body, _ = request(console, path)
    assert status == 200, body
    return body


def only_review(console: ConsoleServer) -> dict[str, Any]:
    (review,) = get_json(console, "/api/reviews")["reviews"]
    return dict(review)


# -- the token ---------------------------------------------------------------------------------------
def test_every_request_needs_the_token(setup: Setup) -> None:
    console = setup.console
    for path in ("/", "/reviews", f"/executions/{setup.execution_id}", "/static/app.js", "/api/executions",
                 "/api/reviews", f"/api/executions/{setup.execution_id}/history"):
        for token in (None, "not-the-token"):
            status, body, _ = request(console, path, token=token)
            assert status == 401, (path, token)
    status, body, _ = request(console, "/api/reviews/x/approve", {}, token=None)
    assert status == 401 and "token" in body["error"]

    status, page, headers = request(console, "/", token="query")  # the printed URL
    assert status == 200 and 'data-page="executions"' in page
    cookie = headers["Set-Cookie"]
    assert f"{console.cookie_name}={console.token}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["Referrer-Policy"] == "no-referrer"
    status, body, _ = request(console, "/api/executions", token=None,
                              headers={"Cookie": f"{console.cookie_name}={console.token}"})
    assert status == 200 and body["executions"][0]["id"] == setup.execution_id
    assert console.url == f"http://127.0.0.1:{console.port}/?token={console.token}"


# -- reading -----------------------------------------------------------------------------------------
def test_list_detail_and_history(setup: Setup) -> None:
    console, execution_id = setup.console, setup.execution_id
    (row,) = get_json(console, "/api/executions")["executions"]
    assert row["id"] == execution_id and row["status"] == "RUNNING" and row["name"] == EVIL_NAME
    assert get_json(console, "/api/executions?status=running&limit=5")["executions"][0]["id"] == execution_id
    assert get_json(console, "/api/executions?status=SUCCEEDED")["executions"] == []

    detail = get_json(console, f"/api/executions/{execution_id}")
    assert detail["execution"]["status"] == "RUNNING" and detail["execution"]["input"] == {"topic": "launch"}
    assert detail["execution"]["function"] == "announce"
    assert any(op["SubType"] == "ModelCall" for op in detail["operations"] if "SubType" in op)
    timeline = {row["name"]: row for row in detail["timeline"]}
    assert timeline["agent: model call 1"]["status"] == "SUCCEEDED" and timeline["agent: model call 1"]["attempt"] == 1
    assert timeline["approval:send_email"]["status"] == "STARTED"
    callback = next(r for r in detail["timeline"] if r["type"] == "CALLBACK")
    assert callback["depth"] == timeline["approval:send_email"]["depth"] + 1

    assistant, review = detail["conversation"]
    assert assistant["kind"] == "assistant" and assistant["text"] == "Emailing everyone."
    assert assistant["model"] == "scripted:emailer" and assistant["usage"]["input_tokens"] > 0
    assert assistant["tool_calls"] == [{"id": "call-1", "name": "send_email",
                                        "arguments": {"to": "all@example.com", "subject": "Launch!"}}]
    assert review["kind"] == "review" and review["status"] == "pending" and review["tool_call_id"] == "call-1"

    ledger = detail["ledger"]
    assert ledger["paid"]["scripted:emailer"]["calls"] == 1 and ledger["total_usd"] > 0
    assert "scripted:emailer" in detail["ledger_text"]
    (pending,) = detail["reviews"]
    assert pending["kind"] == "tool_approval" and pending["tool"] == "send_email"
    assert pending["arguments"] == {"to": "all@example.com", "subject": "Launch!"}

    events = get_json(console, f"/api/executions/{execution_id}/history")["events"]
    assert events[0]["EventType"] == "ExecutionStarted"
    assert ("StepSucceeded", "agent: model call 1") in [(e["EventType"], e.get("Name")) for e in events]


# -- answering reviews ----------------------------------------------------------------------------
def test_approve_with_edited_arguments(setup: Setup) -> None:
    console = setup.console
    review = only_review(console)
    assert review["execution_id"] == setup.execution_id and review["execution_name"] == EVIL_NAME
    edits = {"to": "team@example.com"}  # partial: the subject stays as proposed
    status, body, _ = request(console, f"/api/reviews/{review['callback_id']}/approve",
                              {"edits": edits, "reviewer": "ana"})
    assert status == 200, body
    assert body["answer"] == {"approved": True, "edits": edits, "reviewer": "ana"}
    assert SENT == []  # the console never runs anything: the worker does
    setup.resume()
    info = setup.rt.get(setup.execution_id)
    assert info.status == "SUCCEEDED", info.error
    notice = 'A reviewer changed the arguments before running: to "all@example.com" -> "team@example.com".'
    assert SENT == [{"to": "team@example.com", "subject": "Launch!"}]
    assert info.result == f"Outcome: {notice}\nsent to team@example.com"

    assert get_json(console, "/api/reviews")["reviews"] == []
    detail = get_json(console, f"/api/executions/{setup.execution_id}")
    kinds = [entry["kind"] for entry in detail["conversation"]]
    assert kinds == ["assistant", "review", "tool_result", "assistant"]
    _, decided, result, final = detail["conversation"]
    assert decided["status"] == "approved" and decided["decision"]["edits"] == edits
    assert decided["decision"]["reviewer"] == "ana"
    # the journal's tool step holds what the tool returned; the model was also told what the reviewer changed
    assert result["tool_call_id"] == "call-1" and result["content"] == "sent to team@example.com"
    assert final["text"] == info.result
    assert detail["ledger"]["paid"]["scripted:emailer"]["calls"] == 2
    status, body, _ = request(console, f"/api/reviews/{review['callback_id']}/approve", {})
    assert status == 404 and "no pending review" in body["error"]  # answered once, and only once


def test_reject_with_feedback(setup: Setup) -> None:
    console = setup.console
    review = only_review(console)
    status, body, _ = request(console, f"/api/reviews/{review['callback_id']}/reject",
                              {"feedback": "not before Monday"})
    assert status == 200, body
    assert body["answer"] == {"approved": False, "feedback": "not before Monday", "reviewer": "console"}
    setup.resume()
    info = setup.rt.get(setup.execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert SENT == []  # the tool never ran
    last = setup.model.requests[-1].messages[-1]
    (seen,) = [b for b in last.content if isinstance(b, ToolResult)]
    assert seen.is_error and "not before Monday" in seen.content  # the model read the feedback
    assert not any(e.get("Name") == "tool:send_email" for e in setup.rt.history(setup.execution_id))
    conversation = get_json(console, f"/api/executions/{setup.execution_id}")["conversation"]
    assert [(e["kind"], e.get("status")) for e in conversation][1] == ("review", "rejected")
    assert conversation[1]["decision"]["feedback"] == "not before Monday"


def test_a_question_is_answered_with_json(tmp_path: Path) -> None:
    def ask(event: Any, ctx: DurableContext) -> str:
        return "going to " + ask_human(ctx, "Which city?", name="city")

    with LocalRuntime(tmp_path / "q.db", clock=VirtualClock()) as rt, ConsoleServer(rt).start() as console:
        execution_id = rt.start(ask, {})
        rt.run_until_idle(skip_time=False)
        review = only_review(console)
        assert review["kind"] == "question" and review["title"] == "Which city?"
        path = f"/api/reviews/{review['callback_id']}"
        status, body, _ = request(console, f"{path}/approve", {})
        assert status == 400 and "answer" in body["error"]
        status, body, _ = request(console, f"{path}/answer", {"answer": "Oslo"})
        assert status == 200 and body["answer"] == "Oslo"
        rt.run_until_idle(skip_time=False)
        assert rt.get(execution_id).result == "going to Oslo"


def test_bad_input_is_refused_and_the_server_keeps_serving(setup: Setup) -> None:
    console = setup.console
    callback_id = only_review(console)["callback_id"]
    approve, reject = f"/api/reviews/{callback_id}/approve", f"/api/reviews/{callback_id}/reject"
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (approve, {"raw": b"{not json"}, 400, "not JSON"),
        (approve, {"raw": b"[1, 2]"}, 400, "JSON object"),
        (approve, {"body": {"edits": ["to", "x"]}}, 400, "edits must be a JSON object"),
        (approve, {"body": {"edits": {"cc": "x@example.com"}}}, 400, "Additional properties are not allowed"),
        (approve, {"body": {"edits": {"to": 7}}}, 400, "to: 7 is not of type 'string'"),
        (approve, {"body": {"edits": {"to": None}}}, 400, "send_email takes to (string, required)"),
        (approve, {"body": {"reviewer": 7}}, 400, "reviewer"),
        (approve, {"raw": b'{"arguments": {}}', "headers": {"Content-Type": "text/plain"}}, 400, "Content-Type"),
        (approve, {"body": {}, "headers": {"Origin": "http://evil.example"}}, 403, "cross-origin"),
        (reject, {"body": {}}, 400, "feedback"),
        (reject, {"body": {"feedback": "   "}}, 400, "feedback"),
        (f"/api/reviews/{callback_id}/answer", {"body": {"answer": 1}}, 400, "approve or reject"),
        (f"/api/reviews/{callback_id}/delete", {"body": {}}, 404, "unknown action"),
        ("/api/reviews/bm8tc3VjaC1jYWxsYmFjaw==/approve", {"body": {}}, 404, "no pending review"),
        ("/api/executions/no-such-execution", {}, 404, "no execution"),
        ("/api/executions/no-such-execution/history", {}, 404, "no execution"),
        ("/api/executions/..%2F..%2Fetc", {}, 404, "no execution"),
        ("/api/executions?status=SLEEPING", {}, 400, "unknown status"),
        ("/api/executions?limit=0", {}, 400, "limit"),
        ("/api/executions?limit=ten", {}, 400, "limit"),
        ("/api/nothing", {}, 404, "no such API path"),
        ("/api/executions", {"body": {}}, 405, "not allowed"),
    ]
    for path, options, expected, needle in cases:
        status, body, _ = request(console, path, options.get("body"), raw=options.get("raw"),
                                  headers=options.get("headers"))
        assert status == expected, (path, options, body)
        assert isinstance(body, dict) and needle in body["error"], (path, body)
    status, page, _ = request(console, "/executions/no-such-execution")
    assert status == 404 and "data-page" in page
    assert request(console, "/no/such/page")[0] == 404
    # nothing was answered, and the server is fine
    assert only_review(console)["callback_id"] == callback_id
    assert setup.rt.get(setup.execution_id).status == "RUNNING" and SENT == []


def test_store_data_is_escaped_in_html_and_json(setup: Setup) -> None:
    status, page, headers = request(setup.console, f"/executions/{setup.execution_id}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert page.count("<script") == 1 and '<script src="/static/app.js"></script>' in page
    raw = urllib.request.urlopen(urllib.request.Request(
        f"{setup.console.base_url}/api/executions", headers={"Authorization": f"Bearer {setup.console.token}"}),
        timeout=10).read().decode()
    assert "<script>" not in raw and "\\u003cscript\\u003e" in raw  # inert even if sniffed as HTML
    script = request(setup.console, "/static/app.js")[1]
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "textContent" in script


# -- the page's script, run in node with a minimal DOM (no browser on this machine) -----------------------
def _render(console: ConsoleServer, path: str, action: str = "dump") -> dict[str, Any]:
    result = subprocess.run(["node", str(Path(__file__).with_name("console_dom.js")), console.base_url, path,
                             console.token, action], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    rendered = dict(json.loads(result.stdout))
    for junk in ("[object", "undefined", "null", "NaN"):  # what a JS slip renders as text
        assert junk not in rendered["text"], (junk, rendered["text"])
    assert "SCRIPT" not in rendered["tags"], "data was rendered as markup"
    return rendered


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_the_pages_render_and_a_reviewer_can_edit_and_approve(setup: Setup) -> None:
    console = setup.console
    listing = _render(console, "/")
    assert listing["rows"] == [setup.execution_id] and EVIL_NAME in listing["text"]  # as text, not markup
    assert not listing["token_in_url"]  # dropped from the address bar once read

    detail = _render(console, f"/executions/{setup.execution_id}")
    assert detail["title"] == f"duragent · {EVIL_NAME}"
    for text in ("Emailing everyone.", "send_email", "all@example.com", "agent: model call 1", "scripted:emailer",
                 "Paid $", "Waiting for a person", "Edit & approve", "RUNNING"):
        assert text in detail["text"], text

    inbox = _render(console, "/reviews", 'approve-edit:{"to": "ops@example.com", "subject": "Soon"}')
    assert inbox["page"] == "reviews" and inbox["notice"].startswith("Approved.")
    setup.resume()
    assert SENT == [{"to": "ops@example.com", "subject": "Soon"}]
    assert setup.rt.get(setup.execution_id).status == "SUCCEEDED"
    done = _render(console, f"/executions/{setup.execution_id}")
    for text in ("sent to ops@example.com", "approved", "by console", "A reviewer changed the arguments before running",
                 'subject "Launch!" -> "Soon"', "SUCCEEDED"):
        assert text in done["text"], text
    assert "Waiting for a person" not in done["text"]


# -- the command ----------------------------------------------------------------------------------------
def test_duragent_ui_prints_the_url_with_the_token(setup: Setup, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DURAGENT_DB"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    process = subprocess.Popen([sys.executable, "-m", "duragent", "--db", str(setup.rt.store.path), "ui",
                                "--port", "0"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""))
        reader.start()
        reader.join(timeout=15)
        assert lines and lines[0], "duragent ui printed nothing"
        match = re.fullmatch(r"duragent console: (http://127\.0\.0\.1:(\d+)/\?token=([\w-]+))\n", lines[0])
        assert match, lines[0]
        url, port = match.group(1), int(match.group(2))
        assert port > 0
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200 and 'data-page="executions"' in response.read().decode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/executions", timeout=10)
        assert refused.value.code == 401
        api = urllib.request.Request(f"http://127.0.0.1:{port}/api/executions",
                                     headers={"Authorization": f"Bearer {match.group(3)}"})
        with urllib.request.urlopen(api, timeout=10) as response:
            assert json.loads(response.read())["executions"][0]["id"] == setup.execution_id
    finally:
        process.terminate()
        returncode = process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert returncode == 0  # SIGTERM stops it as cleanly as Ctrl-C


def test_duragent_ui_refuses_a_missing_store(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "duragent", "--db", str(tmp_path / "none.db"), "ui",
                             "--port", "0"], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and "no duragent store" in result.stderr
    assert not (tmp_path / "none.db").exists()
