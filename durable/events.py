"""Event streams: everything an execution does, as it happens, for whoever follows it.

Two sources, one stream:

- **durable events**, one per history event (execution started, each operation started or
  finished, each invocation ended, the execution ended), each with a ``cursor`` (the history event
  id). They are read from the store, so a follower in another process sees them while a worker runs
  the execution, and one that reconnects with ``after=cursor`` gets each exactly once, crashes of
  the worker or of the follower notwithstanding;
- **live events** (``ctx.live.send``: a model's text deltas, a batch's progress), delivered at most
  once to followers listening at that moment (durable/live.py); their ``cursor`` is None.

``runtime.events(execution_id, after=0)`` returns an ``EventStream``: iterate it (``for``) or
iterate it asynchronously (``async for``). It ends after the execution's end; following costs the
runtime nothing beyond a read of new history rows every ``poll`` seconds at most.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .live import LiveHub, LiveSubscription

DURABLE_TYPES = ("execution_started", "operation", "invocation_ended", "execution_ended")
"""The types of durable events; every other type is a live event."""

_OPERATION_KINDS = ("ChainedInvoke", "Callback", "Context", "Step", "Wait")
_STATUS = {"Started": "STARTED", "Succeeded": "SUCCEEDED", "Failed": "FAILED", "TimedOut": "TIMED_OUT",
           "Stopped": "STOPPED", "Cancelled": "CANCELLED"}


@dataclass(frozen=True)
class ExecutionEvent:
    """One event of an execution's stream."""

    type: str
    """``execution_started``, ``operation``, ``invocation_ended``, ``execution_ended`` (durable), or
    the type a live event was sent with (``text_delta``, ...)."""
    execution_id: str
    cursor: int | None = None
    """The history event id of a durable event (resume after it); None for a live event."""
    time: float | None = None
    data: dict[str, Any] = field(default_factory=dict)
    """What happened: for ``operation``, ``operation_id``, ``name``, ``kind`` (Step, Wait, Callback,
    Context, ChainedInvoke), ``sub_type``, ``parent_id``, ``status`` and ``payload``/``error``."""

    @property
    def durable(self) -> bool:
        return self.cursor is not None

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON form (what ``duragent follow --json`` and the console's event stream send)."""
        return {**self.data, "type": self.type, "execution_id": self.execution_id, "cursor": self.cursor,
                "time": self.time}


def from_history(execution_id: str, event: dict[str, Any]) -> ExecutionEvent:
    """The durable event for one history event (in the GetDurableExecutionHistory shape)."""
    kind = str(event.get("EventType", ""))
    details = event.get(f"{kind}Details") or {}
    cursor = int(event.get("EventId", 0))
    when = event.get("EventTimestamp")
    data: dict[str, Any] = {"event_type": kind}
    error = (details.get("Error") or {}).get("Payload") if isinstance(details.get("Error"), dict) else None
    if error:
        data["error"] = error
    if kind == "ExecutionStarted":
        data["input"] = _payload(details.get("Input"))
        return ExecutionEvent("execution_started", execution_id, cursor, when, data)
    if kind == "InvocationCompleted":
        data["crashed"] = bool(error)
        return ExecutionEvent("invocation_ended", execution_id, cursor, when, data)
    if kind.startswith("Execution"):
        data["status"] = _STATUS.get(kind[len("Execution"):], kind[len("Execution"):].upper())
        if "Result" in details:
            data["payload"] = _payload(details.get("Result"))
        return ExecutionEvent("execution_ended", execution_id, cursor, when, data)
    op_kind = next((k for k in _OPERATION_KINDS if kind.startswith(k)), "")
    suffix = kind[len(op_kind):]
    data.update(operation_id=event.get("Id"), name=event.get("Name"), kind=op_kind, sub_type=event.get("SubType"),
                parent_id=event.get("ParentId"), status=_STATUS.get(suffix, suffix.upper()))
    if "Result" in details:
        data["payload"] = _payload(details.get("Result"))
    if details.get("CallbackId"):
        data["callback_id"] = details["CallbackId"]
    if "Attempt" in details:
        data["attempt"] = details["Attempt"]
    return ExecutionEvent("operation", execution_id, cursor, when, data)


def _merged(durable: list[ExecutionEvent], live: list[ExecutionEvent]) -> list[ExecutionEvent]:
    """Durable events in order, each live event about an operation just before the durable event
    that ends it, the other live events after them."""
    if not live:
        return durable
    out: list[ExecutionEvent] = []
    pending = list(live)
    for event in durable:
        op_id = event.data.get("operation_id")
        if op_id is not None and event.data.get("status") != "STARTED":
            out.extend(e for e in pending if e.data.get("operation_id") == op_id)
            pending = [e for e in pending if e.data.get("operation_id") != op_id]
        out.append(event)
    return out + pending


def _payload(slot: Any) -> str | None:
    return slot.get("Payload") if isinstance(slot, dict) else None


def decode(payload: str | None) -> Any:
    """A payload as JSON, or the text itself when it is not JSON."""
    if payload is None:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return payload


class HistoryReader(Protocol):
    """What a stream reads from: a LocalRuntime's service."""

    def history_after(self, execution_id: str, after: int, limit: int = 500) -> tuple[list[dict[str, Any]], str]: ...


class EventStream:
    """The events of one execution from ``after`` on; see the module docstring.

    Args:
        reader: where history comes from (``runtime.service``).
        hub: the store's live channel (``runtime.live``); None for durable events only.
        after: the cursor of the last event already seen (0: from the start).
        poll: seconds between reads of new history while nothing else happens (a live event or a
            close wakes the stream at once).
        timeout: raise TimeoutError when no event at all arrived for this many seconds.
    """

    def __init__(self, reader: HistoryReader, execution_id: str, *, hub: LiveHub | None = None, after: int = 0,
                 poll: float = 0.05, timeout: float | None = None) -> None:
        self.execution_id = execution_id
        self.cursor = after
        """The cursor of the last durable event handed out: pass it as ``after`` to resume."""
        self._reader = reader
        self._poll = poll
        self._timeout = timeout
        self._buffer: deque[ExecutionEvent] = deque()
        self._ended = False
        self._closed = False
        self._subscription: LiveSubscription | None = hub.subscribe(execution_id) if hub is not None else None
        self._last_event = time.monotonic()

    # -- one step, shared by both ways of iterating --------------------------------------------------
    def _take(self) -> ExecutionEvent | None | bool:
        """The next event if one is at hand; None when the caller must wait; False at the end."""
        if self._buffer:
            return self._hand_out(self._buffer.popleft())
        if self._closed:
            self.close()
            return False
        # Live events sent before a commit are in the subscription by the time the commit can be
        # read: drain, read, drain again, and put each live event about an operation before the
        # durable event that ends that operation (a model's text before its recorded answer).
        live = self._drain()
        page, status = ([], "ENDED") if self._ended else \
            self._reader.history_after(self.execution_id, self.cursor, 500)
        live += self._drain()
        if page or live:
            self._buffer.extend(_merged([from_history(self.execution_id, e) for e in page], live))
            return self._hand_out(self._buffer.popleft())
        if self._ended:
            self.close()
            return False
        if status != "RUNNING":
            self._ended = True  # everything up to its end was read: stop once the buffer is empty
            return self._take()
        if self._timeout is not None and time.monotonic() - self._last_event > self._timeout:
            self.close()
            raise TimeoutError(f"no event from execution {self.execution_id} for {self._timeout:g} s")
        return None

    def _drain(self) -> list[ExecutionEvent]:
        if self._subscription is None:
            return []
        return [ExecutionEvent(str(e.get("type", "live")), self.execution_id, None, e.get("time"),
                               {k: v for k, v in e.items() if k not in ("type", "time")})
                for e in self._subscription.drain()]

    def _hand_out(self, event: ExecutionEvent) -> ExecutionEvent:
        if event.cursor is not None:
            self.cursor = event.cursor
        self._last_event = time.monotonic()
        return event

    def get(self, timeout: float) -> ExecutionEvent | None:
        """The next event, waiting at most ``timeout`` seconds (None if none came); raises
        StopIteration once the stream has ended. For loops that must do something else meanwhile
        (a server's heartbeat)."""
        deadline = time.monotonic() + timeout
        while True:
            event = self._take()
            if event is False:
                raise StopIteration
            if isinstance(event, ExecutionEvent):
                return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self._subscription is not None:
                self._subscription.wait(min(self._poll, remaining))
            else:
                time.sleep(min(self._poll, remaining))

    # -- iteration -----------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[ExecutionEvent]:
        return self

    def __next__(self) -> ExecutionEvent:
        while True:
            event = self._take()
            if event is False:
                raise StopIteration
            if isinstance(event, ExecutionEvent):
                return event
            if self._subscription is not None:
                self._subscription.wait(self._poll)
            else:
                time.sleep(self._poll)

    def __aiter__(self) -> AsyncIterator[ExecutionEvent]:
        return self

    async def __anext__(self) -> ExecutionEvent:
        while True:
            event = await asyncio.to_thread(self._take)
            if event is False:
                raise StopAsyncIteration
            if isinstance(event, ExecutionEvent):
                return event
            await self._await_wakeup()

    async def _await_wakeup(self) -> None:
        if self._subscription is None:
            await asyncio.sleep(self._poll)
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not woken.done():
                woken.set_result(None)

        fds = self._subscription.filenos()
        for fd in fds:
            loop.add_reader(fd, wake)
        try:
            await asyncio.wait_for(woken, self._poll)
        except TimeoutError:
            pass
        finally:
            for fd in fds:
                loop.remove_reader(fd)

    def close(self) -> None:
        """Stop following (the live subscription is released); iteration ends."""
        self._closed = True
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DURABLE_TYPES", "EventStream", "ExecutionEvent", "HistoryReader", "decode", "from_history"]
