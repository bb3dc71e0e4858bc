"""Conformance handlers: the step suite (1-x)."""

from __future__ import annotations

import json
from typing import Any

from tenacity import retry_if_not_exception_type

from duragent.durable import DurableContext, RetryPolicy, StepConfig, StepError, StepSemantics, step_context

from ..driver import crash_once, requirement

NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())


class TransientError(Exception):
    """A failure worth retrying (1-15, 1-16)."""


class UppercaseSerdes:
    """JSON, with every string value uppercased on serialization (1-6)."""

    def serialize(self, value: Any) -> str | None:
        return json.dumps(_upper(value))

    def deserialize(self, data: str | None) -> Any:
        return None if data is None else json.loads(data)


def _upper(value: Any) -> Any:
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, list):
        return [_upper(v) for v in value]
    if isinstance(value, dict):
        return {k: _upper(v) for k, v in value.items()}
    return value


def _fixed_delay(max_attempts: int, seconds: float = 1) -> RetryPolicy:
    """Retry every ``seconds`` (no backoff, no jitter), ``max_attempts`` attempts in all."""
    return RetryPolicy.exponential(max_attempts=max_attempts, initial_delay=seconds, backoff_rate=1, jitter=False)


@requirement("1-1")
def step_basic(event: str, ctx: DurableContext) -> str:
    return ctx.step(lambda: f"Hello, {event}!")


@requirement("1-2")
def step_named(event: str, ctx: DurableContext) -> str:
    """One step with an explicit name."""
    return ctx.step(lambda: f"Hello, {event}!", name="custom_step_name")


@requirement("1-3")
def step_sequential(event: Any, ctx: DurableContext) -> str:
    """The second step consumes the first one's result."""

    def step_one() -> str:
        return "first"

    def step_two(previous: str) -> str:
        return f"{previous}_second"

    first = ctx.step(step_one)
    return ctx.step(step_two, first)


@requirement("1-4")
def step_complex_object(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    """A step returning a nested object with arrays and mixed types."""

    def build_response(data: dict[str, Any]) -> dict[str, Any]:
        return {"user": {"name": data["name"], "tags": list(data["tags"])}, "count": len(data["tags"])}

    return ctx.step(build_response, event)


@requirement("1-5")
def step_null(event: Any, ctx: DurableContext) -> None:
    """A step returning None."""

    def do_nothing() -> None:
        return None

    return ctx.step(do_nothing)


@requirement("1-6")
def step_custom_serdes(event: str, ctx: DurableContext) -> str:
    """The step's serdes uppercases strings on the way into the checkpoint."""

    def return_input() -> str:
        return event

    return ctx.step(return_input, config=StepConfig(serdes=UppercaseSerdes()))


@requirement("1-7")
def step_logger(event: str, ctx: DurableContext) -> str:
    """The step logs through its step-context logger."""

    def greet() -> str:
        logger = step_context().logger
        logger.info("Greeting step started for: %s", event)
        greeting = f"Hello, {event}!"
        logger.info("Greeting step completed with: %s", greeting)
        return greeting

    return ctx.step(greet)


@requirement("1-8")
def step_then_wait(event: Any, ctx: DurableContext) -> str:
    """A step, then a 2 s wait; the replay skips the step."""

    def compute() -> str:
        return "computed"

    result = ctx.step(compute)
    ctx.wait(2)
    return result


@requirement("1-9")
def step_replay_cached(event: Any, ctx: DurableContext) -> str:
    """The replay after the wait returns the checkpointed result without running the step."""

    def produce() -> str:
        step_context().logger.info("step executed")
        return "cached_value"

    result = ctx.step(produce)
    ctx.wait(1)
    return result


@requirement("1-10")
def step_replay_rethrows(event: Any, ctx: DurableContext) -> str:
    """A permanently failing step is caught; the replay re-raises the cached error."""

    def fail() -> str:
        step_context().logger.info("step executed")
        raise RuntimeError("permanent failure")

    try:
        ctx.step(fail, config=NO_RETRY)
    except StepError as exc:
        caught = f"{exc.error_type}: {exc.message}"
    ctx.wait(1)
    return caught


@requirement("1-11")
def step_retry_then_succeed(event: Any, ctx: DurableContext) -> str:
    """Fails on attempt 1, succeeds on attempt 2."""

    def unreliable() -> str:
        if step_context().attempt == 1:
            raise RuntimeError("transient failure on attempt 1")
        return "Operation succeeded"

    return ctx.step(unreliable, config=StepConfig(retry=_fixed_delay(3)))


@requirement("1-12")
def step_retry_exhausted(event: Any, ctx: DurableContext) -> str:
    """Always fails; 4 attempts, 1 s apart, then the execution fails."""

    def always_fail() -> str:
        raise RuntimeError(f"failure on attempt {step_context().attempt}")

    return ctx.step(always_fail, config=StepConfig(retry=_fixed_delay(4)))


@requirement("1-13")
def step_default_retry(event: Any, ctx: DurableContext) -> str:
    """Fails twice, succeeds on attempt 3, under the default retry policy."""

    def unreliable() -> str:
        attempt = step_context().attempt
        if attempt < 3:
            raise RuntimeError(f"failure on attempt {attempt}")
        return f"succeeded on attempt {attempt}"

    return ctx.step(unreliable)


@requirement("1-14")
def step_custom_backoff(event: Any, ctx: DurableContext) -> str:
    """Fails twice; 2 s initial delay, x3 backoff, no jitter: delays 2 then 6."""

    def unreliable() -> str:
        attempt = step_context().attempt
        if attempt < 3:
            raise RuntimeError(f"failure on attempt {attempt}")
        return f"succeeded on attempt {attempt}"

    policy = RetryPolicy.exponential(max_attempts=5, initial_delay=2, backoff_rate=3, jitter=False)
    return ctx.step(unreliable, config=StepConfig(retry=policy))


@requirement("1-15")
def step_retry_specific_error(event: Any, ctx: DurableContext) -> str:
    """Only TransientError is retried; the first attempt raises one."""

    def flaky() -> str:
        if step_context().attempt == 1:
            raise TransientError("temporary outage")
        return "recovered"

    policy = RetryPolicy.exponential(max_attempts=3, initial_delay=1, backoff_rate=1, jitter=False,
                                     retry_on=TransientError)
    return ctx.step(flaky, config=StepConfig(retry=policy))


@requirement("1-16")
def step_no_retry_specific_error(event: Any, ctx: DurableContext) -> str:
    """The policy retries everything except TransientError, which the step raises."""

    def flaky() -> str:
        raise TransientError("not retried")

    policy = RetryPolicy(retry=retry_if_not_exception_type(TransientError))
    return ctx.step(flaky, config=StepConfig(retry=policy))


@requirement("1-17", crashes=True)
def step_at_most_once_crash(event: str, ctx: DurableContext) -> str:
    """An at-most-once step crashes its process; with no retry the interrupted attempt fails."""

    def at_most_once_flaky_step() -> str:
        step_context().logger.info("executing with input %s", event)
        crash_once("1-17")
        return "unreachable on the first attempt"

    return ctx.step(at_most_once_flaky_step, name="at_most_once_flaky_step",
                    config=StepConfig(retry=RetryPolicy.no_retry(),
                                      semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY))


@requirement("1-18", crashes=True)
def step_at_most_once_crash_retry(event: str, ctx: DurableContext) -> str:
    """An at-most-once step crashes on attempt 1; the retry (attempt 2) succeeds."""

    def at_most_once_step() -> str:
        step_context().logger.info("executing with input %s", event)
        crash_once("1-18")
        return "succeeded on second attempt"

    return ctx.step(at_most_once_step,
                    config=StepConfig(retry=_fixed_delay(3),
                                      semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY))


@requirement("1-19")
def step_fails_permanently(event: Any, ctx: DurableContext) -> str:
    """A step that always raises, with no retries: the execution fails."""

    def failing() -> str:
        raise RuntimeError("this step always fails")

    return ctx.step(failing, config=NO_RETRY)


@requirement("1-20")
def step_error_caught(event: Any, ctx: DurableContext) -> str:
    """A failed step is caught; a fallback step runs instead."""

    def failing() -> str:
        raise RuntimeError("primary failed")

    def fallback() -> str:
        return "fallback_result"

    try:
        return ctx.step(failing, config=NO_RETRY)
    except StepError:
        return ctx.step(fallback)

