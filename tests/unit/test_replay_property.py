"""Property: for any program of steps, waits, child contexts, maps and retried steps, running it
durably (suspending and replaying at every wait and retry) gives the same result as running it
straight, each step body completes exactly once, and the finished history replays read-only."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from duragent.durable import DurableContext, LocalRuntime, MapConfig, RetryPolicy, StepConfig, VirtualClock
from duragent.durable.replay_check import replay_check

Program = list[Any]

leaf = st.one_of(
    st.tuples(st.just("step"), st.integers(-5, 5)),
    st.tuples(st.just("flaky"), st.integers(-5, 5)),
    st.tuples(st.just("wait"), st.integers(1, 3)),
)
programs = st.recursive(
    st.lists(leaf, max_size=4),
    lambda inner: st.lists(st.one_of(leaf, st.tuples(st.just("child"), inner),
                                     st.tuples(st.just("map"), st.lists(st.integers(0, 9), max_size=3))),
                           max_size=4),
    max_leaves=10,
)

RETRY_ONCE = StepConfig(retry=RetryPolicy.exponential(max_attempts=2, initial_delay=1, jitter=False))


def expected(program: Program) -> list[Any]:
    """The program run straight, no durability involved."""
    out: list[Any] = []
    for op in program:
        kind, arg = op
        if kind in ("step", "flaky"):
            out.append(arg * 2)
        elif kind == "child":
            out.append(expected(arg))
        elif kind == "map":
            out.append([x + 1 for x in arg])
    return out


def interpret(ctx: DurableContext, program: Program, runs: dict[str, int], failed: set[str], path: str) -> list[Any]:
    out: list[Any] = []
    for index, (kind, arg) in enumerate(program):
        key = f"{path}/{index}"
        if kind == "step":
            out.append(ctx.step(_counted, runs, key, arg * 2, name=key))
        elif kind == "flaky":
            out.append(ctx.step(_flaky, runs, failed, key, arg * 2, name=key, config=RETRY_ONCE))
        elif kind == "wait":
            ctx.wait(arg, name=key)
        elif kind == "child":
            out.append(ctx.run_in_child_context(lambda c, sub=arg, k=key: interpret(c, sub, runs, failed, k), name=key))
        elif kind == "map":
            batch = ctx.map(arg, lambda c, item, i, items, k=key: c.step(_counted, runs, f"{k}/{i}", item + 1),
                            name=key, config=MapConfig(max_concurrency=2))
            out.append(batch.get_results())
    return out


def _counted(runs: dict[str, int], key: str, value: int) -> int:
    runs[key] = runs.get(key, 0) + 1
    return value


def _flaky(runs: dict[str, int], failed: set[str], key: str, value: int) -> int:
    if key not in failed:
        failed.add(key)
        raise RuntimeError("first attempt fails")
    return _counted(runs, key, value)


def run_and_check(db: Path, handler: Any, program: Program, runs: dict[str, int]) -> list[dict[str, Any]]:
    """Run ``handler`` (which interprets ``program``, counting step bodies in ``runs``) durably, and
    check the property: the straight result, each step body completed once, the history replays
    read-only. Returns the history."""
    rt = LocalRuntime(db, clock=VirtualClock(), durability="process")
    execution_id = rt.start(handler, {})
    rt.run_until_idle()
    info = rt.get(execution_id)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == expected(program)
    assert all(count == 1 for count in runs.values()), runs  # each step body completed once
    history = rt.history(execution_id)
    assert len([e for e in history if e["EventType"] == "StepSucceeded"]) == len(runs)
    assert [r.ok for r in replay_check(rt, [execution_id])] == [True]  # it replays read-only to the end
    rt.close()
    return history


_ids = itertools.count()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=programs)
def test_a_durable_run_equals_a_straight_run(tmp_path: Path, program: Program) -> None:
    runs: dict[str, int] = {}
    failed: set[str] = set()

    def handler(event: Any, ctx: DurableContext) -> list[Any]:
        return interpret(ctx, program, runs, failed, "p")

    run_and_check(tmp_path / f"prop-{next(_ids)}.db", handler, program, runs)
