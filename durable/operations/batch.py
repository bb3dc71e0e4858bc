"""ctx.parallel and ctx.map: branches as child contexts, run concurrently, judged by a
completion policy, and checkpointed as one BatchResult.

Results are kept in index order whatever order branches finish in, so a replay sees the same
BatchResult by construction. A branch that suspends frees its slot; the batch suspends once no
branch can make progress, and finished branches are not re-run on resume. A finished batch whose
result was too large to checkpoint (ReplayChildren) is rebuilt from exactly the branches that ran
the first time, with the recorded completion reason; nothing is decided or started anew.
"""

from __future__ import annotations

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
from ..journal import operation_id
from ..model import Operation, OperationStatus
from ..serdes import DEFAULT_SERDES, Serdes, deserialize, serialize
from ._common import error_object
from .child import run_child

if TYPE_CHECKING:
    from ..context import DurableContext


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


Branch = tuple[str | None, Callable[["DurableContext"], Any]]


def run_batch(ctx: DurableContext, branches: list[Branch], *, name: str | None, config: ParallelConfig,
              kind: str) -> BatchResult:
    validate(config)
    item_serdes = config.item_serdes or DEFAULT_SERDES
    op_serdes = config.serdes or BatchSerdes(item_serdes)
    branch_type = "ParallelBranch" if kind == "Parallel" else "MapIteration"

    def body(inner: DurableContext) -> BatchResult:
        return _execute(inner, branches, config, branch_type, item_serdes)

    result: BatchResult = run_child(ctx, body, name=name,
                                    config=ChildConfig(serdes=op_serdes, summary=_summary), sub_type=kind)
    return result


def _execute(inner: DurableContext, branches: list[Branch], config: ParallelConfig, branch_type: str,
             item_serdes: Serdes[Any]) -> BatchResult:
    batch_id = inner.parent_id
    assert batch_id is not None
    total = len(branches)
    items: dict[int, BatchItem] = {}
    suspended: list[SuspendExecution] = []
    lock = threading.Lock()
    reason: list[CompletionReason] = []
    # A finished batch whose result was too large to checkpoint re-runs here to rebuild it. Which
    # branches started was a race under concurrency, so it is not decided again: exactly the ones
    # recorded (always the first ``count``: branches start in index order) are replayed.
    recorded = _recorded_outcome(inner.state.get(batch_id))
    count = total if recorded is None else min(recorded[0], total)

    def run_one(index: int) -> None:
        branch_name, fn = branches[index]
        branch_id = operation_id(index, batch_id)
        if recorded is not None and config.nesting_type != NestingType.FLAT:
            branch_op = inner.state.get(branch_id)
            if branch_op is None or not branch_op.Status.terminal:  # it was still running: leave it be
                with lock:
                    items[index] = BatchItem(index, BatchItemStatus.STARTED)
                return
        try:
            if config.nesting_type == NestingType.FLAT:
                child = inner._child_context(branch_id, branch_name, parent_id=batch_id)
                try:
                    value = fn(child)
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
                    value = run_child(inner, fn, name=branch_name, config=ChildConfig(serdes=item_serdes),
                                      sub_type=branch_type, at=(branch_id, position))
                except DurableOperationError as exc:
                    item = BatchItem(index, BatchItemStatus.FAILED, error=exc)
                else:
                    item = BatchItem(index, BatchItemStatus.SUCCEEDED, value)
        except SuspendExecution as signal:
            with lock:
                suspended.append(signal)
                items[index] = BatchItem(index, BatchItemStatus.STARTED)
            return
        with lock:
            items[index] = item
            ok = sum(1 for i in items.values() if i.status == BatchItemStatus.SUCCEEDED)
            bad = sum(1 for i in items.values() if i.status == BatchItemStatus.FAILED)
            if not reason and recorded is None:
                decided = decide(ok, bad, total, config.completion_config)
                if decided is not None:
                    reason.append(decided)

    limit = config.max_concurrency or count or 1
    if limit == 1 or count <= 1:
        for index in range(count):
            if reason:
                break
            run_one(index)
    else:
        with ThreadPoolExecutor(max_workers=min(limit, count), thread_name_prefix="duragent-branch") as pool:
            running: set[Future[None]] = set()
            next_index = 0
            while next_index < count or running:
                while next_index < count and len(running) < limit and not reason:
                    # each branch thread sees the caller's context variables (a copy per thread)
                    running.add(pool.submit(contextvars.copy_context().run, run_one, next_index))
                    next_index += 1
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # re-raise anything unexpected (non-determinism, checkpoint errors)
                if reason:
                    next_index = count
    if recorded is not None:
        return BatchResult([items[i] for i in sorted(items)], recorded[1])
    if reason:
        return BatchResult([items[i] for i in sorted(items)], reason[0])
    if suspended:
        wakes = [s.wake_at for s in suspended if s.wake_at is not None]
        raise SuspendExecution(f"{len(suspended)} branch(es) suspended", wake_at=min(wakes) if wakes else None)
    return BatchResult([items[i] for i in sorted(items)], CompletionReason.ALL_COMPLETED)


def map_branches(items: Sequence[Any], fn: Callable[..., Any], config: MapConfig) -> list[Branch]:
    """One branch per item; ``fn(ctx, item, index, items)``."""
    namer = config.item_namer
    branches: list[Branch] = []
    for index, item in enumerate(items):
        branch_name = namer(item, index) if callable(namer) else f"map-item-{index}"
        branches.append((branch_name, _bind(fn, item, index, items)))
    return branches


def _bind(fn: Callable[..., Any], item: Any, index: int, items: Sequence[Any]) -> Callable[[DurableContext], Any]:
    def branch(ctx: DurableContext) -> Any:
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
