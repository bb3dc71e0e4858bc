"""Durable chat sessions: one execution per conversation, answering each message and then
suspending until the next one arrives (no process, no compute between turns, for minutes or
months).

    support = conversation(Agent("anthropic:claude-sonnet-4-6", tools=[...], name="support"))

    session = Session.start(runtime, support)          # or Session(runtime, session_id) to reopen
    turn = session.ask("Where is my order?")           # a worker runs it (or drive=True here)
    print(turn.reply)

Each turn is a child context (``turn N``) whose result is a ``Turn``: the user's message and the
messages the turn added. The conversation is rebuilt on replay from those records, so storage grows
with each turn's new content, never with the conversation's square. Messages arrive through a
durable callback (``inbox K``); a ``Session`` finds the open one by following the execution's
events. Near the model's context window, older turns are compacted first (agents/compaction.py).
A turn that fails (the model kept failing, a budget was refused) is recorded as a failed turn with
its error; the session goes on with the conversation as it was before it.
"""

from __future__ import annotations

import functools
import json
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError, computed_field

from duragent.durable import (
    CallbackConfig,
    CallbackError,
    CallbackTimeoutError,
    ChildConfig,
    DurableOperationError,
    Duration,
    ExecutionEvent,
    JsonSerdes,
    UsageError,
    durable_function,
)
from duragent.durable.flow import Flow, flow_body, run_flow
from duragent.durable.registry import DurableFunction

from .compaction import Compaction, CompactionPolicy, apply, compact, estimate_tokens, needs_compaction
from .events import AgentEventStream, EventReader, read_history
from .history import dump_messages, to_messages
from .messages import Message, TextBlock, ToolCall

if TYPE_CHECKING:
    from .agent import Agent, Context

INBOX = "inbox"
RECORD = ChildConfig(serdes=JsonSerdes())
"""Turn and compaction records are plain JSON (and typing a fresh closure's result each turn costs)."""


class SessionError(DurableOperationError):
    """A session could not take a message (it ended, or no message is awaited in time)."""


class Turn(BaseModel):
    """One answered message (the checkpointed result of a ``turn N`` child context)."""

    number: int
    user: str
    """The user's message."""
    agent: str
    """The agent that answered (another than the session's first after a handoff)."""
    output: Any = None
    """A structured answer (the JSON of the agent's ``output_type``); None for a text answer, which
    is the last message's text (``reply``)."""
    messages: list[Message] = Field(default_factory=list)
    """What the turn added to the conversation after the user's message; empty when it failed."""
    context_tokens: int = 0
    """The size of the conversation at the turn's last model call, as the model counted it."""
    error: str | None = None
    """Why the turn failed, if it did (the conversation then goes on as it was before it)."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reply(self) -> Any:
        """The answer: its text, or the structured output. None when the turn failed."""
        if self.output is not None or self.error is not None:
            return self.output
        last = next((m for m in reversed(self.messages) if m.role == "assistant"), None)
        return "".join(b.text for b in last.content if isinstance(b, TextBlock)) if last is not None else None

    @property
    def conversation(self) -> list[Message]:
        """What the turn added to the conversation, the user's message first."""
        return [Message.user(self.user), *self.messages] if self.error is None else []


class SessionMessage(BaseModel):
    """What the inbox takes: ``{"text": "..."}``, or ``{"end": true}`` to end the session."""

    text: str | None = None
    end: bool = False


DEFAULT_COMPACTION = CompactionPolicy()


def conversation(agent: Agent, *, name: str | None = None, compaction: CompactionPolicy | None = DEFAULT_COMPACTION,
                 idle_timeout: Duration | None = None, plugins: list[Any] | None = None) -> DurableFunction:
    """A durable function whose every execution is one chat session with ``agent``.

    Args:
        agent: answers each message (and may hand the conversation to its ``handoffs``).
        name: the function's name (default: the agent's name).
        compaction: when to summarize older turns (None: never).
        idle_timeout: end the session when no message arrives for this long (default: never).
        plugins: as for ``durable_function``.

    The execution's input may seed the conversation: ``{"history": [...]}`` (ours or
    provider-style messages)."""
    def session(event: Any, ctx: Any) -> Any:
        return run_flow(session_flow(ctx, agent, event, compaction=compaction, idle_timeout=idle_timeout), ctx)

    session.__name__ = name or agent.name
    session.__qualname__ = session.__name__
    session.__module__ = sys._getframe(1).f_globals.get("__name__", session.__module__)  # where it is defined
    session.__doc__ = f"A chat session with {agent.name} (duragent.agents.conversation)."
    function = durable_function(name=name or agent.name, plugins=plugins)(session)
    function.agent = agent  # type: ignore[attr-defined]
    return function


def session_flow(ctx: Context, agent: Agent, event: Any, *,
                 compaction: CompactionPolicy | None = DEFAULT_COMPACTION,
                 idle_timeout: Duration | None = None) -> Flow[dict[str, Any]]:
    """The session loop as a flow (for handlers of your own that hold a session)."""
    agents = agent.agents()
    seed = event.get("history") if isinstance(event, Mapping) else None
    history = to_messages(seed, system=None if agent.system is None else str(agent.system))
    current = agent
    context_tokens = estimate_tokens(history)
    turns = 0
    inbox = 0
    while True:
        inbox += 1
        callback = yield ctx.create_callback(name=f"{INBOX} {inbox}", config=CallbackConfig(timeout=idle_timeout))
        try:
            raw = yield callback.result()  # suspends until the message arrives: no process between turns
        except CallbackTimeoutError:
            return {"turns": turns, "ended": "idle"}
        except CallbackError as exc:
            return {"turns": turns, "ended": f"the inbox was failed: {exc.message}"}
        message = read_message(raw)
        if message is None:
            continue  # not a message (sent by hand, say): wait for the next one
        if message.end:
            return {"turns": turns, "ended": "by request"}
        text = message.text or ""
        turns += 1
        if compaction is not None and needs_compaction(compaction, current.model.model_id, context_tokens, text):
            body = functools.partial(compact, agent=current, policy=compaction, messages=history, before_turn=turns,
                                     context_tokens=context_tokens)
            record = yield ctx.run_in_child_context(flow_body(body), name=f"compaction before turn {turns}",
                                                    config=RECORD)
            if record is not None:
                history = apply(history, Compaction.model_validate(record))
                context_tokens = estimate_tokens(history)
        turn = yield from _turn(ctx, current, turns, text, history)
        if turn.error is None:
            history = [*history, *turn.conversation]
            current = agents.get(turn.agent, current)
            context_tokens = turn.context_tokens or estimate_tokens(history)


def _turn(ctx: Context, agent: Agent, number: int, text: str, history: list[Message]) -> Flow[Turn]:
    def body(child: Context) -> Flow[dict[str, Any]]:
        result = yield from agent.flow(child, text, history=history)
        usage = result.spend.records[-1].get("usage", {}) if result.spend and result.spend.records else {}
        tokens = sum(int(v) for v in usage.values() if isinstance(v, int))
        output = result.output.model_dump(mode="json") if isinstance(result.output, BaseModel) else result.output
        last = result.last_agent.name if result.last_agent is not None else agent.name
        added = result.new_messages[1:]  # the user's message is kept once, as ``user``
        structured = last_text(added) != output
        return Turn(number=number, user=text, agent=last, output=output if structured else None, messages=added,
                    context_tokens=tokens).model_dump(mode="json", exclude_none=True, exclude={"reply"})

    try:
        record = yield ctx.run_in_child_context(flow_body(body), name=f"turn {number}", config=RECORD)
    except DurableOperationError as exc:
        return Turn(number=number, user=text, agent=agent.name, error=f"{exc.error_type}: {exc.message}")
    return Turn.model_validate(record)


def last_text(messages: Sequence[Message]) -> str | None:
    last = next((m for m in reversed(messages) if m.role == "assistant"), None)
    return None if last is None else "".join(b.text for b in last.content if isinstance(b, TextBlock))


def read_message(raw: Any) -> SessionMessage | None:
    """An inbox answer as a message: ``{"text": ...}``, ``{"end": true}`` or plain text."""
    if isinstance(raw, str):
        return SessionMessage(text=raw)
    if not isinstance(raw, Mapping):
        return None
    try:
        message = SessionMessage.model_validate(raw)
    except ValidationError:
        return None
    return message if message.end or message.text is not None else None


# -- the client side ----------------------------------------------------------------------------------
class Session:
    """A chat session seen from outside: send messages, follow the replies, read the conversation.

    ``runtime`` is a ``LocalRuntime`` on the session's store (any process may use one). A worker
    must run the session (``duragent worker``, ``runtime.worker()``), or pass ``drive=True`` and
    this object runs the session's invocations itself while it waits for a reply.
    """

    def __init__(self, runtime: Any, session_id: str, *, drive: bool = False) -> None:
        self.runtime = runtime
        self.id = session_id
        self.drive = drive
        runtime.service.execution(session_id)  # an unknown session fails now
        self.reader = EventReader()
        self.cursor = 0
        self._inbox: str | None = None
        self.turn: int = 0
        """The number of the last turn started."""
        self._catch_up()

    @classmethod
    def start(cls, runtime: Any, function: Callable[..., Any] | str, session_id: str | None = None, *,
              history: Sequence[Message | Mapping[str, Any]] | None = None, drive: bool = False,
              target: str | None = None) -> Session:
        """Start a session (or, with the ``session_id`` of one, attach to it)."""
        event = {"history": dump_messages(to_messages(history))} if history else {}
        execution_id = runtime.start(function, event, session_id, target=target)
        return cls(runtime, execution_id, drive=drive)

    def _catch_up(self) -> None:
        for event in read_history(self.runtime, self.id, after=self.cursor):
            self._note(self.reader.read(event))

    @property
    def inbox(self) -> str | None:
        """The callback id the next message goes to now (None while a turn runs, or after the end)."""
        self._catch_up()
        return self._inbox

    def _note(self, event: ExecutionEvent) -> None:
        if event.cursor is not None:
            self.cursor = event.cursor
        if event.type == "waiting_for_message":
            self._inbox = event.data.get("callback_id")
        elif event.type in ("message_received", "execution_ended"):
            self._inbox = None
        elif event.type == "turn_started":
            self.turn = int(event.data.get("turn") or self.turn)

    @property
    def ended(self) -> bool:
        return str(self.runtime.get(self.id).status) != "RUNNING"

    # -- sending -----------------------------------------------------------------------------------
    def send(self, text: str, *, timeout: float = 30.0) -> None:
        """Hand ``text`` to the session as the next message. Waits (up to ``timeout`` seconds) for
        the session to be ready for one (a turn may still be running)."""
        if not isinstance(text, str) or not text.strip():
            raise UsageError("a message must be non-empty text")
        self._answer_inbox({"text": text}, timeout)

    def end(self, *, timeout: float = 30.0) -> None:
        """End the session (its execution succeeds; the conversation stays readable)."""
        self._answer_inbox({"end": True}, timeout)
        if self.drive:
            self.runtime.drive(self.id)

    def _answer_inbox(self, message: dict[str, Any], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        stop = threading.Event()
        driver = self._driver(stop) if self.drive else None
        try:
            while True:
                if self.inbox is not None:
                    break
                if self.ended:
                    raise SessionError(f"session {self.id} has ended; start a new one")
                if time.monotonic() > deadline:
                    raise SessionError(f"session {self.id} is not ready for a message after {timeout:g} s (a turn "
                                       "is still running, or no worker runs the session: start `duragent worker`)")
                time.sleep(0.05)
        finally:
            stop.set()
            self.runtime._wake.set()
            if driver is not None:
                driver.join()
        callback, self._inbox = self._inbox, None
        assert callback is not None
        self.runtime.send_callback_success(callback, json.dumps(message))

    # -- following ---------------------------------------------------------------------------------
    def events(self, *, after: int | None = None, live: bool = True) -> AgentEventStream:
        """The session's events from ``after`` (default: what this object has read so far)."""
        stream = self.runtime.events(self.id, after=self.cursor if after is None else after, live=live)
        return AgentEventStream(stream, self.reader)

    def ask(self, text: str, *, on_event: Callable[[ExecutionEvent], None] | None = None,
            timeout: float | None = None) -> Turn:
        """Send ``text`` and wait for the reply (the finished ``Turn``). ``on_event`` sees every
        event meanwhile (``text_delta`` events carry the reply as it is generated)."""
        stream = self.events()  # subscribed before sending: no text of the reply is missed
        stop = threading.Event()
        driver: threading.Thread | None = None
        try:
            self.send(text)
            driver = self._driver(stop) if self.drive else None
            return self._reply(stream, on_event, timeout)
        finally:
            stop.set()
            self.runtime._wake.set()
            stream.close()
            if driver is not None:
                driver.join()

    def wait(self, turn: int | None = None, *, on_event: Callable[[ExecutionEvent], None] | None = None,
             timeout: float | None = None) -> Turn:
        """The finished ``turn`` (default: the last one started), waiting for it if it still runs:
        what a client reopened after a crash calls before it sends anything new."""
        number = turn if turn is not None else max(self.turn, 1)
        stream = self.events()
        stop = threading.Event()
        driver: threading.Thread | None = None
        try:
            done = self.turn_record(number)
            if done is not None:
                return done
            driver = self._driver(stop) if self.drive else None
            return self._reply(stream, on_event, timeout, number)
        finally:
            stop.set()
            self.runtime._wake.set()
            stream.close()
            if driver is not None:
                driver.join()

    @property
    def busy(self) -> bool:
        """Whether a turn is running now (started, not finished)."""
        self._catch_up()
        return self.turn > 0 and self.turn_record(self.turn) is None and not self.ended

    def _reply(self, stream: AgentEventStream, on_event: Callable[[ExecutionEvent], None] | None,
               timeout: float | None, number: int | None = None) -> Turn:
        deadline = None if timeout is None else time.monotonic() + timeout
        for event in stream:
            self._note(event)
            if on_event is not None:
                on_event(event)
            if event.type == "turn_finished" and (number is None or event.data.get("turn") == number):
                return self.turn_record(int(event.data.get("turn") or 0)) or Turn(
                    number=int(event.data.get("turn") or 0), user="", agent=str(event.data.get("agent")),
                    error=event.data.get("error") or "the turn's record could not be read")
            if event.type == "execution_ended":
                raise SessionError(f"session {self.id} ended ({event.data.get('status')}) before it replied")
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"no reply from session {self.id} within {timeout:g} s")
        raise SessionError(f"session {self.id} ended before it replied")

    def _driver(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.runtime.drive, args=(self.id, stop), kwargs={"max_sleep": 0.05},
                                  name=f"duragent-session-{self.id}", daemon=True)
        thread.start()
        return thread

    # -- reading -----------------------------------------------------------------------------------
    def turns(self) -> list[Turn]:
        """Every finished turn so far, failed ones included, in order (from the journal)."""
        return turns_of(self.runtime.operations(self.id))

    def turn_record(self, number: int) -> Turn | None:
        return next((t for t in self.turns() if t.number == number), None)

    def messages(self) -> list[Message]:
        """The conversation as the next turn's model will see it (compactions applied)."""
        return conversation_of(self.runtime.operations(self.id), self.runtime.get(self.id).input)


def turns_of(operations: Sequence[Any]) -> list[Turn]:
    """The finished turns of a session, from its operations."""
    out = []
    for op in operations:
        if op.ParentId is None and op.Type.value == "CONTEXT" and (op.Name or "").startswith("turn "):
            turn = _turn_from_operation(op)
            if turn is not None:
                out.append(turn)
    return sorted(out, key=lambda t: t.number)


def _turn_from_operation(op: Any) -> Turn | None:
    details = op.ContextDetails
    status = op.Status.value
    try:
        number = int((op.Name or "").split(" ", 1)[1])
    except (IndexError, ValueError):
        return None
    if status == "SUCCEEDED" and details is not None and details.Result:
        try:
            return Turn.model_validate_json(details.Result)
        except ValidationError:
            return None
    if status == "FAILED" and details is not None and details.Error is not None:
        return Turn(number=number, user="", agent="", error=f"{details.Error.ErrorType}: {details.Error.ErrorMessage}")
    return None


def is_session(operations: Sequence[Any]) -> bool:
    """Whether these are the operations of a chat session (its first operation is an inbox)."""
    first = next((op for op in operations if op.Type.value != "EXECUTION"), None)
    return first is not None and first.ParentId is None and first.Type.value == "CALLBACK" and \
        (first.Name or "").startswith(f"{INBOX} ")


def transcript(operations: Sequence[Any]) -> dict[str, Any]:
    """A session for people (the console): each message, reply, failed turn and compaction in
    order, and whether it waits for the next message now (with the callback that takes it)."""
    entries: list[dict[str, Any]] = []
    waiting: str | None = None
    running: dict[str, Any] | None = None
    for op in operations:
        if op.ParentId is not None:
            continue
        name = op.Name or ""
        kind, status = op.Type.value, op.Status.value
        if kind == "CALLBACK" and name.startswith(f"{INBOX} "):
            details = op.CallbackDetails
            if status == "STARTED":
                waiting = details.CallbackId if details is not None else None
            continue
        if kind != "CONTEXT":
            continue
        if name.startswith("compaction before turn ") and status == "SUCCEEDED":
            record = _compaction(op)
            if record is not None:  # None: nothing was old enough to summarize
                entries.append({"kind": "compaction", **record.model_dump(mode="json"), "time": op.EndTimestamp})
        elif name.startswith("turn "):
            turn = _turn_from_operation(op)
            number = int(name.split(" ", 1)[1]) if name.split(" ", 1)[1].isdigit() else 0
            if turn is None:  # still running: what was asked is the inbox answer before it
                running = {"kind": "turn", "number": number, "status": status, "time": op.StartTimestamp}
                continue
            entry = {"kind": "turn", "number": turn.number, "user": turn.user, "agent": turn.agent,
                     "reply": turn.reply, "error": turn.error, "status": status, "time": op.EndTimestamp,
                     "tools": [b.name for m in turn.messages for b in m.content if isinstance(b, ToolCall)]}
            entries.append(entry)
    if running is not None:
        running["user"] = _last_message(operations)
        entries.append(running)
    return {"entries": entries, "waiting_for_message": waiting is not None and running is None,
            "inbox": waiting if running is None else None}


def _compaction(op: Any) -> Compaction | None:
    """The record of a compaction's context (None when it found nothing to summarize)."""
    text = op.ContextDetails.Result if op.ContextDetails else None
    try:
        data = json.loads(text or "null")
    except ValueError:
        return None
    return Compaction.model_validate(data) if isinstance(data, dict) else None


def _last_message(operations: Sequence[Any]) -> str | None:
    answered = [op for op in operations if op.ParentId is None and op.Type.value == "CALLBACK"
                and (op.Name or "").startswith(f"{INBOX} ") and op.Status.value == "SUCCEEDED"]
    if not answered or answered[-1].CallbackDetails is None:
        return None
    try:
        message = read_message(json.loads(answered[-1].CallbackDetails.Result or "null"))
    except ValueError:
        return None
    return message.text if message is not None else None


def conversation_of(operations: Sequence[Any], event: Any = None) -> list[Message]:
    """A session's conversation rebuilt from its operations: the seed, each compaction applied
    where it happened, each successful turn's messages."""
    seed = event.get("history") if isinstance(event, Mapping) else None
    history = to_messages(seed)
    steps: list[tuple[int, int, Any]] = []
    for op in operations:
        name = op.Name or ""
        if op.ParentId is not None or op.Type.value != "CONTEXT" or op.Status.value != "SUCCEEDED":
            continue
        result = op.ContextDetails.Result if op.ContextDetails else None
        if not result:
            continue
        if name.startswith("compaction before turn "):
            record = _compaction(op)
            if record is not None:
                steps.append((int(name.rsplit(" ", 1)[1]), 0, record))
        elif name.startswith("turn "):
            steps.append((int(name.split(" ", 1)[1]), 1, Turn.model_validate_json(result)))
    for _, _, record in sorted(steps, key=lambda s: (s[0], s[1])):
        if isinstance(record, Compaction):
            history = apply(history, record)
        else:
            history = [*history, *record.conversation]
    return history


__all__ = ["INBOX", "Session", "SessionError", "SessionMessage", "Turn", "conversation", "conversation_of",
           "is_session", "read_message", "session_flow", "transcript", "turns_of"]
