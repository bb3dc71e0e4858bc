"""ctx.parallel and ctx.map: completion rules, concurrency, ordering, replay, nesting, serdes, and
a crash in the middle of a 50-item map (a real worker process, SIGKILLed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from duragent.durable import (
    BatchResult,
    ChildContextError,
    CompletionConfig,
    DurableContext,
    LocalRuntime,
    MapConfig,
    NestingType,
    ParallelConfig,
    RetryPolicy,
    StepConfig,
    UsageError,
    VirtualClock,
)
from duragent.durable.journal import operation_id
from duragent.durable.operations.batch import BatchItemStatus, BatchSerdes, CompletionReason, decide
from duragent.durable.serdes import DEFAULT_SERDES

REPO = Path(__file__).resolve().parents[2]
NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())


def _boom(message: str = "boom") -> Any:
    raise RuntimeError(message)


def _contexts(rt: LocalRuntime, execution_id: str, sub_type: str) -> list[dict[str, Any]]:
    return [e for e in rt.history(execution_id) if e.get("SubType") == sub_type]


# -- completion rules -------------------------------------------------------------------------------

@pytest.mark.parametrize(("ok", "bad", "total", "cc", "expected"), [
    (0, 0, 4, None, None),
    (3, 1, 4, None, None),
    (0, 1, 4, CompletionConfig(tolerated_failure_count=0), CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
    (0, 1, 4, CompletionConfig(tolerated_failure_count=1), None),
    (0, 2, 4, CompletionConfig(tolerated_failure_count=1), CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
    # a percentage is of the total count, and only strictly exceeding it stops the batch
    (0, 1, 4, CompletionConfig(tolerated_failure_percentage=25), None),
    (3, 1, 4, CompletionConfig(tolerated_failure_percentage=25), None),
    (0, 2, 4, CompletionConfig(tolerated_failure_percentage=25), CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
    (0, 1, 3, CompletionConfig(tolerated_failure_percentage=33.3), CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
    (0, 1, 3, CompletionConfig(tolerated_failure_percentage=34), None),
    (0, 0, 4, CompletionConfig(tolerated_failure_percentage=0), None),
    (0, 1, 4, CompletionConfig(tolerated_failure_percentage=0), CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
    (2, 0, 4, CompletionConfig(min_successful=2), CompletionReason.MIN_SUCCESSFUL_REACHED),
    (1, 3, 4, CompletionConfig(min_successful=2), None),
    # tolerance is judged before min_successful
    (3, 2, 6, CompletionConfig(min_successful=3, tolerated_failure_count=1),
     CompletionReason.FAILURE_TOLERANCE_EXCEEDED),
])
def test_decide(ok: int, bad: int, total: int, cc: CompletionConfig | None, expected: CompletionReason | None) -> None:
    assert decide(ok, bad, total, cc) == expected


def _projection(batch: BatchResult) -> dict[str, Any]:
    return {"reason": batch.completion_reason.value, "status": batch.status.value, "ok": batch.success_count,
            "bad": batch.failure_count, "total": batch.total_count, "results": batch.get_results()}


@pytest.mark.parametrize(("outcomes", "cc", "expected"), [
    # outcomes: "ok" or "fail" per branch, run one at a time
    ("ok fail ok", None, ("ALL_COMPLETED", "FAILED", 2, 1, 3)),
    ("ok fail ok", CompletionConfig(tolerated_failure_count=0), ("FAILURE_TOLERANCE_EXCEEDED", "FAILED", 1, 1, 2)),
    ("fail fail ok ok", CompletionConfig(tolerated_failure_percentage=25),
     ("FAILURE_TOLERANCE_EXCEEDED", "FAILED", 0, 2, 2)),
    ("fail ok ok ok", CompletionConfig(tolerated_failure_percentage=25), ("ALL_COMPLETED", "FAILED", 3, 1, 4)),
    ("ok ok ok ok", CompletionConfig(min_successful=2), ("MIN_SUCCESSFUL_REACHED", "SUCCEEDED", 2, 0, 2)),
    ("ok fail ok", CompletionConfig(min_successful=3), ("ALL_COMPLETED", "FAILED", 2, 1, 3)),
    ("fail fail ok ok", CompletionConfig(min_successful=3, tolerated_failure_count=1),
     ("FAILURE_TOLERANCE_EXCEEDED", "FAILED", 0, 2, 2)),
    ("fail fail fail", CompletionConfig(tolerated_failure_count=3), ("ALL_COMPLETED", "FAILED", 0, 3, 3)),
])
def test_completion_rules_end_to_end(rt: LocalRuntime, outcomes: str, cc: CompletionConfig | None,
                                     expected: tuple[Any, ...]) -> None:
    ran: list[int] = []

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        def branch(i: int, outcome: str) -> Any:
            def fn(child: DurableContext) -> Any:
                ran.append(i)
                return f"r{i}" if outcome == "ok" else _boom(f"branch {i}")
            return fn

        branches = [branch(i, o) for i, o in enumerate(outcomes.split())]
        batch = ctx.parallel(branches, name="p", config=ParallelConfig(max_concurrency=1, completion_config=cc))
        return _projection(batch)

    info = rt.run(handler)
    assert info.status == "SUCCEEDED"
    reason, status, ok, bad, total = expected
    assert (info.result["reason"], info.result["status"], info.result["ok"], info.result["bad"],
            info.result["total"]) == (reason, status, ok, bad, total)
    assert ran == list(range(total)), "branches past the completion point must not start"
    # unstarted branches leave no trace; the parent always succeeds
    assert len(_contexts(rt, info.id, "ParallelBranch")) == 2 * total
    assert [e["EventType"] for e in _contexts(rt, info.id, "Parallel")] == ["ContextStarted", "ContextSucceeded"]


def test_batch_result_accessors_and_throw_if_error(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.map(["a", "b", "c"], lambda c, item, i, items: _boom("bad b") if item == "b" else item.upper(),
                        name="m", config=MapConfig(max_concurrency=1))
        errors = batch.get_errors()
        out = {"results": batch.get_results(), "succeeded": [it.index for it in batch.succeeded()],
               "failed": [it.index for it in batch.failed()], "has_failure": batch.has_failure,
               "error_type": type(errors[0]).__name__, "error_message": errors[0].message,
               "original_type": errors[0].error_type}
        try:
            batch.throw_if_error()
        except ChildContextError as exc:
            out["thrown"] = exc.message
        return out

    info = rt.run(handler)
    assert info.result == {"results": ["A", "C"], "succeeded": [0, 2], "failed": [1], "has_failure": True,
                           "error_type": "ChildContextError", "error_message": "bad b",
                           "original_type": "RuntimeError", "thrown": "bad b"}


def test_throw_if_error_fails_the_execution(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.parallel([lambda c: _boom("first")], config=ParallelConfig(
            completion_config=CompletionConfig.all_successful())).throw_if_error()
        return "unreachable"

    info = rt.run(handler)
    assert info.status == "FAILED"
    assert info.error["ErrorMessage"] == "first"


def test_empty_batches(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        p = ctx.parallel([], name="p")
        m = ctx.map([], lambda c, item, i, items: item, name="m")
        return [_projection(p), _projection(m)]

    info = rt.run(handler)
    empty = {"reason": "ALL_COMPLETED", "status": "SUCCEEDED", "ok": 0, "bad": 0, "total": 0, "results": []}
    assert info.result == [empty, empty]


# -- configuration errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("config", [
    ParallelConfig(max_concurrency=0),
    ParallelConfig(max_concurrency=-3),
    ParallelConfig(completion_config=CompletionConfig(min_successful=-1)),
    ParallelConfig(completion_config=CompletionConfig(tolerated_failure_count=-1)),
    ParallelConfig(completion_config=CompletionConfig(tolerated_failure_percentage=101)),
    ParallelConfig(completion_config=CompletionConfig(tolerated_failure_percentage=-0.5)),
])
def test_config_error_fails_before_any_checkpoint(rt: LocalRuntime, config: ParallelConfig) -> None:
    ran: list[int] = []

    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.parallel([lambda c: ran.append(0), lambda c: ran.append(1)], name="bad", config=config)

    info = rt.run(handler)
    assert info.status == "FAILED"
    assert info.error["ErrorType"] == "duragent.UsageError"
    assert ran == []
    assert [e["EventType"] for e in rt.history(info.id)] == ["ExecutionStarted", "InvocationCompleted",
                                                               "ExecutionFailed"]


def test_config_error_consumes_no_operation_id(rt: LocalRuntime) -> None:
    """A caught config error leaves the op counter alone: the next operation is still #1."""

    def handler(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.map([1, 2], lambda c, item, i, items: item, config=MapConfig(max_concurrency=0))
        except UsageError:
            pass
        return ctx.step(lambda: "after", name="after")

    info = rt.run(handler)
    assert info.result == "after"
    steps = [e for e in rt.history(info.id) if e["EventType"] == "StepSucceeded"]
    assert steps[0]["Id"] == operation_id(1, None)


def test_non_callable_branch_is_a_usage_error(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.parallel([lambda c: 1, "not a function"])

    info = rt.run(handler)
    assert info.status == "FAILED" and "not callable" in info.error["ErrorMessage"]
    assert not _contexts(rt, info.id, "Parallel")


# -- concurrency and ordering -----------------------------------------------------------------------

@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_max_concurrency_is_honoured(rt: LocalRuntime, limit: int) -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]
    started: list[int] = []

    first_wave = threading.Barrier(limit, timeout=10)  # breaks (fails the item) unless `limit` run at once

    def work(child: DurableContext, item: int, index: int, items: list[int]) -> int:
        def body() -> int:
            with lock:
                started.append(index)
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            if index < limit:
                first_wave.wait()
            time.sleep(0.01)
            with lock:
                running[0] -= 1
            return item * item
        return child.step(body, name="square", config=NO_RETRY)

    def handler(event: Any, ctx: DurableContext) -> list[int]:
        return ctx.map(list(range(10)), work, name="m", config=MapConfig(max_concurrency=limit)).get_results()

    info = rt.run(handler)
    assert info.result == [i * i for i in range(10)]
    assert peak[0] == limit
    assert sorted(started) == list(range(10))
    # the first wave is the first ``limit`` items (a new one starts only when a slot frees up)
    assert sorted(started[:limit]) == list(range(limit))


def test_unlimited_concurrency_runs_everything_at_once(rt: LocalRuntime) -> None:
    barrier = threading.Barrier(6, timeout=10)

    def handler(event: Any, ctx: DurableContext) -> list[int]:
        # every branch waits for all the others: only passes if all six run at the same time
        branches = [lambda c, i=i: (barrier.wait(), i)[1] for i in range(6)]
        return ctx.parallel(branches).get_results()

    assert rt.run(handler).result == list(range(6))


def test_results_in_index_order_when_branches_finish_out_of_order(rt: LocalRuntime) -> None:
    finished: list[int] = []
    lock = threading.Lock()

    done = [threading.Event() for _ in range(5)]

    def branch(i: int) -> Any:
        def fn(child: DurableContext) -> str:
            if i < 4:  # each branch finishes only after the next one: the last finishes first
                assert done[i + 1].wait(10)
            with lock:
                finished.append(i)
            done[i].set()
            return f"b{i}"
        return fn

    def handler(event: Any, ctx: DurableContext) -> list[str]:
        batch = ctx.parallel([branch(i) for i in range(5)], name="p", config=ParallelConfig(max_concurrency=5))
        assert [item.index for item in batch.all] == list(range(5))
        return batch.get_results()

    info = rt.run(handler)
    assert info.result == ["b0", "b1", "b2", "b3", "b4"]
    assert finished == [4, 3, 2, 1, 0]
    # the checkpointed BatchResult is in index order too
    parent = [e for e in _contexts(rt, info.id, "Parallel") if e["EventType"] == "ContextSucceeded"][0]
    stored = json.loads(parent["ContextSucceededDetails"]["Result"]["Payload"])
    assert [entry["index"] for entry in stored["all"]] == list(range(5))


def test_completion_with_concurrency_stops_starting_new_branches(rt: LocalRuntime) -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(child: DurableContext, item: int, index: int, items: list[int]) -> int:
        with lock:
            started.append(index)
        time.sleep(0.02)
        return item

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.map(list(range(20)), work, name="m", config=MapConfig(
            max_concurrency=2, completion_config=CompletionConfig(min_successful=3)))
        return _projection(batch)

    info = rt.run(handler)
    assert info.result["reason"] == "MIN_SUCCESSFUL_REACHED"
    assert info.result["ok"] >= 3
    assert len(started) <= 4  # at most the 3 that reached the goal plus one still running alongside


def test_branch_threads_keep_the_callers_context_variables(rt: LocalRuntime) -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="unset")

    def handler(event: Any, ctx: DurableContext) -> list[str]:
        var.set("req-42")
        return ctx.map([0, 1, 2], lambda c, item, i, items: var.get(),
                       config=MapConfig(max_concurrency=3)).get_results()

    assert rt.run(handler).result == ["req-42"] * 3


# -- suspension and replay --------------------------------------------------------------------------

def test_suspended_branches_resume_and_finished_ones_are_not_rerun(rt: LocalRuntime) -> None:
    calls: dict[int, int] = {}
    lock = threading.Lock()

    def work(child: DurableContext, item: int, index: int, items: list[int]) -> int:
        def body() -> int:
            with lock:
                calls[index] = calls.get(index, 0) + 1
            return item * 10
        value = child.step(body, name="work")
        if index % 2:
            child.wait(5)
        return value

    def handler(event: Any, ctx: DurableContext) -> list[int]:
        return ctx.map(list(range(6)), work, name="m", config=MapConfig(max_concurrency=2)).get_results()

    info = rt.run(handler)
    assert info.result == [0, 10, 20, 30, 40, 50]
    assert calls == {i: 1 for i in range(6)}
    assert info.invocations == 2  # all three waits started in the first invocation
    succeeded = [e for e in _contexts(rt, info.id, "MapIteration") if e["EventType"] == "ContextSucceeded"]
    assert len(succeeded) == 6


def test_completed_batch_is_not_rerun_after_a_later_wait(rt: LocalRuntime) -> None:
    calls = [0]

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        def fn(c: DurableContext, item: str, i: int, items: list[str]) -> str:
            calls[0] += 1
            return _boom("nope") if item == "bad" else item
        batch = ctx.map(["a", "bad", "c"], fn, name="m", config=MapConfig(max_concurrency=1))
        ctx.wait(3)
        return {**_projection(batch), "error": batch.get_errors()[0].message}

    info = rt.run(handler)
    assert info.result == {"reason": "ALL_COMPLETED", "status": "FAILED", "ok": 2, "bad": 1, "total": 3,
                           "results": ["a", "c"], "error": "nope"}
    assert calls[0] == 3
    assert info.invocations == 2


def test_nested_parallel_inside_a_branch(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        def outer(child: DurableContext) -> list[Any]:
            inner = [lambda c: c.step(lambda: "i1"), lambda c: (c.wait(2), c.step(lambda: "i2"))[1]]
            return child.parallel(inner, name="inner", config=ParallelConfig(max_concurrency=1)).get_results()
        return ctx.parallel([outer, lambda c: "plain"], name="outer").get_results()

    info = rt.run(handler)
    assert info.result == [["i1", "i2"], "plain"]
    history = rt.history(info.id)
    outer_id = operation_id(1, None)
    branch_a = operation_id(0, outer_id)
    inner_id = operation_id(1, branch_a)
    inner_started = [e for e in history if e["EventType"] == "ContextStarted" and e["Id"] == inner_id]
    assert inner_started and inner_started[0]["ParentId"] == branch_a and inner_started[0]["SubType"] == "Parallel"


@pytest.mark.parametrize("nesting", [NestingType.NESTED, NestingType.FLAT])
def test_non_determinism_inside_a_branch_fails_the_execution(rt: LocalRuntime, nesting: NestingType) -> None:
    """Replay meeting different code inside a branch is not that branch's failure: the execution
    fails, and nothing is recorded that a later replay would take as the branch's outcome."""
    names = iter(["original", "renamed"])

    def handler(event: Any, ctx: DurableContext) -> Any:
        def branch(child: DurableContext) -> str:
            child.step(lambda: 1, name=next(names))
            child.wait(1)
            return "done"
        batch = ctx.parallel([branch], name="p", config=ParallelConfig(nesting_type=nesting))
        return batch.get_results()

    info = rt.run(handler)
    assert info.status == "FAILED"
    assert info.error["ErrorType"] == "duragent.NonDeterministicExecutionError"
    assert not [e for e in rt.history(info.id) if e["EventType"] == "ContextFailed"]


@pytest.mark.parametrize("nesting", [NestingType.NESTED, NestingType.FLAT])
def test_unserializable_branch_result_fails_only_that_branch(rt: LocalRuntime, nesting: NestingType) -> None:
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel([lambda c: object(), lambda c: "fine"], name="p",
                             config=ParallelConfig(nesting_type=nesting))
        return {**_projection(batch), "error": batch.get_errors()[0].error_type}

    info = rt.run(handler)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"reason": "ALL_COMPLETED", "status": "FAILED", "ok": 1, "bad": 1, "total": 2,
                           "results": ["fine"], "error": "duragent.SerializationError"}


# -- large results ----------------------------------------------------------------------------------

def test_large_batch_result_replays_its_children(rt: LocalRuntime) -> None:
    """Four ~100 KB results: the Map result is over 256 KB, so it is checkpointed as a summary with
    ReplayChildren, and a replay rebuilds it from the iterations' own checkpoints."""
    calls = [0]
    lock = threading.Lock()

    def produce(child: DurableContext, item: str, index: int, items: list[str]) -> str:
        with lock:
            calls[0] += 1
        return item * 100_000

    def handler(event: Any, ctx: DurableContext) -> list[int]:
        batch = ctx.map(["a", "b", "c", "d"], produce, name="large", config=MapConfig(max_concurrency=2))
        ctx.wait(2)  # forces a replay of the map
        results = batch.get_results()
        assert results == [ch * 100_000 for ch in "abcd"]
        return [len(r) for r in results]

    info = rt.run(handler)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == [100_000] * 4
    assert calls[0] == 4, "the iterations' bodies must not re-run: their own checkpoints are replayed"
    assert info.invocations == 2
    done = [e for e in _contexts(rt, info.id, "Map") if e["EventType"] == "ContextSucceeded"]
    assert len(done) == 1
    payload = done[0]["ContextSucceededDetails"]["Result"]["Payload"]
    assert len(payload) < 1024 and json.loads(payload)["totalCount"] == 4
    ops = {op.Id: op for op in rt.operations(info.id)}
    assert ops[operation_id(1, None)].ContextDetails.ReplayChildren is True


def test_large_single_branch_result_replays(rt: LocalRuntime) -> None:
    """One branch result over 256 KB: the branch context itself replays its children."""
    calls = [0]

    def handler(event: Any, ctx: DurableContext) -> int:
        def big(child: DurableContext) -> str:
            calls[0] += 1
            return child.step(lambda: "x" * 300_000, name="big")
        batch = ctx.parallel([big, lambda c: "small"], name="p")
        ctx.wait(1)
        return len(batch.get_results()[0]) + len(batch.get_results()[1])

    info = rt.run(handler)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == 300_005
    assert calls[0] == 2  # the branch body re-ran on replay; its step did not
    assert len([e for e in rt.history(info.id) if e["EventType"] == "StepStarted"]) == 1


def test_large_result_replay_rebuilds_the_same_batch_under_concurrency(rt: LocalRuntime) -> None:
    """With branches racing, how many start before min_successful is reached depends on timing;
    a replay of a large (summary-only) result must rebuild exactly the branches that ran, not race
    again: no branch may start for the first time on replay."""
    seen: list[tuple[int, str, list[int]]] = []
    calls: list[int] = []
    lock = threading.Lock()

    def produce(child: DurableContext, item: int, index: int, items: list[int]) -> str:
        with lock:
            calls.append(index)
        time.sleep(0.002 * ((index * 7) % 5))
        return str(index) * 40_000

    def handler(event: Any, ctx: DurableContext) -> list[int]:
        batch = ctx.map(list(range(24)), produce, name="race", config=MapConfig(
            max_concurrency=6, completion_config=CompletionConfig(min_successful=8)))
        seen.append((batch.total_count, batch.completion_reason.value, [it.index for it in batch.all]))
        ctx.wait(1)
        return [it.index for it in batch.all]

    for _ in range(3):
        seen.clear()
        calls.clear()
        info = rt.run(handler)
        assert info.status == "SUCCEEDED", info.error
        assert len(seen) == 2 and seen[0] == seen[1], seen
        assert seen[0][1] == "MIN_SUCCESSFUL_REACHED"
        assert sorted(calls) == info.result == list(range(len(info.result)))


# -- FLAT nesting -----------------------------------------------------------------------------------

def test_flat_nesting_has_no_branch_contexts(rt: LocalRuntime) -> None:
    calls: list[int] = []

    def work(child: DurableContext, item: str, index: int, items: list[str]) -> str:
        def body() -> str:
            calls.append(index)
            return item.upper()
        value = child.step(body, name=f"s{index}")
        if index == 1:
            child.wait(2)
        return value

    def handler(event: Any, ctx: DurableContext) -> list[str]:
        return ctx.map(["a", "b", "c"], work, name="flat",
                       config=MapConfig(max_concurrency=1, nesting_type=NestingType.FLAT)).get_results()

    info = rt.run(handler)
    assert info.result == ["A", "B", "C"]
    assert calls == [0, 1, 2]
    history = rt.history(info.id)
    assert not [e for e in history if e.get("SubType") == "MapIteration"]
    map_id = operation_id(1, None)
    steps = [e for e in history if e["EventType"] == "StepSucceeded"]
    assert [e["ParentId"] for e in steps] == [map_id] * 3
    # the virtual branch contexts still give their operations distinct ids
    assert [e["Id"] for e in steps] == [operation_id(1, operation_id(i, map_id)) for i in range(3)]


def test_flat_nesting_failures_and_serdes(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        batch = ctx.parallel([lambda c: c.step(lambda: _boom("flat failure"), config=NO_RETRY), lambda c: 7],
                             name="flat", config=ParallelConfig(nesting_type=NestingType.FLAT,
                                                                item_serdes=PrefixSerdes()))
        return {**_projection(batch), "error": batch.get_errors()[0].message,
                "type": type(batch.get_errors()[0]).__name__}

    info = rt.run(handler)
    assert info.result == {"reason": "ALL_COMPLETED", "status": "FAILED", "ok": 1, "bad": 1, "total": 2,
                           "results": ["7"], "error": "flat failure", "type": "ChildContextError"}
    assert not [e for e in rt.history(info.id) if e.get("SubType") == "ParallelBranch"]


# -- serdes -----------------------------------------------------------------------------------------

class PrefixSerdes:
    def serialize(self, value: Any) -> str | None:
        return f"wrapped:{value}"

    def deserialize(self, data: str | None) -> Any:
        assert data is not None and data.startswith("wrapped:")
        return data[len("wrapped:"):]


class OpSerdes:
    def __init__(self) -> None:
        self.reads = 0

    def serialize(self, value: BatchResult) -> str | None:
        return "OP:" + "|".join(str(r) for r in value.get_results())

    def deserialize(self, data: str | None) -> BatchResult:
        self.reads += 1
        assert data is not None and data.startswith("OP:")
        return BatchResult.from_results(data[3:].split("|"))


def test_item_serdes_writes_each_branch_payload(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> list[Any]:
        batch = ctx.map(["x", "y"], lambda c, item, i, items: item.upper(), name="m",
                        config=MapConfig(item_serdes=PrefixSerdes()))
        ctx.wait(1)
        return batch.get_results()

    info = rt.run(handler)
    assert info.result == ["X", "Y"]
    payloads = [e["ContextSucceededDetails"]["Result"]["Payload"] for e in _contexts(rt, info.id, "MapIteration")
                if e["EventType"] == "ContextSucceeded"]
    assert sorted(payloads) == ["wrapped:X", "wrapped:Y"]
    # the default envelope holds each item's own payload string
    parent = [e for e in _contexts(rt, info.id, "Map") if e["EventType"] == "ContextSucceeded"][0]
    stored = json.loads(parent["ContextSucceededDetails"]["Result"]["Payload"])
    assert [entry["payload"] for entry in stored["all"]] == ["wrapped:X", "wrapped:Y"]


def test_operation_serdes_writes_and_reads_the_whole_result(rt: LocalRuntime) -> None:
    serdes = OpSerdes()

    def handler(event: Any, ctx: DurableContext) -> list[Any]:
        batch = ctx.map(["x", "y"], lambda c, item, i, items: item.upper(), name="m",
                        config=MapConfig(serdes=serdes))
        ctx.wait(1)
        return batch.get_results()

    info = rt.run(handler)
    assert info.result == ["X", "Y"]
    parent = [e for e in _contexts(rt, info.id, "Map") if e["EventType"] == "ContextSucceeded"][0]
    assert parent["ContextSucceededDetails"]["Result"]["Payload"] == "OP:X|Y"
    assert serdes.reads == 2  # the first run returns what a replay would; the replay reads the checkpoint


def test_batch_serdes_round_trip() -> None:
    batch = BatchResult.from_results([1, {"a": [1, 2]}, None])
    batch.all[2].status = BatchItemStatus.FAILED
    batch.all[2].error = ChildContextError("bad", error_type="ValueError")
    serdes = BatchSerdes(DEFAULT_SERDES)
    back = serdes.deserialize(serdes.serialize(batch))
    assert back.get_results() == [1, {"a": [1, 2]}]
    assert back.failed()[0].error.message == "bad" and back.failed()[0].error.error_type == "ValueError"
    assert back.completion_reason == CompletionReason.ALL_COMPLETED


# -- branch forms and names -------------------------------------------------------------------------

def test_branch_forms_and_names(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        p = ctx.parallel([("first", lambda c: 1), lambda c: 2], name="p").get_results()
        m = ctx.map([5, 6], lambda c, item, i, items: item + i + len(items), name="m",
                    config=MapConfig(item_namer=lambda item, i: f"item-{item}")).get_results()
        return [p, m]

    info = rt.run(handler)
    assert info.result == [[1, 2], [7, 9]]
    names = sorted({e["Name"] for e in rt.history(info.id) if e.get("SubType") in ("ParallelBranch", "MapIteration")})
    assert names == ["first", "item-5", "item-6", "parallel-branch-1"]


# -- a crash in the middle of a 50-item map ---------------------------------------------------------

CRASH_ITEMS = 50
CRASH_LIMIT = 10
CRASH_GATE_ENV = "DURAGENT_TEST_BATCH_DIR"


def crash_map_handler(event: Any, ctx: DurableContext) -> list[str]:
    """Each item suspends on a wait (1 s for the first half, 2 s for the second), then runs one step
    that appends to a side-effect file. Second-half items block (before their side effect) until
    a gate file exists, so the kill lands while they are in flight but have done nothing yet."""
    scratch = Path(event["dir"])
    half = CRASH_ITEMS // 2

    def item_fn(child: DurableContext, item: int, index: int, items: list[int]) -> str:
        child.wait(1 if index < half else 2)

        def effect() -> str:
            if index >= half:
                (scratch / f"blocked-{index}-{os.getpid()}").touch()
                while not (scratch / "gate").exists():
                    time.sleep(0.01)
            fd = os.open(scratch / "effects.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, f"{index} {os.getpid()}\n".encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            return f"item-{item}"

        return child.step(effect, name="effect")

    return ctx.map(list(range(CRASH_ITEMS)), item_fn, name="fan-out",
                   config=MapConfig(max_concurrency=CRASH_LIMIT)).get_results()


def _effects(scratch: Path) -> list[tuple[int, int]]:
    path = scratch / "effects.log"
    if not path.exists():
        return []
    return [(int(a), int(b)) for a, b in (line.split() for line in path.read_text().splitlines())]


def test_map_survives_a_sigkill_halfway(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    target = f"{Path(__file__).resolve()}:crash_map_handler"
    with LocalRuntime(db) as runtime:
        execution_id = runtime.start("crash-map", {"dir": str(tmp_path)}, target=target)

    err_path = tmp_path / "worker.err"
    with err_path.open("wb") as err:
        worker = subprocess.Popen([sys.executable, "-c", "import sys\nfrom duragent.durable import LocalRuntime\n"
                                   "LocalRuntime(sys.argv[1]).worker()", str(db)],
                                  cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                  stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 15
        committed = 0
        with LocalRuntime(db) as observer:
            while time.monotonic() < deadline:
                effects = _effects(tmp_path)
                committed = sum(1 for op in observer.operations(execution_id)
                                if op.Type.value == "STEP" and op.Status.value == "SUCCEEDED")
                blocked = len(list(tmp_path.glob("blocked-*")))
                # Half the items have done their effect and checkpointed it, and a later invocation
                # has second-half items in flight, blocked before their effect: kill now, in the
                # middle of the batch.
                if len(effects) >= CRASH_ITEMS // 2 and committed >= CRASH_ITEMS // 2 and blocked:
                    break
                assert worker.poll() is None, err_path.read_text()
                time.sleep(0.02)
            else:
                pytest.fail(f"no progress: {len(_effects(tmp_path))} effects, {committed} committed")
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    killed = _effects(tmp_path)
    assert sorted(i for i, _ in killed) == list(range(CRASH_ITEMS // 2))
    assert {pid for _, pid in killed} == {worker.pid}

    # Resume with a fresh runtime in this process, on the real clock.
    (tmp_path / "gate").write_text("open")
    with LocalRuntime(db) as runtime:
        deadline = time.monotonic() + 15
        while runtime.get(execution_id).status == "RUNNING" and time.monotonic() < deadline:
            if not runtime.run_once():
                time.sleep(0.05)
        info = runtime.get(execution_id)
        history = runtime.history(execution_id)

    assert info.status == "SUCCEEDED", info.error
    assert info.result == [f"item-{i}" for i in range(CRASH_ITEMS)]
    effects = _effects(tmp_path)
    assert sorted(i for i, _ in effects) == list(range(CRASH_ITEMS)), "every item's step ran exactly once"
    assert {pid for i, pid in effects if i >= CRASH_ITEMS // 2} == {os.getpid()}
    assert len([e for e in history if e["EventType"] == "StepSucceeded"]) == CRASH_ITEMS
    assert len([e for e in history if e["EventType"] == "WaitSucceeded"]) == CRASH_ITEMS
    iterations = [e for e in history if e.get("SubType") == "MapIteration" and e["EventType"] == "ContextSucceeded"]
    assert len(iterations) == CRASH_ITEMS
    crashed = [e for e in history if e["EventType"] == "InvocationCompleted"
               and (e["InvocationCompletedDetails"].get("Error") or {}).get("Payload", {}).get("ErrorType")
               == "Runtime.ExitError"]
    assert len(crashed) == 1


def test_virtual_clock_fixture_is_isolated(clock: VirtualClock) -> None:
    """Sanity: the unit-test runtime fixture runs on a virtual clock (waits above cost no time)."""
    assert clock.virtual
