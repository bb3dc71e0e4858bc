"""ctx.step: run a function once, checkpoint its result, retry durably on failure.

Written once as a flow (durable/flow.py): the body's result is yielded, so a synchronous handler
gets its value and an async handler awaits it, through the same journal logic."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import StepConfig, StepSemantics
from ..errors import (
    PayloadTooLargeError,
    SerializationError,
    StepError,
    StepInterruptedError,
    SuspendExecution,
)
from ..flow import Flow
from ..journal import check_identity
from ..model import (
    MAX_ASYNC_PAYLOAD_BYTES,
    ErrorObject,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StepOptions,
)
from ..retry import RetryPolicy
from ..serdes import Serdes, deserialize, load_payload, payload_store_of, serdes_for, serialize
from ._common import (
    CURRENT_STEP,
    INTERRUPTED_KEY,
    StepContext,
    error_dict,
    error_object,
    interrupted_attempts,
    with_interrupted_attempts,
)

if TYPE_CHECKING:
    from ..context import ContextBase

DEFAULT_RETRY = RetryPolicy.default()
DEFAULT_CONFIG = StepConfig()


def run_step(ctx: ContextBase, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             *, name: str | None, config: StepConfig | None) -> Flow[Any]:
    config = config or DEFAULT_CONFIG
    sub_type = config.sub_type or "Step"
    op_id, position = ctx._next_operation(name)
    state = ctx.state
    op = state.get(op_id)
    serdes = serdes_for(fn, config.serdes)
    if op is not None:
        check_identity(op, position=position, type_=OperationType.STEP, sub_type=sub_type, name=name,
                       parent_id=ctx.parent_id)
        status = op.Status
        if status == OperationStatus.SUCCEEDED:
            return deserialize(serdes, load_payload(state.service, op.StepDetails.Result if op.StepDetails else None))
        if status == OperationStatus.FAILED:
            raise StepError.from_error_object(error_dict(op.StepDetails.Error if op.StepDetails else None))
        if status == OperationStatus.PENDING:
            wake = op.StepDetails.NextAttemptTimestamp if op.StepDetails else None
            raise SuspendExecution(f"step {name or op_id} waits for its next attempt", wake_at=wake)
    base: dict[str, Any] = dict(Id=op_id, ParentId=ctx.parent_id, Name=name, Type=OperationType.STEP, SubType=sub_type)
    attempt = (op.StepDetails.Attempt if op is not None and op.StepDetails else 0) + 1
    policy = config.retry or DEFAULT_RETRY
    semantics = config.semantics
    interrupted = interrupted_attempts(op.StepDetails.Error if op.StepDetails else None) if op is not None else 0

    if op is not None and op.Status == OperationStatus.STARTED and semantics == StepSemantics.AT_MOST_ONCE_PER_RETRY:
        # Found started but unfinished: the attempt may have had its effect. Never run it again.
        # The error carries the count of such attempts, so that a later attempt knows about them.
        interrupted += 1
        error = StepInterruptedError(
            f"step {name or op_id} was interrupted during attempt {attempt} and is at-most-once",
            error_type=StepInterruptedError.recorded_name,
            error_data=json.dumps({INTERRUPTED_KEY: interrupted}))
        _fail_or_retry(ctx, op, base, error, attempt, policy)

    if op is None or op.Status == OperationStatus.READY:
        start = OperationUpdate(**base, Action=OperationAction.START)
        if semantics == StepSemantics.AT_MOST_ONCE_PER_RETRY:
            state.checkpoint(start)
        else:
            state.enqueue(start)
    if state.hooks is not None:
        state.hooks.attempt_start(op_id, name, attempt)
    step_ctx = StepContext(attempt=attempt, operation_id=op_id, name=name,
                           logger=ctx.logger,
                           interrupted_attempts=interrupted)
    if state.read_only:
        state.guard_read_only(what=f"run step {name or op_id!r} again (it was interrupted)")
    token = CURRENT_STEP.set(step_ctx)
    try:
        result = yield fn(*args, **kwargs)
    except SuspendExecution:
        raise
    except Exception as exc:
        _fail_or_retry(ctx, op, base, exc, attempt, policy, interrupted)
    finally:
        CURRENT_STEP.reset(token)
    return _succeed(ctx, base, serdes, result, attempt, name)


def _succeed(ctx: ContextBase, base: dict[str, Any], serdes: Serdes[Any], result: Any, attempt: int,
             name: str | None) -> Any:
    state = ctx.state
    try:
        payload = stored = serialize(serdes, result)
        if payload is not None and len(payload) > MAX_ASYNC_PAYLOAD_BYTES // 4 and \
                len(payload.encode()) > MAX_ASYNC_PAYLOAD_BYTES:
            store = payload_store_of(state.service)  # the backend may keep it elsewhere (S3 on Lambda)
            if store is None:
                raise PayloadTooLargeError(
                    f"step {name or base['Id']} returned {len(payload.encode())} bytes; a step result is "
                    f"limited to {MAX_ASYNC_PAYLOAD_BYTES} bytes. Return a reference (a file path, an S3 key) "
                    "instead of the data")
            stored = store.offload(payload, execution_arn=state.arn, operation_id=base["Id"])
        value = deserialize(serdes, payload)  # replay must return exactly what the first run does
    except (SerializationError, PayloadTooLargeError) as exc:
        error = error_object(exc)
        state.checkpoint(OperationUpdate(**base, Action=OperationAction.FAIL, Error=error))
        if state.hooks is not None:
            state.hooks.attempt_end(base["Id"], name, attempt, "FAILED")
        raise StepError.from_error_object(error.to_wire()) from exc
    state.checkpoint(OperationUpdate(**base, Action=OperationAction.SUCCEED, Payload=stored))
    if state.hooks is not None:
        state.hooks.attempt_end(base["Id"], name, attempt, "SUCCEEDED")
    return value


def _fail_or_retry(ctx: ContextBase, op: Operation | None, base: dict[str, Any], exc: BaseException,
                   attempt: int, policy: RetryPolicy, interrupted: int = 0) -> None:
    """Checkpoint RETRY (and suspend) or FAIL (and raise StepError). Never returns. ``interrupted``:
    the step's interrupted attempts so far, carried forward in the error's data."""
    state = ctx.state
    error: ErrorObject = with_interrupted_attempts(error_object(exc), interrupted)
    now = state.now()
    started = op.StartTimestamp if op is not None and op.StartTimestamp else now
    delay = policy.next_delay(exc, attempt, now - started)
    if state.hooks is not None:
        state.hooks.attempt_end(base["Id"], base["Name"], attempt, "FAILED")
    if delay is None:
        state.checkpoint(OperationUpdate(**base, Action=OperationAction.FAIL, Error=error))
        raise StepError.from_error_object(error.to_wire()) from exc
    state.checkpoint(OperationUpdate(**base, Action=OperationAction.RETRY, Error=error,
                                     StepOptions=StepOptions(NextAttemptDelaySeconds=delay)))
    raise SuspendExecution(f"step {base['Name'] or base['Id']} retries in {delay} s", wake_at=now + delay)
