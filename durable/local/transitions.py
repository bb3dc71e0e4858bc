"""How each checkpoint update changes its operation, and the history events it writes: the state
transitions of PROTOCOL.md §2, in one place."""

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
from .store import OpRow
from .writes import Batch, load_operation


def apply_update(batch: Batch, update: OperationUpdate, row: OpRow | None,
                 start_chained_invoke: Callable[[Batch, OperationUpdate, OpRow | None], None]) -> None:
    """One update's state transition and history events (PROTOCOL.md §2 table)."""
    now = batch.now
    current = batch.ops.get(update.Id) or (load_operation(row) if row is not None else None)
    action = update.Action
    kind = update.Type
    base: dict[str, Any] = dict(Id=update.Id, ParentId=update.ParentId, Name=update.Name, Type=kind, SubType=update.SubType)
    if kind == OperationType.STEP:
        details = current.StepDetails if current and current.StepDetails else StepDetails(Attempt=0)
        start = current.StartTimestamp if current else now
        if action == OperationAction.START:
            op = Operation(**base, Status=OperationStatus.STARTED, StartTimestamp=start,
                           StepDetails=StepDetails(Attempt=details.Attempt, Result=details.Result,
                                                   Error=details.Error))
            batch.put(op, row)
            batch.event(H.with_details(H.base_event("StepStarted", update, now), {}))
        elif action in (OperationAction.SUCCEED, OperationAction.FAIL):
            attempt = details.Attempt + 1
            ok = action == OperationAction.SUCCEED
            op = Operation(**base, Status=OperationStatus.SUCCEEDED if ok else OperationStatus.FAILED,
                           StartTimestamp=start, EndTimestamp=now,
                           StepDetails=StepDetails(Attempt=attempt, Result=update.Payload if ok else None,
                                                   Error=None if ok else update.Error))
            batch.put(op, row)
            if ok:
                body = {"Result": H.stored_payload(update.Payload, "operation"),
                        "RetryDetails": {"CurrentAttempt": attempt}}
                batch.event(H.with_details(H.base_event("StepSucceeded", update, now), body))
            else:
                body = {"Error": H.error_payload(update.Error), "RetryDetails": {"CurrentAttempt": attempt,
                                                                               "NextAttemptDelaySeconds": 0}}
                batch.event(H.with_details(H.base_event("StepFailed", update, now), body))
        else:  # RETRY
            attempt = details.Attempt + 1
            delay = int(update.StepOptions.NextAttemptDelaySeconds or 1) if update.StepOptions else 1
            due = now + delay
            op = Operation(**base, Status=OperationStatus.PENDING, StartTimestamp=start,
                           StepDetails=StepDetails(Attempt=attempt, NextAttemptTimestamp=due,
                                                   Result=update.Payload, Error=update.Error))
            batch.put(op, row, due_at=due)
            retry = {"CurrentAttempt": attempt, "NextAttemptDelaySeconds": delay}
            if update.Error is not None:
                body = {"Error": H.error_payload(update.Error), "RetryDetails": retry}
                batch.event(H.with_details(H.base_event("StepFailed", update, now), body))
            else:
                body = {"Result": H.payload(update.Payload), "RetryDetails": retry}
                batch.event(H.with_details(H.base_event("StepSucceeded", update, now), body))
    elif kind == OperationType.WAIT:
        if action == OperationAction.START:
            seconds = update.WaitOptions.WaitSeconds if update.WaitOptions else 1
            due = now + seconds
            op = Operation(**base, Status=OperationStatus.STARTED, StartTimestamp=now,
                           WaitDetails=WaitDetails(ScheduledEndTimestamp=due))
            batch.put(op, row, due_at=due)
            batch.event(H.with_details(H.base_event("WaitStarted", update, now),
                                       {"Duration": seconds, "ScheduledEndTimestamp": due}))
        else:  # CANCEL
            assert current is not None
            op = current.model_copy(update={"Status": OperationStatus.CANCELLED, "EndTimestamp": now})
            batch.put(op, row, due_at=None)
            batch.event(H.with_details(H.base_event("WaitCancelled", update, now), {}))
    elif kind == OperationType.CALLBACK:
        options = update.CallbackOptions
        timeout = options.TimeoutSeconds if options else 0
        heartbeat = options.HeartbeatTimeoutSeconds if options else 0
        callback_id = new_callback_id(batch.execution["id"], update.Id)
        timeout_at = now + timeout if timeout else None
        op = Operation(**base, Status=OperationStatus.STARTED, StartTimestamp=now,
                       CallbackDetails=CallbackDetails(CallbackId=callback_id))
        batch.put(op, row, due_at=callback_due(timeout_at, heartbeat, now), callback_id=callback_id,
                  timeout_at=timeout_at, heartbeat_seconds=heartbeat or None)
        started: dict[str, Any] = {"CallbackId": callback_id}
        if timeout:
            started["Timeout"] = timeout
        if heartbeat:
            started["HeartbeatTimeout"] = heartbeat
        batch.event(H.with_details(H.base_event("CallbackStarted", update, now), started))
    elif kind == OperationType.CONTEXT:
        if action == OperationAction.START:
            op = Operation(**base, Status=OperationStatus.STARTED, StartTimestamp=now,
                           ContextDetails=ContextDetails())
            batch.put(op, row)
            batch.event(H.with_details(H.base_event("ContextStarted", update, now), {}))
        else:
            ok = action == OperationAction.SUCCEED
            replay = bool(update.ContextOptions and update.ContextOptions.ReplayChildren)
            op = Operation(**base, Status=OperationStatus.SUCCEEDED if ok else OperationStatus.FAILED,
                           StartTimestamp=current.StartTimestamp if current else now, EndTimestamp=now,
                           ContextDetails=ContextDetails(ReplayChildren=replay or None,
                                                         Result=update.Payload if ok else None,
                                                         Error=None if ok else update.Error))
            batch.put(op, row)
            if ok:
                batch.event(H.with_details(H.base_event("ContextSucceeded", update, now),
                                           {"Result": H.stored_payload(update.Payload, "operation")}))
            else:
                batch.event(H.with_details(H.base_event("ContextFailed", update, now),
                                           {"Error": H.error_payload(update.Error)}))
    elif kind == OperationType.CHAINED_INVOKE:
        start_chained_invoke(batch, update, row)


def callback_due(timeout_at: float | None, heartbeat: int | None, now: float) -> float | None:
    candidates = [t for t in (timeout_at, now + heartbeat if heartbeat else None) if t is not None]
    return min(candidates) if candidates else None


def new_callback_id(execution_id: str, op_id: str) -> str:
    raw = json.dumps({"e": execution_id, "o": op_id, "n": secrets.token_hex(8)}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()
