"""History events in the ``GetDurableExecutionHistory`` shape, rebuilt from journal rows on read.

The journal stores no event rows for operations: a row says which events its change produced
(one code each, ``CODES``), and each event is rebuilt from the operation's state in that row (its
identity, timestamps, attempt, payload, error). Only events that no operation holds are stored as
rows of their own: InvocationCompleted and the execution's end. Every key the conformance suite
looks for is present (``StepStartedDetails: {}`` included), durations and attempts are integers,
payloads are the stored strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..model import ErrorObject, Operation, OperationStatus, OperationUpdate

CODES = {
    "ExecutionStarted": "E",
    "StepStarted": "s", "StepSucceeded": "S", "StepFailed": "F",
    "WaitStarted": "w", "WaitSucceeded": "W", "WaitCancelled": "X",
    "CallbackStarted": "c", "CallbackSucceeded": "C", "CallbackFailed": "B", "CallbackTimedOut": "T",
    "ContextStarted": "x", "ContextSucceeded": "Y", "ContextFailed": "Z",
    "ChainedInvokeStarted": "i", "ChainedInvokeSucceeded": "I", "ChainedInvokeFailed": "J",
    "ChainedInvokeTimedOut": "K", "ChainedInvokeStopped": "L",
}
"""One character per event type in a journal row's ``ev`` column (in the order they happened)."""

TYPES = {code: name for name, code in CODES.items()}


def base_event(event_type: str, op: Operation | OperationUpdate | None, timestamp: float) -> dict[str, Any]:
    event: dict[str, Any] = {"EventType": event_type, "EventTimestamp": timestamp}
    if op is not None:
        event["SubType"] = op.SubType
        event["Id"] = op.Id
        event["Name"] = op.Name
        if op.ParentId is not None:
            event["ParentId"] = op.ParentId
    return event


def payload(value: str | None) -> dict[str, Any]:
    return {"Payload": value, "Truncated": False}


STORED_IN = "StoredIn"
"""Marks an execution-level event's payload kept only once, in the executions row (its result):
history puts it back on read."""

_INLINE_BELOW = 96  # a marker costs about this much: smaller payloads are simply copied


def stored_payload(value: str | None, where: str) -> dict[str, Any]:
    """``payload(value)`` for the history API, without storing a second copy of a large value."""
    if value is None or len(value) < _INLINE_BELOW:
        return payload(value)
    return {STORED_IN: where, "Truncated": False}


def error_payload(error: ErrorObject | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(error, ErrorObject):
        error = error.to_wire()
    return {"Payload": error or {}, "Truncated": False}


def with_details(event: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    event[f"{event['EventType']}Details"] = details
    return event


def codes(*event_types: str) -> str:
    return "".join(CODES[t] for t in event_types)


def _seconds(value: float) -> int:
    return int(round(value))


def _details(event_type: str, op: Operation, at: float, extra: dict[str, Any] | None,
             timeout_at: float | None, heartbeat: int | None) -> dict[str, Any]:
    """An event's details, from the operation's state right after the change that produced it."""
    step, wait, callback, context, invoke = (op.StepDetails, op.WaitDetails, op.CallbackDetails, op.ContextDetails,
                                             op.ChainedInvokeDetails)
    if event_type == "StepSucceeded":
        assert step is not None
        if op.Status == OperationStatus.PENDING:  # a RETRY that carried a payload
            return {"Result": payload(step.Result), "RetryDetails": {
                "CurrentAttempt": step.Attempt, "NextAttemptDelaySeconds": _seconds((step.NextAttemptTimestamp or at) - at)}}
        return {"Result": payload(step.Result), "RetryDetails": {"CurrentAttempt": step.Attempt}}
    if event_type == "StepFailed":
        assert step is not None
        delay = _seconds((step.NextAttemptTimestamp or at) - at) if op.Status == OperationStatus.PENDING else 0
        return {"Error": error_payload(step.Error), "RetryDetails": {"CurrentAttempt": step.Attempt,
                                                                     "NextAttemptDelaySeconds": delay}}
    if event_type == "WaitStarted":
        scheduled = wait.ScheduledEndTimestamp if wait else None
        return {"Duration": _seconds((scheduled or at) - at), "ScheduledEndTimestamp": scheduled}
    if event_type == "WaitSucceeded":
        scheduled = wait.ScheduledEndTimestamp if wait else None
        return {"Duration": _seconds((scheduled or at) - (op.StartTimestamp or at)) if wait else 0}
    if event_type == "CallbackStarted":
        started: dict[str, Any] = {"CallbackId": callback.CallbackId if callback else None}
        if timeout_at is not None:
            started["Timeout"] = _seconds(timeout_at - at)
        if heartbeat:
            started["HeartbeatTimeout"] = heartbeat
        return started
    if event_type == "CallbackSucceeded":
        return {"Result": payload(callback.Result if callback else None)}
    if event_type in ("CallbackFailed", "CallbackTimedOut"):
        return {"Error": error_payload(callback.Error if callback else None)}
    if event_type == "ContextSucceeded":
        return {"Result": payload(context.Result if context else None)}
    if event_type == "ContextFailed":
        return {"Error": error_payload(context.Error if context else None)}
    if event_type == "ChainedInvokeSucceeded":
        return {"Result": payload(invoke.Result if invoke else None)}
    if event_type in ("ChainedInvokeFailed", "ChainedInvokeTimedOut", "ChainedInvokeStopped"):
        return {"Error": error_payload(invoke.Error if invoke else None)}
    if event_type == "ExecutionStarted":
        details = op.ExecutionDetails
        return {"Input": payload(details.InputPayload if details else None)}
    return {}  # StepStarted, WaitCancelled, ContextStarted (and ChainedInvokeStarted: its details are stored)


def operation_events(ev: str, op: Operation, at: float, extra: str | None, timeout_at: float | None,
                     heartbeat: int | None) -> Iterable[dict[str, Any]]:
    """The events one journal row's change produced, as the history API shows them."""
    stored = json.loads(extra) if extra else {}
    for code in ev:
        event_type = TYPES[code]
        if event_type == "ExecutionStarted":
            event: dict[str, Any] = {"EventType": event_type, "EventTimestamp": at, "Id": op.Id, "Name": op.Name}
        else:
            event = base_event(event_type, op, at)
        details = _details(event_type, op, at, stored, timeout_at, heartbeat)
        details.update(stored.get(event_type, {}))
        yield with_details(event, details)


def materialize(event: dict[str, Any], execution_result: str | None) -> dict[str, Any]:
    """Put an execution-level event's payload kept in the executions row back (in place)."""
    details = event.get(f"{event.get('EventType')}Details")
    if isinstance(details, dict):
        slot = details.get("Result")
        if isinstance(slot, dict) and STORED_IN in slot:
            details["Result"] = {"Payload": execution_result, "Truncated": bool(slot.get("Truncated", False))}
    return event
