"""Conformance handlers: the invoke suite (5-x).

The targets are two more durable functions registered in the same runtime (driver.EXTRA_FUNCTIONS):
an echo function that returns its input, and one that always fails. A chained invoke runs each as
an execution of its own and completes the caller's ChainedInvoke operation with its outcome.
"""

from __future__ import annotations

import json
from typing import Any

from duragent.durable import DurableContext, InvokeConfig, InvokeError

from ..driver import EXTRA_FUNCTIONS, requirement

ECHO = "conformance-invoke-echo"
FAIL = "conformance-invoke-fail"


def echo_target(event: Any, ctx: DurableContext) -> Any:
    """Returns whatever it receives."""
    return event


class TargetFailure(Exception):
    """What the failing target raises."""


def failing_target(event: Any, ctx: DurableContext) -> Any:
    raise TargetFailure("target function failed intentionally")


EXTRA_FUNCTIONS[ECHO] = echo_target
EXTRA_FUNCTIONS[FAIL] = failing_target


class UppercasePayloadSerdes:
    """Outgoing payload: JSON with every string uppercased (5-15)."""

    def serialize(self, value: Any) -> str | None:
        return json.dumps(_upper(value))

    def deserialize(self, data: str | None) -> Any:
        return None if data is None else json.loads(data)


class UppercaseRawSerdes:
    """Incoming result: the raw payload text, uppercased (5-16: '"hello"' -> '"HELLO"')."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else str(value)

    def deserialize(self, data: str | None) -> Any:
        return None if data is None else data.upper()


def _upper(value: Any) -> Any:
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, list):
        return [_upper(v) for v in value]
    if isinstance(value, dict):
        return {k: _upper(v) for k, v in value.items()}
    return value


@requirement("5-1")
def invoke_basic(event: Any, ctx: DurableContext) -> Any:
    """Invoke the echo target with the input; return its result."""
    return ctx.invoke(ECHO, event)


@requirement("5-2")
def invoke_named(event: dict[str, Any], ctx: DurableContext) -> Any:
    """The invoke is named from the input."""
    return ctx.invoke(ECHO, event["payload"], name=event["name"])


@requirement("5-3")
def invoke_complex(event: dict[str, Any], ctx: DurableContext) -> Any:
    """A nested object goes out and comes back unchanged."""
    return ctx.invoke(ECHO, event)


@requirement("5-4")
def invoke_null(event: Any, ctx: DurableContext) -> Any:
    """A null payload; the echo returns null."""
    return ctx.invoke(ECHO, None)


@requirement("5-5")
def invoke_fails(event: Any, ctx: DurableContext) -> Any:
    """The target fails; the InvokeError fails the execution."""
    return ctx.invoke(FAIL, event)


@requirement("5-6")
def invoke_fails_caught(event: Any, ctx: DurableContext) -> Any:
    """The target fails; the handler catches the InvokeError and falls back."""
    try:
        return ctx.invoke(FAIL, event)
    except InvokeError as exc:
        return {"fallback": True, "error": exc.message}


@requirement("5-7")
def invoke_large_payload(event: Any, ctx: DurableContext) -> Any:
    """A payload near the 256 KB async Lambda invoke limit; the target reports its size."""
    payload = {"data": "x" * (250 * 1024)}
    result = ctx.invoke(ECHO, payload)
    return {"size": len(result["data"])}


@requirement("5-8")
def invoke_tenant(event: dict[str, Any], ctx: DurableContext) -> Any:
    """The tenant id goes with the invoke."""
    return ctx.invoke(ECHO, event["payload"], config=InvokeConfig(tenant_id=event["tenantId"]))


@requirement("5-9")
def invoke_then_wait(event: Any, ctx: DurableContext) -> Any:
    """Invoke, then wait 1 s: the replay returns the cached result without invoking again."""
    result = ctx.invoke(ECHO, {"value": "cached"})
    ctx.wait(1)
    return result


@requirement("5-10")
def invoke_failed_then_wait(event: Any, ctx: DurableContext) -> Any:
    """A failed invoke caught, then a wait; the replay re-raises the cached error."""
    try:
        ctx.invoke(FAIL, event)
        outcome = "unexpected success"
    except InvokeError as exc:
        outcome = f"caught: {exc.message}"
    ctx.wait(1)
    return outcome


@requirement("5-11")
def step_then_invoke(event: Any, ctx: DurableContext) -> Any:
    """A step's result is the invoke payload."""

    def prepare() -> dict[str, Any]:
        return {"prepared": True}

    prepared = ctx.step(prepare)
    return ctx.invoke(ECHO, prepared)


@requirement("5-12")
def invoke_then_step(event: Any, ctx: DurableContext) -> Any:
    """The invoke result feeds a step."""
    result = ctx.invoke(ECHO, {"value": 21})

    def process() -> dict[str, Any]:
        return {"processed": result["value"] * 2}

    return ctx.step(process)


@requirement("5-13")
def invoke_in_child(event: Any, ctx: DurableContext) -> Any:
    """The invoke runs inside a child context and is its result."""
    return ctx.run_in_child_context(lambda child: child.invoke(ECHO, {"from": "child"}), name="invoke-child")


@requirement("5-14")
def invoke_sequential(event: Any, ctx: DurableContext) -> Any:
    """Two invokes in sequence, each suspending the caller."""
    first = ctx.invoke(ECHO, "first")
    second = ctx.invoke(ECHO, "second")
    return [first, second]


@requirement("5-15")
def invoke_payload_serdes(event: dict[str, Any], ctx: DurableContext) -> Any:
    """The outgoing payload goes through a custom serializer (uppercased)."""
    return ctx.invoke(ECHO, event, config=InvokeConfig(payload_serdes=UppercasePayloadSerdes()))


@requirement("5-16")
def invoke_result_serdes(event: str, ctx: DurableContext) -> Any:
    """The returned result goes through a custom deserializer (uppercased raw text)."""
    return ctx.invoke(ECHO, event, config=InvokeConfig(result_serdes=UppercaseRawSerdes()))
