"""ctx.invoke: call another durable function and suspend until it finishes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import InvokeConfig
from ..errors import InvokeError, SuspendExecution
from ..journal import check_identity
from ..model import ChainedInvokeOptions, OperationAction, OperationStatus, OperationType, OperationUpdate
from ..serdes import DEFAULT_SERDES, deserialize, serialize
from ._common import error_dict

if TYPE_CHECKING:
    from ..context import ContextBase


def invoke(ctx: ContextBase, function_name: str, payload: Any, *, name: str | None,
           config: InvokeConfig | None) -> Any:
    config = config or InvokeConfig()
    op_id, position = ctx._next_operation(name)
    state = ctx.state
    op = state.get(op_id)
    if op is not None:
        check_identity(op, position=position, type_=OperationType.CHAINED_INVOKE, sub_type="ChainedInvoke",
                       name=name, parent_id=ctx.parent_id)
    else:
        body = serialize(config.payload_serdes or DEFAULT_SERDES, payload)
        state.checkpoint(OperationUpdate(
            Id=op_id, ParentId=ctx.parent_id, Name=name, Type=OperationType.CHAINED_INVOKE,
            SubType="ChainedInvoke", Action=OperationAction.START, Payload=body,
            ChainedInvokeOptions=ChainedInvokeOptions(FunctionName=function_name, TenantId=config.tenant_id)))
        op = state.get(op_id)
    details = op.ChainedInvokeDetails if op is not None else None
    status = op.Status if op is not None else None
    if status == OperationStatus.SUCCEEDED:
        return deserialize(config.result_serdes or DEFAULT_SERDES, details.Result if details else None)
    if status in (OperationStatus.FAILED, OperationStatus.TIMED_OUT, OperationStatus.STOPPED,
                  OperationStatus.CANCELLED):
        raise InvokeError.from_error_object(error_dict(details.Error if details else None))
    raise SuspendExecution(f"invoke of {function_name} in progress")
