"""Durable retries: tenacity computes the delay, the RETRY is checkpointed, and the invocation ends
(PENDING) for the delay instead of sleeping; the next attempt runs in a later invocation."""

from __future__ import annotations

from typing import Any

import pytest
import tenacity

from duragent.durable import (
    DurableContext,
    LocalRuntime,
    RetryPolicy,
    StepConfig,
    StepError,
    VirtualClock,
    step_context,
)


def _delays(failed_events: list[dict[str, Any]]) -> list[int | None]:
    """Retry delays per failed attempt; None for the final failure (recorded as 0, as AWS does)."""
    return [e["StepFailedDetails"]["RetryDetails"].get("NextAttemptDelaySeconds") or None for e in failed_events]


def test_exponential_without_jitter_waits_2_then_4_seconds(rt: LocalRuntime, clock: VirtualClock,
                                                          events: Any) -> None:
    attempts: list[tuple[int, float]] = []

    def flaky() -> None:
        attempt = step_context().attempt
        attempts.append((attempt, clock.now()))
        raise ValueError(f"attempt {attempt} failed")

    policy = RetryPolicy.exponential(max_attempts=3, initial_delay=2, jitter=False)

    def handler(event: Any, ctx: DurableContext) -> None:
        ctx.step(flaky, name="flaky", config=StepConfig(retry=policy))

    eid = rt.start(handler)
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "FAILED"
    assert info.error is not None
    assert (info.error["ErrorType"], info.error["ErrorMessage"]) == ("ValueError", "attempt 3 failed")

    assert [a for a, _ in attempts] == [1, 2, 3]  # the step body was called 3 times
    times = [t for _, t in attempts]
    assert (times[1] - times[0], times[2] - times[1]) == (2, 4)  # virtual time moved by the delays

    failed = events(eid, "StepFailed", "flaky")
    assert [e["StepFailedDetails"]["RetryDetails"] for e in failed] == [
        {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 2},
        {"CurrentAttempt": 2, "NextAttemptDelaySeconds": 4},
        {"CurrentAttempt": 3, "NextAttemptDelaySeconds": 0},  # a final failure: no next attempt
    ]
    assert [e["StepFailedDetails"]["Error"]["Payload"]["ErrorMessage"] for e in failed] == [
        "attempt 1 failed", "attempt 2 failed", "attempt 3 failed"]

    # The invocation ended during each delay: an InvocationCompleted between consecutive attempts.
    kinds = [e["EventType"] for e in rt.history(eid)]
    fails = [i for i, k in enumerate(kinds) if k == "StepFailed"]
    for a, b in zip(fails, fails[1:], strict=False):
        assert "InvocationCompleted" in kinds[a:b]
    assert info.invocations == 3


def test_the_default_policy_makes_6_attempts_with_jittered_doubling_delays(rt: LocalRuntime, clock: VirtualClock,
                                                                          events: Any) -> None:
    calls = []

    def down() -> None:
        calls.append(clock.now())
        raise ConnectionError("service down")

    def handler(event: Any, ctx: DurableContext) -> None:
        ctx.step(down, name="down")

    eid = rt.start(handler)
    start = clock.now()
    rt.run_until_idle()
    assert rt.get(eid).status == "FAILED"
    assert len(calls) == 6
    delays = _delays(events(eid, "StepFailed", "down"))
    assert delays[-1] is None and len(delays) == 6
    caps = [5, 10, 20, 40, 60]
    for delay, cap in zip(delays, caps, strict=False):
        assert delay is not None and 1 <= delay <= cap, (delays, caps)
    assert [b - a for a, b in zip(calls, calls[1:], strict=False)] == delays[:-1]
    assert clock.now() - start == sum(d for d in delays if d is not None)


def test_default_policy_delay_ranges_and_jitter() -> None:
    policy = RetryPolicy.default()
    error = ConnectionError("down")
    for attempt, cap in zip(range(1, 6), [5, 10, 20, 40, 60], strict=True):
        samples = [policy.next_delay(error, attempt) for _ in range(300)]
        assert all(s is not None and 1 <= s <= cap for s in samples), (attempt, samples)
        assert len(set(samples)) > 1, "full jitter should spread the delays"
    assert policy.next_delay(error, 6) is None
    assert max(policy.next_delay(error, 5) or 0 for _ in range(300)) > 40  # the 60 s cap is reachable


def test_retry_predicate_decides_which_errors_retry(rt: LocalRuntime, events: Any) -> None:
    policy = RetryPolicy(retry=tenacity.retry_if_exception_type(TimeoutError))
    calls: list[str] = []

    def bad_input() -> None:
        calls.append("bad")
        raise ValueError("not retryable")

    def slow_then_ok() -> str:
        calls.append("slow")
        if step_context().attempt == 1:
            raise TimeoutError("upstream slow")
        return "ok"

    def handler(event: Any, ctx: DurableContext) -> Any:
        ok = ctx.step(slow_then_ok, name="slow", config=StepConfig(retry=policy))
        try:
            ctx.step(bad_input, name="bad", config=StepConfig(retry=policy))
        except StepError as exc:
            return [ok, exc.error_type]
        return "unreachable"

    eid = rt.start(handler)
    rt.run_until_idle()
    assert rt.get(eid).result == ["ok", "ValueError"]
    assert calls == ["slow", "slow", "bad"]
    assert _delays(events(eid, "StepFailed", "bad")) == [None]
    slow_failed = events(eid, "StepFailed", "slow")
    assert len(slow_failed) == 1 and _delays(slow_failed)[0] is not None


def test_no_retry_fails_on_the_first_error(rt: LocalRuntime, events: Any) -> None:
    calls = []

    def once() -> None:
        calls.append(1)
        raise RuntimeError("nope")

    def handler(event: Any, ctx: DurableContext) -> None:
        ctx.step(once, name="once", config=StepConfig(retry=RetryPolicy.no_retry()))

    eid = rt.start(handler)
    rt.run_until_idle()
    assert rt.get(eid).status == "FAILED"
    assert calls == [1]
    assert rt.get(eid).invocations == 1
    [failed] = events(eid, "StepFailed", "once")
    assert failed["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 0}


def test_a_retried_step_that_succeeds_returns_its_value(rt: LocalRuntime, events: Any) -> None:
    def third_time_lucky() -> int:
        attempt = step_context().attempt
        if attempt < 3:
            raise ConnectionError("flaky")
        return attempt * 10

    policy = RetryPolicy.exponential(max_attempts=5, initial_delay=1, jitter=False)

    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.step(third_time_lucky, config=StepConfig(retry=policy)) + 1

    eid = rt.start(handler)
    rt.run_until_idle()
    assert rt.get(eid).result == 31
    [ok] = events(eid, "StepSucceeded", "third_time_lucky")
    assert ok["StepSucceededDetails"]["RetryDetails"]["CurrentAttempt"] == 3


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_stop_after_attempt_bounds_the_calls(rt: LocalRuntime, max_attempts: int) -> None:
    calls = []

    def fail() -> None:
        calls.append(1)
        raise OSError("disk")

    policy = RetryPolicy(stop=tenacity.stop_after_attempt(max_attempts), wait=tenacity.wait_fixed(3))

    def handler(event: Any, ctx: DurableContext) -> None:
        ctx.step(fail, config=StepConfig(retry=policy))

    assert rt.run(handler).status == "FAILED"
    assert len(calls) == max_attempts
