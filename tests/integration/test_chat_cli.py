"""``duragent chat`` driven through a pseudo-terminal (the pty module), with the real anthropic SDK
against the fake provider server: the reply streams in as it is generated, leaving and reopening
the session with ``--session`` shows the conversation and continues it, a chat killed mid-reply
is finished when reopened (no model call paid twice), and a tool approval is answered in the chat.
``duragent follow`` and the progress line of ``duragent run`` are checked on a terminal and piped.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from duragent.agents import Session
from duragent.durable import LocalRuntime
from tests.fakes.provider_server import FakeToolCall, ProviderServer, Reply

REPO = Path(__file__).resolve().parents[2]
TARGET = "tests.integration.conversation_jobs:assistant_chat"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as fake:
        yield fake


def env_for(server: ProviderServer) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "CONVERSATION_"))}
    return {**base, "PYTHONPATH": str(REPO), "ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-test",
            "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-test", "NO_PROXY": "127.0.0.1",
            "CONVERSATION_MODEL": "anthropic:claude-test"}


class Terminal:
    """A command on a pseudo-terminal: what it writes is read back; lines are typed into it."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(args, cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave,
                                        close_fds=True, start_new_session=True)
        os.close(slave)
        self.output = ""

    def read_until(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        start = len(self.output)
        while text not in self.output[start:]:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} on the terminal; it shows:\n{self.output[-2000:]}"
            ready, _, _ = select.select([self.master], [], [], min(remaining, 0.5))
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the command exited and the terminal closed
                    chunk = b""
                if not chunk:
                    assert text in self.output[start:], f"the command ended; the terminal shows:\n{self.output}"
                    break
                self.output += chunk.decode("utf-8", "replace")
        return self.output[start:]

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            assert time.monotonic() < deadline, "the command did not exit"
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                try:
                    self.output += os.read(self.master, 4096).decode("utf-8", "replace")
                except OSError:
                    pass
        return int(self.process.returncode)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        os.close(self.master)


def chat(db: Path, env: dict[str, str], *extra: str) -> Terminal:
    return Terminal([sys.executable, "-m", "duragent", "--db", str(db), "chat", TARGET, *extra], env)


def session_of(output: str) -> str:
    match = re.search(r"session (chat-[0-9a-f]+)", output)
    assert match, output
    return match.group(1)


def test_chat_streams_replies_and_continues_after_reopening(server: ProviderServer, tmp_path: Path) -> None:
    first_reply = "Hello! I am the assistant, and I remember everything you tell me."
    server.enqueue(Reply(text=first_reply, chunks=[first_reply[:7], first_reply[7:30], first_reply[30:]]),
                   Reply(text="You told me your name is Ada."))
    db = tmp_path / "chat.db"
    env = env_for(server)
    term = chat(db, env)
    try:
        opened = term.read_until("you> ")
        session_id = session_of(opened)
        term.type("Hi, my name is Ada")
        shown = term.read_until("you> ")
        assert f"assistant: {first_reply}" in ANSI.sub("", shown)
        assert ANSI.sub("", shown).count(first_reply) == 1, "streamed once, not again when it was recorded"
        assert server.requests[0].body.get("stream") is True, "someone was listening: the reply was streamed"
        term.type("/exit")
        left = term.read_until(f"--session {session_id}")
        assert "reopen it with" in left
        assert term.wait() == 0
    finally:
        term.close()

    with LocalRuntime(db) as rt:
        assert rt.get(session_id).status == "RUNNING", "the session outlives the terminal"

    again = chat(db, env, "--session", session_id)
    try:
        opened = ANSI.sub("", again.read_until("you> "))
        assert "reopened" in opened and "you: Hi, my name is Ada" in opened and f"assistant: {first_reply}" in opened
        again.type("What is my name?")
        assert "You told me your name is Ada." in again.read_until("you> ")
        again.type("/end")
        again.read_until("ended")
        assert again.wait() == 0
    finally:
        again.close()
    last = json.dumps(server.requests[-1].body)
    assert "Hi, my name is Ada" in last and first_reply in last and "What is my name?" in last
    with LocalRuntime(db) as rt:
        assert rt.get(session_id).result == {"turns": 2, "ended": "by request"}


def test_a_chat_killed_mid_reply_finishes_it_when_reopened(server: ProviderServer, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    server.enqueue(Reply(text="Filing it.", tool_calls=[FakeToolCall("file_report", {"directory": str(work),
                                                                                      "title": "Q4"})]),
                   Reply(text="The Q4 report is filed."))
    db = tmp_path / "chat.db"
    env = env_for(server)
    term = chat(db, env)
    try:
        session_id = session_of(term.read_until("you> "))
        term.type("File the Q4 report please")
        deadline = time.monotonic() + 60
        while not list(work.glob("report-entered.*")):
            assert time.monotonic() < deadline, term.output
            time.sleep(0.01)
        term.kill()  # the terminal dies inside the tool call
    finally:
        term.close()
    assert server.request_count == 1
    (work / "release").touch()
    again = chat(db, env, "--session", session_id)
    try:
        shown = ANSI.sub("", again.read_until("you> "))
        assert "finishing the reply that was interrupted" in shown
        assert "The Q4 report is filed." in shown
        again.type("/exit")
        assert again.wait() == 0
    finally:
        again.close()
    assert server.request_count == 2, "the model call made before the kill was not paid again"
    with LocalRuntime(db) as rt:
        [turn] = Session(rt, session_id).turns()
    assert turn.reply == "The Q4 report is filed."


def test_a_review_is_answered_in_the_chat(server: ProviderServer, tmp_path: Path) -> None:
    server.enqueue(Reply(tool_calls=[FakeToolCall("send_refund", {"order": "A-9", "amount": 40})]),
                   Reply(text="Refund sent."))
    db = tmp_path / "chat.db"
    term = Terminal([sys.executable, "-m", "duragent", "--db", str(db), "chat",
                     "tests.integration.conversation_jobs:careful"], env_for(server))
    try:
        term.read_until("you> ")
        term.type("Refund order A-9")
        asked = ANSI.sub("", term.read_until("approve? [y/n] > "))
        assert "waiting for a person: Run tool send_refund?" in asked
        term.type("y")
        assert "Refund sent." in term.read_until("you> ")
        term.type("/exit")
        assert term.wait() == 0
    finally:
        term.close()
    tool_result = json.dumps(server.requests[-1].body)
    assert "refunded 40 on A-9" in tool_result


# -- follow and run on a terminal -------------------------------------------------------------------------
def test_follow_on_a_terminal_and_piped(server: ProviderServer, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    server.enqueue(Reply(text="Story time."), Reply(text="The end."))
    db = tmp_path / "follow.db"
    env = env_for(server)
    for name in ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY", "NO_PROXY"):
        monkeypatch.setenv(name, env[name])
    with LocalRuntime(db) as rt:
        session = Session.start(rt, _assistant_chat(), drive=True)
        first = session.ask("Tell a story", timeout=60)
        session.end()
    assert first.reply == "Story time."
    piped = subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), "follow", session.id], cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b[" not in piped.stdout and "\r" not in piped.stdout, "no status line when piped"
    assert piped.stdout.splitlines() == [f"execution {session.id} started", "you: Tell a story",
                                         "assistant: Story time.", "(the session was ended)",
                                         f'execution {session.id} SUCCEEDED: {{"turns":1,"ended":"by request"}}']
    as_json = subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), "follow", session.id, "--json",
                              "--after", "3"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    with LocalRuntime(db) as rt:
        assert [e["cursor"] for e in events] == [e["EventId"] for e in rt.history(session.id)][3:]
    on_terminal = Terminal([sys.executable, "-m", "duragent", "--db", str(db), "follow", session.id], env)
    try:
        on_terminal.read_until("SUCCEEDED")
        assert on_terminal.wait() == 0
    finally:
        on_terminal.close()
    assert "1 model call · $" in ANSI.sub("", on_terminal.output), "the status line, on a terminal"


def _assistant_chat() -> Any:
    from tests.integration import conversation_jobs

    return conversation_jobs.assistant_chat


def test_run_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    job = tmp_path / "fanout.py"
    job.write_text(
        "import time\n"
        "from duragent import DurableContext, durable_function\n"
        "@durable_function\n"
        "def fanout(event: dict, ctx: DurableContext) -> int:\n"
        "    batch = ctx.map(list(range(8)), lambda c, item, i, items: c.step(lambda: time.sleep(0.2) or item),\n"
        "                    name='pieces')\n"
        "    return sum(batch.get_results())\n")
    db = tmp_path / "run.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    piped = subprocess.run([sys.executable, "-m", "duragent", "--db", str(db), "run", f"{job}:fanout"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=60)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.strip() == "28" and "pieces" not in piped.stderr and "\r" not in piped.stderr
    term = Terminal([sys.executable, "-m", "duragent", "--db", str(tmp_path / "run2.db"), "run", f"{job}:fanout"],
                    env)
    try:
        assert term.wait(timeout=60) == 0
    finally:
        term.close()
    shown = term.output
    assert re.search(r"\d/8 pieces · 0 model calls · \$0\.0000", ANSI.sub("", shown)), shown
    assert "28" in shown
