"""How each checkpoint update changes its operation, and which history events that produces: the
state transitions of PROTOCOL.md §2, in one place. Events are not built here: each change records
their codes, and history.py rebuilds them from the operation's state when history is read."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable
from typing import Any

from ..model import (
    CallbackDetails,
    ContextDetails,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
    StepDetails,
    WaitDetails,
)
from . import history as H
from .rows import StoredOperation
from .rows import quote_json as _quote
from .store import JournalRow
from .writes import Batch

_STEP = OperationType.STEP
_START = OperationAction.START
_SUCCEED = OperationAction.SUCCEED
_STARTED_AND_SUCCEEDED = H.codes("StepStarted", "StepSucceeded")
_SUCCEEDED = H.codes("StepSucceeded")
_STEP_TYPE = OperationType.STEP.value
_SUCCEEDED_STATUS = OperationStatus.SUCCEEDED.value
"""Plain strings: reading ``.value`` off an enum member runs Python code, every step."""


def merged_start(updates: list[OperationUpdate], index: int) -> bool:
    """Whether ``updates[index]`` is a step's START whose SUCCEED follows it at once: the common
    step, applied as one change (``succeed_step``) without building the STARTED state at all."""
    update = updates[index]
    if update.Type is not _STEP or update.Action is not _START or index + 1 >= len(updates):
        return False
    after = updates[index + 1]
    return after.Id == update.Id and after.Type is _STEP and after.Action is _SUCCEED


def succeed_step(batch: Batch, update: OperationUpdate, row: JournalRow | None, *, started: bool) -> None:
    """A step's SUCCEED (with its START when ``started``): the hot path, no models built."""
    now = batch.now
    current = None if row is None and update.Id not in batch.ops else batch.current(update.Id, row)
    details = current.StepDetails if current is not None else None
    start = current.StartTimestamp if current is not None else now
    # The row's JSON written directly (the dict and the encoder cost twice as much per step). Replay
    # matches this layout as text (rows.StoredOperation.replay_result): identity first, result last.
    parts = []
    if update.Name is not None:
        parts.append(f'"Name":{_quote(update.Name)}')
    if update.SubType is not None:
        parts.append(f'"SubType":{_quote(update.SubType)}')
    if update.ParentId is not None:
        parts.append(f'"ParentId":{_quote(update.ParentId)}')
    if start is not None:
        parts.append(f'"StartTimestamp":{start!r}')
    attempt = (details.Attempt if details else 0) + 1
    result = "" if update.Payload is None else f',"Result":{_quote(update.Payload)}'
    parts.append(f'"EndTimestamp":{now!r},"StepDetails":{{"Attempt":{attempt}{result}}}')
    data = "{" + ",".join(parts) + "}"
    batch.change(update.Id, _STEP_TYPE, _SUCCEEDED_STATUS, data, _STARTED_AND_SUCCEEDED if started else _SUCCEEDED, row)
    batch.ops[update.Id] = StoredOperation(update.Id, _STEP_TYPE, _SUCCEEDED_STATUS, data)


def apply_update(batch: Batch, update: OperationUpdate, row: JournalRow | None,
                 start_chained_invoke: Callable[[Batch, OperationUpdate, JournalRow | None], None]) -> None:
    """One update's state transition and the events it produces (PROTOCOL.md §2 table)."""
    now = batch.now
    action = update.Action
    kind = update.Type
    if kind == OperationType.STEP and action == OperationAction.SUCCEED:
        succeed_step(batch, update, row, started=False)
        return
    current = batch.current(update.Id, row)
    base: dict[str, Any] = dict(Id=update.Id, ParentId=update.ParentId, Name=update.Name, Type=kind, SubType=update.SubType)
    if kind == OperationType.STEP:
        details = current.StepDetails if current and current.StepDetails else StepDetails(Attempt=0)
        start = current.StartTimestamp if current else now
        if action == OperationAction.START:
            op = Operation(**base, Status=OperationStatus.STARTED, StartTimestamp=start,
                           StepDetails=StepDetails(Attempt=details.Attempt, Result=details.Result,
                                                   Error=details.Error))
            batch.put(op, row, H.codes("StepStarted"))
        elif action == OperationAction.FAIL:
            op = Operation(**base, Status=OperationStatus.FAILED, StartTimestamp=start, EndTimestamp=now,
                           StepDetails=StepDetails(Attempt=details.Attempt + 1, Error=update.Error))
            batch.put(op, row, H.codes("StepFailed"))
        else:  # RETRY
            attempt = details.Attempt + 1
            delay = int(update.StepOptions.NextAttemptDelaySeconds or 1) if update.StepOptions else 1
            due = now + delay
            op = Operation(**base, Status=OperationStatus.PENDING, StartTimestamp=start,
                           StepDetails=StepDetails(Attempt=attempt, NextAttemptTimestamp=due,
                                                   Result=update.Payload, Error=update.Error))
            batch.put(op, row, H.codes("StepFailed" if update.Error is not None else "StepSucceeded"), due_at=due)
    elif kind == OperationType.WAIT:
        if action == OperationAction.START:
            seconds = update.WaitOptions.WaitSeconds if update.WaitOptions else 1
            due = now + seconds
            op = Operation(**base, Status=OperationStatus.STARTED, StartTimestamp=now,
                           WaitDetails=WaitDetails(ScheduledEndTimestamp=due))
            batch.put(op, row, H.codes("WaitStarted"), due_at=due)
        else:  # CANCEL
            assert current is not None
            op = current.model_copy(update={"Status": OperationStatus.CANCELLED, "EndTimestamp": now})
            batch.put(op, row, H.codes("WaitCancelled"))
    elif kind == OperationType.CALLBACK:
        options = update.CallbackOptions
        timeout = options.TimeoutSeconds if options else 0
        heartbeat = options.HeartbeatTimeoutSeconds if options else 0
        callback_id = new_callback_id(batch.execution["id"], update.Id)
        timeout_at = now + timeout if timeout else None
        op = Operation(**base, Status=OperationStatus.STARTED, StartTimestamp=now,
                       CallbackDetails=CallbackDetails(CallbackId=callback_id))
        batch.put(op, row, H.codes("CallbackStarted"), due_at=callback_due(timeout_at, heartbeat, now),
                  callback_id=callback_id, timeout_at=timeout_at, heartbeat_seconds=heartbeat or None)
    elif kind == OperationType.CONTEXT:
        if action == OperationAction.START:
            op = Operation(**base, Status=OperationStatus.STARTED, StartTimestamp=now,
                           ContextDetails=ContextDetails())
            batch.put(op, row, H.codes("ContextStarted"))
        else:
            ok = action == OperationAction.SUCCEED
            replay = bool(update.ContextOptions and update.ContextOptions.ReplayChildren)
            op = Operation(**base, Status=OperationStatus.SUCCEEDED if ok else OperationStatus.FAILED,
                           StartTimestamp=current.StartTimestamp if current else now, EndTimestamp=now,
                           ContextDetails=ContextDetails(ReplayChildren=replay or None,
                                                         Result=update.Payload if ok else None,
                                                         Error=None if ok else update.Error))
            batch.put(op, row, H.codes("ContextSucceeded" if ok else "ContextFailed"))
    elif kind == OperationType.CHAINED_INVOKE:
        start_chained_invoke(batch, update, row)


def callback_due(timeout_at: float | None, heartbeat: int | None, now: float) -> float | None:
    candidates = [t for t in (timeout_at, now + heartbeat if heartbeat else None) if t is not None]
    return min(candidates) if candidates else None


def new_callback_id(execution_id: str, op_id: str) -> str:
    raw = json.dumps({"e": execution_id, "o": op_id, "n": secrets.token_hex(8)}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()
