"""``async def`` handlers: every operation awaited, through the same journal logic as the sync
surface. Twins (a sync handler and its async copy) must leave the same journal, event for event;
branches of map and parallel run as asyncio tasks on one thread."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from duragent.durable import (
    AsyncDurableContext,
    CallbackConfig,
    CompletionConfig,
    DurableContext,
    Duration,
    LocalRuntime,
    MapConfig,
    NestingType,
    ParallelConfig,
    Plugin,
    RetryPolicy,
    StepConfig,
    StepError,
    UsageError,
    VirtualClock,
    WaitForConditionConfig,
    poll_until,
    step_context,
)
from duragent.durable.replay_check import replay_check
from tests.journals import comparable, first_difference

RETRY = StepConfig(retry=RetryPolicy.exponential(max_attempts=3, initial_delay=2, backoff_rate=1, jitter=False))


async def io(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


def drive(rt: LocalRuntime, clock: VirtualClock, answers: list[str]) -> None:
    """Run to the end, answering callbacks in the order they appear, before they could time out."""
    answers = list(answers)
    while True:
        rt.run_until_idle(skip_time=False)
        pending = rt.pending_callbacks()
        if pending and answers:
            rt.send_callback_success(pending[0][2], answers.pop(0))
            continue
        due = rt.service.next_due()
        if due is None:
            return
        clock.advance_to(due)


# -- twins: one program, both surfaces ---------------------------------------------------------------
FLAKY: dict[str, int] = {}


def sync_program(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    key = "sync"

    def flaky() -> str:
        FLAKY[key] = FLAKY.get(key, 0) + 1
        if step_context().attempt == 1:
            raise ConnectionError("first attempt fails")
        return "steady"

    loaded = ctx.step(lambda: {"id": 7}, name="load")
    steady = ctx.step(flaky, name="flaky", config=RETRY)
    ctx.wait(Duration.from_seconds(3), name="cool-off")
    callback = ctx.create_callback(name="approval", config=CallbackConfig(timeout=Duration.from_hours(1)))
    approved = callback.result()
    review = ctx.wait_for_callback(lambda callback_id: {"asked": "review"}, name="review")
    summary = ctx.run_in_child_context(lambda child: child.step(lambda: f"order {loaded['id']}", name="sum"),
                                       name="summarize")
    polled = ctx.wait_for_condition(lambda state, step: state + 1, name="poll", config=WaitForConditionConfig(
        initial_state=0, wait_strategy=poll_until(lambda state: state >= 2, delay=1)))
    doubled = ctx.map([1, 2, 3], lambda child, item, index, items: child.step(lambda: item * 2, name="double"),
                      name="double-all", config=MapConfig(max_concurrency=1))
    flat = ctx.map(["a", "b"], lambda child, item, index, items: child.step(lambda: item.upper(), name="up"),
                   name="flat", config=MapConfig(max_concurrency=1, nesting_type=NestingType.FLAT))
    pair = ctx.parallel([("left", lambda child: child.step(lambda: "L", name="l")),
                         ("right", lambda child: "R")], name="pair", config=ParallelConfig(max_concurrency=1))
    echoed = ctx.invoke("echo", {"hello": "there"}, name="call-echo")
    new_path = ctx.patched("v2-pricing")
    when = ctx.now()
    try:
        ctx.step(lambda: 1 / 0, name="divide", config=StepConfig(retry=RetryPolicy.no_retry()))
    except StepError as exc:
        failure = exc.error_type
    return {"steady": steady, "approved": approved, "review": review, "summary": summary, "polled": polled,
            "doubled": doubled.get_results(), "flat": flat.get_results(), "pair": pair.get_results(),
            "echoed": echoed, "new_path": new_path, "when": when, "failure": failure}


async def async_program(event: dict[str, Any], ctx: AsyncDurableContext) -> dict[str, Any]:
    key = "async"

    async def flaky() -> str:
        FLAKY[key] = FLAKY.get(key, 0) + 1
        if step_context().attempt == 1:
            raise ConnectionError("first attempt fails")
        return await io("steady")

    async def submit(callback_id: str) -> dict[str, str]:
        return await io({"asked": "review"})

    async def summarize(child: AsyncDurableContext) -> str:
        return await child.step(lambda: io(f"order {loaded['id']}"), name="sum")

    async def poll(state: int, step: Any) -> int:
        return await io(state + 1)

    async def double(child: AsyncDurableContext, item: int, index: int, items: list[int]) -> int:
        return await child.step(lambda: io(item * 2), name="double")

    async def up(child: AsyncDurableContext, item: str, index: int, items: list[str]) -> str:
        return await child.step(lambda: io(item.upper()), name="up")

    loaded = await ctx.step(lambda: {"id": 7}, name="load")  # a plain function, called on the loop
    steady = await ctx.step(flaky, name="flaky", config=RETRY)
    await ctx.wait(Duration.from_seconds(3), name="cool-off")
    callback = await ctx.create_callback(name="approval", config=CallbackConfig(timeout=Duration.from_hours(1)))
    approved = await callback.result()
    review = await ctx.wait_for_callback(submit, name="review")
    summary = await ctx.run_in_child_context(summarize, name="summarize")
    polled = await ctx.wait_for_condition(poll, name="poll", config=WaitForConditionConfig(
        initial_state=0, wait_strategy=poll_until(lambda state: state >= 2, delay=1)))
    doubled = await ctx.map([1, 2, 3], double, name="double-all", config=MapConfig(max_concurrency=1))
    flat = await ctx.map(["a", "b"], up, name="flat",
                         config=MapConfig(max_concurrency=1, nesting_type=NestingType.FLAT))
    pair = await ctx.parallel([("left", lambda child: child.step(lambda: io("L"), name="l")),
                               ("right", lambda child: io("R"))], name="pair",
                              config=ParallelConfig(max_concurrency=1))
    echoed = await ctx.invoke("echo", {"hello": "there"}, name="call-echo")
    new_path = await ctx.patched("v2-pricing")
    when = await ctx.now()
    try:
        await ctx.step(lambda: io(1 / 0), name="divide", config=StepConfig(retry=RetryPolicy.no_retry()))
    except StepError as exc:
        failure = exc.error_type
    return {"steady": steady, "approved": approved, "review": review, "summary": summary, "polled": polled,
            "doubled": doubled.get_results(), "flat": flat.get_results(), "pair": pair.get_results(),
            "echoed": echoed, "new_path": new_path, "when": when, "failure": failure}


async def echo(event: Any, ctx: AsyncDurableContext) -> Any:
    return await ctx.step(lambda: io(event), name="echo")


def sync_echo(event: Any, ctx: DurableContext) -> Any:
    return ctx.step(lambda: event, name="echo")


def run_twin(tmp_path: Path, name: str, handler: Any, target: Any) -> tuple[Any, list[dict[str, Any]]]:
    clock = VirtualClock()
    with LocalRuntime(tmp_path / f"{name}.db", clock=clock, functions={"echo": target}) as rt:
        execution_id = rt.start(handler, {"order": 7})
        drive(rt, clock, ['"yes"', '{"verdict": "ok"}'])
        info = rt.get(execution_id)
        assert [c.ok for c in replay_check(rt, [execution_id])] == [True]
        return info, rt.history(execution_id)


def test_an_async_handler_leaves_the_journal_of_its_sync_twin_event_for_event(tmp_path: Path) -> None:
    sync_info, sync_history = run_twin(tmp_path, "sync", sync_program, sync_echo)
    async_info, async_history = run_twin(tmp_path, "async", async_program, echo)
    assert sync_info.status == async_info.status == "SUCCEEDED", (sync_info.error, async_info.error)
    assert async_info.result == sync_info.result
    assert async_info.result["doubled"] == [2, 4, 6] and async_info.result["approved"] == "yes"
    assert async_info.result["review"] == {"verdict": "ok"} and async_info.result["failure"] == "ZeroDivisionError"
    assert FLAKY == {"sync": 2, "async": 2}  # retried once, durably, on both surfaces
    assert len(sync_history) > 60
    assert first_difference(comparable(sync_history), comparable(async_history)) is None


# -- branches as tasks -------------------------------------------------------------------------------
def test_map_branches_run_concurrently_as_tasks_on_the_handlers_thread(rt: LocalRuntime) -> None:
    seen: dict[int, int] = {}

    async def handler(event: Any, ctx: AsyncDurableContext) -> list[int]:
        started = 0
        everyone = asyncio.Event()

        async def branch(child: AsyncDurableContext, item: int, index: int, items: list[int]) -> int:
            nonlocal started
            seen[item] = threading.get_ident()
            started += 1
            if started == len(items):
                everyone.set()
            await everyone.wait()  # only returns if every branch runs at once
            return await child.step(lambda: io(item * item), name="square")

        batch = await ctx.map(list(range(20)), branch, name="squares")
        return batch.get_results()

    info = rt.run(handler)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == [i * i for i in range(20)]
    assert len(set(seen.values())) == 1  # one thread, twenty tasks


def test_max_concurrency_bounds_the_running_tasks(rt: LocalRuntime) -> None:
    peak = 0

    async def handler(event: Any, ctx: AsyncDurableContext) -> list[int]:
        active = 0

        async def branch(child: AsyncDurableContext, item: int, index: int, items: list[int]) -> int:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            for _ in range(3):
                await asyncio.sleep(0)
            active -= 1
            return item

        return (await ctx.map(list(range(10)), branch, config=MapConfig(max_concurrency=3))).get_results()

    info = rt.run(handler)
    assert info.result == list(range(10))
    assert peak == 3


def test_completion_rules_judge_async_branches_as_they_judge_threads(rt: LocalRuntime) -> None:
    async def handler(event: Any, ctx: AsyncDurableContext) -> dict[str, Any]:
        async def fails(child: AsyncDurableContext) -> str:
            await io(None)
            raise RuntimeError("nope")

        first = await ctx.parallel([lambda c: io("a"), lambda c: io("b"), lambda c: io("c")], name="first-two",
                                   config=ParallelConfig(max_concurrency=1,
                                                         completion_config=CompletionConfig(min_successful=2)))
        tolerant = await ctx.parallel([fails, lambda c: io("ok"), fails], name="tolerant",
                                      config=ParallelConfig(completion_config=CompletionConfig(
                                          tolerated_failure_count=0)))
        return {"first": [first.completion_reason.value, first.get_results()],
                "tolerant": tolerant.completion_reason.value, "errors": len(tolerant.get_errors())}

    info = rt.run(handler)
    assert info.status == "SUCCEEDED", info.error
    assert info.result["first"] == ["MIN_SUCCESSFUL_REACHED", ["a", "b"]]
    assert info.result["tolerant"] == "FAILURE_TOLERANCE_EXCEEDED" and info.result["errors"] >= 1


def test_a_suspended_branch_frees_its_slot_and_finished_ones_are_not_rerun(rt: LocalRuntime) -> None:
    runs: dict[int, int] = {}

    async def handler(event: Any, ctx: AsyncDurableContext) -> list[int]:
        async def branch(child: AsyncDurableContext, item: int, index: int, items: list[int]) -> int:
            if item % 2:
                await child.wait(5, name="nap")

            async def count() -> int:
                runs[item] = runs.get(item, 0) + 1
                return await io(item)

            return await child.step(count, name="count")

        return (await ctx.map(list(range(6)), branch, config=MapConfig(max_concurrency=2))).get_results()

    info = rt.run(handler)
    assert info.status == "SUCCEEDED" and info.result == list(range(6))
    assert runs == {i: 1 for i in range(6)}
    assert info.invocations == 2


# -- the rules every operation keeps ------------------------------------------------------------------
def test_an_async_function_given_to_a_sync_handler_is_refused_before_anything_is_written(
        rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.step(io, 1, name="fetch")

    info = rt.run(handler)
    assert info.status == "FAILED"
    assert info.error is not None and info.error["ErrorType"] == "duragent.UsageError"
    assert "async def" in info.error["ErrorMessage"] and "'io'" in info.error["ErrorMessage"]
    assert not [e for e in rt.history(info.id) if e["EventType"].startswith("Step")]


def test_the_step_context_follows_an_awaited_body_and_nesting_is_refused(rt: LocalRuntime) -> None:
    async def handler(event: Any, ctx: AsyncDurableContext) -> Any:
        async def body() -> dict[str, Any]:
            await asyncio.sleep(0)
            here = step_context()
            try:
                await ctx.step(lambda: 1)
            except UsageError as exc:
                refused = str(exc)
            return {"attempt": here.attempt, "name": here.name, "refused": refused}

        return await ctx.step(body, name="outer")

    info = rt.run(handler)
    assert info.result["attempt"] == 1 and info.result["name"] == "outer"
    assert "inside a step" in info.result["refused"]


def test_an_async_handler_failure_and_an_unserializable_result_fail_the_execution(rt: LocalRuntime) -> None:
    async def raises(event: Any, ctx: AsyncDurableContext) -> Any:
        await ctx.step(lambda: io("done"), name="first")
        raise ValueError("bad order")

    async def unserializable(event: Any, ctx: AsyncDurableContext) -> Any:
        return object()

    failed = rt.run(raises)
    assert failed.status == "FAILED" and failed.error is not None
    assert (failed.error["ErrorType"], failed.error["ErrorMessage"]) == ("ValueError", "bad order")
    assert [e["EventType"] for e in rt.history(failed.id) if e.get("Name") == "first"] == ["StepStarted",
                                                                                          "StepSucceeded"]
    odd = rt.run(unserializable)
    assert odd.status == "FAILED" and odd.error is not None and "serializ" in odd.error["ErrorMessage"]


class Recorder(Plugin):
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_invocation_start(self, info: Any) -> None:
        self.calls.append(("invocation-start", info.first))

    def on_invocation_end(self, info: Any) -> None:
        self.calls.append(("invocation-end", info.status))

    def on_operation_start(self, info: Any) -> None:
        self.calls.append(("operation-start", info.type, info.name, info.replaying))

    def on_operation_end(self, info: Any) -> None:
        self.calls.append(("operation-end", info.type, info.name, info.status))

    def on_attempt_start(self, info: Any) -> None:
        self.calls.append(("attempt-start", info.name, info.attempt))

    def on_attempt_end(self, info: Any) -> None:
        self.calls.append(("attempt-end", info.name, info.attempt, info.outcome))


def test_plugins_see_the_same_hooks_from_an_async_handler(tmp_path: Path) -> None:
    def sync(event: Any, ctx: DurableContext) -> str:
        a = ctx.step(lambda: "a", name="first")
        ctx.wait(2, name="pause")
        return a + ctx.run_in_child_context(lambda c: c.step(lambda: "b", name="second"), name="group")

    async def twin(event: Any, ctx: AsyncDurableContext) -> str:
        a = await ctx.step(lambda: io("a"), name="first")
        await ctx.wait(2, name="pause")
        return a + await ctx.run_in_child_context(lambda c: c.step(lambda: io("b"), name="second"), name="group")

    recorded = []
    for name, handler in (("sync", sync), ("twin", twin)):
        recorder = Recorder()
        with LocalRuntime(tmp_path / f"{name}.db", clock=VirtualClock(), plugins=[recorder]) as rt:
            assert rt.run(handler).result == "ab"
        recorded.append(recorder.calls)
    assert recorded[0] == recorded[1]
    assert ("operation-end", "CONTEXT", "group", "SUCCEEDED") in recorded[1]


def test_replay_check_replays_an_async_handler_and_names_a_divergence(rt: LocalRuntime) -> None:
    async def before(event: Any, ctx: AsyncDurableContext) -> str:
        await ctx.step(lambda: io("x"), name="first")
        await ctx.wait(60, name="long")
        return "done"

    execution_id = rt.start(before, {})
    rt.run_until_idle(skip_time=False)
    assert [(c.ok, c.outcome) for c in replay_check(rt, [execution_id])] == [(True, "suspends")]

    async def renamed(event: Any, ctx: AsyncDurableContext) -> str:
        await ctx.step(lambda: io("x"), name="renamed")
        return "done"

    rt.register(renamed, rt.get(execution_id).function)
    [check] = replay_check(rt, [execution_id])
    assert (check.ok, check.outcome) == (False, "diverges") and "'renamed'" in check.detail


@pytest.mark.parametrize("kind", ["step", "map", "wait_for_callback", "run_in_child_context"])
def test_sync_surface_refuses_each_kind_of_async_body(rt: LocalRuntime, kind: str) -> None:
    async def body(*args: Any) -> None:
        return None

    def handler(event: Any, ctx: DurableContext) -> Any:
        if kind == "step":
            return ctx.step(body)
        if kind == "map":
            return ctx.map([1], body)
        if kind == "wait_for_callback":
            return ctx.wait_for_callback(body)
        return ctx.run_in_child_context(body)

    info = rt.run(handler)
    assert info.status == "FAILED" and info.error is not None
    assert info.error["ErrorType"] == "duragent.UsageError" and f"ctx.{kind}" in info.error["ErrorMessage"]
