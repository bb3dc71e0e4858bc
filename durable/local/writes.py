"""What one transaction writes: operation rows, history events and the execution's counters,
collected in memory and flushed together (one commit per checkpoint call)."""

from __future__ import annotations

from typing import Any

from ..model import Operation
from . import history as H
from .store import OpRow, Tx


class Batch:
    """The effects of one checkpoint batch, written in one go at the end."""

    def __init__(self, tx: Tx, execution: dict[str, Any], now: float) -> None:
        self.tx = tx
        self.execution = execution
        self.now = now
        self.version = int(execution["version"]) + 1
        self.event_seq = int(execution["event_seq"])
        self.op_seq = int(execution["op_seq"])
        self.events: list[tuple[int, dict[str, Any]]] = []
        self.rows: dict[str, OpRow] = {}
        self.ops: dict[str, Operation] = {}

    def event(self, event: dict[str, Any]) -> None:
        self.event_seq += 1
        event["EventId"] = self.event_seq
        row, op = self.rows.get(event.get("Id", "")), self.ops.get(event.get("Id", ""))
        if row is not None and op is not None:
            event = H.compact(event, row.seq, op)
        self.events.append((self.event_seq, event))

    def put(self, op: Operation, existing: OpRow | None, *, due_at: float | None = None,
            callback_id: str | None = None, timeout_at: float | None = None,
            heartbeat_seconds: int | None = None) -> OpRow:
        if existing is None:
            self.op_seq += 1
        row = OpRow(self.execution["id"], op.Id, existing.seq if existing else self.op_seq, self.version,
                    op.Type.value, op.Status.value, due_at,
                    callback_id if callback_id is not None else (existing.callback_id if existing else None),
                    timeout_at if timeout_at is not None else (existing.timeout_at if existing else None),
                    heartbeat_seconds if heartbeat_seconds is not None else
                    (existing.heartbeat_seconds if existing else None),
                    "")  # serialized once, at flush: a START replaced by its SUCCEED is never encoded
        self.rows[op.Id] = row
        self.ops[op.Id] = op
        return row

    def flush(self, **execution_fields: Any) -> None:
        if self.rows:
            for row in self.rows.values():
                row.data = self.ops[row.id].model_dump_json(exclude_none=True)
            self.tx.put_operations(list(self.rows.values()))
        if self.events:
            self.tx.add_events(self.execution["id"], self.events)
        self.tx.update_execution(self.execution["id"], version=self.version, event_seq=self.event_seq,
                                 op_seq=self.op_seq, **execution_fields)


def has_stored_payloads(events: list[dict[str, Any]]) -> bool:
    """Whether any Input/Result payload is kept in its operation row rather than in the event."""
    for event in events:
        details = event.get(f"{event.get('EventType')}Details")
        if isinstance(details, dict) and any(isinstance(details.get(key), dict) and H.STORED_IN in details[key]
                                             for key in ("Input", "Result")):
            return True
    return False


def load_operation(row: OpRow) -> Operation:
    return Operation.model_validate_json(row.data)
