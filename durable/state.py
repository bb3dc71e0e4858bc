"""The in-memory view of one execution during one invocation, and the checkpoint queue.

Updates are either *async* (queued: an at-least-once START, a CONTEXT START) or *sync* (flushed
now, together with everything queued). So an at-least-once step costs one checkpoint call: its
START rides with its SUCCEED.

Operations may arrive unparsed (the local store hands over rows with a ``load()``): they are parsed
when the handler reaches them, one at a time, and not kept parsed, so replaying 100,000 steps
neither waits for 100,000 models to be built nor holds them.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from .backend import DurableService
from .errors import ReplayFrontier, SuspendExecution, UnreadableOperation
from .live import LiveEvents
from .model import (
    MAX_BATCH_BYTES,
    MAX_BATCH_UPDATES,
    Operation,
    OperationStatus,
    OperationType,
    OperationUpdate,
)

log = logging.getLogger("duragent.durable.state")

START_FLUSH_DELAY = 0.1
"""A queued START is flushed on its own once its step has run this long (seconds): a fast step
costs one commit, a slow one shows up as started while it runs (and a crash leaves it visible)."""


def _loaded(op: Any) -> Operation:
    if isinstance(op, Operation):
        return op
    try:
        return op.load()  # type: ignore[no-any-return]
    except Exception as exc:  # a damaged row: the execution is set aside, not failed
        raise UnreadableOperation(str(op[0]), exc) from exc


class Operations(dict[str, Operation]):
    """Operations by id; a value may be a stored operation that is parsed on each access (and not
    kept parsed: see the module docstring). Membership, ``len`` and iteration over ids parse nothing."""

    def __getitem__(self, op_id: str) -> Operation:
        return _loaded(super().__getitem__(op_id))

    def get(self, op_id: str, default: Any = None) -> Any:
        op = super().get(op_id)
        return default if op is None else _loaded(op)

    def values(self) -> Iterator[Operation]:  # type: ignore[override]
        return (_loaded(op) for op in super().values())

    def items(self) -> Iterator[tuple[str, Operation]]:  # type: ignore[override]
        return ((op_id, _loaded(op)) for op_id, op in super().items())


class _FlushTimer:
    """One thread per process flushes queued STARTs whose deadline passed, for every execution
    state (an invocation starts no thread of its own)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, weakref.ref[ExecutionState]]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def schedule(self, state: ExecutionState, deadline: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._order), weakref.ref(state)))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True, name="duragent-flush")
                self._thread.start()
            elif self._heap[0][2]() is state:
                self._cond.notify()  # a new earliest deadline

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, ref = heapq.heappop(self._heap)
            state = ref()
            if state is not None:
                state._deadline_passed()


_TIMER = _FlushTimer()


class ExecutionState:
    def __init__(self, *, arn: str, token: str, operations: list[Operation] | dict[str, Any], service: DurableService,
                 now: Callable[[], float], hooks: Any = None) -> None:
        self.arn = arn
        self.execution_id = arn.rsplit("/", 1)[-1]
        self.token: str | None = token
        # a mapping is copied (its owner may go on changing it), a list indexed by id
        self.operations: dict[str, Operation] = Operations(operations) if isinstance(operations, dict) else \
            Operations((op.Id, op) for op in operations)
        self.service = service
        self.now = now
        self.hooks = hooks
        self.read_only = False
        """Set by replay-check: any write, or any step body about to run, ends the replay there."""
        self._pending: list[OperationUpdate] = []
        self._lock = threading.RLock()
        self.checkpoint_calls = 0
        self._deadline: float | None = None
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

    @staticmethod
    def replayed_result(op: Any, name: str | None, sub_type: str | None,
                        parent_id: str | None) -> tuple[bool, str | None]:
        """(True, the recorded result) if ``op`` is a step that succeeded under this identity, else
        (False, None): the replay of a finished step, without a model built where the backend's
        rows allow it (the local store's rows answer ``replay_result`` themselves)."""
        peek = getattr(op, "replay_result", None)
        if peek is not None:
            return peek(name, sub_type, parent_id)  # type: ignore[no-any-return]
        if isinstance(op, Operation) and op.Type is OperationType.STEP and op.Status is OperationStatus.SUCCEEDED \
                and op.Name == name and op.SubType == sub_type and op.ParentId == parent_id:
            return True, op.StepDetails.Result if op.StepDetails else None
        return False, None

    def input_payload(self) -> str | None:
        """The execution's input (its EXECUTION operation's payload), without a model where the
        backend's rows allow it (the local store's rows read it themselves); a row that does not
        read back is loaded, which names the damage (``UnreadableOperation``)."""
        for op in dict.values(self.operations):
            if op.Type == OperationType.EXECUTION:
                reader = getattr(op, "input_payload", None)
                if reader is not None:
                    try:
                        return reader()  # type: ignore[no-any-return]
                    except Exception:
                        op = self.operations[op.Id]
                return op.ExecutionDetails.InputPayload if op.ExecutionDetails else None
        return None

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
        with self._lock:
            if self._closed or self._deadline is not None:
                return  # already armed: nothing to do per step
            self._deadline = time.monotonic() + delay
        _TIMER.schedule(self, self._deadline)

    def _deadline_passed(self) -> None:
        """Called by the flush timer: flush what is still queued."""
        with self._lock:
            if self._closed:
                return
            self._deadline = None
            if not self._pending:
                return
            try:
                self.flush()
            except BaseException as exc:  # surfaced to the handler thread at its next checkpoint
                self._background_error = exc
                log.debug("background flush failed", exc_info=True)

    def close(self) -> None:
        """Stop flushing in the background (queued updates stay queued)."""
        with self._lock:
            self._closed = True

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
        pending = self._pending
        if len(pending) <= 2 and _small(pending):
            self._pending = []  # the common batch: a START and its SUCCEED, well under every limit
            return pending
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


_SMALL = MAX_BATCH_BYTES // 8


def _small(updates: list[OperationUpdate]) -> bool:
    """No error, and no payload over an eighth of a batch's limit (a plain loop: runs every step)."""
    for update in updates:
        if update.Error is not None or (update.Payload is not None and len(update.Payload) > _SMALL):
            return False
    return True


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
