"""Conformance handlers: the child-context suite (3-x)."""

from __future__ import annotations

import time
from typing import Any

from duragent.durable import (
    ChildConfig,
    ChildContextError,
    DurableContext,
    LoggerConfig,
    RetryPolicy,
    StepConfig,
    step_context,
)

from ..driver import crash_once, requirement

NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())
RETRY_1S = StepConfig(retry=RetryPolicy.exponential(max_attempts=3, initial_delay=1, backoff_rate=1, jitter=False))


class UppercaseSerdes:
    """Writes the (string) result uppercased, as a raw payload (3-14)."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else str(value).upper()

    def deserialize(self, data: str | None) -> Any:
        return data


@requirement("3-1")
def child_basic(event: str, ctx: DurableContext) -> str:
    """A child context holding one step that returns the input."""
    return ctx.run_in_child_context(lambda child: child.step(lambda: event))


@requirement("3-2")
def child_named(event: dict[str, str], ctx: DurableContext) -> str:
    """A child context named after the input's ``name``; its step returns ``value``."""
    return ctx.run_in_child_context(lambda child: child.step(lambda: event["value"]), name=event["name"])


@requirement("3-3")
def child_two_steps(event: str, ctx: DurableContext) -> str:
    """Two sequential steps in a child; the second echoes the first's result."""

    def body(child: DurableContext) -> str:
        first = child.step(lambda: event)
        return child.step(lambda value: value, first)

    return ctx.run_in_child_context(body)


@requirement("3-4")
def child_step_fails(event: Any, ctx: DurableContext) -> Any:
    """The child's step fails with no retry; nothing catches it."""

    def failing() -> str:
        raise RuntimeError("inner step failed")

    return ctx.run_in_child_context(lambda child: child.step(failing, config=NO_RETRY))


@requirement("3-5")
def child_failure_caught(event: str, ctx: DurableContext) -> str:
    """The child fails; the handler catches ChildContextError and runs a recovery step."""

    def failing() -> str:
        raise RuntimeError("inner step failed")

    try:
        ctx.run_in_child_context(lambda child: child.step(failing, config=NO_RETRY))
    except ChildContextError:
        pass
    return ctx.step(lambda: event)


@requirement("3-6")
def child_nested(event: str, ctx: DurableContext) -> str:
    """An outer child with a step and an inner child (with its own step)."""

    def inner(child: DurableContext) -> str:
        return child.step(lambda: event)

    def outer(child: DurableContext) -> str:
        child.step(lambda: event)
        return child.run_in_child_context(inner)

    return ctx.run_in_child_context(outer)


@requirement("3-7")
def child_step_retry(event: str, ctx: DurableContext) -> str:
    """The child's step fails on attempt 1 and succeeds on attempt 2."""

    def flaky() -> str:
        if step_context().attempt == 1:
            raise RuntimeError("transient failure")
        return event

    return ctx.run_in_child_context(lambda child: child.step(flaky, config=RETRY_1S))


@requirement("3-8")
def child_step_retry_exhausted(event: Any, ctx: DurableContext) -> Any:
    """The child's step always fails; after 2 attempts the child, then the execution, fails."""

    def always_fail() -> str:
        raise RuntimeError(f"failure on attempt {step_context().attempt}")

    policy = RetryPolicy.exponential(max_attempts=2, initial_delay=1, backoff_rate=1, jitter=False)
    return ctx.run_in_child_context(lambda child: child.step(always_fail, config=StepConfig(retry=policy)))


@requirement("3-9")
def child_then_wait(event: str, ctx: DurableContext) -> str:
    """A child, then a wait; the replay returns the child's cached result."""
    result = ctx.run_in_child_context(lambda child: child.step(lambda: event))
    ctx.wait(1)
    return result


@requirement("3-10")
def child_step_and_wait(event: str, ctx: DurableContext) -> str:
    """A step and a wait inside one child."""

    def body(child: DurableContext) -> str:
        child.step(lambda: event)
        child.wait(1)
        return event

    return ctx.run_in_child_context(body)


@requirement("3-11")
def child_large_result(event: str, ctx: DurableContext) -> int:
    """The child builds a result over 256 KiB from a small step: ReplayChildren, and the body runs
    again on replay (its replay-logging logger shows both runs)."""

    def body(child: DurableContext) -> str:
        child.set_logger(LoggerConfig(replay_logging=True))
        child.logger.info("building a large result for %s", event)
        unit = child.step(lambda: event)
        return unit * (300 * 1024 // len(unit) + 1)

    result = ctx.run_in_child_context(body)
    ctx.wait(1)
    return len(result)


@requirement("3-12", crashes=True)
def child_interrupted(event: str, ctx: DurableContext) -> str:
    """The process dies inside the child's (at-least-once) step after its START was flushed; the
    re-run step checkpoints only its success."""

    def crashing() -> str:
        time.sleep(0.3)  # let the queued ContextStarted/StepStarted flush in the background
        crash_once("3-12")
        return event

    return ctx.run_in_child_context(lambda child: child.step(crashing))


@requirement("3-13")
def child_only_wait(event: str, ctx: DurableContext) -> str:
    """A child holding only a wait, then a step outside it."""

    def body(child: DurableContext) -> str:
        child.wait(1)
        return event

    ctx.run_in_child_context(body)
    return ctx.step(lambda: event)


@requirement("3-14")
def child_custom_serdes(event: str, ctx: DurableContext) -> str:
    """The child's serdes writes its result uppercased, as a raw payload."""
    return ctx.run_in_child_context(lambda child: child.step(lambda: event),
                                    config=ChildConfig(serdes=UppercaseSerdes()))


@requirement("3-15")
def child_raises_directly(event: Any, ctx: DurableContext) -> Any:
    """The child body raises without running any operation."""

    def body(child: DurableContext) -> Any:
        raise ValueError("child body failed")

    return ctx.run_in_child_context(body)


@requirement("3-16")
def child_returns_null(event: Any, ctx: DurableContext) -> None:
    """The child body returns None without running any operation."""

    def body(child: DurableContext) -> None:
        return None

    return ctx.run_in_child_context(body)


@requirement("3-17")
def child_logs_only(event: str, ctx: DurableContext) -> str:
    """The child only logs (with replay logging on) and returns the input; a wait follows. The
    completed child must not run again on replay."""

    def body(child: DurableContext) -> str:
        child.set_logger(LoggerConfig(replay_logging=True))
        child.logger.info("child saw %s", event)
        return event

    result = ctx.run_in_child_context(body)
    ctx.wait(1)
    return result


@requirement("3-18")
def child_mixed_nesting(event: str, ctx: DurableContext) -> str:
    """Step + wait inside a child, then step + wait after it: three invocations."""

    def body(child: DurableContext) -> str:
        child.step(lambda: event)
        child.wait(1)
        return event

    ctx.run_in_child_context(body)
    result = ctx.step(lambda: event)
    ctx.wait(1)
    return result
