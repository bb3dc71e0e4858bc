"""ctx.wait: suspend for a duration with no process held."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import Duration
from ..errors import SuspendExecution, UsageError
from ..journal import check_identity
from ..model import (
    MAX_WAIT_SECONDS,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    WaitOptions,
)

if TYPE_CHECKING:
    from ..context import ContextBase


def run_wait(ctx: ContextBase, duration: Duration, name: str | None) -> None:
    seconds = duration.seconds
    if not 1 <= seconds <= MAX_WAIT_SECONDS:
        raise UsageError(f"ctx.wait needs between 1 and {MAX_WAIT_SECONDS} seconds, got {seconds}")
    op_id, position = ctx._next_operation(name)
    state = ctx.state
    op = state.get(op_id)
    if op is not None:
        check_identity(op, position=position, type_=OperationType.WAIT, sub_type="Wait", name=name,
                       parent_id=ctx.parent_id)
    else:
        state.checkpoint(OperationUpdate(Id=op_id, ParentId=ctx.parent_id, Name=name, Type=OperationType.WAIT,
                                         SubType="Wait", Action=OperationAction.START,
                                         WaitOptions=WaitOptions(WaitSeconds=seconds)))
        op = state.get(op_id)
    if op is not None and op.Status in (OperationStatus.SUCCEEDED, OperationStatus.CANCELLED):
        return
    wake = op.WaitDetails.ScheduledEndTimestamp if op is not None and op.WaitDetails else None
    raise SuspendExecution(f"wait {name or op_id} until {wake}", wake_at=wake)
