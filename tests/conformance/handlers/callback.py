"""Conformance handlers: the callback suite (4-x), each written from its requirement's prose."""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from typing import Any

from duragent.durable import CallbackConfig, CallbackError, CallbackTimeoutError, DurableContext, Duration

from ..driver import requirement


@requirement("4-1")
def callback_basic(event: str, ctx: DurableContext) -> Any:
    """Create a callback named after the input and return its answer."""
    return ctx.create_callback(name=event).result()


@requirement("4-2")
def callback_named(event: Any, ctx: DurableContext) -> Any:
    """Create a callback named "approval" and return its answer."""
    return ctx.create_callback(name="approval").result()


@requirement("4-3")
def callback_timeout(event: str, ctx: DurableContext) -> Any:
    """A 5 s callback nobody answers: the timeout fails the execution."""
    return ctx.create_callback(name=event, config=CallbackConfig(timeout=Duration(5))).result()


@requirement("4-4")
def callback_heartbeat_timeout(event: str, ctx: DurableContext) -> Any:
    """A 5 s heartbeat timeout and no heartbeat: the execution fails."""
    return ctx.create_callback(name=event, config=CallbackConfig(heartbeat_timeout=Duration(5))).result()


@requirement("4-5")
def callback_heartbeat_then_success(event: str, ctx: DurableContext) -> Any:
    """A 10 s heartbeat timeout kept alive by a heartbeat, then answered."""
    return ctx.create_callback(name=event, config=CallbackConfig(heartbeat_timeout=Duration(10))).result()


@requirement("4-6")
def callback_failure_uncaught(event: str, ctx: DurableContext) -> Any:
    """The outside world reports failure; nothing catches it."""
    return ctx.create_callback(name=event).result()


@requirement("4-7")
def callback_step_failure(event: str, ctx: DurableContext) -> Any:
    """Create a callback, run a step, then await the (failing) answer."""
    callback = ctx.create_callback(name=event)
    ctx.step(lambda: "step done")
    return callback.result()


@requirement("4-8")
def callback_step_timeout(event: str, ctx: DurableContext) -> Any:
    """Create a 5 s callback, run a step, then await: the timeout fires while suspended."""
    callback = ctx.create_callback(name=event, config=CallbackConfig(timeout=Duration(5)))
    ctx.step(lambda: "step done")
    return callback.result()


@requirement("4-9", "4-10")
def callback_wait_then_await(event: str, ctx: DurableContext) -> Any:
    """Create a callback, wait 5 s (the answer arrives meanwhile), then await it."""
    callback = ctx.create_callback(name=event)
    ctx.wait(Duration(5))
    return callback.result()


@requirement("4-11")
def callback_timeout_during_wait(event: str, ctx: DurableContext) -> Any:
    """A 3 s callback times out during a 6 s wait; awaiting it afterwards fails."""
    callback = ctx.create_callback(name=event, config=CallbackConfig(timeout=Duration(3)))
    ctx.wait(Duration(6))
    return callback.result()


@requirement("4-12")
def callback_success_then_wait(event: str, ctx: DurableContext) -> Any:
    """Await the answer, wait 2 s, return the answer (replayed from history)."""
    result = ctx.create_callback(name=event).result()
    ctx.wait(Duration(2))
    return result


@requirement("4-13")
def callback_failure_caught_then_wait(event: str, ctx: DurableContext) -> str:
    """Catch the reported failure, wait 2 s, return the error message."""
    try:
        ctx.create_callback(name=event).result()
        message = "no error"
    except CallbackError as exc:
        message = exc.message
    ctx.wait(Duration(2))
    return message


@requirement("4-14")
def callback_timeout_caught_then_wait(event: str, ctx: DurableContext) -> str:
    """Catch a 3 s timeout, wait 2 s, return the error message."""
    try:
        ctx.create_callback(name=event, config=CallbackConfig(timeout=Duration(3))).result()
        message = "no timeout"
    except CallbackTimeoutError as exc:
        message = exc.message or str(exc.error_type)
    ctx.wait(Duration(2))
    return message


@dataclass(frozen=True)
class Received:
    """The typed answer of 4-15."""

    id: str
    message: str
    timestamp: _dt.datetime


class ReceivedSerdes:
    """JSON text <-> Received, the ISO timestamp parsed into a datetime."""

    def serialize(self, value: Received) -> str | None:
        return json.dumps({"id": value.id, "message": value.message,
                           "timestamp": value.timestamp.isoformat().replace("+00:00", "Z")})

    def deserialize(self, data: str | None) -> Received:
        raw = json.loads(data or "{}")
        stamp = _dt.datetime.fromisoformat(str(raw["timestamp"]).replace("Z", "+00:00"))
        return Received(id=raw["id"], message=raw["message"], timestamp=stamp)


@requirement("4-15")
def callback_custom_serdes_object(event: str, ctx: DurableContext) -> dict[str, Any]:
    """A custom deserializer turns the JSON answer into an object with a datetime."""
    received: Received = ctx.create_callback(name=event, config=CallbackConfig(serdes=ReceivedSerdes())).result()
    return {"received": {"id": received.id, "message": received.message,
                         "timestamp": int(received.timestamp.timestamp())}}


class NumberSerdes:
    """Callback text <-> a number."""

    def serialize(self, value: float) -> str | None:
        return str(value)

    def deserialize(self, data: str | None) -> float:
        number = float(json.loads(data) if data else 0)
        return int(number) if number.is_integer() else number


@requirement("4-16")
def callback_custom_serdes_number(event: str, ctx: DurableContext) -> dict[str, Any]:
    """A custom deserializer turns the answer into a number; return it and its double."""
    count = ctx.create_callback(name=event, config=CallbackConfig(serdes=NumberSerdes())).result()
    return {"count": count, "doubled": count * 2}


@requirement("4-17")
def callbacks_sequential(event: list[str], ctx: DurableContext) -> list[Any]:
    """Create and await A, then create and await B."""
    first = ctx.create_callback(name=event[0]).result()
    second = ctx.create_callback(name=event[1]).result()
    return [first, second]


@requirement("4-18")
def callbacks_concurrent_in_order(event: list[str], ctx: DurableContext) -> list[Any]:
    """Create A and B, await A, then B."""
    a = ctx.create_callback(name=event[0])
    b = ctx.create_callback(name=event[1])
    first = a.result()
    second = b.result()
    return [first, second]


@requirement("4-19")
def callbacks_concurrent_reverse(event: list[str], ctx: DurableContext) -> list[Any]:
    """Create A and B, await B first, then A."""
    a = ctx.create_callback(name=event[0])
    b = ctx.create_callback(name=event[1])
    second = b.result()
    first = a.result()
    return [first, second]
