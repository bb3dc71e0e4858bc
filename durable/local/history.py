"""History events in the ``GetDurableExecutionHistory`` shape, built from operation changes.

Every key the conformance suite looks for is present (``StepStartedDetails: {}`` included),
durations and attempts are integers, payloads are the stored strings.
"""

from __future__ import annotations

from typing import Any

from ..model import ErrorObject, Operation, OperationUpdate


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
"""Marks an event payload kept only once, in the row that already holds it (the operation, or the
execution's result): history is materialized on read, so the journal holds each payload once."""

_INLINE_BELOW = 96  # a marker costs about this much: smaller payloads are simply copied


def stored_payload(value: str | None, where: str) -> dict[str, Any]:
    """``payload(value)`` for the history API, without storing a second copy of a large value."""
    if value is None or len(value) < _INLINE_BELOW:
        return payload(value)
    return {STORED_IN: where, "Truncated": False}


_OPERATION_PAYLOADS = {
    "ExecutionStarted": lambda op: op.ExecutionDetails and op.ExecutionDetails.InputPayload,
    "StepSucceeded": lambda op: op.StepDetails and op.StepDetails.Result,
    "ContextSucceeded": lambda op: op.ContextDetails and op.ContextDetails.Result,
    "CallbackSucceeded": lambda op: op.CallbackDetails and op.CallbackDetails.Result,
    "ChainedInvokeSucceeded": lambda op: op.ChainedInvokeDetails and op.ChainedInvokeDetails.Result,
}


def materialize(events: list[dict[str, Any]], operations: dict[str, Operation],
                execution_result: str | None) -> list[dict[str, Any]]:
    """Put the payloads kept elsewhere back into their events (in place; returns ``events``)."""
    for event in events:
        details = event.get(f"{event.get('EventType')}Details")
        if not isinstance(details, dict):
            continue
        for key in ("Input", "Result"):
            slot = details.get(key)
            if not isinstance(slot, dict) or STORED_IN not in slot:
                continue
            if slot[STORED_IN] == "execution":
                value = execution_result
            else:
                op = operations.get(str(event.get("Id")))
                getter = _OPERATION_PAYLOADS.get(str(event.get("EventType")))
                value = (getter(op) or None) if op is not None and getter is not None else None
            details[key] = {"Payload": value, "Truncated": bool(slot.get("Truncated", False))}
    return events


OP_REF = "_op"
"""Stored events name their operation by its sequence number instead of repeating its id, name,
subtype and parent (64-hex ids add up: this halves the journal's per-event bytes)."""


def compact(event: dict[str, Any], seq: int, op: Operation) -> dict[str, Any]:
    """The stored form of an event about ``op`` (``seq`` is the operation row's sequence)."""
    if event.get("Id") != op.Id or event.get("Name") != op.Name or \
            event.get("SubType", op.SubType) != op.SubType or event.get("ParentId") != op.ParentId:
        return event  # not the operation's own identity: keep it as it is
    stored = {k: v for k, v in event.items() if k not in ("Id", "Name", "SubType", "ParentId")}
    stored[OP_REF] = seq
    return stored


def expand(event: dict[str, Any], by_seq: dict[int, Operation]) -> dict[str, Any]:
    """The API form of a stored event: the operation's identity put back, as ``base_event`` wrote it."""
    seq = event.get(OP_REF)
    if seq is None:
        return event
    op = by_seq.get(int(seq))
    out: dict[str, Any] = {"EventType": event["EventType"], "EventTimestamp": event.get("EventTimestamp")}
    if op is not None:
        if op.Type.value != "EXECUTION":
            out["SubType"] = op.SubType
        out["Id"] = op.Id
        out["Name"] = op.Name
        if op.ParentId is not None:
            out["ParentId"] = op.ParentId
    out.update((k, v) for k, v in event.items() if k not in ("EventType", "EventTimestamp", OP_REF))
    return out


def error_payload(error: ErrorObject | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(error, ErrorObject):
        error = error.to_wire()
    return {"Payload": error or {}, "Truncated": False}


def with_details(event: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    event[f"{event['EventType']}Details"] = details
    return event
