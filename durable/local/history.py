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


def error_payload(error: ErrorObject | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(error, ErrorObject):
        error = error.to_wire()
    return {"Payload": error or {}, "Truncated": False}


def with_details(event: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    event[f"{event['EventType']}Details"] = details
    return event
