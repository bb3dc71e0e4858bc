"""Property, async: for any program of awaited steps, waits, child contexts, maps and retried
steps, running it durably as an ``async def`` handler gives the same result as running it straight,
each step body completes exactly once, the finished history replays read-only, and the journal
holds exactly the events the same program leaves as a sync handler (tests/unit/test_replay_property.py)."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from duragent.durable import AsyncDurableContext, DurableContext, LocalRuntime, MapConfig, VirtualClock
from tests.journals import comparable, first_difference
from tests.unit.test_replay_property import RETRY_ONCE, Program, interpret, programs, run_and_check


async def ainterpret(ctx: AsyncDurableContext, program: Program, runs: dict[str, int], failed: set[str],
                     path: str) -> list[Any]:
    out: list[Any] = []
    for index, (kind, arg) in enumerate(program):
        key = f"{path}/{index}"
        if kind == "step":
            out.append(await ctx.step(_counted, runs, key, arg * 2, name=key))
        elif kind == "flaky":
            out.append(await ctx.step(_flaky, runs, failed, key, arg * 2, name=key, config=RETRY_ONCE))
        elif kind == "wait":
            await ctx.wait(arg, name=key)
        elif kind == "child":
            out.append(await ctx.run_in_child_context(
                lambda c, sub=arg, k=key: ainterpret(c, sub, runs, failed, k), name=key))
        elif kind == "map":
            async def item_step(c: AsyncDurableContext, item: int, i: int, items: Any, k: str = key) -> int:
                return await c.step(_counted, runs, f"{k}/{i}", item + 1)

            batch = await ctx.map(arg, item_step, name=key, config=MapConfig(max_concurrency=2))
            out.append(batch.get_results())
    return out


async def _counted(runs: dict[str, int], key: str, value: int) -> int:
    await asyncio.sleep(0)  # let other branches run: the journal must not care
    runs[key] = runs.get(key, 0) + 1
    return value


async def _flaky(runs: dict[str, int], failed: set[str], key: str, value: int) -> int:
    if key not in failed:
        failed.add(key)
        raise RuntimeError("first attempt fails")
    return await _counted(runs, key, value)


_ids = itertools.count()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=programs)
def test_an_async_durable_run_equals_a_straight_run_and_the_sync_journal(tmp_path: Path, program: Program) -> None:
    runs: dict[str, int] = {}
    failed: set[str] = set()

    async def handler(event: Any, ctx: AsyncDurableContext) -> list[Any]:
        return await ainterpret(ctx, program, runs, failed, "p")

    n = next(_ids)
    history = run_and_check(tmp_path / f"aprop-{n}.db", handler, program, runs)

    sync_runs: dict[str, int] = {}
    sync_failed: set[str] = set()

    def sync_handler(event: Any, ctx: DurableContext) -> list[Any]:
        return interpret(ctx, program, sync_runs, sync_failed, "p")

    with LocalRuntime(tmp_path / f"sprop-{n}.db", clock=VirtualClock(), durability="process") as srt:
        sync_id = srt.run(sync_handler, {}).id
        sync_history = srt.history(sync_id)
    # map branches run two at a time: threads and tasks interleave them differently
    assert first_difference(comparable(sync_history, any_order=True), comparable(history, any_order=True)) is None
