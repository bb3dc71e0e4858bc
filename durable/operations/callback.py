"""ctx.create_callback / ctx.wait_for_callback: suspend until the outside world answers."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..config import CallbackConfig, ChildConfig, StepConfig
from ..errors import (
    CallbackError,
    CallbackTimeoutError,
    DurableOperationError,
    SerializationError,
    SuspendExecution,
)
from ..flow import Flow, plain
from ..journal import check_identity
from ..model import (
    CallbackOptions,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from ..serdes import PassThroughSerdes, Serdes, deserialize
from ._common import error_dict
from .child import run_child
from .step import run_step

if TYPE_CHECKING:
    from ..context import ContextBase


class JsonAnswer:
    """The default decoding of a callback answer: JSON text, as the CLI and the Send APIs carry it.
    An empty answer is None."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value)

    def deserialize(self, data: str | None) -> Any:
        if data is None or data == "":
            return None
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise SerializationError(f"callback answer is not JSON ({exc}): {data[:80]!r}; pass "
                                     "CallbackConfig(serdes=PassThroughSerdes()) to receive raw text") from None


class _PendingAnswer:
    """What both callback surfaces share: the id to hand out and the reading of the answer."""

    def __init__(self, ctx: ContextBase, op_id: str, callback_id: str, serdes: Serdes[Any],
                 name: str | None) -> None:
        self._ctx = ctx
        self._op_id = op_id
        self.callback_id = callback_id
        self._serdes = serdes
        self.name = name

    def _raw(self) -> str | None:
        """The answer exactly as the outside world sent it; raises its failure, or suspends."""
        op = self._ctx.state.get(self._op_id)
        status = op.Status if op is not None else None
        details = op.CallbackDetails if op is not None else None
        if status == OperationStatus.SUCCEEDED:
            return details.Result if details else None
        if status == OperationStatus.TIMED_OUT:
            raise CallbackTimeoutError.from_error_object(error_dict(details.Error if details else None))
        if status in (OperationStatus.FAILED, OperationStatus.CANCELLED, OperationStatus.STOPPED):
            raise CallbackError.from_error_object(error_dict(details.Error if details else None))
        raise SuspendExecution(f"callback {self.name or self.callback_id} awaits an answer")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, callback_id={self.callback_id!r})"


class Callback(_PendingAnswer):
    """A pending answer from outside. Hand ``callback_id`` to whoever will answer; ``result()``
    returns the answer, or suspends the execution until there is one."""

    def result(self) -> Any:
        return deserialize(self._serdes, self._raw())

    def raw_result(self) -> str | None:
        """The answer exactly as the outside world sent it."""
        return self._raw()


class AsyncCallback(_PendingAnswer):
    """A Callback in an async handler: ``await cb.result()``."""

    async def result(self) -> Any:
        return deserialize(self._serdes, self._raw())

    async def raw_result(self) -> str | None:
        """The answer exactly as the outside world sent it."""
        return self._raw()


def create_callback(ctx: ContextBase, name: str | None, config: CallbackConfig | None) -> Callback | AsyncCallback:
    config = config or CallbackConfig()
    op_id, position = ctx._next_operation(name)
    state = ctx.state
    op = state.get(op_id)
    if op is not None:
        check_identity(op, position=position, type_=OperationType.CALLBACK, sub_type="Callback", name=name,
                       parent_id=ctx.parent_id)
    else:
        options = CallbackOptions(
            TimeoutSeconds=config.timeout.seconds if config.timeout else 0,
            HeartbeatTimeoutSeconds=config.heartbeat_timeout.seconds if config.heartbeat_timeout else 0)
        state.checkpoint(OperationUpdate(Id=op_id, ParentId=ctx.parent_id, Name=name,
                                         Type=OperationType.CALLBACK, SubType="Callback",
                                         Action=OperationAction.START, CallbackOptions=options))
        op = state.get(op_id)
    callback_id = op.CallbackDetails.CallbackId if op is not None and op.CallbackDetails else None
    if not callback_id:
        raise DurableOperationError(f"the backend returned no CallbackId for callback {name or op_id}",
                                    error_type="CallbackIdMissing")
    surface = AsyncCallback if ctx.is_async else Callback
    return surface(ctx, op_id, callback_id, config.serdes or JsonAnswer(), name)


def wait_for_callback(ctx: ContextBase, submitter: Callable[[str], Any], name: str | None,
                      config: CallbackConfig | None) -> Flow[Any]:
    """A child context holding the callback and a step that hands its id to the outside world
    (``submitter`` may be a plain function, or in an async handler an async one)."""
    config = config or CallbackConfig()
    callback_name = f"{name} create callback id" if name else "create callback id"
    submitter_name = f"{name} submitter" if name else "submitter"

    def body(child: ContextBase) -> Flow[Any]:
        callback = yield from child._observed("CALLBACK", callback_name, "Callback",
                                              plain(create_callback, child, callback_name, config))
        yield from child._observed("STEP", submitter_name, "Step", run_step(
            child, _submit, (submitter, callback.callback_id), {}, name=submitter_name,
            config=StepConfig(retry=config.retry)))
        return callback._raw()

    raw = yield from run_child(ctx, body, name=name, config=ChildConfig(serdes=PassThroughSerdes()),
                               sub_type="WaitForCallback", error_class=_callback_error)
    return deserialize(config.serdes or JsonAnswer(), raw)


def submitter_record(context_id: str | None, operations: Iterable[Operation]) -> Any:
    """What the submitter of the wait_for_callback context ``context_id`` returned (decoded JSON),
    or None: the record of what was asked of the outside world, readable without re-running."""
    if context_id is None:
        return None
    for op in operations:
        if op.ParentId == context_id and op.Type == OperationType.STEP and op.StepDetails \
                and op.StepDetails.Result:
            try:
                return json.loads(op.StepDetails.Result)
            except ValueError:
                return None
    return None


def _submit(submitter: Callable[[str], Any], callback_id: str) -> Any:
    """Whatever the submitter returns (JSON-able) is kept as the step's result: a record of what
    was asked of the outside world (a review inbox reads it)."""
    return submitter(callback_id)


def _callback_error(error: dict[str, Any]) -> DurableOperationError:
    if str(error.get("ErrorType") or "").startswith("Callback."):
        return CallbackTimeoutError.from_error_object(error)
    return CallbackError.from_error_object(error)
