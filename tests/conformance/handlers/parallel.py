"""Conformance handlers: the parallel suite (8-x)."""

from __future__ import annotations

import json
from typing import Any

from duragent.durable import CompletionConfig, DurableContext, NestingType, ParallelConfig

from ..driver import requirement
from ._batch import projection

SEQUENTIAL = ParallelConfig(max_concurrency=1)


def _fail(message: str) -> Any:
    raise RuntimeError(message)


def _with_completion(**completion: Any) -> ParallelConfig:
    return ParallelConfig(max_concurrency=1, completion_config=CompletionConfig(**completion))


@requirement("8-1")
def parallel_basic(event: Any, ctx: DurableContext) -> list[Any]:
    """Two branches, each one step returning a constant."""
    branches = [
        lambda child: child.step(lambda: "task-1"),
        lambda child: child.step(lambda: "task-2"),
    ]
    return ctx.parallel(branches, name="parallel", config=SEQUENTIAL).get_results()


@requirement("8-2")
def parallel_branches_only(event: Any, ctx: DurableContext) -> list[Any]:
    """No operation name; branches return their values directly."""
    return ctx.parallel([lambda child: "alpha", lambda child: "beta"], config=SEQUENTIAL).get_results()


@requirement("8-3")
def parallel_named_branches(event: Any, ctx: DurableContext) -> list[Any]:
    """Branches given as (name, fn) pairs."""
    branches = [("first", lambda child: "one"), ("second", lambda child: "two")]
    return ctx.parallel(branches, name="named", config=SEQUENTIAL).get_results()


@requirement("8-4")
def parallel_heterogeneous(event: Any, ctx: DurableContext) -> list[Any]:
    """A string, a number and an object, each round-tripped with its own type."""
    branches = [lambda child: "hello", lambda child: 42, lambda child: {"k": "v"}]
    return ctx.parallel(branches, name="hetero", config=SEQUENTIAL).get_results()


@requirement("8-5")
def parallel_empty(event: Any, ctx: DurableContext) -> list[Any]:
    """No branches at all: the batch completes at once."""
    batch = ctx.parallel([], name="empty")
    assert batch.completion_reason.value == "ALL_COMPLETED" and batch.total_count == 0
    return batch.get_results()


@requirement("8-6")
def parallel_fail_fast(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """tolerated_failure_count=0: the second branch fails, the third never starts."""
    branches = [lambda child: "ok", lambda child: _fail("branch 1 failed"), lambda child: "never"]
    batch = ctx.parallel(branches, name="failfast", config=_with_completion(tolerated_failure_count=0))
    return projection(batch, "completionReason", "status", "successCount", "failureCount", "totalCount")


@requirement("8-7")
def parallel_throw_if_error(event: Any, ctx: DurableContext) -> list[Any]:
    """Fail-fast, then the batch rethrows the first branch error: the execution fails."""
    branches = [lambda child: _fail("branch 0 failed"), lambda child: "never"]
    batch = ctx.parallel(branches, name="throwing", config=_with_completion(tolerated_failure_count=0))
    batch.throw_if_error()
    return batch.get_results()


@requirement("8-8")
def parallel_min_successful(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """min_successful=2 of 4: the batch completes after two branches."""
    branches = [lambda child, i=i: f"r{i}" for i in range(4)]
    batch = ctx.parallel(branches, name="min-successful", config=_with_completion(min_successful=2))
    return projection(batch, "completionReason", "successCount", "totalCount")


@requirement("8-9")
def parallel_tolerated_count(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """One failure within a tolerance of one: every branch runs."""
    branches = [lambda child: "a", lambda child: _fail("branch 1 failed"), lambda child: "c"]
    batch = ctx.parallel(branches, name="tolerated", config=_with_completion(tolerated_failure_count=1))
    return projection(batch, "completionReason", "status", "successCount", "failureCount", "totalCount")


@requirement("8-10")
def parallel_tolerated_count_exceeded(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """Two failures over a tolerance of one: the third branch never starts."""
    branches = [lambda child: _fail("branch 0 failed"), lambda child: _fail("branch 1 failed"),
                lambda child: "never"]
    batch = ctx.parallel(branches, name="tolerated-exceeded", config=_with_completion(tolerated_failure_count=1))
    return projection(batch, "completionReason", "successCount", "failureCount", "totalCount")


@requirement("8-11")
def parallel_concurrent(event: Any, ctx: DurableContext) -> list[Any]:
    """Up to two branches at once; results in branch order whatever the finishing order."""
    branches = [lambda child, i=i: f"r{i}" for i in range(3)]
    return ctx.parallel(branches, name="concurrent", config=ParallelConfig(max_concurrency=2)).get_results()


@requirement("8-12")
def parallel_flat(event: Any, ctx: DurableContext) -> list[Any]:
    """FLAT nesting: no branch contexts, each step's parent is the Parallel context."""
    branches = [lambda child: child.step(lambda: "fa"), lambda child: child.step(lambda: "fb")]
    config = ParallelConfig(max_concurrency=1, nesting_type=NestingType.FLAT)
    return ctx.parallel(branches, name="flat", config=config).get_results()


@requirement("8-13")
def parallel_tolerated_percentage(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """25 % of 4 tolerated: the second failure (50 %) stops the batch."""
    branches = [lambda child: _fail("branch 0 failed"), lambda child: _fail("branch 1 failed"),
                lambda child: "c", lambda child: "d"]
    batch = ctx.parallel(branches, name="tolerated-pct",
                         config=_with_completion(tolerated_failure_percentage=25))
    return projection(batch, "completionReason", "successCount", "failureCount", "totalCount")


@requirement("8-14")
def parallel_branch_waits(event: Any, ctx: DurableContext) -> list[Any]:
    """Branch 1 suspends on a 2 s wait; on resume branch 0 is not re-run."""

    def branch1(child: DurableContext) -> str:
        child.wait(2)
        return "b1"

    branches = [lambda child: child.step(lambda: "b0"), branch1]
    return ctx.parallel(branches, name="replay", config=SEQUENTIAL).get_results()


class WrappingSerdes:
    """Writes ``{"wrapped": v}``, reads back ``v`` (8-15)."""

    def serialize(self, value: Any) -> str | None:
        return json.dumps({"wrapped": value})

    def deserialize(self, data: str | None) -> Any:
        return None if data is None else json.loads(data)["wrapped"]


@requirement("8-15")
def parallel_item_serdes(event: Any, ctx: DurableContext) -> list[Any]:
    """A per-branch serdes: branch payloads are wrapped, results come back unwrapped."""
    config = ParallelConfig(max_concurrency=1, item_serdes=WrappingSerdes())
    return ctx.parallel([lambda child: "x", lambda child: "y"], name="serde", config=config).get_results()


@requirement("8-16")
def parallel_all_fail_tolerated(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """Every branch fails, all within a tolerance of three."""
    branches = [lambda child, i=i: _fail(f"branch {i} failed") for i in range(3)]
    batch = ctx.parallel(branches, name="all-fail", config=_with_completion(tolerated_failure_count=3))
    return projection(batch, "completionReason", "status", "successCount", "failureCount", "totalCount")


@requirement("8-17")
def parallel_min_successful_not_reached(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """min_successful=3 is never reached: all branches run."""
    branches = [lambda child: "a", lambda child: _fail("branch 1 failed"), lambda child: "c"]
    batch = ctx.parallel(branches, name="min-not-reached", config=_with_completion(min_successful=3))
    return projection(batch, "completionReason", "status", "successCount", "failureCount", "totalCount")


@requirement("8-18")
def parallel_combined_completion(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """min_successful=3 and tolerated_failure_count=1: the tolerance is exceeded first."""
    branches = [lambda child: _fail("branch 0 failed"), lambda child: _fail("branch 1 failed"),
                lambda child: "c", lambda child: "d"]
    batch = ctx.parallel(branches, name="combined",
                         config=_with_completion(min_successful=3, tolerated_failure_count=1))
    return projection(batch, "completionReason", "successCount", "failureCount", "totalCount")


@requirement("8-19")
def parallel_invalid_concurrency(event: Any, ctx: DurableContext) -> list[Any]:
    """max_concurrency=0 is a configuration error raised before anything is checkpointed."""
    branches = [lambda child: "a", lambda child: "b"]
    return ctx.parallel(branches, name="bad-concurrency", config=ParallelConfig(max_concurrency=0)).get_results()


@requirement("8-20")
def parallel_accessors(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """The BatchResult accessors over a success, a failure and a success."""
    branches = [lambda child: "a", lambda child: _fail("branch 1 failed"), lambda child: "c"]
    batch = ctx.parallel(branches, name="accessors", config=_with_completion(tolerated_failure_count=1))
    return {"hasFailure": batch.has_failure, "successCount": len(batch.succeeded()),
            "failureCount": len(batch.failed()), "errorCount": len(batch.get_errors())}


@requirement("8-21")
def parallel_nested(event: Any, ctx: DurableContext) -> list[Any]:
    """A branch that runs a parallel of its own."""

    def outer_branch(child: DurableContext) -> list[Any]:
        inner = [lambda c: c.step(lambda: "i1"), lambda c: c.step(lambda: "i2")]
        return child.parallel(inner, name="inner", config=SEQUENTIAL).get_results()

    return ctx.parallel([outer_branch], name="outer", config=SEQUENTIAL).get_results()


@requirement("8-22")
def parallel_percentage_boundary(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """1 failure of 4 is exactly 25 %: not over the tolerance, every branch runs."""
    branches = [lambda child: _fail("branch 0 failed"), lambda child: "b", lambda child: "c", lambda child: "d"]
    batch = ctx.parallel(branches, name="pct-boundary", config=_with_completion(tolerated_failure_percentage=25))
    return projection(batch, "completionReason", "status", "successCount", "failureCount", "totalCount")
