"""The in-memory view of one execution during one invocation, and the checkpoint queue.

Updates are either *async* (queued: an at-least-once START, a CONTEXT START) or *sync* (flushed
now, together with everything queued). So an at-least-once step costs one checkpoint call: its
START rides with its SUCCEED.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .backend import DurableService
from .errors import ReplayFrontier, SuspendExecution
from .live import LiveEvents
from .model import MAX_BATCH_BYTES, MAX_BATCH_UPDATES, Operation, OperationUpdate

log = logging.getLogger("duragent.durable.state")

START_FLUSH_DELAY = 0.1
"""A queued START is flushed on its own once its step has run this long (seconds): a fast step
costs one commit, a slow one shows up as started while it runs (and a crash leaves it visible)."""


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
        self.read_only = False
        """Set by replay-check: any write, or any step body about to run, ends the replay there."""
        self._pending: list[OperationUpdate] = []
        self._lock = threading.RLock()
        self.checkpoint_calls = 0
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._flusher: threading.Thread | None = None
        self._closed = False
        self._background_error: BaseException | None = None
        self._live: LiveEvents | None = None

    @property
    def live(self) -> LiveEvents:
        """The execution's live channel (a no-op where the backend has none, as on Lambda)."""
        if self._live is None:
            self._live = LiveEvents(getattr(self.service, "live", None), self.execution_id)
        return self._live

    def get(self, op_id: str) -> Operation | None:
        return self.operations.get(op_id)

    def guard_read_only(self, update: OperationUpdate | None = None, what: str | None = None) -> None:
        """In a read-only replay, stop where the code would write (or run a step body) again."""
        if not self.read_only:
            return
        if what is None and update is not None:
            what = f"{update.Action.value} {update.Type.value} {update.Name or update.Id[:12]!r}"
        raise ReplayFrontier(what or "new work")

    def enqueue(self, update: OperationUpdate, flush_after: float | None = START_FLUSH_DELAY) -> None:
        """Queue an update that may ride with the next sync checkpoint (or, if none comes within
        ``flush_after`` seconds, is flushed in the background)."""
        self.guard_read_only(update)
        with self._lock:
            self._pending.append(update)
        if flush_after is not None:
            self._arm(flush_after)

    def _arm(self, delay: float) -> None:
        with self._cond:
            if self._closed:
                return
            if self._deadline is not None:
                return  # already armed: the flusher wakes by itself, no thread switch per step
            self._deadline = time.monotonic() + delay
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_in_background, daemon=True,
                                                 name="duragent-flush")
                self._flusher.start()
            self._cond.notify()

    def _flush_in_background(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (self._deadline is None or self._deadline > time.monotonic()):
                    timeout = None if self._deadline is None else self._deadline - time.monotonic()
                    self._cond.wait(timeout)
                if self._closed:
                    return
                self._deadline = None
            try:
                self.flush()
            except BaseException as exc:  # surfaced to the handler thread at its next checkpoint
                self._background_error = exc
                log.debug("background flush failed", exc_info=True)

    def close(self) -> None:
        """Stop the background flusher (queued updates stay queued)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._flusher is not None and self._flusher is not threading.current_thread():
            self._flusher.join(timeout=5)

    def checkpoint(self, *updates: OperationUpdate) -> None:
        """Persist ``updates`` (and everything queued) before returning."""
        for update in updates:
            self.guard_read_only(update)
        with self._lock:
            self._pending.extend(updates)
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if self._background_error is not None:
                error, self._background_error = self._background_error, None
                raise error
            while self._pending:
                batch = self._take_batch()
                self._send(batch)

    def _take_batch(self) -> list[OperationUpdate]:
        batch: list[OperationUpdate] = []
        size = 0
        while self._pending and len(batch) < MAX_BATCH_UPDATES:
            update_size = _approximate_size(self._pending[0])
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


def _approximate_size(update: OperationUpdate) -> int:
    """An update's JSON size, exactly only when it could matter: payloads and errors dominate, the
    rest is a few hundred bytes of ids and names."""
    payload = len(update.Payload) if update.Payload else 0
    error = update.Error
    estimate = payload + 512 + (len(error.ErrorMessage or "") + len(error.ErrorData or "")
                                + sum(len(line) for line in error.StackTrace or []) if error else 0)
    if estimate < MAX_BATCH_BYTES // 8:
        return estimate
    return len(json.dumps(update.to_wire()))
