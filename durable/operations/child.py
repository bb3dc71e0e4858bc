"""ctx.run_in_child_context: a group of operations checkpointed as one result.

A flow (durable/flow.py): the body is itself a flow over the child context, so the user's
function (called, or awaited in an async handler) and the engine's own bodies (wait_for_callback,
map and parallel) go through the same journal logic."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config import ChildConfig
from ..errors import (
    CheckpointError,
    ChildContextError,
    DurableOperationError,
    NonDeterministicExecutionError,
    SerializationError,
    SuspendExecution,
)
from ..flow import Flow
from ..journal import check_identity
from ..model import (
    CHILD_RESULT_REPLAY_THRESHOLD,
    ContextOptions,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from ..serdes import deserialize, serdes_for, serialize
from ._common import error_dict, error_object

if TYPE_CHECKING:
    from ..context import ContextBase

ErrorFactory = Callable[[dict[str, Any]], DurableOperationError]
Body = Callable[["ContextBase"], Flow[Any]]


def user_body(fn: Callable[[Any], Any]) -> Body:
    """The user's ``fn(child_ctx)`` as a child body: called, or awaited in an async handler."""
    def body(child: ContextBase) -> Flow[Any]:
        return (yield fn(child))

    return body


def run_child(ctx: ContextBase, body: Body, *, name: str | None, config: ChildConfig | None,
              sub_type: str = "RunInChildContext", error_class: ErrorFactory = ChildContextError.from_error_object,
              at: tuple[str, str] | None = None, parent_id: str | None = None,
              result_of: Callable[..., Any] | None = None) -> Flow[Any]:
    """``at`` = (operation id, position) for contexts whose id is not the next counter value
    (map/parallel branches); ``parent_id`` overrides the parent (a branch's parent is its batch);
    ``result_of``: the function whose return annotation types the result (the user's ``fn``)."""
    config = config or ChildConfig()
    sub_type = config.sub_type or sub_type
    op_id, position = at if at is not None else ctx._next_operation(name)
    parent = parent_id if parent_id is not None else ctx.parent_id
    state = ctx.state
    op = state.get(op_id)
    serdes = serdes_for(result_of, config.serdes)
    replaying_children = False
    if op is not None:
        check_identity(op, position=position, type_=OperationType.CONTEXT, sub_type=sub_type, name=name,
                       parent_id=parent)
        details = op.ContextDetails
        if op.Status == OperationStatus.SUCCEEDED:
            if not (details and details.ReplayChildren):
                return deserialize(serdes, details.Result if details else None)
            replaying_children = True
        elif op.Status in (OperationStatus.FAILED, OperationStatus.CANCELLED, OperationStatus.STOPPED,
                           OperationStatus.TIMED_OUT):
            raise error_class(error_dict(details.Error if details else None))
    else:
        state.enqueue(OperationUpdate(Id=op_id, ParentId=parent, Name=name, Type=OperationType.CONTEXT,
                                      SubType=sub_type, Action=OperationAction.START))
    child = ctx._child_context(op_id, name)
    base: dict[str, Any] = dict(Id=op_id, ParentId=parent, Name=name, Type=OperationType.CONTEXT, SubType=sub_type)
    try:
        result = yield from body(child)
    except (SuspendExecution, NonDeterministicExecutionError, CheckpointError):
        raise  # not the child's failure: recording one would hide it from every later replay
    except Exception as exc:
        error = error_object(exc)
        state.checkpoint(OperationUpdate(**base, Action=OperationAction.FAIL, Error=error))
        raise error_class(error.to_wire()) from exc
    if replaying_children:
        return result
    try:
        payload = serialize(serdes, result)
    except SerializationError as exc:  # like a step: a result that cannot be checkpointed fails the context
        error = error_object(exc)
        state.checkpoint(OperationUpdate(**base, Action=OperationAction.FAIL, Error=error))
        raise error_class(error.to_wire()) from exc
    if config.replay_children or (payload is not None and len(payload) > CHILD_RESULT_REPLAY_THRESHOLD // 4
                                  and len(payload.encode()) > CHILD_RESULT_REPLAY_THRESHOLD):
        summary = config.summary(result) if callable(config.summary) else ""
        state.checkpoint(OperationUpdate(**base, Action=OperationAction.SUCCEED, Payload=summary,
                                         ContextOptions=ContextOptions(ReplayChildren=True)))
        return result
    state.checkpoint(OperationUpdate(**base, Action=OperationAction.SUCCEED, Payload=payload,
                                     ContextOptions=ContextOptions(ReplayChildren=False)))
    return deserialize(serdes, payload)
