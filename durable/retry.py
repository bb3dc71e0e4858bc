"""Durable retries. Timing comes from tenacity's stop/wait/retry objects; the decision is
checkpointed as a RETRY and the invocation suspends for the delay, so no process sleeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import tenacity
from tenacity import stop_after_attempt, wait_exponential, wait_random_exponential
from tenacity.retry import retry_base, retry_if_exception, retry_if_exception_type
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .errors import UsageError


def _not_usage_error(error: BaseException) -> bool:
    """Misuse (a durable call inside a step, an unserializable value) never heals by retrying."""
    return not isinstance(error, UsageError)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry a failed step.

    ``stop``, ``wait`` and ``retry`` are tenacity objects (``stop_after_attempt(4)``,
    ``wait_exponential(multiplier=2)``, ``retry_if_exception_type(TimeoutError)``), so any
    combination tenacity can express works here. Delays are rounded to whole seconds (at least 1),
    the protocol's unit.
    """

    stop: stop_base = field(default_factory=lambda: stop_after_attempt(6))
    wait: wait_base = field(default_factory=lambda: wait_random_exponential(multiplier=5, max=60))
    retry: retry_base = field(default_factory=lambda: retry_if_exception(_not_usage_error))

    @classmethod
    def default(cls) -> RetryPolicy:
        """6 attempts, 5 s first delay doubling to at most 60 s, full jitter."""
        return cls()

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        """Fail on the first error."""
        return cls(stop=stop_after_attempt(1))

    @classmethod
    def exponential(cls, *, max_attempts: int = 6, initial_delay: float = 5, max_delay: float = 60,
                    backoff_rate: float = 2, jitter: bool = True,
                    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception
                    ) -> RetryPolicy:
        """The AWS-style knobs, mapped onto tenacity objects."""
        wait: wait_base
        if jitter:
            wait = wait_random_exponential(multiplier=initial_delay, max=max_delay, exp_base=backoff_rate)
        else:
            wait = wait_exponential(multiplier=initial_delay, max=max_delay, exp_base=backoff_rate)
        return cls(stop=stop_after_attempt(max_attempts), wait=wait, retry=retry_if_exception_type(retry_on))

    def next_delay(self, error: BaseException, attempt: int, elapsed: float = 0.0) -> int | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        state = _call_state(error, attempt, elapsed)
        if not self.retry(state) or self.stop(state):
            return None
        return max(1, int(round(float(self.wait(state)))))


def _call_state(error: BaseException, attempt: int, elapsed: float) -> tenacity.RetryCallState:
    """A tenacity call state for one finished attempt, so tenacity's objects can judge it."""
    state = tenacity.RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    outcome: Any = tenacity.Future(attempt)
    outcome.set_exception(error)
    state.outcome = outcome
    state.outcome_timestamp = state.start_time + max(0.0, elapsed)
    return state
