"""ctx.wait_for_condition: poll a check, checkpointing its state each time, suspended between polls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..config import Duration, WaitForConditionConfig
from ..errors import SuspendExecution, UsageError, WaitForConditionError
from ..flow import Flow
from ..journal import check_identity
from ..model import OperationAction, OperationStatus, OperationType, OperationUpdate, StepOptions
from ..serdes import DEFAULT_SERDES, deserialize, serialize
from ._common import CURRENT_STEP, StepContext, error_dict, error_object

if TYPE_CHECKING:
    from ..context import ContextBase


@dataclass(frozen=True)
class WaitDecision:
    """What a wait strategy answers after each check."""

    should_continue: bool
    delay: Duration = Duration(0)

    @classmethod
    def continue_after(cls, delay: Duration | float) -> WaitDecision:
        return cls(True, Duration.of(delay))

    @classmethod
    def stop(cls) -> WaitDecision:
        return cls(False)


WaitStrategy = Callable[[Any, int], WaitDecision]


class ConditionNotMetError(WaitForConditionError):
    """The strategy ran out of attempts before the condition was met."""


def poll_until(done: Callable[[Any], bool], *, delay: Duration | float = 5, max_attempts: int = 60,
               backoff_rate: float = 1.0, max_delay: Duration | float = 300) -> WaitStrategy:
    """A strategy: stop when ``done(state)``; otherwise wait (growing by ``backoff_rate``) and poll
    again, failing with ConditionNotMetError after ``max_attempts`` checks."""
    first = Duration.of(delay).seconds
    cap = Duration.of(max_delay).seconds

    def strategy(state: Any, attempt: int) -> WaitDecision:
        if done(state):
            return WaitDecision.stop()
        if attempt >= max_attempts:
            raise ConditionNotMetError(f"condition not met after {attempt} attempts",
                                       error_type="ConditionNotMetError")
        return WaitDecision.continue_after(min(cap, max(1, round(first * backoff_rate ** (attempt - 1)))))

    return strategy


_DEFAULT_STRATEGY = poll_until(bool)


def wait_for_condition(ctx: ContextBase, check: Callable[[Any, StepContext], Any], *, name: str | None,
                       config: WaitForConditionConfig | None) -> Flow[Any]:
    """One poll per invocation; ``check`` may be a plain or (in an async handler) an async function."""
    config = config or WaitForConditionConfig()
    strategy = config.wait_strategy or _DEFAULT_STRATEGY
    serdes = config.serdes or DEFAULT_SERDES
    op_id, position = ctx._next_operation(name)
    state = ctx.state
    op = state.get(op_id)
    base: dict[str, Any] = dict(Id=op_id, ParentId=ctx.parent_id, Name=name, Type=OperationType.STEP,
                                SubType="WaitForCondition")
    current = config.initial_state
    attempt = 1
    if op is not None:
        check_identity(op, position=position, type_=OperationType.STEP, sub_type="WaitForCondition", name=name,
                       parent_id=ctx.parent_id)
        details = op.StepDetails
        if op.Status == OperationStatus.SUCCEEDED:
            return deserialize(serdes, details.Result if details else None)
        if op.Status == OperationStatus.FAILED:
            raise WaitForConditionError.from_error_object(error_dict(details.Error if details else None))
        if op.Status == OperationStatus.PENDING:
            raise SuspendExecution(f"wait_for_condition {name or op_id} polls again later",
                                   wake_at=details.NextAttemptTimestamp if details else None)
        if details is not None and details.Result is not None:
            current = deserialize(serdes, details.Result)
        attempt = (details.Attempt if details else 0) + 1
    if op is None or op.Status == OperationStatus.READY:
        state.enqueue(OperationUpdate(**base, Action=OperationAction.START))
    step_ctx = StepContext(attempt=attempt, operation_id=op_id, name=name,
                           logger=ctx.logger)
    if state.hooks is not None:  # each poll is one attempt of the STEP operation
        state.hooks.attempt_start(op_id, name, attempt)
    state.guard_read_only(what=f"poll wait_for_condition {name or op_id!r} again")
    token = CURRENT_STEP.set(step_ctx)
    try:
        new_state = yield check(current, step_ctx)
        payload = serialize(serdes, new_state)
        new_state = deserialize(serdes, payload)
        decision = strategy(new_state, attempt)
        if not isinstance(decision, WaitDecision):
            raise UsageError(f"a wait strategy must return a WaitDecision, got {decision!r}")
    except SuspendExecution:
        raise
    except Exception as exc:
        error = error_object(exc)
        if state.hooks is not None:
            state.hooks.attempt_end(op_id, name, attempt, "FAILED")
        state.checkpoint(OperationUpdate(**base, Action=OperationAction.FAIL, Error=error))
        raise WaitForConditionError.from_error_object(error.to_wire()) from exc
    finally:
        CURRENT_STEP.reset(token)
    if state.hooks is not None:
        state.hooks.attempt_end(op_id, name, attempt, "SUCCEEDED")
    if not decision.should_continue:
        state.checkpoint(OperationUpdate(**base, Action=OperationAction.SUCCEED, Payload=payload))
        return new_state
    delay = max(1, decision.delay.seconds)
    state.checkpoint(OperationUpdate(**base, Action=OperationAction.RETRY, Payload=payload,
                                     StepOptions=StepOptions(NextAttemptDelaySeconds=delay)))
    raise SuspendExecution(f"wait_for_condition {name or op_id} polls again in {delay} s",
                           wake_at=state.now() + delay)
