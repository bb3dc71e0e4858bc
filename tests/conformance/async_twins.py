"""Async twins of conformance handlers: the same requirement written as an ``async def`` handler
(``await ctx.step(...)`` with async bodies, async submitters and checks, async map functions and
parallel branches). tests/conformance/test_async_twins.py holds each twin to its requirement and to
the history of its synchronous original, event for event. At least one per suite."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from duragent.durable import (
    AsyncDurableContext,
    CallbackConfig,
    CallbackError,
    ChildContextError,
    CompletionConfig,
    Duration,
    InvokeError,
    MapConfig,
    NestingType,
    ParallelConfig,
    RetryPolicy,
    StepConfig,
    StepContext,
    StepError,
    WaitForConditionConfig,
    poll_until,
    step_context,
)

from .handlers._batch import projection
from .handlers.invoke import ECHO, FAIL

AsyncHandler = Callable[[Any, AsyncDurableContext], Any]

TWINS: dict[str, AsyncHandler] = {}
"""Requirement id -> async handler."""

CONCURRENT: set[str] = set()
"""Twins whose branches run concurrently: threads and tasks interleave their events differently,
so their histories are compared as sets of events (every event the same, the order free)."""

NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())


def twin(*ids: str, concurrent: bool = False) -> Callable[[AsyncHandler], AsyncHandler]:
    def register(fn: AsyncHandler) -> AsyncHandler:
        for req_id in ids:
            assert req_id not in TWINS, req_id
            TWINS[req_id] = fn
            if concurrent:
                CONCURRENT.add(req_id)
        return fn

    return register


async def io(value: Any) -> Any:
    """Stands for real I/O: yields to the event loop before answering. Step bodies call it from a
    lambda (``ctx.step(lambda: io(x))``) so that, like the sync originals' lambdas, they are unnamed."""
    await asyncio.sleep(0)
    return value


def _fixed_delay(max_attempts: int, seconds: float = 1) -> RetryPolicy:
    return RetryPolicy.exponential(max_attempts=max_attempts, initial_delay=seconds, backoff_rate=1, jitter=False)


# -- step (1-x) ------------------------------------------------------------------------------------
@twin("1-3")
async def step_sequential(event: Any, ctx: AsyncDurableContext) -> str:
    async def step_one() -> str:
        return await io("first")

    async def step_two(previous: str) -> str:
        return await io(f"{previous}_second")

    first = await ctx.step(step_one)
    return await ctx.step(step_two, first)


@twin("1-7")
async def step_logger(event: str, ctx: AsyncDurableContext) -> str:
    async def greet() -> str:
        logger = step_context().logger  # the step context follows the awaited body
        logger.info("Greeting step started for: %s", event)
        greeting = await io(f"Hello, {event}!")
        logger.info("Greeting step completed with: %s", greeting)
        return greeting

    return await ctx.step(greet)


@twin("1-10")
async def step_replay_rethrows(event: Any, ctx: AsyncDurableContext) -> str:
    async def fail() -> str:
        step_context().logger.info("step executed")
        await io(None)
        raise RuntimeError("permanent failure")

    try:
        await ctx.step(fail, config=NO_RETRY)
    except StepError as exc:
        caught = f"{exc.error_type}: {exc.message}"
    await ctx.wait(1)
    return caught


@twin("1-11")
async def step_retry_then_succeed(event: Any, ctx: AsyncDurableContext) -> str:
    async def unreliable() -> str:
        if step_context().attempt == 1:
            raise RuntimeError("transient failure on attempt 1")
        return await io("Operation succeeded")

    return await ctx.step(unreliable, config=StepConfig(retry=_fixed_delay(3)))


@twin("1-12")
async def step_retry_exhausted(event: Any, ctx: AsyncDurableContext) -> str:
    async def always_fail() -> str:
        await io(None)
        raise RuntimeError(f"failure on attempt {step_context().attempt}")

    return await ctx.step(always_fail, config=StepConfig(retry=_fixed_delay(4)))


@twin("1-20")
async def step_error_caught(event: Any, ctx: AsyncDurableContext) -> str:
    def failing() -> str:  # a plain function in an async handler: called on the loop
        raise RuntimeError("primary failed")

    async def fallback() -> str:
        return await io("fallback_result")

    try:
        return await ctx.step(failing, config=NO_RETRY)
    except StepError:
        return await ctx.step(fallback)


# -- wait (2-x) ------------------------------------------------------------------------------------
@twin("2-3")
async def wait_sequential(event: Any, ctx: AsyncDurableContext) -> dict[str, int]:
    await ctx.wait(Duration.from_seconds(2), name="wait-1")
    await ctx.wait(Duration.from_seconds(2), name="wait-2")
    return {"completedWaits": 2}


# -- child (3-x) -----------------------------------------------------------------------------------
@twin("3-5")
async def child_failure_caught(event: str, ctx: AsyncDurableContext) -> str:
    async def failing() -> str:
        raise RuntimeError("inner step failed")

    try:
        await ctx.run_in_child_context(lambda child: child.step(failing, config=NO_RETRY))
    except ChildContextError:
        pass
    return await ctx.step(lambda: event)


@twin("3-6")
async def child_nested(event: str, ctx: AsyncDurableContext) -> str:
    async def inner(child: AsyncDurableContext) -> str:
        return await child.step(lambda: io(event))

    async def outer(child: AsyncDurableContext) -> str:
        await child.step(lambda: io(event))
        return await child.run_in_child_context(inner)

    return await ctx.run_in_child_context(outer)


@twin("3-7")
async def child_step_retry(event: str, ctx: AsyncDurableContext) -> str:
    async def flaky() -> str:
        if step_context().attempt == 1:
            raise RuntimeError("transient failure")
        return await io(event)

    retry = StepConfig(retry=_fixed_delay(3))
    return await ctx.run_in_child_context(lambda child: child.step(flaky, config=retry))


@twin("3-9")
async def child_then_wait(event: str, ctx: AsyncDurableContext) -> str:
    result = await ctx.run_in_child_context(lambda child: child.step(lambda: io(event)))
    await ctx.wait(1)
    return result


# -- callback (4-x) --------------------------------------------------------------------------------
@twin("4-1")
async def callback_basic(event: str, ctx: AsyncDurableContext) -> Any:
    callback = await ctx.create_callback(name=event)
    return await callback.result()


@twin("4-7")
async def callback_step_failure(event: str, ctx: AsyncDurableContext) -> Any:
    callback = await ctx.create_callback(name=event)
    await ctx.step(lambda: io("step done"))
    return await callback.result()


@twin("4-9", "4-10")
async def callback_wait_then_await(event: str, ctx: AsyncDurableContext) -> Any:
    callback = await ctx.create_callback(name=event)
    await ctx.wait(Duration(5))
    return await callback.result()


@twin("4-13")
async def callback_failure_caught_then_wait(event: str, ctx: AsyncDurableContext) -> str:
    try:
        await (await ctx.create_callback(name=event)).result()
        message = "no error"
    except CallbackError as exc:
        message = exc.message
    await ctx.wait(Duration(2))
    return message


# -- invoke (5-x) ----------------------------------------------------------------------------------
@twin("5-1", "5-3")
async def invoke_basic(event: Any, ctx: AsyncDurableContext) -> Any:
    return await ctx.invoke(ECHO, event)


@twin("5-6")
async def invoke_fails_caught(event: Any, ctx: AsyncDurableContext) -> Any:
    try:
        return await ctx.invoke(FAIL, event)
    except InvokeError as exc:
        return {"fallback": True, "error": exc.message}


# -- wait_for_condition (6-x) ----------------------------------------------------------------------
async def _increment(state: int, step_ctx: StepContext) -> int:
    return await io(state + 1)


@twin("6-1")
async def wfc_basic(event: int, ctx: AsyncDurableContext) -> int:
    return await ctx.wait_for_condition(_increment, config=WaitForConditionConfig(
        initial_state=0, wait_strategy=poll_until(lambda state: state >= event, delay=1)))


@twin("6-3")
async def wfc_named(event: int, ctx: AsyncDurableContext) -> int:
    return await ctx.wait_for_condition(_increment, name="poll-status", config=WaitForConditionConfig(
        initial_state=0, wait_strategy=poll_until(lambda state: state >= event, delay=1)))


# -- wait_for_callback (7-x) -----------------------------------------------------------------------
async def register_callback(callback_id: str) -> None:
    """An async submitter: hands the id over (here, to nobody)."""
    await io(None)


@twin("7-1", "7-4", "7-15")
async def wfcb_named_from_input(event: str, ctx: AsyncDurableContext) -> Any:
    return await ctx.wait_for_callback(register_callback, name=event)


@twin("7-3")
async def wfcb_anonymous(event: Any, ctx: AsyncDurableContext) -> Any:
    return await ctx.wait_for_callback(lambda callback_id: None)  # a plain submitter works too


@twin("7-6")
async def wfcb_failure_caught(event: str, ctx: AsyncDurableContext) -> Any:
    try:
        return await ctx.wait_for_callback(register_callback, name=event)
    except CallbackError:
        return "recovered"


@twin("7-8")
async def wfcb_in_child(event: str, ctx: AsyncDurableContext) -> Any:
    return await ctx.run_in_child_context(lambda child: child.wait_for_callback(register_callback, name=event),
                                          name="wrapper")


@twin("7-5")
async def wfcb_timeout(event: str, ctx: AsyncDurableContext) -> Any:
    return await ctx.wait_for_callback(register_callback, name=event, config=CallbackConfig(timeout=Duration(3)))


# -- parallel (8-x) --------------------------------------------------------------------------------
SEQUENTIAL = ParallelConfig(max_concurrency=1)


async def _fail(message: str) -> Any:
    await io(None)
    raise RuntimeError(message)


@twin("8-1")
async def parallel_basic(event: Any, ctx: AsyncDurableContext) -> list[Any]:
    branches = [lambda child: child.step(lambda: io("task-1")), lambda child: child.step(lambda: io("task-2"))]
    return (await ctx.parallel(branches, name="parallel", config=SEQUENTIAL)).get_results()


@twin("8-6")
async def parallel_fail_fast(event: Any, ctx: AsyncDurableContext) -> dict[str, Any]:
    branches = [lambda child: io("ok"), lambda child: _fail("branch 1 failed"), lambda child: io("never")]
    batch = await ctx.parallel(branches, name="failfast", config=ParallelConfig(
        max_concurrency=1, completion_config=CompletionConfig(tolerated_failure_count=0)))
    return projection(batch, "completionReason", "status", "successCount", "failureCount", "totalCount")


@twin("8-11", concurrent=True)
async def parallel_concurrent(event: Any, ctx: AsyncDurableContext) -> list[Any]:
    branches = [lambda child, i=i: io(f"r{i}") for i in range(3)]
    return (await ctx.parallel(branches, name="concurrent", config=ParallelConfig(max_concurrency=2))).get_results()


# -- map (9-x) -------------------------------------------------------------------------------------
MAP_SEQUENTIAL = MapConfig(max_concurrency=1)


@twin("9-1")
async def map_basic(event: list[str], ctx: AsyncDurableContext) -> list[Any]:
    async def greet(child: AsyncDurableContext, item: str, index: int, items: list[str]) -> str:
        return await child.step(lambda: io(f"Hello, {item}!"))

    return (await ctx.map(event, greet, name="map", config=MAP_SEQUENTIAL)).get_results()


@twin("9-9")
async def map_tolerated_count_exceeded(event: Any, ctx: AsyncDurableContext) -> dict[str, Any]:
    async def fn(child: AsyncDurableContext, item: str, index: int, items: list[str]) -> str:
        if index in (0, 1):
            raise RuntimeError(f"item {index} failed")
        return await io(item)

    batch = await ctx.map(["a", "b", "c"], fn, name="tolerated-exceeded", config=MapConfig(
        max_concurrency=1, completion_config=CompletionConfig(tolerated_failure_count=1)))
    return projection(batch, "completionReason", "successCount", "failureCount", "totalCount")


@twin("9-11", concurrent=True)
async def map_concurrent(event: Any, ctx: AsyncDurableContext) -> list[Any]:
    return (await ctx.map(["r0", "r1", "r2"], lambda child, item, index, items: io(item), name="concurrent",
                          config=MapConfig(max_concurrency=2))).get_results()


@twin("9-12")
async def map_flat(event: Any, ctx: AsyncDurableContext) -> list[Any]:
    config = MapConfig(max_concurrency=1, nesting_type=NestingType.FLAT)

    async def fn(child: AsyncDurableContext, item: str, index: int, items: list[str]) -> str:
        return await child.step(lambda: io(item))

    return (await ctx.map(["fa", "fb"], fn, name="flat", config=config)).get_results()


@twin("9-15")
async def map_wait_in_item(event: Any, ctx: AsyncDurableContext) -> list[Any]:
    async def fn(child: AsyncDurableContext, item: str, index: int, items: list[str]) -> str:
        if index == 1:
            await child.wait(1)
        return await child.step(lambda: io(item))

    return (await ctx.map(["r0", "r1"], fn, name="suspend", config=MAP_SEQUENTIAL)).get_results()


@twin("9-16")
async def map_large_results(event: Any, ctx: AsyncDurableContext) -> dict[str, Any]:
    async def fn(child: AsyncDurableContext, item: int, index: int, items: list[int]) -> str:
        return await io(chr(ord("a") + index) * 70_000)

    batch = await ctx.map(list(range(4)), fn, name="large", config=MAP_SEQUENTIAL)
    assert all(len(r) == 70_000 for r in batch.get_results())
    return {"successCount": batch.success_count, "totalCount": batch.total_count}
