"""The console and chat sessions: the execution page shows a session as a conversation (messages,
replies, failed turns, compactions) with a box to send the next message; its server-sent-events
endpoint streams an execution's events (a model's text as it is written, each durable event once,
resumable with Last-Event-ID) and the page uses it. Over real HTTP, and in a real browser (Debian's
chromium through Playwright, as tests/integration/test_console_browser.py)."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from duragent.agents import Agent, CompactionPolicy, Session, conversation
from duragent.agents.messages import ModelRequest, ModelResponse, TextBlock, Usage
from duragent.agents.models import FunctionModel
from duragent.console import ConsoleServer
from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.ops import LocalOperator
from tests.integration.chromium import chromium

EVIL = "<img src=x onerror=\"window.__pwned=1\">"


class SlowModel:
    """Streams its answer in two halves and waits for the test between them."""

    provider = "scripted"

    def __init__(self) -> None:
        self.halfway = threading.Event()
        self.go_on = threading.Event()

    @property
    def model_id(self) -> str:
        return "scripted:slow"

    def request(self, request: ModelRequest, *, on_text: Any = None) -> ModelResponse:
        said = [b.text for m in request.messages if m.role == "user" for b in m.content if isinstance(b, TextBlock)]
        text = f"About {said[-1]}: the first half of my answer, and the second half of it."
        cut = text.index(", and")
        if on_text is not None:
            on_text(text[:cut])
            self.halfway.set()
            self.go_on.wait(30)
            on_text(text[cut:])
        return ModelResponse(content=[TextBlock(text=text)], stop_reason="end_turn", model=self.model_id,
                             usage=Usage(input_tokens=10, output_tokens=10))


def _echo(request: ModelRequest) -> str:
    said = [b.text for m in request.messages if m.role == "user" for b in m.content if isinstance(b, TextBlock)]
    return f"echo: {said[-1]}"


echo_chat = conversation(Agent(FunctionModel(_echo, name="echo"), name="echo"), name="echo_console")


@dataclass
class Setup:
    rt: LocalRuntime
    console: ConsoleServer

    def get(self, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", self.console.port, timeout=10)
        conn.request("GET", path, headers={"Host": f"127.0.0.1:{self.console.port}",
                                           "Authorization": f"Bearer {self.console.token}", **(headers or {})})
        return conn.getresponse()

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.console.port, timeout=10)
        data = json.dumps(body).encode()
        conn.request("POST", path, body=data, headers={"Host": f"127.0.0.1:{self.console.port}",
                                                       "Authorization": f"Bearer {self.console.token}",
                                                       "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def detail(self, execution_id: str) -> dict[str, Any]:
        response = self.get(f"/api/executions/{execution_id}")
        assert response.status == 200
        return dict(json.loads(response.read()))


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    rt = LocalRuntime(tmp_path / "store.db", clock=VirtualClock())
    console = ConsoleServer(LocalOperator.open(tmp_path / "store.db")).start()
    try:
        yield Setup(rt, console)
    finally:
        console.close()
        console.operator.close()
        rt.close()


def sse(response: http.client.HTTPResponse, until: str = "end") -> list[dict[str, Any]]:
    """Read server-sent events (``id``, ``event``, ``data``) until one of type ``until``."""
    events: list[dict[str, Any]] = []
    block: dict[str, Any] = {}
    while True:
        line = response.readline().decode()
        assert line, "the stream closed before the expected event"
        line = line.rstrip("\n")
        if line == "":
            if block:
                events.append(block)
                if block.get("event") == until:
                    return events
            block = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            block[field] = json.loads(value) if field == "data" else int(value) if field == "id" else value


def test_a_session_shows_as_a_conversation_and_takes_messages(setup: Setup) -> None:
    session = Session.start(setup.rt, echo_chat, "chat-a")
    setup.rt.run_until_idle(skip_time=False)
    status, sent = setup.post("/api/executions/chat-a/messages", {"text": f"hello {EVIL}"})
    assert status == 200 and sent["callback_id"]
    status, busy = setup.post("/api/executions/chat-a/messages", {"text": "too soon"})
    assert status == 409 and "not waiting for a message" in busy["error"], "the reply is not written yet"
    setup.rt.run_until_idle(skip_time=False)
    detail = setup.detail("chat-a")["session"]
    [turn] = detail["entries"]
    assert (turn["user"], turn["reply"], turn["agent"]) == (f"hello {EVIL}", f"echo: hello {EVIL}", "echo")
    assert detail["waiting_for_message"] is True and detail["inbox"] == session.inbox
    assert setup.post("/api/executions/chat-a/messages", {"end": True})[0] == 200
    setup.rt.run_until_idle(skip_time=False)
    assert setup.rt.get("chat-a").result == {"turns": 1, "ended": "by request"}
    assert setup.detail("chat-a")["session"]["waiting_for_message"] is False


def test_messages_are_refused_where_they_do_not_belong(setup: Setup) -> None:
    plain = setup.rt.start(lambda event, ctx: ctx.step(lambda: 1), {})
    Session.start(setup.rt, echo_chat, "chat-b")
    setup.rt.run_until_idle(skip_time=False)
    assert setup.detail(plain)["session"] is None
    status, error = setup.post(f"/api/executions/{plain}/messages", {"text": "hi"})
    assert status == 400 and "not a chat session" in error["error"]
    for body, problem in (({"text": ""}, "non-empty"), ({"text": 3}, '{"text"'), ({"txt": "hi"}, "unknown field"),
                          ({"end": "yes"}, '{"end": true}')):
        status, error = setup.post("/api/executions/chat-b/messages", body)
        assert status == 400 and problem in error["error"], (body, error)
    assert setup.post("/api/executions/nope/messages", {"text": "hi"})[0] == 404
    assert Session(setup.rt, "chat-b").turns() == [], "nothing was sent"


def test_the_event_stream_resumes_with_last_event_id_and_ends(setup: Setup) -> None:
    def steps(event: Any, ctx: DurableContext) -> str:
        for i in range(4):
            ctx.step(lambda i=i: i, name=f"step {i}")
        return "done"

    execution_id = setup.rt.start(steps, {})
    setup.rt.run_until_idle()
    history = setup.rt.history(execution_id)
    whole = sse(setup.get(f"/api/executions/{execution_id}/events"))
    assert [e["id"] for e in whole[:-1]] == [e["EventId"] for e in history]
    assert whole[-1] == {"event": "end", "data": {}}
    rest = sse(setup.get(f"/api/executions/{execution_id}/events", {"Last-Event-ID": "5"}))
    assert [e["id"] for e in rest[:-1]] == [e["EventId"] for e in history[5:]]
    assert [e["event"] for e in rest[:-1]][-1] == "execution_ended"
    unauthorized = http.client.HTTPConnection("127.0.0.1", setup.console.port, timeout=10)
    unauthorized.request("GET", f"/api/executions/{execution_id}/events",
                         headers={"Host": f"127.0.0.1:{setup.console.port}"})
    assert unauthorized.getresponse().status == 401
    assert setup.get(f"/api/executions/{execution_id}/events?after=-1").status == 400


def test_the_event_stream_carries_text_as_it_is_written(setup: Setup) -> None:
    model = SlowModel()
    chat = conversation(Agent(model, name="slow"), name="slow_console")
    session = Session.start(setup.rt, chat, "chat-c")
    setup.rt.run_until_idle(skip_time=False)
    cursor = setup.rt.history("chat-c")[-1]["EventId"]
    stream = setup.get("/api/executions/chat-c/events", {"Last-Event-ID": str(cursor)})
    assert stream.readline() == b": following\n"
    session.send("tides", timeout=5)
    worker = threading.Thread(target=setup.rt.run_until_idle, kwargs={"skip_time": False}, daemon=True)
    worker.start()
    assert model.halfway.wait(30)
    first = sse(stream, until="text_delta")
    assert first[-1]["data"]["text"] == "About tides: the first half of my answer"
    assert "id" not in first[-1], "a live event has no cursor"
    model.go_on.set()
    worker.join(30)
    rest = sse(stream, until="turn_finished")
    kinds = [e["event"] for e in rest]
    assert kinds.index("text_delta") < kinds.index("model_call_finished") < kinds.index("turn_finished")
    assert rest[-1]["data"]["reply"] == "About tides: the first half of my answer, and the second half of it."


def test_compactions_show_in_the_conversation(setup: Setup) -> None:
    def model(request: ModelRequest) -> ModelResponse | str:
        if request.system and request.system.startswith("You compress"):
            return "They asked about A and B."
        return ModelResponse(content=[TextBlock(text="ok")], stop_reason="end_turn", model="scripted:c",
                             usage=Usage(input_tokens=900, output_tokens=10))

    chat = conversation(Agent(FunctionModel(model, name="c"), name="c"), name="compact_console",
                        compaction=CompactionPolicy(context_window=1000, keep_turns=1))
    session = Session.start(setup.rt, chat, "chat-d")
    for text in ("A", "B", "C"):
        setup.rt.run_until_idle(skip_time=False)
        session.send(text, timeout=5)
    setup.rt.run_until_idle(skip_time=False)
    entries = setup.detail("chat-d")["session"]["entries"]
    # over the window after each turn; before turn 2 only one turn was there (nothing older to summarize)
    assert [e["kind"] for e in entries] == ["turn", "turn", "compaction", "turn"]
    compaction = entries[2]
    assert compaction["summary"] == "They asked about A and B." and compaction["window"] == 1000
    assert compaction["before_turn"] == 3 and compaction["summarized_messages"] == 2


# -- in a browser ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with chromium(tmp_path_factory.mktemp("chromium-profile"), height=1400) as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        pwned = page.evaluate("() => window.__pwned || 0")
        page.close()
    assert problems == [] and pwned == 0, problems


def test_chatting_in_the_console_with_the_reply_streaming_in(setup: Setup, page: Page) -> None:
    model = SlowModel()
    chat = conversation(Agent(model, name="slow"), name="slow_browser")
    Session.start(setup.rt, chat, "chat-e")
    setup.rt.run_until_idle(skip_time=False)
    stop = threading.Event()
    worker = threading.Thread(target=setup.rt.drive, args=("chat-e", stop), daemon=True)
    worker.start()
    try:
        page.goto(setup.console.url)
        page.goto(setup.console.base_url + "/executions/chat-e")
        expect(page.locator(".chat .muted").first).to_have_text("No messages yet.")
        page.fill(".chat-input", f"tides {EVIL}")
        page.click(".send-message")
        expect(page.locator(".chat-user")).to_contain_text(f"tides {EVIL}")
        assert model.halfway.wait(30)
        # the first half is on the page while the model is still writing the second
        expect(page.locator(".live-text")).to_have_text(f"About tides {EVIL}: the first half of my answer")
        model.go_on.set()
        expect(page.locator(".chat-reply").last).to_contain_text("and the second half of it.")
        expect(page.locator(".chat-input")).to_be_visible()  # waiting for the next message
        page.click(".end-session")
        expect(page.locator(".chat-state")).to_have_text("The session has ended.")
        assert page.locator("img[src=x]").count() == 0
    finally:
        stop.set()
        setup.rt._wake.set()
        worker.join(10)
