"""Schema migrations, run by ``Store`` when it opens an older store (inside one transaction: the
store is migrated whole or not at all). With store.py, the only module that speaks SQL.

Version 2 kept each operation's latest state (``operations``), every history event as a row of
its own (``events``, compacted: an event named its operation by sequence number and a large payload
by a marker), and counters in the executions row rewritten at every checkpoint. Version 3 keeps one
journal row per operation change and rebuilds events from them (store.py). A version-2 execution
becomes: its events, each exactly as the history API showed it, as execution-level journal rows, in
order; then one row per operation with its latest state (producing no events), so that it replays,
and its timers and callbacks go on, as before.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from ..model import Operation, OperationType
from .rows import op_key, operation_state, pack
from .store import _SCHEMA, key_range
from .writes import is_pending

_V2_INDEXES = ("executions_runnable", "executions_leased", "executions_status", "executions_timeout",
               "operations_due", "operations_callback")
_COPIED = ("id", "function", "target", "name", "input", "status", "result", "error", "started_at", "ended_at",
           "runnable", "lease_owner", "lease_expires", "invocation_id", "invocation_started", "invocations",
           "parent_execution", "parent_operation", "tenant_id", "info", "timeout_at")


def _v2_payload(op: Operation | None, event_type: str) -> str | None:
    if op is None:
        return None
    getter: dict[str, Callable[[Operation], Any]] = {
        "ExecutionStarted": lambda o: o.ExecutionDetails and o.ExecutionDetails.InputPayload,
        "StepSucceeded": lambda o: o.StepDetails and o.StepDetails.Result,
        "ContextSucceeded": lambda o: o.ContextDetails and o.ContextDetails.Result,
        "CallbackSucceeded": lambda o: o.CallbackDetails and o.CallbackDetails.Result,
        "ChainedInvokeSucceeded": lambda o: o.ChainedInvokeDetails and o.ChainedInvokeDetails.Result,
    }
    read = getter.get(event_type)
    return (read(op) or None) if read is not None else None


def _v2_event(event: dict[str, Any], by_seq: dict[int, Operation], by_id: dict[str, Operation]) -> dict[str, Any]:
    """A version-2 stored event as the history API showed it (identity and operation payloads put
    back; an execution result marker stays a marker: version 3 resolves those the same way)."""
    seq = event.get("_op")
    if seq is not None:
        op = by_seq.get(int(seq))
        out: dict[str, Any] = {"EventType": event["EventType"], "EventTimestamp": event.get("EventTimestamp")}
        if op is not None:
            if op.Type != OperationType.EXECUTION:
                out["SubType"] = op.SubType
            out["Id"] = op.Id
            out["Name"] = op.Name
            if op.ParentId is not None:
                out["ParentId"] = op.ParentId
        out.update((k, v) for k, v in event.items() if k not in ("EventType", "EventTimestamp", "_op"))
        event = out
    details = event.get(f"{event.get('EventType')}Details")
    if isinstance(details, dict):
        for key in ("Input", "Result"):
            slot = details.get(key)
            if isinstance(slot, dict) and slot.get("StoredIn") == "operation":
                value = _v2_payload(by_id.get(str(event.get("Id"))), str(event.get("EventType")))
                details[key] = {"Payload": value, "Truncated": bool(slot.get("Truncated", False))}
    event.pop("EventId", None)
    return event


def migrate_2_to_3(conn: sqlite3.Connection) -> str:
    for index in _V2_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {index}")
    for table in ("executions", "operations", "events"):
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_v2")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    columns = ", ".join(_COPIED)
    executions = conn.execute(f"SELECT {columns} FROM executions_v2 ORDER BY rowid").fetchall()
    for execution in executions:
        cur = conn.execute(f"INSERT INTO executions ({columns}) VALUES ({', '.join('?' for _ in _COPIED)})",
                           tuple(execution))
        num = int(cur.lastrowid or 0)
        execution_id = execution[0]
        op_rows = conn.execute("SELECT seq, type, status, due_at, callback_id, timeout_at, heartbeat_seconds, data "
                               "FROM operations_v2 WHERE execution_id = ? ORDER BY seq", (execution_id,)).fetchall()
        ops = [(row, Operation.model_validate_json(row[7])) for row in op_rows]
        by_seq = {row[0]: op for row, op in ops}
        by_id = {op.Id: op for _, op in ops}
        k = key_range(num)[0]
        journal: list[tuple[Any, ...]] = []
        for (data,) in conn.execute("SELECT data FROM events_v2 WHERE execution_id = ? ORDER BY event_id",
                                    (execution_id,)):
            event = _v2_event(json.loads(data), by_seq, by_id)
            k += 1
            journal.append((k, None, None, event.get("EventTimestamp") or 0.0, None, None, None, None, None, None, None,
                            None, None, pack(json.dumps(event, separators=(",", ":")))))
        for row, op in ops:
            _, type_, status, due_at, callback_id, timeout_at, heartbeat, _ = row
            k += 1
            journal.append((k, op_key(op.Id), None, op.EndTimestamp or op.StartTimestamp or 0.0, None, type_, status,
                            1 if is_pending(type_, status) else None, due_at, callback_id, timeout_at, heartbeat, None,
                            pack(operation_state(op))))
        conn.executemany("INSERT INTO journal (k, op, inv, at, ev, type, status, pending, due_at, callback_id, "
                         "timeout_at, heartbeat_seconds, x, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         journal)
    for table in ("executions", "operations", "events"):
        conn.execute(f"DROP TABLE {table}_v2")
    return "3"


MIGRATIONS: dict[str, Callable[[sqlite3.Connection], str]] = {"2": migrate_2_to_3}
"""From a schema version to the function that migrates it one step (returning the new version)."""
