"""Conformance handlers: the map suite (9-x)."""

from __future__ import annotations

from typing import Any

from duragent.durable import BatchResult, CompletionConfig, DurableContext, MapConfig, NestingType

from ..driver import requirement
from ._batch import projection

SEQUENTIAL = MapConfig(max_concurrency=1)


def _with_completion(**completion: Any) -> MapConfig:
    return MapConfig(max_concurrency=1, completion_config=CompletionConfig(**completion))


def _fail_on(*bad: int) -> Any:
    """A map function returning ``item-<index>``, raising for the indexes in ``bad``."""

    def fn(ctx: DurableContext, item: Any, index: int, items: list[Any]) -> str:
        if index in bad:
            raise RuntimeError(f"item {index} failed")
        return "ok" if item is None else str(item)

    return fn


@requirement("9-1")
def map_basic(event: list[str], ctx: DurableContext) -> list[Any]:
    """One step per item, greeting it."""

    def greet(child: DurableContext, item: str, index: int, items: list[str]) -> str:
        return child.step(lambda: f"Hello, {item}!")

    return ctx.map(event, greet, name="map", config=SEQUENTIAL).get_results()


@requirement("9-2")
def map_items_only(event: list[int], ctx: DurableContext) -> list[Any]:
    """No name; each item doubled directly."""
    return ctx.map(event, lambda child, item, index, items: item * 2, config=SEQUENTIAL).get_results()


@requirement("9-3")
def map_with_index(event: list[int], ctx: DurableContext) -> list[Any]:
    """item + index."""
    return ctx.map(event, lambda child, item, index, items: item + index, name="indexed",
                   config=SEQUENTIAL).get_results()


@requirement("9-4")
def map_empty(event: list[Any], ctx: DurableContext) -> list[Any]:
    """No items: the batch completes at once."""
    batch = ctx.map(event, lambda child, item, index, items: item, name="empty")
    assert batch.completion_reason.value == "ALL_COMPLETED" and batch.total_count == 0
    return batch.get_results()


@requirement("9-5")
def map_fail_fast(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """tolerated_failure_count=0: item 1 fails, item 2 never starts."""
    batch = ctx.map(["ok", "bad", "never"], _fail_on(1), name="failfast",
                    config=_with_completion(tolerated_failure_count=0))
    return projection(batch, "completionReason", "status", "successCount", "failureCount", "totalCount")


@requirement("9-6")
def map_throw_if_error(event: Any, ctx: DurableContext) -> list[Any]:
    """Fail-fast, then the batch rethrows: the execution fails."""
    batch = ctx.map(["bad", "never"], _fail_on(0), name="throwing",
                    config=_with_completion(tolerated_failure_count=0))
    batch.throw_if_error()
    return batch.get_results()


@requirement("9-7")
def map_min_successful(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """min_successful=2 of 4 items."""
    batch = ctx.map(["a", "b", "c", "d"], _fail_on(), name="min-successful",
                    config=_with_completion(min_successful=2))
    return projection(batch, "completionReason", "successCount", "totalCount")


@requirement("9-8")
def map_tolerated_count(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """One failure within a tolerance of one."""
    batch = ctx.map(["a", "b", "c"], _fail_on(1), name="tolerated",
                    config=_with_completion(tolerated_failure_count=1))
    return projection(batch, "completionReason", "status", "successCount", "failureCount", "totalCount")


@requirement("9-9")
def map_tolerated_count_exceeded(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """Two failures over a tolerance of one: item 2 never starts."""
    batch = ctx.map(["a", "b", "c"], _fail_on(0, 1), name="tolerated-exceeded",
                    config=_with_completion(tolerated_failure_count=1))
    return projection(batch, "completionReason", "successCount", "failureCount", "totalCount")


@requirement("9-10")
def map_tolerated_percentage(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """25 % of 4 tolerated: the second failure (50 %) stops the map."""
    batch = ctx.map(["a", "b", "c", "d"], _fail_on(0, 1), name="tolerated-pct",
                    config=_with_completion(tolerated_failure_percentage=25))
    return projection(batch, "completionReason", "successCount", "failureCount", "totalCount")


@requirement("9-11")
def map_concurrent(event: Any, ctx: DurableContext) -> list[Any]:
    """Up to two items at once; results in item order."""
    return ctx.map(["r0", "r1", "r2"], lambda child, item, index, items: item, name="concurrent",
                   config=MapConfig(max_concurrency=2)).get_results()


@requirement("9-12")
def map_flat(event: Any, ctx: DurableContext) -> list[Any]:
    """FLAT nesting: each item's step sits directly under the Map context."""
    config = MapConfig(max_concurrency=1, nesting_type=NestingType.FLAT)
    return ctx.map(["fa", "fb"], lambda child, item, index, items: child.step(lambda: item), name="flat",
                   config=config).get_results()


@requirement("9-13")
def map_item_namer(event: list[int], ctx: DurableContext) -> list[Any]:
    """Iterations named ``item-<item>``."""
    config = MapConfig(max_concurrency=1, item_namer=lambda item, index: f"item-{item}")
    return ctx.map(event, lambda child, item, index, items: item * 10, name="named-items",
                   config=config).get_results()


class PrefixSerdes:
    """A string written as ``wrapped:<s>`` and read back without the prefix (9-14)."""

    def serialize(self, value: Any) -> str | None:
        return f"wrapped:{value}"

    def deserialize(self, data: str | None) -> Any:
        if data is None:
            return None
        assert data.startswith("wrapped:"), data
        return data[len("wrapped:"):]


@requirement("9-14")
def map_item_serdes(event: Any, ctx: DurableContext) -> list[Any]:
    """A per-item serdes: payloads are ``wrapped:X``, results come back as ``X``."""
    config = MapConfig(max_concurrency=1, item_serdes=PrefixSerdes())
    return ctx.map(["x", "y"], lambda child, item, index, items: item.upper(), name="serdes",
                   config=config).get_results()


@requirement("9-15")
def map_wait_in_item(event: Any, ctx: DurableContext) -> list[Any]:
    """Item 1 waits 1 s before its step; on resume item 0 is not re-run."""

    def fn(child: DurableContext, item: str, index: int, items: list[str]) -> str:
        if index == 1:
            child.wait(1)
        return child.step(lambda: item)

    return ctx.map(["r0", "r1"], fn, name="suspend", config=SEQUENTIAL).get_results()


@requirement("9-16")
def map_large_results(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """Four ~70 KB results: the Map's own result is too big to checkpoint inline."""
    batch = ctx.map(list(range(4)), lambda child, item, index, items: chr(ord("a") + index) * 70_000,
                    name="large", config=SEQUENTIAL)
    assert all(len(r) == 70_000 for r in batch.get_results())
    return {"successCount": batch.success_count, "totalCount": batch.total_count}


@requirement("9-17")
def map_then_wait(event: Any, ctx: DurableContext) -> list[Any]:
    """A wait after a completed map: the map is not re-run on resume."""
    batch = ctx.map(["a", "b"], lambda child, item, index, items: item.upper(), name="then-wait",
                    config=SEQUENTIAL)
    ctx.wait(1)
    return batch.get_results()


@requirement("9-18")
def map_failure_then_wait(event: Any, ctx: DurableContext) -> dict[str, Any]:
    """A tolerated failed item, then a wait: the failure replays from the checkpoint."""
    batch = ctx.map(["ok", "fail"], _fail_on(1), name="fail-then-wait",
                    config=_with_completion(tolerated_failure_count=1))
    ctx.wait(1)
    return projection(batch, "completionReason", "status", "successCount", "failureCount", "totalCount")


class OpSerdes:
    """The whole BatchResult as ``OPSERDE:<r0>,<r1>,...`` (9-19, 9-20)."""

    def serialize(self, value: BatchResult) -> str | None:
        return "OPSERDE:" + ",".join(str(r) for r in value.get_results())

    def deserialize(self, data: str | None) -> BatchResult:
        assert data is not None and data.startswith("OPSERDE:"), data
        body = data[len("OPSERDE:"):]
        return BatchResult.from_results(body.split(",") if body else [])


@requirement("9-19")
def map_op_serdes(event: Any, ctx: DurableContext) -> list[Any]:
    """An operation-level serdes writes the Map's payload."""
    config = MapConfig(max_concurrency=1, serdes=OpSerdes())
    return ctx.map(["x", "y"], lambda child, item, index, items: item.upper(), name="op-serde",
                   config=config).get_results()


@requirement("9-20")
def map_op_serdes_replay(event: Any, ctx: DurableContext) -> list[Any]:
    """As 9-19, then a wait: the result is read back through the serdes on resume."""
    config = MapConfig(max_concurrency=1, serdes=OpSerdes())
    batch = ctx.map(["x", "y"], lambda child, item, index, items: item.upper(), name="op-serde-replay",
                    config=config)
    ctx.wait(1)
    return batch.get_results()
