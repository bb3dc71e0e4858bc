"""Conformance handlers: the wait_for_callback suite (7-x), each written from its requirement's prose."""

from __future__ import annotations

from typing import Any

from duragent.durable import (
    CallbackConfig,
    CallbackError,
    CallbackTimeoutError,
    DurableContext,
    Duration,
    JsonSerdes,
    RetryPolicy,
)

from ..driver import requirement


def register_callback(callback_id: str) -> None:
    """A submitter that hands the id over and does nothing durable."""


@requirement("7-1", "7-4", "7-15")
def wfc_named_from_input(event: str, ctx: DurableContext) -> Any:
    """One wait_for_callback named after the input; its answer (or failure) is the outcome."""
    return ctx.wait_for_callback(register_callback, name=event)


@requirement("7-2")
def wfc_static_name(event: Any, ctx: DurableContext) -> Any:
    """One wait_for_callback named "approval"."""
    return ctx.wait_for_callback(register_callback, name="approval")


@requirement("7-3")
def wfc_anonymous(event: Any, ctx: DurableContext) -> Any:
    """Only an inline submitter, no name."""
    return ctx.wait_for_callback(lambda callback_id: None)


@requirement("7-5")
def wfc_timeout(event: str, ctx: DurableContext) -> Any:
    """A 3 s timeout nobody beats; the error is not caught."""
    return ctx.wait_for_callback(register_callback, name=event, config=CallbackConfig(timeout=Duration(3)))


@requirement("7-6")
def wfc_failure_caught(event: str, ctx: DurableContext) -> Any:
    """The reported failure is caught and replaced by "recovered"."""
    try:
        return ctx.wait_for_callback(register_callback, name=event)
    except CallbackError:
        return "recovered"


def failing_submitter(callback_id: str) -> None:
    """A submitter that cannot reach the outside world."""
    raise RuntimeError(f"cannot submit callback {callback_id[:12]}…")


@requirement("7-7")
def wfc_submitter_exhausted(event: str, ctx: DurableContext) -> Any:
    """The submitter always throws; 2 attempts 1 s apart, then the operation fails."""
    retry = RetryPolicy.exponential(max_attempts=2, initial_delay=1, backoff_rate=1, jitter=False)
    return ctx.wait_for_callback(failing_submitter, name=event, config=CallbackConfig(retry=retry))


@requirement("7-8")
def wfc_in_child(event: str, ctx: DurableContext) -> Any:
    """wait_for_callback inside a child context named "wrapper"."""
    return ctx.run_in_child_context(lambda child: child.wait_for_callback(register_callback, name=event),
                                    name="wrapper")


@requirement("7-9")
def wfc_sequential(event: Any, ctx: DurableContext) -> Any:
    """Two wait_for_callbacks, "first" then "second"; return the second answer."""
    ctx.wait_for_callback(register_callback, name="first")
    return ctx.wait_for_callback(register_callback, name="second")


@requirement("7-10")
def wfc_after_wait_and_step(event: str, ctx: DurableContext) -> Any:
    """A 1 s wait, a top-level step with fixed data, then wait_for_callback."""
    ctx.wait(Duration(1))
    ctx.step(lambda: {"prepared": True})
    return ctx.wait_for_callback(register_callback, name=event)


@requirement("7-11")
def wfc_json_answer(event: str, ctx: DurableContext) -> Any:
    """The answer is decoded as a JSON object; return its "status"."""
    answer = ctx.wait_for_callback(register_callback, name=event, config=CallbackConfig(serdes=JsonSerdes()))
    return answer["status"]


@requirement("7-12")
def wfc_heartbeat_timeout(event: str, ctx: DurableContext) -> Any:
    """A 5 s heartbeat timeout and no heartbeat."""
    return ctx.wait_for_callback(register_callback, name=event,
                                 config=CallbackConfig(heartbeat_timeout=Duration(5)))


@requirement("7-13")
def wfc_heartbeat_then_success(event: str, ctx: DurableContext) -> Any:
    """A 10 s heartbeat timeout kept alive by a heartbeat, then answered."""
    return ctx.wait_for_callback(register_callback, name=event,
                                 config=CallbackConfig(heartbeat_timeout=Duration(10)))


@requirement("7-14")
def wfc_timeout_caught(event: str, ctx: DurableContext) -> Any:
    """A 3 s timeout, caught and replaced by "timed-out-handled"."""
    try:
        return ctx.wait_for_callback(register_callback, name=event, config=CallbackConfig(timeout=Duration(3)))
    except CallbackTimeoutError:
        return "timed-out-handled"
