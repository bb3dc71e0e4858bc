"""An execution's event stream (``durable.events``) told in an agent's terms, and the progress of
a long job read from it.

``follow(runtime, execution_id)`` yields the same events as ``runtime.events(...)`` (same cursors,
same exactly-once guarantee for the durable ones), with the operations an agent makes re-typed:

    model_call_started / model_call_finished / model_call_failed    a model-call step
    text_delta                                                      live: the text as it streams
    tool_call_started / tool_call_finished                          a tool (or a sub-agent) call
    review_requested / review_answered                              a person's review (approval,
                                                                    budget, question)
    turn_started / turn_finished / waiting_for_message /            a durable chat session
    message_received / compacted
    batch_progress                                                  live: branches of a map
    operation                                                       any other operation checkpointed
    execution_started / invocation_ended / execution_ended

Every event keeps its durable ``cursor``; ``Progress`` folds events into what a status line shows.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from duragent.durable import EventStream, ExecutionEvent
from duragent.durable.events import decode, from_history

from .messages import ModelResponse
from .review import review_request
from .usage import MODEL_CALL_SUBTYPE, price_for

_MODEL_CALL = re.compile(r"^(?P<agent>.*): model call (?P<call>\d+)$")
_TURN = re.compile(r"^turn (?P<turn>\d+)$")
_COMPACTION = "compaction before turn "
_INBOX = re.compile(r"^inbox (?P<inbox>\d+)$")
TOOL_PREFIX = "tool:"
AGENT_TOOL_PREFIX = "agent:"


@dataclass
class EventReader:
    """Re-types an execution's events as they come (it remembers the contexts it has seen, so read
    every event through one reader, or ``prime`` it with the ones before a cursor)."""

    contexts: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    reviews: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Wait-for-callback context id -> the review request it asks."""
    callbacks: dict[str, str] = field(default_factory=dict)
    """Callback operation id -> its callback id (completion events name only the operation)."""

    def prime(self, events: list[ExecutionEvent]) -> None:
        for event in events:
            self.read(event)

    def read(self, event: ExecutionEvent) -> ExecutionEvent:
        if event.type != "operation":
            return event
        data = event.data
        kind, status, name = data.get("kind"), data.get("status"), data.get("name") or ""
        op_id, parent = str(data.get("operation_id")), data.get("parent_id")
        if kind == "Callback":
            if data.get("callback_id"):
                self.callbacks[op_id] = str(data["callback_id"])
            elif op_id in self.callbacks:
                event = _as(event, event.type, callback_id=self.callbacks[op_id])
                data = event.data
            inbox = _INBOX.match(name) if parent is None else None
            if inbox and status == "STARTED":
                return _as(event, "waiting_for_message", inbox=int(inbox["inbox"]))
            if inbox:
                message = decode(data.get("payload"))
                text = message.get("text") if isinstance(message, dict) else message
                return _as(event, "message_received", text=text if isinstance(text, str) else None,
                           end=isinstance(message, dict) and bool(message.get("end")), outcome=status)
        if kind == "Context" and status == "STARTED":
            self.contexts[op_id] = (name, data.get("sub_type"))
        if kind == "Step" and data.get("sub_type") == MODEL_CALL_SUBTYPE:
            return self._model_call(event)
        if kind in ("Step", "Context") and (name.startswith(TOOL_PREFIX) or name.startswith(AGENT_TOOL_PREFIX)):
            return self._tool_call(event)
        if kind == "Context" and parent is None:
            turn = _TURN.match(name)
            if turn and status == "STARTED":
                return _as(event, "turn_started", turn=int(turn["turn"]))
            if turn:
                return _as(event, "turn_finished", turn=int(turn["turn"]), **_turn_outcome(data))
            if name.startswith(_COMPACTION) and status == "SUCCEEDED":
                record = decode(data.get("payload"))
                return _as(event, "compacted", **(record if isinstance(record, dict) else {}))
        if kind == "Step" and status == "SUCCEEDED" and parent in self.contexts \
                and self.contexts[parent][1] == "WaitForCallback":
            return self._submitted(event, str(parent))
        if kind == "Callback" and status != "STARTED" and parent in self.contexts:
            if parent in self.reviews:
                return _as(event, "review_answered", answer=decode(data.get("payload")),
                           review=self.reviews[str(parent)].get("kind"), outcome=status)
        return event

    def _model_call(self, event: ExecutionEvent) -> ExecutionEvent:
        data = event.data
        match = _MODEL_CALL.match(data.get("name") or "")
        who = {"agent": match["agent"], "call": int(match["call"])} if match else {"agent": data.get("name")}
        status = data.get("status")
        if status == "STARTED":
            return _as(event, "model_call_started", **who)
        if status != "SUCCEEDED":
            return _as(event, "model_call_failed", **who)
        try:
            response = ModelResponse.model_validate_json(data.get("payload") or "")
        except ValueError:
            return _as(event, "model_call_finished", **who)
        price = price_for(response.model)
        return _as(event, "model_call_finished", **who, text=response.text, model=response.model,
                   stop_reason=response.stop_reason, usage=response.usage.model_dump(),
                   cost_usd=price.cost(response.usage) if price else 0.0,
                   tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in response.tool_calls])

    def _tool_call(self, event: ExecutionEvent) -> ExecutionEvent:
        data = event.data
        name = data.get("name") or ""
        sub_agent = name.startswith(AGENT_TOOL_PREFIX)
        tool = name[len(AGENT_TOOL_PREFIX if sub_agent else TOOL_PREFIX):]
        if data.get("status") == "STARTED":
            return _as(event, "tool_call_started", tool=tool, sub_agent=sub_agent)
        result = decode(data.get("payload"))
        if sub_agent and isinstance(result, dict):
            result = result.get("output")
        return _as(event, "tool_call_finished", tool=tool, sub_agent=sub_agent, result=result,
                   is_error=data.get("status") != "SUCCEEDED")

    def _submitted(self, event: ExecutionEvent, context_id: str) -> ExecutionEvent:
        record = decode(event.data.get("payload"))
        request = review_request(record)
        if request is None:
            return event
        self.reviews[context_id] = request.model_dump(exclude_none=True)
        return _as(event, "review_requested", **{k: v for k, v in self.reviews[context_id].items()
                                                 if k not in ("type",)})


def _turn_outcome(data: dict[str, Any]) -> dict[str, Any]:
    from .session import Turn

    try:
        turn = Turn.model_validate_json(data.get("payload") or "")
    except ValueError:
        return {"error": data.get("error")} if data.get("error") else {}
    return {"reply": turn.reply, "agent": turn.agent, "error": turn.error}


def _as(event: ExecutionEvent, type_: str, **extra: Any) -> ExecutionEvent:
    return replace(event, type=type_, data={**event.data, **extra})


class AgentEventStream:
    """``runtime.events(...)`` read through an ``EventReader``: ``for`` or ``async for``."""

    def __init__(self, stream: EventStream, reader: EventReader) -> None:
        self.stream = stream
        self.reader = reader

    @property
    def cursor(self) -> int:
        return self.stream.cursor

    def __iter__(self) -> Iterator[ExecutionEvent]:
        return self

    def __next__(self) -> ExecutionEvent:
        return self.reader.read(next(self.stream))

    def get(self, timeout: float) -> ExecutionEvent | None:
        """The next event within ``timeout`` seconds, or None; StopIteration at the end."""
        event = self.stream.get(timeout)
        return None if event is None else self.reader.read(event)

    def __aiter__(self) -> AsyncIterator[ExecutionEvent]:
        return self

    async def __anext__(self) -> ExecutionEvent:
        return self.reader.read(await self.stream.__anext__())

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> AgentEventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def follow(runtime: Any, execution_id: str, *, after: int = 0, live: bool = True, poll: float = 0.05,
           timeout: float | None = None) -> AgentEventStream:
    """Follow an execution in an agent's terms (see the module docstring); resume after a cursor.
    Works on a ``LocalRuntime`` (any process using the same store)."""
    stream = runtime.events(execution_id, after=after, live=live, poll=poll, timeout=timeout)
    reader = EventReader()
    if after > 0:  # what the reader must know of the events before the cursor (contexts, reviews)
        reader.prime(read_history(runtime, execution_id, until=after))
    return AgentEventStream(stream, reader)


def read_history(runtime: Any, execution_id: str, *, after: int = 0, until: int | None = None) -> list[ExecutionEvent]:
    """The durable events of an execution (after ``after``, up to ``until``), without following."""
    out: list[ExecutionEvent] = []
    cursor = after
    while True:
        page, _ = runtime.service.history_after(execution_id, cursor, 1000)
        for event in page:
            converted = from_history(execution_id, event)
            if until is not None and (converted.cursor or 0) > until:
                return out
            out.append(converted)
        if len(page) < 1000:
            return out
        cursor = int(page[-1]["EventId"])


# -- progress ---------------------------------------------------------------------------------------
@dataclass
class Progress:
    """What a long job's status line shows, folded from its events (``update`` each one)."""

    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Batch operation id -> ``{"name", "total", "done", "failed"}``."""
    model_calls: int = 0
    reused_calls: int = 0
    cost_usd: float = 0.0
    waiting: dict[str, str] = field(default_factory=dict)
    """What waits for a person: callback id -> what (a review's title, or the next chat message)."""
    running: str | None = None
    status: str = "RUNNING"
    invocations: int = 0
    _calls_at_last_end: int = 0

    def update(self, event: ExecutionEvent) -> None:
        data, kind = event.data, event.type
        if kind == "batch_progress":
            self.batches[str(data.get("operation_id"))] = {k: data.get(k) for k in ("name", "total", "done", "failed")}
        elif kind == "model_call_started":
            self.running = f"{data.get('agent')} is thinking"
        elif kind == "model_call_finished":
            self.model_calls += 1
            self.cost_usd += float(data.get("cost_usd") or 0.0)
            self.running = None
        elif kind == "tool_call_started":
            self.running = f"{data.get('tool')} running"
        elif kind == "tool_call_finished":
            self.running = None
        elif kind in ("review_requested", "waiting_for_message"):
            callback = data.get("callback_id")
            if callback:
                self.waiting[str(callback)] = str(data.get("title") or "the next message")
        elif kind in ("review_answered", "message_received") or (kind == "operation" and data.get("kind") ==
                                                                   "Callback" and data.get("status") != "STARTED"):
            self.waiting.pop(str(data.get("callback_id")), None)
        elif kind == "invocation_ended":
            self.invocations += 1
            self._calls_at_last_end = self.model_calls
        elif kind == "execution_ended":
            self.status = str(data.get("status"))
            self.waiting.clear()
            self.running = None
        if kind not in ("invocation_ended", "execution_ended") and event.durable and self.invocations:
            # a later invocation replays every call answered before the previous one ended
            self.reused_calls = max(self.reused_calls, self._calls_at_last_end)

    def line(self) -> str:
        """One status line: ``3/10 branches · 12 model calls (4 reused) · $0.0123 · waiting: ...``."""
        parts = []
        for batch in self.batches.values():
            label = f"{batch.get('done')}/{batch.get('total')} {batch.get('name') or 'branches'}"
            if batch.get("failed"):
                label += f" ({batch['failed']} failed)"
            parts.append(label)
        calls = f"{self.model_calls} model call{'s' if self.model_calls != 1 else ''}"
        if self.reused_calls:
            calls += f" ({self.reused_calls} reused)"
        parts.append(calls)
        parts.append(f"${self.cost_usd:.4f}")
        if self.waiting:
            parts.append("waiting for a person: " + "; ".join(sorted(set(self.waiting.values())))[:120])
        elif self.running:
            parts.append(self.running)
        return " · ".join(parts)


__all__ = ["AgentEventStream", "EventReader", "Progress", "follow", "read_history"]
