"""``duragent follow ID`` and the live progress of ``duragent run``: an execution's events as a
person reads them, and one status line (branches done of total, model calls paid and reused,
dollars so far, what waits for a person) redrawn in place on a terminal and never when piped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

from duragent.agents.events import AgentEventStream, Progress, follow
from duragent.durable import ExecutionEvent
from duragent.ops import values

from .common import EXIT_FAILED, EXIT_OK, command, operator

CLEAR = "\r\x1b[K"


def short(value: Any, limit: int = 100) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class StatusLine:
    """One line at the bottom of a terminal, redrawn in place; nothing at all when not a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.enabled = bool(getattr(out, "isatty", lambda: False)())
        self.shown = False
        self._lock = threading.Lock()

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        with self._lock:
            self.out.write(CLEAR + text[:200])
            self.out.flush()
            self.shown = True

    def clear(self) -> None:
        if self.enabled and self.shown:
            with self._lock:
                self.out.write(CLEAR)
                self.out.flush()
                self.shown = False


class EventPrinter:
    """Writes events as lines: text deltas inline as they stream, a model's answer completed from
    its checkpoint when deltas were lost (a crash, or a follower that joined late)."""

    def __init__(self, out: TextIO, command: str = "duragent") -> None:
        self.out = out
        self.command = command
        self.streamed: dict[str, str] = {}
        self.open_line: str | None = None  # the model call whose text is being written

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def end_line(self) -> None:
        if self.open_line is not None:
            self.write("\n")
            self.open_line = None

    def line(self, text: str) -> None:
        self.end_line()
        self.write(text + "\n")

    def event(self, event: ExecutionEvent) -> None:
        data, kind = event.data, event.type
        if kind == "text_delta":
            key = str(data.get("operation_id"))
            if self.open_line != key:
                self.end_line()
                self.write(f"{data.get('agent')}: ")
                self.open_line = key
            self.streamed[key] = self.streamed.get(key, "") + str(data.get("text", ""))
            self.write(str(data.get("text", "")))
        elif kind == "model_call_finished":
            self.answer(event)
        elif kind == "tool_call_started":
            self.line(f"  -> {'agent ' if data.get('sub_agent') else ''}{data.get('tool')}")
        elif kind == "tool_call_finished":
            mark = "failed" if data.get("is_error") else "done"
            self.line(f"  <- {data.get('tool')} {mark}: {short(data.get('result'))}")
        elif kind == "review_requested":
            self.line(f"  || waiting for a person: {short(data.get('title'), 200)}")
            self.line(f"     answer: {self.answer_hint(data)}")
        elif kind == "review_answered":
            self.line(f"  >> review answered ({data.get('outcome', '').lower()}): {short(data.get('answer'))}")
        elif kind == "message_received":
            if data.get("text"):
                self.line(f"you: {data['text']}")
            elif data.get("end"):
                self.line("(the session was ended)")
        elif kind == "turn_finished" and data.get("error"):
            self.line(f"  !! turn {data.get('turn')} failed: {short(data.get('error'), 200)}")
        elif kind == "compacted":
            self.line(f"  (older turns summarized: {data.get('summarized_messages')} messages, "
                      f"{data.get('tokens_before')} tokens of a {data.get('window')}-token window)")
        elif kind == "invocation_ended" and data.get("crashed"):
            self.line("  (the worker running it stopped without finishing; the next worker replays it)")
        elif kind == "execution_started":
            self.line(f"execution {event.execution_id} started")
        elif kind == "execution_ended":
            status = data.get("status")
            outcome = short(data.get("payload"), 200) if status == "SUCCEEDED" else \
                short((data.get("error") or {}).get("ErrorMessage", ""), 200)
            self.line(f"execution {event.execution_id} {status}" + (f": {outcome}" if outcome else ""))
        elif kind == "operation" and data.get("parent_id") is None and data.get("status") != "STARTED" and \
                data.get("kind") in ("Step", "Wait", "ChainedInvoke"):  # the handler's own steps and waits
            self.line(f"  . {data.get('name') or data.get('kind')} {str(data.get('status')).lower()}")

    def answer(self, event: ExecutionEvent) -> None:
        data = event.data
        key = str(data.get("operation_id"))
        text = str(data.get("text") or "")
        streamed = self.streamed.pop(key, "")
        if streamed and text.startswith(streamed):
            self.write(text[len(streamed):])
        elif streamed:  # the streamed attempt was cut short: the checkpointed answer is the one
            self.line("(the text above was interrupted; the answer as recorded:)")
            self.write(f"{data.get('agent')}: {text}")
            self.open_line = key
        elif text:
            self.end_line()
            self.write(f"{data.get('agent')}: {text}")
            self.open_line = key
        self.end_line()

    def answer_hint(self, data: dict[str, Any]) -> str:
        callback = data.get("callback_id")
        if data.get("kind") == "question":
            return f"{self.command} answer {callback} JSON"
        return f"{self.command} approve {callback}   or   {self.command} reject {callback} --feedback TEXT"


def cmd_follow(args: argparse.Namespace) -> int:
    """``duragent follow ID [--after CURSOR] [--json]``: exit 0 when the execution succeeds, 1 when
    it fails, times out or is stopped."""
    after = values.page_offset(args.after, "--after")
    with operator(args) as ops:
        stream = ops.events(args.id, after=after)
        status = follow_execution(stream, as_json=args.json, out=sys.stdout, command=command(args, "").rstrip())
    return EXIT_OK if status == "SUCCEEDED" else EXIT_FAILED


def follow_execution(stream: AgentEventStream, *, as_json: bool = False, out: TextIO = sys.stdout,
                     command: str = "duragent") -> str:
    """Print an execution's events until it ends; returns its final status."""
    status_line = StatusLine(out) if not as_json else None
    printer = EventPrinter(out, command)
    progress = Progress()
    status = "RUNNING"
    with stream:
        for event in stream:
            progress.update(event)
            if as_json:
                out.write(json.dumps(event.to_dict(), ensure_ascii=False, default=str) + "\n")
                out.flush()
            else:
                if status_line is not None and event.type != "text_delta":
                    status_line.clear()
                printer.event(event)
                if status_line is not None and printer.open_line is None:
                    status_line.show(progress.line())
            if event.type == "execution_ended":
                status = str(event.data.get("status"))
    if status_line is not None:
        status_line.clear()
    return status


@contextlib.contextmanager
def progress_while(runtime: Any, execution_id: str, out: TextIO) -> Iterator[None]:
    """While the body drives ``execution_id``, keep a status line on ``out`` (a terminal only)."""
    status_line = StatusLine(out)
    if not status_line.enabled:
        yield
        return
    progress = Progress()
    stream = follow(runtime, execution_id, poll=0.1)

    def watch() -> None:
        try:
            for event in stream:
                progress.update(event)
                status_line.show(progress.line())
        except Exception:  # the line is a courtesy: it never fails the run
            pass

    thread = threading.Thread(target=watch, name="duragent-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stream.close()
        thread.join(timeout=5)
        status_line.clear()


__all__ = ["EventPrinter", "StatusLine", "cmd_follow", "follow_execution", "progress_while"]
