"""What one transaction appends to an execution's journal: a row per operation change (with the
codes of the history events it produced) and the execution-level events, collected in memory and
written together at the end (one commit per checkpoint call)."""

from __future__ import annotations

from typing import Any

from ..model import Operation, OperationStatus, OperationType
from .rows import StoredOperation, compact_json, op_id_of, op_key, operation_state, pack, parse, unpack
from .store import JournalRow, Tx

_PENDING = {(OperationType.STEP.value, OperationStatus.PENDING.value), (OperationType.STEP.value, OperationStatus.READY.value),
            (OperationType.WAIT.value, OperationStatus.STARTED.value),
            (OperationType.CALLBACK.value, OperationStatus.STARTED.value),
            (OperationType.CHAINED_INVOKE.value, OperationStatus.STARTED.value)}


def is_pending(type_: str, status: str) -> bool:
    """Work the service completes later: a retry, a wait, a callback, a chained invoke."""
    return (type_, status) in _PENDING


class Batch:
    """The effects of one transaction on one execution, appended in one go at the end."""

    def __init__(self, tx: Tx, execution: dict[str, Any], now: float, last_key: int, *,
                 invocation: int | None = None) -> None:
        self.tx = tx
        self.execution = execution
        self.num = int(execution["num"])
        self.now = now
        self.invocation = invocation
        """The invocation whose checkpoint this is (None: the service changes the execution itself)."""
        self.next_key = last_key + 1
        self.rows: list[JournalRow] = []
        self.ops: dict[str, Operation | StoredOperation] = {}
        """Each operation this batch changed, as it is after the batch."""
        self.latest: dict[str, JournalRow] = {}
        """Each operation's latest row written by this batch."""
        self._retire: list[int] = []

    def current(self, op_id: str, row: JournalRow | None) -> Operation | None:
        """The operation as it is now: changed in this batch, else as ``row`` (its latest) holds it."""
        op = self.ops.get(op_id)
        if op is not None:
            return op if isinstance(op, Operation) else op.load()
        return load_operation(row) if row is not None else None

    def change(self, op_id: str, type_: str, status: str, data: str, events: str, existing: JournalRow | None, *,
               due_at: float | None = None, callback_id: str | None = None, timeout_at: float | None = None,
               heartbeat_seconds: int | None = None, extra: str | None = None) -> JournalRow:
        """Record a change of operation ``op_id``: its state after it (``data``) and the codes of the
        events it produced. A change right after another of the same operation (a START and its
        SUCCEED in one batch) becomes one row carrying both events."""
        pending = 1 if (type_, status) in _PENDING else None
        last = self.rows[-1] if self.rows else None
        if last is not None and self.latest.get(op_id) is last:
            last.type, last.status, last.data, last.pending, last.due_at = type_, status, pack(data), pending, due_at
            last.ev = (last.ev or "") + events or None
            if extra is not None:
                last.x = extra
            if callback_id is not None:
                last.callback_id, last.timeout_at, last.heartbeat_seconds = callback_id, timeout_at, heartbeat_seconds
            return last
        previous = self.latest.get(op_id) or existing
        if previous is not None and previous.pending:
            if previous in self.rows:
                previous.pending = previous.due_at = None
            else:
                self._retire.append(previous.k)
        row = JournalRow(self.next_key, op_key(op_id), self.invocation, self.now, events or None, type_, status,
                         pending, due_at, callback_id, timeout_at, heartbeat_seconds, extra, pack(data))
        self.next_key += 1
        self.rows.append(row)
        self.latest[op_id] = row
        return row

    def put(self, op: Operation, existing: JournalRow | None, events: str = "", *, due_at: float | None = None,
            callback_id: str | None = None, timeout_at: float | None = None, heartbeat_seconds: int | None = None,
            extra: dict[str, Any] | None = None) -> JournalRow:
        """``change`` for an operation given as a model (every path but the common step's)."""
        self.ops[op.Id] = op
        return self.change(op.Id, op.Type.value, op.Status.value, operation_state(op), events, existing,
                           due_at=due_at, callback_id=callback_id, timeout_at=timeout_at,
                           heartbeat_seconds=heartbeat_seconds,
                           extra=compact_json(extra) if extra else None)

    def event(self, event: dict[str, Any]) -> None:
        """An execution-level event (no operation holds it): stored as it is shown."""
        self.rows.append(JournalRow(self.next_key, None, self.invocation, self.now, None, None, None, None, None,
                                    None, None, None, None, pack(compact_json(event))))
        self.next_key += 1

    @property
    def last_key(self) -> int:
        return self.next_key - 1

    def flush(self, **execution_fields: Any) -> None:
        if self.rows:
            self.tx.append(self.rows)
        if self._retire:
            self.tx.retire(self._retire)
        if execution_fields:
            self.tx.update_execution(self.execution["id"], **execution_fields)


def load_operation(row: JournalRow) -> Operation:
    assert row.op is not None and row.type is not None and row.status is not None
    return parse(op_id_of(row.op), row.type, row.status, unpack(row.data))


def stored_operation(row: JournalRow) -> StoredOperation:
    assert row.op is not None and row.type is not None and row.status is not None
    return StoredOperation(op_id_of(row.op), row.type, row.status, row.data, row.k)
