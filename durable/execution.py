"""One invocation of a durable handler: replay against the journal, run until done or suspended,
and answer the service in the protocol's terms (SUCCEEDED / FAILED / PENDING). The local runtime
and the Lambda entry point both call ``run_invocation``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from .backend import DurableService, InvocationInput
from .context import DurableContext
from .errors import CheckpointError, InvalidCheckpointTokenError, SerializationError, SuspendExecution
from .model import (
    MAX_EXECUTION_RESULT_BYTES,
    InvocationOutput,
    InvocationStatus,
    OperationAction,
    OperationType,
    OperationUpdate,
)
from .operations._common import error_object
from .registry import is_async_handler
from .serdes import dumps
from .state import ExecutionState

Handler = Callable[[Any, DurableContext], Any]
log = logging.getLogger("duragent.durable.execution")


def load_operations(invocation: InvocationInput, service: DurableService) -> list[Any] | dict[str, Any]:
    """Every operation of the invocation (following the service's pages); a mapping by id when the
    service handed one over whole (the local store's rows: nothing to rebuild per operation)."""
    if isinstance(invocation.operations, dict) and not invocation.next_marker:
        return invocation.operations
    operations = list(invocation.operations if not isinstance(invocation.operations, dict)
                      else invocation.operations.values())
    marker = invocation.next_marker
    while marker:
        page = service.get_state(invocation.arn, invocation.token, marker)
        operations.extend(page.operations)
        marker = page.next_marker
    return operations


def read_input(state: ExecutionState) -> Any:
    payload = state.input_payload()
    return json.loads(payload) if payload else {}


def run_invocation(handler: Handler, invocation: InvocationInput, service: DurableService, *,
                   now: Callable[[], float], hooks: Any = None) -> InvocationOutput:
    if is_async_handler(handler):  # awaited on an event loop (durable/loop.py), same outcome rules
        from .async_execution import arun_invocation
        from .loop import run_coroutine

        return run_coroutine(arun_invocation(handler, invocation, service, now=now, hooks=hooks))
    state, first = begin_invocation(invocation, service, now=now, hooks=hooks)
    try:
        output = _run(handler, DurableContext(state), state)
    finally:
        state.close()
    return end_invocation(state, output, first, hooks)


def begin_invocation(invocation: InvocationInput, service: DurableService, *, now: Callable[[], float],
                     hooks: Any = None) -> tuple[ExecutionState, bool]:
    """The invocation's state, and whether it is the execution's first; the plugins are told it began.
    Shared by the sync and async invocations."""
    state = ExecutionState(arn=invocation.arn, token=invocation.token,
                           operations=load_operations(invocation, service), service=service, now=now,
                           hooks=hooks)
    first = not any(op.Type != OperationType.EXECUTION for op in dict.values(state.operations))  # no row parsed
    if hooks is not None:
        hooks.invocation_start(state.arn, first)
    return state, first


def end_invocation(state: ExecutionState, output: InvocationOutput, first: bool,
                   hooks: Any = None) -> InvocationOutput:
    if hooks is not None:
        hooks.invocation_end(state.arn, output.Status.value, first)
    return output


def _run(handler: Handler, ctx: DurableContext, state: ExecutionState) -> InvocationOutput:
    try:
        result = handler(read_input(state), ctx)
        payload = dumps(result)
        state.flush()
    except SuspendExecution:
        try:
            state.flush()
        except SuspendExecution:
            pass
        return InvocationOutput(Status=InvocationStatus.PENDING)
    except InvalidCheckpointTokenError:
        raise  # another invocation owns the execution: this one must stop, not fail it
    except CheckpointError as exc:
        if exc.retryable:
            raise
        return InvocationOutput(Status=InvocationStatus.FAILED, Error=error_object(exc))
    except SerializationError as exc:
        return InvocationOutput(Status=InvocationStatus.FAILED, Error=error_object(exc))
    except Exception as exc:
        _flush_quietly(state)
        return InvocationOutput(Status=InvocationStatus.FAILED, Error=error_object(exc))
    if len(payload) > MAX_EXECUTION_RESULT_BYTES // 4 and len(payload.encode()) > MAX_EXECUTION_RESULT_BYTES:
        state.checkpoint(OperationUpdate(Id=state.execution_id, Type=OperationType.EXECUTION,
                                         Action=OperationAction.SUCCEED, Payload=payload))
        return InvocationOutput(Status=InvocationStatus.SUCCEEDED, Result="")
    return InvocationOutput(Status=InvocationStatus.SUCCEEDED, Result=payload)


def _flush_quietly(state: ExecutionState) -> None:
    """Persist queued STARTs before reporting a failure, so history shows what began."""
    try:
        state.flush()
    except (SuspendExecution, CheckpointError):
        log.debug("could not flush queued updates of a failing invocation", exc_info=True)
