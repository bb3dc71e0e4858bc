"""``duragent chat TARGET [--session ID]``: talk to a durable chat session in the terminal.

The reply streams as the model writes it. This process runs the session's invocations while it is
open (nothing else in the store); between messages the session is suspended in the store, so the
terminal can be closed, killed or reopened a day later with ``--session ID``: the conversation so
far is shown, a reply cut short by a crash is finished, and the chat goes on. A review the agent
asks for (a tool approval, a budget, a question) is answered right here.

Lines starting with ``/``: ``/exit`` (leave; the session stays), ``/end`` (end the session),
``/help``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import uuid
from typing import Any, TextIO

from duragent.agents import Agent, Session, SessionError
from duragent.agents.review import Answer, Approve, Reject, ReviewError, ReviewRequest, encode_decision
from duragent.durable import ExecutionEvent, UsageError
from duragent.durable.registry import DurableFunction
from duragent.ops import values

from .common import command
from .following import EventPrinter

HELP = "/exit leave (the session stays; reopen it with --session), /end end the session, /help this"


def chat_function(obj: Any) -> Any:
    """What ``duragent chat`` runs: a ``conversation(...)`` function, or an ``Agent`` made into one."""
    if isinstance(obj, Agent):
        return obj.__durable_function__()
    if isinstance(obj, DurableFunction) and getattr(obj, "agent", None) is not None:
        return obj
    raise UsageError(f"{getattr(obj, '__name__', obj)!r} is not a chat: give duragent chat an Agent, or a "
                     "function made with duragent.agents.conversation(agent)")


class Chat:
    """One terminal attached to one session."""

    def __init__(self, runtime: Any, session: Session, *, inp: TextIO, out: TextIO, command: str,
                 reopen: str) -> None:
        self.runtime = runtime
        self.session = session
        self.inp = inp
        self.out = out
        self.printer = EventPrinter(out, command)
        self.reopen = reopen

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def read(self, prompt: str) -> str | None:
        self.out.write(prompt)
        self.out.flush()
        line = self.inp.readline()
        return None if line == "" else line.rstrip("\n")

    def history(self) -> None:
        turns = self.session.turns()
        for turn in turns:
            self.say(f"you: {turn.user}")
            if turn.error is not None:
                self.say(f"  !! this turn failed: {turn.error}")
            else:
                self.say(f"{turn.agent}: {turn.reply if isinstance(turn.reply, str) else json.dumps(turn.reply)}")

    def run(self) -> int:
        if self.session.busy:  # reopened while a reply was being written (a crash): finish it first
            self.say("(finishing the reply that was interrupted)")
            self.session.wait(on_event=self.on_event)
        while True:
            if self.session.ended:
                self.say(f"(session {self.session.id} has ended)")
                return 0
            line = self.read("you> ")
            if line is None or line.strip() == "/exit":
                self.say(f"\n(left session {self.session.id}; reopen it with: {self.reopen})")
                return 0
            text = line.strip()
            if not text:
                continue
            if text == "/help":
                self.say(HELP)
                continue
            if text == "/end":
                self.session.end()
                self.say(f"(session {self.session.id} ended)")
                return 0
            self.session.ask(text, on_event=self.on_event)

    def on_event(self, event: ExecutionEvent) -> None:
        if event.type == "message_received":
            return  # the person typed it: no need to echo it
        self.printer.event(event)
        if event.type == "review_requested":
            self.printer.end_line()
            threading.Thread(target=self.review, args=(dict(event.data),), daemon=True).start()
        elif event.type == "turn_finished" and not event.data.get("error"):
            reply = event.data.get("reply")
            if reply is not None and not isinstance(reply, str):  # a structured answer: show it whole
                self.say(json.dumps(reply, ensure_ascii=False))

    def review(self, data: dict[str, Any]) -> None:
        """Answer a review from the chat (in its own thread: the session keeps following)."""
        callback = data.get("callback_id")
        try:
            request = ReviewRequest.model_validate(data)
        except ValueError:
            return
        while True:
            if request.kind == "question":
                answer = self.read("answer (JSON, or text)> ")
                if answer is None:
                    return
                try:
                    value: Any = json.loads(answer)
                except ValueError:
                    value = answer
                decision: Any = Answer(value=value)
            else:
                answer = self.read("approve? [y/n] > ")
                if answer is None:
                    return
                if answer.strip().lower() in ("y", "yes"):
                    decision = Approve()
                elif answer.strip().lower() in ("n", "no"):
                    feedback = self.read("why (the model reads this)> ") or "rejected in the chat"
                    decision = Reject(feedback=feedback)
                else:
                    continue
            try:
                self.runtime.send_callback_success(callback, encode_decision(request, decision))
                return
            except ReviewError as exc:
                self.say(f"  that answer does not fit: {exc.problem}")


def open_session(runtime: Any, fn: Any, session_id: str | None, target: str) -> tuple[Session, bool]:
    """The session to chat in: the one named (started with that id if new), or a new one."""
    if session_id is not None:
        try:
            session = Session(runtime, session_id, drive=True)
        except Exception:  # no such execution yet: start it under that id
            session = Session.start(runtime, fn, session_id, drive=True, target=target)
            return session, True
        if runtime.get(session_id).function != fn.name:
            raise UsageError(f"execution {session_id} is a {runtime.get(session_id).function!r} execution, not a "
                             f"{fn.name!r} chat; choose another --session")
        return session, False
    session = Session.start(runtime, fn, f"chat-{uuid.uuid4().hex[:12]}", drive=True, target=target)
    return session, True


def cmd_chat(args: argparse.Namespace) -> int:
    """``duragent chat TARGET [--session ID]`` (local store only; creates the store if needed)."""
    from .running import absolute_target, load_target, open_runtime

    if args.session is not None:
        values.execution_id(args.session, "--session")
    obj = load_target(args.target)
    with open_runtime(args) as runtime:
        return run_chat(runtime, obj, session_id=args.session, target=absolute_target(args.target), inp=sys.stdin,
                        out=sys.stdout, command=command(args, "").rstrip())


def run_chat(runtime: Any, obj: Any, *, session_id: str | None, target: str, inp: TextIO, out: TextIO,
             command: str = "duragent") -> int:
    fn = chat_function(obj)
    runtime.register(fn, fn.name)
    session, new = open_session(runtime, fn, session_id, target)
    reopen = f"{command} chat {target} --session {session.id}"
    chat = Chat(runtime, session, inp=inp, out=out, command=command, reopen=reopen)
    if new:
        chat.say(f"(session {session.id}; reopen it later with: {reopen})")
    else:
        chat.say(f"(session {session.id}, reopened)")
        chat.history()
    try:
        return chat.run()
    except SessionError as exc:
        chat.say(f"duragent: {exc.message}")
        return 1


__all__ = ["chat_function", "cmd_chat", "run_chat"]
