"""Configuration objects: one frozen dataclass per operation, validated on construction.

``config=None`` always means "the defaults". Fields marked *in-flight sensitive* change what is
written to the journal: changing them for executions already suspended is a non-deterministic edit.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .retry import RetryPolicy
    from .serdes import Serdes


@dataclass(frozen=True, order=True)
class Duration:
    """A span of time in whole seconds, the unit the protocol speaks."""

    seconds: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.seconds, int) or isinstance(self.seconds, bool):
            raise UsageError(f"Duration takes whole seconds (int), got {self.seconds!r}; "
                             "use Duration.from_seconds(...) to round a float")
        if self.seconds < 0:
            raise UsageError(f"Duration must not be negative, got {self.seconds} s")

    @classmethod
    def from_seconds(cls, seconds: float) -> Duration:
        return cls(int(round(seconds)))

    @classmethod
    def from_minutes(cls, minutes: float) -> Duration:
        return cls.from_seconds(minutes * 60)

    @classmethod
    def from_hours(cls, hours: float) -> Duration:
        return cls.from_seconds(hours * 3600)

    @classmethod
    def from_days(cls, days: float) -> Duration:
        return cls.from_seconds(days * 86400)

    @classmethod
    def of(cls, value: Duration | _dt.timedelta | float | int) -> Duration:
        """Accept what users naturally pass: a Duration, a timedelta or seconds."""
        if isinstance(value, Duration):
            return value
        if isinstance(value, _dt.timedelta):
            return cls.from_seconds(value.total_seconds())
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls.from_seconds(value)
        raise UsageError(f"expected a Duration, timedelta or number of seconds, got {value!r}")

    def to_seconds(self) -> int:
        return self.seconds


class StepSemantics(StrEnum):
    AT_LEAST_ONCE_PER_RETRY = "AT_LEAST_ONCE_PER_RETRY"
    """The default: an attempt interrupted by a crash runs again. START rides with the outcome."""
    AT_MOST_ONCE_PER_RETRY = "AT_MOST_ONCE_PER_RETRY"
    """START is persisted before the body runs; an interrupted attempt is never re-run, it counts
    as failed (StepInterruptedError) and goes to the retry policy. For side effects."""


@dataclass(frozen=True)
class StepConfig:
    retry: RetryPolicy | None = None
    """None = the default policy (6 attempts, 5 s doubling to 60 s, full jitter)."""
    semantics: StepSemantics = StepSemantics.AT_LEAST_ONCE_PER_RETRY
    serdes: Serdes[Any] | None = None
    """How the result is checkpointed. None = JSON, typed by the function's return annotation."""
    sub_type: str | None = None
    """In-flight sensitive: the SubType written to history (default ``Step``)."""


@dataclass(frozen=True)
class CallbackConfig:
    timeout: Duration | None = None
    """Fail with CallbackTimeoutError if no answer by then. None = wait forever."""
    heartbeat_timeout: Duration | None = None
    """Fail if no heartbeat (or answer) arrives within this span of the last one."""
    serdes: Serdes[Any] | None = None
    """How the answer is decoded. None = the answer is JSON text and is decoded."""
    retry: RetryPolicy | None = None
    """wait_for_callback only: the retry policy of the submitter step."""

    def __post_init__(self) -> None:
        for name in ("timeout", "heartbeat_timeout"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Duration):
                object.__setattr__(self, name, Duration.of(value))


@dataclass(frozen=True)
class ChildConfig:
    serdes: Serdes[Any] | None = None
    sub_type: str | None = None
    """In-flight sensitive: the SubType written to history (default ``RunInChildContext``)."""
    summary: Any = None
    """For a result over 256 KiB: ``summary(result) -> str`` checkpointed instead of the result."""
    replay_children: bool = False
    """Force replay-children mode (the body re-runs on replay, its children replay from history)."""


class NestingType(StrEnum):
    NESTED = "NESTED"
    FLAT = "FLAT"


@dataclass(frozen=True)
class CompletionConfig:
    min_successful: int | None = None
    tolerated_failure_count: int | None = None
    tolerated_failure_percentage: float | None = None

    @classmethod
    def all_successful(cls) -> CompletionConfig:
        return cls(tolerated_failure_count=0)

    @classmethod
    def all_completed(cls) -> CompletionConfig:
        return cls()

    @classmethod
    def first_successful(cls) -> CompletionConfig:
        return cls(min_successful=1)


@dataclass(frozen=True)
class InvokeConfig:
    payload_serdes: Serdes[Any] | None = None
    result_serdes: Serdes[Any] | None = None
    tenant_id: str | None = None


@dataclass(frozen=True)
class LoggerConfig:
    replay_logging: bool = False
    """Also emit log lines while replaying (off: a line is written once per execution)."""



@dataclass(frozen=True)
class ParallelConfig:
    max_concurrency: int | None = None
    """How many branches run at once (threads in this invocation). None = all."""
    completion_config: CompletionConfig | None = None
    """When the batch is done. None = when every branch has finished, whatever the failures."""
    nesting_type: NestingType = NestingType.NESTED
    """FLAT: branches are not checkpointed as contexts of their own (fewer history events)."""
    serdes: Serdes[Any] | None = None
    """How the whole BatchResult is checkpointed. None = a JSON envelope."""
    item_serdes: Serdes[Any] | None = None
    """How each branch result is checkpointed. None = JSON."""


@dataclass(frozen=True)
class MapConfig(ParallelConfig):
    item_namer: Any = None
    """``item_namer(item, index) -> str`` names each iteration (default ``map-item-<index>``)."""


@dataclass(frozen=True)
class WaitForConditionConfig:
    initial_state: Any = None
    wait_strategy: Any = None
    """``strategy(state, attempt) -> WaitDecision``; None = poll every 5 s, up to 60 attempts."""
    serdes: Serdes[Any] | None = None
