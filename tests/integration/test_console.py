"""The local web console (``duragent ui``) over real HTTP, against a store with a real agent
execution suspended on a tool approval. The console only reads and answers; the test's own runtime
plays the worker that resumes the execution afterwards. (tests/integration/test_console_browser.py
drives the same pages in a real browser.)"""

from __future__ import annotations

import http.client
import json
import os
import re
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
from duragent.console import ConsoleServer
from duragent.durable import DurableContext, Duration, LocalRuntime, VirtualClock
from duragent.durable.model import Operation, OperationStatus, OperationType
from duragent.ops import Invocation, LocalOperator
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
    db: Path

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
    console = ConsoleServer(LocalOperator.open(db)).start()  # its own connection, as a separate process would
    try:
        yield Setup(rt, console, model, execution_id, db)
    finally:
        console.close()
        console.operator.close()
        rt.close()


def request(console: ConsoleServer, path: str, body: Any = None, *, token: str | None = "header",
            raw: bytes | None = None, headers: dict[str, str] | None = None,
            method: str | None = None) -> tuple[int, Any, Any]:
    """(status, decoded body, headers). ``token``: "header", None, or a literal wrong token."""
    all_headers = dict(headers or {})
    if token == "header":
        all_headers["Authorization"] = f"Bearer {console.token}"
    elif token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None:
        all_headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(console.base_url + path, data=data, headers=all_headers,
                                 method=method or ("POST" if data is not None else "GET"))
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


def snapshot(db: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(db.parent.glob(db.name + "*"))}


# -- the token -------------------------------------------------------------------------------------
def test_every_api_request_needs_the_bearer_token_and_no_cookie_is_ever_set(setup: Setup) -> None:
    console = setup.console
    assert console.url == f"http://127.0.0.1:{console.port}/#token={console.token}"  # a fragment: never sent
    for path in ("/api/executions", "/api/reviews", f"/api/executions/{setup.execution_id}",
                 f"/api/executions/{setup.execution_id}/history"):
        for token in (None, "not-the-token", console.token[:-1]):
            status, body, _ = request(console, path, token=token)
            assert status == 401 and "token" in body["error"], (path, token)
    status, body, _ = request(console, "/api/reviews/x/approve", {}, token=None)
    assert status == 401
    # the token in a query string or a cookie is not accepted: only the Authorization header
    assert request(console, f"/api/executions?token={console.token}", token=None)[0] == 401
    assert request(console, "/api/executions", token=None,
                   headers={"Cookie": f"duragent_console_{console.port}={console.token}"})[0] == 401

    for path in ("/", "/reviews", f"/executions/{setup.execution_id}", "/static/app.js", "/static/app.css"):
        status, body, headers = request(console, path, token=None)  # the shell and its files hold no data
        assert status == 200, path
        assert "Set-Cookie" not in headers
        assert setup.execution_id not in body and "launch" not in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
    status, body, headers = request(console, "/api/executions")
    assert status == 200 and "Set-Cookie" not in headers


def test_a_foreign_host_or_origin_is_refused(setup: Setup) -> None:
    """DNS rebinding: a page on evil.example that resolves to 127.0.0.1 is another origin."""
    console = setup.console
    for host in ("evil.example", f"evil.example:{console.port}", f"127.0.0.1:{console.port + 1}"):
        connection = http.client.HTTPConnection("127.0.0.1", console.port, timeout=10)
        connection.request("GET", "/api/executions", headers={"Host": host,
                                                              "Authorization": f"Bearer {console.token}"})
        response = connection.getresponse()
        assert response.status == 403, host
        assert "own address" in json.loads(response.read())["error"]
        connection.close()
    callback_id = only_review(console)["callback_id"]
    status, body, _ = request(console, f"/api/reviews/{callback_id}/approve", {},
                              headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-origin" in body["error"]
    status, body, _ = request(console, f"/api/reviews/{callback_id}/approve", {},
                              headers={"Origin": f"http://localhost:{console.port}"})
    assert status == 200, body  # its own origin, by either name


# -- reading -----------------------------------------------------------------------------------------
def test_list_detail_and_history(setup: Setup) -> None:
    console, execution_id = setup.console, setup.execution_id
    listing = get_json(console, "/api/executions")
    (row,) = listing["executions"]
    assert listing["total"] == 1 and listing["next_cursor"] is None
    assert row["id"] == execution_id and row["status"] == "RUNNING" and row["name"] == EVIL_NAME
    assert get_json(console, "/api/executions?status=running&limit=5")["executions"][0]["id"] == execution_id
    assert get_json(console, "/api/executions?status=SUCCEEDED")["executions"] == []

    detail = get_json(console, f"/api/executions/{execution_id}")
    assert detail["execution"]["status"] == "RUNNING" and detail["execution"]["input"] == {"topic": "launch"}
    assert detail["execution"]["function"] == "announce"
    rows = {(row["type"], row["name"]): row for row in detail["timeline"]["rows"]}
    call = rows[("STEP", "agent: model call 1")]
    assert call["status"] == "SUCCEEDED" and call["attempt"] == 1
    context = rows[("CONTEXT", "approval:send_email")]
    callback = rows[("CALLBACK", "approval:send_email")]  # named after the review, not its internal operation
    assert context["status"] == callback["status"] == "STARTED"
    assert callback["depth"] == context["depth"] + 1
    assert all(0 <= r["bar"]["left"] <= 100 and r["bar"]["width"] > 0 for r in detail["timeline"]["rows"])

    (thread,) = detail["conversation"]
    assert thread["agent"] == "agent"
    system, user, assistant, review = thread["entries"]
    assert (system["kind"], system["text"]) == ("system", "You send emails.")
    assert (user["kind"], user["text"]) == ("user", "announce the launch")
    assert assistant["kind"] == "assistant" and assistant["text"] == "Emailing everyone."
    assert assistant["model"] == "scripted:emailer" and assistant["usage"]["input_tokens"] > 0
    assert assistant["tool_calls"] == [{"id": "call-1", "name": "send_email",
                                        "arguments": {"to": "all@example.com", "subject": "Launch!"}}]
    assert review["kind"] == "review" and review["status"] == "pending" and review["tool_call_id"] == "call-1"

    ledger = detail["ledger"]
    assert ledger["paid"]["scripted:emailer"]["calls"] == 1 and ledger["total_usd"] > 0
    assert ledger["reused_calls"] == 0 and "paid $" in detail["ledger_text"]
    (invocation,) = detail["invocations"]
    assert invocation["number"] == 1 and not invocation["crashed"] and invocation["replayed_count"] == 0
    (pending,) = detail["reviews"]
    assert pending["kind"] == "tool_approval" and pending["tool"] == "send_email"
    assert pending["arguments"] == {"to": "all@example.com", "subject": "Launch!"}
    assert pending["argument_schema"]["required"] == ["to", "subject"]
    assert f"duragent approve {pending['callback_id']}" in pending["hint"]

    events = get_json(console, f"/api/executions/{execution_id}/history")["events"]
    assert events[0]["EventType"] == "ExecutionStarted"
    assert ("StepSucceeded", "agent: model call 1") in [(e["EventType"], e.get("Name")) for e in events]
    assert get_json(console, f"/api/reviews/{pending['callback_id']}")["callback_id"] == pending["callback_id"]


# -- answering reviews ----------------------------------------------------------------------------
def test_approve_with_a_partial_edit(setup: Setup) -> None:
    console = setup.console
    review = only_review(console)
    assert review["execution_id"] == setup.execution_id and review["execution_name"] == EVIL_NAME
    path = f"/api/reviews/{review['callback_id']}/approve"
    before = snapshot(setup.db)
    for edits, needle in (({"to": 42}, "42 is not of type 'string'"), ({"cc": "x@example.com"}, "'cc' was unexpected"),
                          ([1], '"edits" must be a JSON object')):
        status, body, _ = request(console, path, {"edits": edits})
        assert status == 400 and needle in body["error"], body
    assert snapshot(setup.db) == before  # a refused edit records nothing

    status, body, _ = request(console, path, {"edits": {"to": "team@example.com"}, "reviewer": "ana"})
    assert status == 200, body
    assert body["answer"] == {"approved": True, "edits": {"to": "team@example.com"}, "reviewer": "ana"}
    assert SENT == []  # the console never runs anything: the worker does
    setup.resume()
    info = setup.rt.get(setup.execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert SENT == [{"to": "team@example.com", "subject": "Launch!"}]  # merged over the proposed arguments

    assert get_json(console, "/api/reviews") == {"reviews": [], "total": 0, "cursor": None, "next_cursor": None}
    detail = get_json(console, f"/api/executions/{setup.execution_id}")
    entries = detail["conversation"][0]["entries"]
    assert [e["kind"] for e in entries] == ["system", "user", "assistant", "review", "tool_result", "assistant"]
    decided, result, final = entries[3:]
    assert decided["status"] == "approved" and decided["decision"]["edits"] == {"to": "team@example.com"}
    assert decided["decision"]["reviewer"] == "ana"
    assert result["tool_call_id"] == "call-1" and result["content"] == "sent to team@example.com"
    assert final["text"].startswith("Outcome:") and "team@example.com" in final["text"]
    assert detail["ledger"]["paid"]["scripted:emailer"]["calls"] == 2
    assert detail["ledger"]["reused_calls"] == 1  # model call 1 came back from the journal after the wait
    second = detail["invocations"][1]
    assert second["replayed_count"] > 0 and "agent: model call 1" in second["replayed_notable"]
    status, body, _ = request(console, f"/api/reviews/{review['callback_id']}/approve", {})
    assert status == 409 and "already completed" in body["error"]  # answered once, and only once


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
    entries = get_json(console, f"/api/executions/{setup.execution_id}")["conversation"][0]["entries"]
    (decided,) = [e for e in entries if e["kind"] == "review"]
    assert decided["status"] == "rejected" and decided["decision"]["feedback"] == "not before Monday"


def test_questions_and_plain_callbacks_take_answers_of_their_shape(tmp_path: Path) -> None:
    def ask(event: Any, ctx: DurableContext) -> str:
        return "going to " + ask_human(ctx, "Which city?", name="city")

    def hook(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_callback(lambda callback_id: {"send": "{\"ok\": true}"}, name="webhook")

    with LocalRuntime(tmp_path / "q.db", clock=VirtualClock()) as rt, \
            ConsoleServer(LocalOperator(rt)).start() as console:
        asking, hooked = rt.start(ask, {}), rt.start(hook, {})
        rt.run_until_idle(skip_time=False)
        reviews = {r["execution_id"]: r for r in get_json(console, "/api/reviews")["reviews"]}
        question, plain = reviews[asking], reviews[hooked]
        assert question["kind"] == "question" and question["title"] == "Which city?"
        assert plain["kind"] == "callback" and plain["asked"] == {"send": "{\"ok\": true}"}
        assert "callback succeed" in plain["hint"]
        for path, body, needle in ((f"/api/reviews/{question['callback_id']}/approve", {}, "question"),
                                   (f"/api/reviews/{question['callback_id']}/answer", {"answer": 7}, "text"),
                                   (f"/api/reviews/{plain['callback_id']}/approve", {}, "not a review"),
                                   (f"/api/reviews/{plain['callback_id']}/reject", {"feedback": "no"}, "not a review"),
                                   (f"/api/reviews/{plain['callback_id']}/answer", {}, "needs 'answer'")):
            status, answer, _ = request(console, path, body)
            assert status == 400 and needle in answer["error"], (path, answer)
        status, body, _ = request(console, f"/api/reviews/{question['callback_id']}/answer", {"answer": "Oslo"})
        assert status == 200 and body["answer"] == "Oslo"
        status, body, _ = request(console, f"/api/reviews/{plain['callback_id']}/answer", {"answer": {"ok": True}})
        assert status == 200 and body["answer"] == {"ok": True}
        rt.run_until_idle(skip_time=False)
        assert rt.get(asking).result == "going to Oslo" and rt.get(hooked).result == {"ok": True}
        (thread,) = get_json(console, f"/api/executions/{asking}")["conversation"]
        (entry,) = thread["entries"]
        assert thread["agent"] is None and entry["status"] == "answered" and entry["answer"] == "Oslo"


def test_bad_input_is_refused_and_the_server_keeps_serving(setup: Setup) -> None:
    console = setup.console
    callback_id = only_review(console)["callback_id"]
    approve, reject = f"/api/reviews/{callback_id}/approve", f"/api/reviews/{callback_id}/reject"
    before = snapshot(setup.db)
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (approve, {"raw": b"{not json"}, 400, "not JSON"),
        (approve, {"raw": b"[1, 2]"}, 400, "JSON object"),
        (approve, {"raw": b'{"edits": {"to": NaN}}'}, 400, "not JSON"),
        (approve, {"raw": b'{"edits": {"to": 1e400}}'}, 400, "out of range"),
        (approve, {"raw": b'{"reviewer": "\\ud800"}'}, 400, "UTF-8"),
        (approve, {"raw": b'{"reviewer": "\xff"}'}, 400, "UTF-8"),
        (approve, {"raw": b"[" * 5000 + b"]" * 5000}, 400, "deeper than"),
        (approve, {"body": {"arguments": {"to": "x"}}}, 400, "unknown field 'arguments'"),
        (approve, {"body": {"reviewer": 7}}, 400, "reviewer"),
        (approve, {"body": {"reviewer": "x" * 300}}, 400, "at most 200"),
        (approve, {"raw": b'{"edits": {}}', "headers": {"Content-Type": "text/plain"}}, 400, "Content-Type"),
        (approve, {"body": {}, "headers": {"Origin": "http://evil.example"}}, 403, "cross-origin"),
        (reject, {"body": {}}, 400, "feedback"),
        (reject, {"body": {"feedback": "   "}}, 400, "feedback"),
        (reject, {"body": {"feedback": ["no"]}}, 400, "feedback"),
        (f"/api/reviews/{callback_id}/answer", {"body": {"answer": 1}}, 400, "approve or reject"),
        (f"/api/reviews/{callback_id}/delete", {"body": {}}, 404, "unknown action"),
        ("/api/reviews/bm8tc3VjaC1jYWxsYmFjaw==/approve", {"body": {}}, 404, "unknown callback id"),
        ("/api/reviews/%FF%FE/approve", {"body": {}}, 400, "UTF-8"),
        ("/api/reviews/has%20space/approve", {"body": {}}, 404, "not a valid callback id"),
        ("/api/executions/no-such-execution", {}, 404, "no execution"),
        ("/api/executions/no-such-execution/history", {}, 404, "no execution"),
        ("/api/executions/..%2F..%2Fetc", {}, 404, "no execution"),
        ("/api/executions?status=SLEEPING", {}, 400, "unknown status"),
        ("/api/executions?limit=0", {}, 400, "limit"),
        ("/api/executions?limit=ten", {}, 400, "limit"),
        ("/api/executions?limit=100000000000000000000", {}, 400, "limit"),
        ("/api/executions?cursor=-1", {}, 400, "cursor"),
        ("/api/executions?limit=1&limit=2", {}, 400, "twice"),
        ("/api/executions?sort=name", {}, 400, "unknown query parameter"),
        ("/api/reviews?limit=1001", {}, 400, "limit"),
        ("/api/nothing", {}, 404, "no such API path"),
        ("/api/executions", {"body": {}}, 405, "not allowed"),
        ("/no/such/page", {}, 404, "no such page"),
    ]
    for path, options, expected, needle in cases:
        status, body, _ = request(console, path, options.get("body"), raw=options.get("raw"),
                                  headers=options.get("headers"))
        assert status == expected, (path, options, body)
        assert isinstance(body, dict) and needle in body["error"], (path, body)
        assert "\n" not in body["error"]
    # nothing was answered or written, and the server is fine
    assert snapshot(setup.db) == before
    assert only_review(console)["callback_id"] == callback_id
    assert setup.rt.get(setup.execution_id).status == "RUNNING" and SENT == []


def test_store_data_is_escaped_in_json(setup: Setup) -> None:
    raw = urllib.request.urlopen(urllib.request.Request(
        f"{setup.console.base_url}/api/executions", headers={"Authorization": f"Bearer {setup.console.token}"}),
        timeout=10).read().decode()
    assert "<script>" not in raw and "\\u003cscript\\u003e" in raw  # inert even if sniffed as HTML
    status, page, _ = request(setup.console, f"/executions/{setup.execution_id}", token=None)
    assert status == 200 and page.count("<script") == 1 and '<script src="/static/app.js"></script>' in page
    script = request(setup.console, "/static/app.js")[1]
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "textContent" in script
    assert "document.cookie" not in script


# -- the timeline stays readable across long waits ---------------------------------------------------
def _op(op_id: str, start: float, end: float | None, *, parent: str | None = None, type_: OperationType =
        OperationType.STEP, status: OperationStatus = OperationStatus.SUCCEEDED, name: str | None = None) -> Operation:
    return Operation(Id=op_id, ParentId=parent, Name=name or op_id, Type=type_, Status=status, StartTimestamp=start,
                     EndTimestamp=end)


def test_a_week_long_wait_does_not_squash_the_other_bars() -> None:
    from duragent.console.views import timeline

    t0 = 1_800_000_000.0
    week = Duration.from_days(7).seconds
    ops = [_op("prepare", t0, t0 + 0.02), _op("think", t0 + 0.02, t0 + 1.5),
           _op("review", t0 + 1.5, t0 + 1.5 + week, type_=OperationType.CALLBACK),
           _op("send", t0 + 1.5 + week, t0 + 1.5 + week + 0.3)]
    runs = [Invocation(1, t0, t0 + 1.6), Invocation(2, t0 + 1.5 + week, t0 + 2 + week, error="Runtime.ExitError")]
    view = timeline(ops, runs, t0, t0 + 2 + week, now=t0 + 2 + week)
    bars = {row["name"]: row["bar"] for row in view["rows"]}
    # on a linear scale a 20 ms step would be 0.000003% of the picture, a 1.5 s one 0.0002%
    assert bars["prepare"]["width"] > 2 and bars["think"]["width"] > 5 and bars["send"]["width"] > 3
    assert bars["review"]["width"] < 70  # the week still reads as the longest stretch, not the whole picture
    assert bars["review"]["width"] > bars["think"]["width"] > bars["prepare"]["width"]
    lefts = [bars[name]["left"] for name in ("prepare", "think", "review", "send")]
    assert lefts == sorted(lefts)  # order in time is kept
    (gap,) = view["gaps"]
    assert gap["seconds"] == pytest.approx(week)
    assert [(m["number"], m["crashed"]) for m in view["invocations"]] == [(1, False), (2, True)]


# -- the command ----------------------------------------------------------------------------------------
def test_duragent_ui_prints_the_url_with_the_token_in_the_fragment(setup: Setup, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DURAGENT_DB"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    process = subprocess.Popen([sys.executable, "-m", "duragent", "--db", str(setup.db), "ui", "--port", "0"],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""))
        reader.start()
        reader.join(timeout=30)
        assert lines and lines[0], "duragent ui printed nothing"
        match = re.fullmatch(r"duragent console: (http://127\.0\.0\.1:(\d+)/)#token=([\w-]+)\n", lines[0])
        assert match, lines[0]
        base, port, token = match.group(1), int(match.group(2)), match.group(3)
        assert port > 0
        with urllib.request.urlopen(base, timeout=10) as response:
            assert response.status == 200 and '<script src="/static/app.js">' in response.read().decode()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}api/executions", timeout=10)
        assert refused.value.code == 401
        api = urllib.request.Request(f"{base}api/executions", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(api, timeout=10) as response:
            assert json.loads(response.read())["executions"][0]["id"] == setup.execution_id
    finally:
        process.terminate()
        returncode = process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert returncode == 0  # SIGTERM stops it as cleanly as Ctrl-C
