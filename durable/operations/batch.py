"""ctx.parallel and ctx.map: branches as child contexts, run concurrently, judged by a
completion policy, and checkpointed as one BatchResult. One journal logic (BatchRun); branches run
on threads in a sync handler and as asyncio tasks in an async one.

Results are kept in index order whatever order branches finish in, so a replay sees the same
BatchResult by construction. A branch that suspends frees its slot; the batch suspends once no
branch can make progress, and finished branches are not re-run on resume. A finished batch whose
result was too large to checkpoint (ReplayChildren) is rebuilt from exactly the branches that ran
the first time, with the recorded completion reason; nothing is decided or started anew.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from ..config import ChildConfig, CompletionConfig, MapConfig, NestingType, ParallelConfig
from ..errors import (
    CheckpointError,
    ChildContextError,
    DurableOperationError,
    NonDeterministicExecutionError,
    SuspendExecution,
    UsageError,
)
from ..flow import Flow, adrive, drive
from ..journal import operation_id
from ..model import Operation, OperationStatus
from ..serdes import DEFAULT_SERDES, Serdes, deserialize, serialize
from ._common import error_object
from .child import run_child, user_body

if TYPE_CHECKING:
    from ..context import ContextBase


class BatchItemStatus(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    STARTED = "STARTED"


class CompletionReason(StrEnum):
    ALL_COMPLETED = "ALL_COMPLETED"
    MIN_SUCCESSFUL_REACHED = "MIN_SUCCESSFUL_REACHED"
    FAILURE_TOLERANCE_EXCEEDED = "FAILURE_TOLERANCE_EXCEEDED"


@dataclass
class BatchItem:
    index: int
    status: BatchItemStatus
    result: Any = None
    error: DurableOperationError | None = None


@dataclass
class BatchResult:
    """What ctx.parallel / ctx.map return. Items that never started are not in ``all``."""

    all: list[BatchItem] = field(default_factory=list)
    completion_reason: CompletionReason = CompletionReason.ALL_COMPLETED

    @classmethod
    def from_results(cls, results: Sequence[Any],
                     completion_reason: CompletionReason = CompletionReason.ALL_COMPLETED) -> BatchResult:
        """A batch in which every item succeeded (handy for custom serdes)."""
        return cls([BatchItem(i, BatchItemStatus.SUCCEEDED, r) for i, r in enumerate(results)], completion_reason)

    def get_results(self) -> list[Any]:
        """Results of the items that succeeded, in index order."""
        return [item.result for item in self.all if item.status == BatchItemStatus.SUCCEEDED]

    def succeeded(self) -> list[BatchItem]:
        return [item for item in self.all if item.status == BatchItemStatus.SUCCEEDED]

    def failed(self) -> list[BatchItem]:
        return [item for item in self.all if item.status == BatchItemStatus.FAILED]

    def started(self) -> list[BatchItem]:
        return [item for item in self.all if item.status == BatchItemStatus.STARTED]

    def get_errors(self) -> list[DurableOperationError]:
        return [item.error for item in self.all if item.error is not None]

    @property
    def has_failure(self) -> bool:
        return any(item.status == BatchItemStatus.FAILED for item in self.all)

    @property
    def status(self) -> BatchItemStatus:
        return BatchItemStatus.FAILED if self.has_failure else BatchItemStatus.SUCCEEDED

    @property
    def success_count(self) -> int:
        return len(self.succeeded())

    @property
    def failure_count(self) -> int:
        return len(self.failed())

    @property
    def started_count(self) -> int:
        return len(self.started())

    @property
    def total_count(self) -> int:
        return len(self.all)

    def throw_if_error(self) -> None:
        """Raise the first branch error, if any."""
        for item in self.all:
            if item.error is not None:
                raise item.error

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.get_results())


class BatchSerdes:
    """The default checkpoint form of a BatchResult: a JSON envelope holding each item's own
    payload string, written with the item serdes (so custom item serdes round-trip)."""

    def __init__(self, item_serdes: Serdes[Any]) -> None:
        self.item_serdes = item_serdes

    def serialize(self, value: BatchResult) -> str | None:
        items = []
        for item in value.all:
            entry: dict[str, Any] = {"index": item.index, "status": item.status.value}
            if item.status == BatchItemStatus.SUCCEEDED:
                entry["payload"] = serialize(self.item_serdes, item.result)
            if item.error is not None:
                entry["error"] = error_object(item.error).to_wire()
            items.append(entry)
        return json.dumps({"all": items, "completionReason": value.completion_reason.value},
                          separators=(",", ":"))

    def deserialize(self, data: str | None) -> BatchResult:
        if not data:
            return BatchResult()
        raw = json.loads(data)
        items = []
        for entry in raw.get("all", []):
            status = BatchItemStatus(entry["status"])
            result = deserialize(self.item_serdes, entry.get("payload")) if status == BatchItemStatus.SUCCEEDED else None
            error = ChildContextError.from_error_object(entry["error"]) if entry.get("error") else None
            items.append(BatchItem(int(entry["index"]), status, result, error))
        return BatchResult(items, CompletionReason(raw.get("completionReason", "ALL_COMPLETED")))


def _summary(result: BatchResult) -> str:
    return json.dumps({"totalCount": result.total_count, "successCount": result.success_count,
                       "failureCount": result.failure_count, "completionReason": result.completion_reason.value})


def _recorded_outcome(op: Operation | None) -> tuple[int, CompletionReason] | None:
    """(branches started, completion reason) of a batch that already finished with its result
    replaced by the summary (ReplayChildren); None when the batch is running for real."""
    if op is None or op.Status != OperationStatus.SUCCEEDED or op.ContextDetails is None \
            or not op.ContextDetails.ReplayChildren:
        return None
    try:
        summary = json.loads(op.ContextDetails.Result or "")
        return int(summary["totalCount"]), CompletionReason(summary["completionReason"])
    except (ValueError, TypeError, KeyError):
        return None  # not our summary: fall back to running the batch again


def validate(config: ParallelConfig) -> None:
    """Configuration errors fail before anything is checkpointed."""
    if config.max_concurrency is not None and config.max_concurrency < 1:
        raise UsageError(f"max_concurrency must be at least 1 (or None for no limit), got {config.max_concurrency}")
    cc = config.completion_config
    if cc is None:
        return
    if cc.min_successful is not None and cc.min_successful < 0:
        raise UsageError(f"min_successful must not be negative, got {cc.min_successful}")
    if cc.tolerated_failure_count is not None and cc.tolerated_failure_count < 0:
        raise UsageError(f"tolerated_failure_count must not be negative, got {cc.tolerated_failure_count}")
    pct = cc.tolerated_failure_percentage
    if pct is not None and not 0 <= pct <= 100:
        raise UsageError(f"tolerated_failure_percentage must be within 0..100, got {pct}")


def decide(succeeded: int, failed: int, total: int, cc: CompletionConfig | None) -> CompletionReason | None:
    """Done yet? Tolerance is checked first (it wins over min_successful); a percentage is of the
    total branch count and must be strictly exceeded."""
    if cc is None:
        return None
    if cc.tolerated_failure_count is not None and failed > cc.tolerated_failure_count:
        return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    if cc.tolerated_failure_percentage is not None and total and failed * 100.0 / total > cc.tolerated_failure_percentage:
        return CompletionReason.FAILURE_TOLERANCE_EXCEEDED
    if cc.min_successful is not None and succeeded >= cc.min_successful:
        return CompletionReason.MIN_SUCCESSFUL_REACHED
    return None


Branch = tuple[str | None, Callable[..., Any]]
"""(name, fn) where ``fn(child_ctx)`` is the branch body (called, or awaited in an async handler)."""


def run_batch(ctx: ContextBase, branches: list[Branch], *, name: str | None, config: ParallelConfig,
              kind: str) -> Flow[BatchResult]:
    validate(config)
    item_serdes = config.item_serdes or DEFAULT_SERDES
    op_serdes = config.serdes or BatchSerdes(item_serdes)
    branch_type = "ParallelBranch" if kind == "Parallel" else "MapIteration"

    def body(inner: ContextBase) -> Flow[BatchResult]:
        run = BatchRun(inner, branches, config, branch_type, item_serdes)
        if inner.is_async:
            yield run_branches_as_tasks(run)
        else:
            run_branches_in_threads(run)
        return run.outcome()

    result: BatchResult = yield from run_child(ctx, body, name=name,
                                               config=ChildConfig(serdes=op_serdes, summary=_summary), sub_type=kind)
    return result


class BatchRun:
    """The journal logic of one batch, whoever schedules its branches: what each branch records,
    when the completion policy is met, and the BatchResult. Threads (sync handlers) and asyncio
    tasks (async handlers) only decide when ``branch(index)`` runs."""

    def __init__(self, inner: ContextBase, branches: list[Branch], config: ParallelConfig, branch_type: str,
                 item_serdes: Serdes[Any]) -> None:
        batch_id = inner.parent_id
        assert batch_id is not None
        self.inner = inner
        self.batch_id = batch_id
        self.branches = branches
        self.config = config
        self.branch_type = branch_type
        self.item_serdes = item_serdes
        self.total = len(branches)
        self.items: dict[int, BatchItem] = {}
        self.suspended: list[SuspendExecution] = []
        self.reason: CompletionReason | None = None
        self._lock = threading.Lock()
        # A finished batch whose result was too large to checkpoint re-runs here to rebuild it. Which
        # branches started was a race under concurrency, so it is not decided again: exactly the ones
        # recorded (always the first ``count``: branches start in index order) are replayed.
        self.recorded = _recorded_outcome(inner.state.get(batch_id))
        self.count = self.total if self.recorded is None else min(self.recorded[0], self.total)
        self.limit = config.max_concurrency or self.count or 1

    @property
    def sequential(self) -> bool:
        return self.limit == 1 or self.count <= 1

    def branch(self, index: int) -> Flow[None]:
        """Run branch ``index`` and record its item (SUCCEEDED, FAILED, or STARTED if it suspended)."""
        branch_name, fn = self.branches[index]
        branch_id = operation_id(index, self.batch_id)
        inner, config, item_serdes = self.inner, self.config, self.item_serdes
        if self.recorded is not None and config.nesting_type != NestingType.FLAT:
            branch_op = inner.state.get(branch_id)
            if branch_op is None or not branch_op.Status.terminal:  # it was still running: leave it be
                self._record(BatchItem(index, BatchItemStatus.STARTED))
                return
        try:
            if config.nesting_type == NestingType.FLAT:
                child = inner._child_context(branch_id, branch_name, parent_id=self.batch_id)
                try:
                    value = yield fn(child)
                    value = deserialize(item_serdes, serialize(item_serdes, value))
                except (SuspendExecution, NonDeterministicExecutionError, CheckpointError):
                    raise  # not a branch failure: the invocation itself must stop
                except Exception as exc:
                    # the same error a NESTED branch gives, so FLAT is only a history choice
                    error = error_object(exc)
                    item = BatchItem(index, BatchItemStatus.FAILED,
                                     error=ChildContextError.from_error_object(error.to_wire()))
                else:
                    item = BatchItem(index, BatchItemStatus.SUCCEEDED, value)
            else:
                position = f"{inner._path} → branch #{index}" + (f" ({branch_name!r})" if branch_name else "")
                try:
                    value = yield from run_child(inner, user_body(fn), name=branch_name,
                                                 config=ChildConfig(serdes=item_serdes), sub_type=self.branch_type,
                                                 at=(branch_id, position), result_of=fn)
                except DurableOperationError as exc:
                    item = BatchItem(index, BatchItemStatus.FAILED, error=exc)
                else:
                    item = BatchItem(index, BatchItemStatus.SUCCEEDED, value)
        except SuspendExecution as signal:
            with self._lock:
                self.suspended.append(signal)
            self._record(BatchItem(index, BatchItemStatus.STARTED))
            return
        self._record(item, judge=True)

    def _record(self, item: BatchItem, judge: bool = False) -> None:
        with self._lock:
            self.items[item.index] = item
            ok = sum(1 for i in self.items.values() if i.status == BatchItemStatus.SUCCEEDED)
            bad = sum(1 for i in self.items.values() if i.status == BatchItemStatus.FAILED)
            if judge and self.reason is None and self.recorded is None:
                self.reason = decide(ok, bad, self.total, self.config.completion_config)
        live = self.inner.live
        if judge and live.listening:  # a follower's progress line: free when nobody follows
            op = self.inner.state.get(self.batch_id)
            live.send("batch_progress", operation_id=self.batch_id, name=op.Name if op is not None else None,
                      total=self.total, done=ok + bad, failed=bad)

    def outcome(self) -> BatchResult:
        """The BatchResult, or SuspendExecution when branches wait and the policy is not met yet."""
        items = [self.items[i] for i in sorted(self.items)]
        if self.recorded is not None:
            return BatchResult(items, self.recorded[1])
        if self.reason is not None:
            return BatchResult(items, self.reason)
        if self.suspended:
            wakes = [s.wake_at for s in self.suspended if s.wake_at is not None]
            raise SuspendExecution(f"{len(self.suspended)} branch(es) suspended",
                                   wake_at=min(wakes) if wakes else None)
        return BatchResult(items, CompletionReason.ALL_COMPLETED)


def run_branches_in_threads(run: BatchRun) -> None:
    """Sync handlers: up to ``max_concurrency`` branches at once, each on a pool thread."""
    if run.sequential:
        for index in range(run.count):
            if run.reason is not None:
                break
            drive(run.branch(index))
        return
    with ThreadPoolExecutor(max_workers=min(run.limit, run.count), thread_name_prefix="duragent-branch") as pool:
        running: set[Future[None]] = set()
        next_index = 0
        while next_index < run.count or running:
            while next_index < run.count and len(running) < run.limit and run.reason is None:
                # each branch thread sees the caller's context variables (a copy per thread)
                running.add(pool.submit(contextvars.copy_context().run, drive, run.branch(next_index)))
                next_index += 1
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()  # re-raise anything unexpected (non-determinism, checkpoint errors)
            if run.reason is not None:
                next_index = run.count


async def run_branches_as_tasks(run: BatchRun) -> None:
    """Async handlers: up to ``max_concurrency`` branches at once, each an asyncio task on the
    handler's loop (a thousand branches waiting on I/O hold no thread of their own)."""
    if run.sequential:
        for index in range(run.count):
            if run.reason is not None:
                break
            await adrive(run.branch(index))
        return
    running: set[asyncio.Task[None]] = set()
    next_index = 0
    try:
        while next_index < run.count or running:
            while next_index < run.count and len(running) < run.limit and run.reason is None:
                running.add(asyncio.ensure_future(adrive(run.branch(next_index))))
                next_index += 1
            if not running:
                break
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise anything unexpected (non-determinism, checkpoint errors)
            if run.reason is not None:
                next_index = run.count
    except asyncio.CancelledError:
        for task in running:  # the invocation is being cancelled: so are its branches
            task.cancel()
        if running:
            await asyncio.wait(running)
        raise
    except BaseException:
        if running:  # as with threads, branches already running finish before the error surfaces
            await asyncio.wait(running)
        raise


def map_branches(items: Sequence[Any], fn: Callable[..., Any], config: MapConfig) -> list[Branch]:
    """One branch per item; ``fn(ctx, item, index, items)``."""
    namer = config.item_namer
    branches: list[Branch] = []
    for index, item in enumerate(items):
        branch_name = namer(item, index) if callable(namer) else f"map-item-{index}"
        branches.append((branch_name, _bind(fn, item, index, items)))
    return branches


def _bind(fn: Callable[..., Any], item: Any, index: int, items: Sequence[Any]) -> Callable[[Any], Any]:
    def branch(ctx: Any) -> Any:
        return fn(ctx, item, index, items)

    branch.__name__ = getattr(fn, "__name__", "map_item")
    return branch


def parallel_branches(branches: Sequence[Any]) -> list[Branch]:
    """Accept plain callables, ``(name, fn)`` tuples, or objects with ``.name`` and ``.fn``."""
    out: list[Branch] = []
    for index, branch in enumerate(branches):
        if isinstance(branch, tuple) and len(branch) == 2 and callable(branch[1]):
            out.append((branch[0], branch[1]))
        elif callable(branch) and not hasattr(branch, "fn"):
            out.append((f"parallel-branch-{index}", branch))
        elif hasattr(branch, "fn") and callable(branch.fn):
            out.append((getattr(branch, "name", None) or f"parallel-branch-{index}", branch.fn))
        else:
            raise UsageError(f"parallel branch #{index} is not callable: {branch!r}; pass fn(ctx) callables "
                             "or (name, fn) pairs")
    return out
