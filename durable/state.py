"""The in-memory view of one execution during one invocation, and the checkpoint queue.

Updates are either *async* (queued: an at-least-once START, a CONTEXT START) or *sync* (flushed
now, together with everything queued). So an at-least-once step costs one checkpoint call: its
START rides with its SUCCEED.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from .backend import DurableService
from .errors import SuspendExecution
from .model import MAX_BATCH_BYTES, MAX_BATCH_UPDATES, Operation, OperationUpdate


class ExecutionState:
    def __init__(self, *, arn: str, token: str, operations: list[Operation], service: DurableService,
                 now: Callable[[], float], hooks: Any = None) -> None:
        self.arn = arn
        self.execution_id = arn.rsplit("/", 1)[-1]
        self.token: str | None = token
        self.operations: dict[str, Operation] = {op.Id: op for op in operations}
        self.service = service
        self.now = now
        self.hooks = hooks
        self._pending: list[OperationUpdate] = []
        self._lock = threading.RLock()
        self.checkpoint_calls = 0

    def get(self, op_id: str) -> Operation | None:
        return self.operations.get(op_id)

    def enqueue(self, update: OperationUpdate) -> None:
        """Queue an update that may ride with the next sync checkpoint."""
        with self._lock:
            self._pending.append(update)

    def checkpoint(self, *updates: OperationUpdate) -> None:
        """Persist ``updates`` (and everything queued) before returning."""
        with self._lock:
            self._pending.extend(updates)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            while self._pending:
                batch = self._take_batch()
                self._send(batch)

    def _take_batch(self) -> list[OperationUpdate]:
        batch: list[OperationUpdate] = []
        size = 0
        while self._pending and len(batch) < MAX_BATCH_UPDATES:
            update_size = len(json.dumps(self._pending[0].to_wire()))
            if batch and size + update_size > MAX_BATCH_BYTES:
                break
            batch.append(self._pending.pop(0))
            size += update_size
        return batch

    def _send(self, batch: list[OperationUpdate]) -> None:
        if self.token is None:
            raise SuspendExecution("checkpointing has ended for this invocation")
        response = self.service.checkpoint(self.arn, self.token, batch)
        self.checkpoint_calls += 1
        self.token = response.token
        self.merge(response.operations)
        marker = response.next_marker
        while marker and self.token:
            page = self.service.get_state(self.arn, self.token, marker)
            self.merge(page.operations)
            marker = page.next_marker

    def merge(self, operations: list[Operation]) -> None:
        for op in operations:
            self.operations[op.Id] = op
