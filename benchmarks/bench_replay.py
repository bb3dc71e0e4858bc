"""3. Replay cost per completed step.

A handler runs N trivial steps and then ``ctx.wait(1 h)``; its first invocation records the N
steps and suspends. Then:

* in-memory replay: an ``ExecutionState`` built from the stored operations and a ``DurableContext``
  re-run the handler; the N completed steps are timed inside the handler (no database touched:
  this is the engine's replay path alone) — the number held against the target;
* re-invocation: the whole second invocation through the runtime (timer fires, claim loads the N
  operations from SQLite and parses them, the handler replays, the next wait is checkpointed),
  per step, for information.

Linearity: per-step cost at the largest N divided by that at N=1000."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.durable.errors import SuspendExecution
from duragent.durable.local.service import local_arn
from duragent.durable.state import ExecutionState

from ._common import TARGET_LINEARITY, TARGET_REPLAY_US, Result, main, median


def trivial(i: int) -> int:
    return i


def make_handler(timings: dict[str, float]) -> Any:
    def n_steps_then_wait(event: dict[str, Any], ctx: Any) -> str:
        n = event["n"]
        t0 = time.perf_counter()
        for i in range(n):
            ctx.step(trivial, i, name="trivial")
        timings["steps"] = time.perf_counter() - t0
        ctx.wait(3600)
        ctx.wait(3600)
        return "done"

    return n_steps_then_wait


def in_memory_replay(rt: LocalRuntime, execution_id: str, n: int, reps: int) -> dict[str, Any]:
    t_load0 = time.perf_counter()
    operations = rt.operations(execution_id)
    load = time.perf_counter() - t_load0
    info = rt.get(execution_id)
    arn = local_arn(info.function, execution_id)
    runs = []
    for _ in range(reps):
        timings: dict[str, float] = {}
        handler = make_handler(timings)
        state = ExecutionState(arn=arn, token="unused", operations=list(operations), service=rt.service,
                               now=rt.clock.now)
        ctx = DurableContext(state)
        try:
            handler({"n": n}, ctx)
        except SuspendExecution:
            pass
        finally:
            state.close()
        if state.checkpoint_calls:
            raise RuntimeError("replay checkpointed: the measured path is not a pure replay")
        runs.append(timings["steps"] / n * 1e6)
    return {"us_per_step": median(runs), "runs_us": runs, "load_ops_us_per_op": load / (n + 2) * 1e6}


def reinvocation(rt: LocalRuntime, clock: VirtualClock, execution_id: str, n: int) -> float:
    """µs per completed step of one whole re-invocation (fire timer, claim+load, replay, checkpoint)."""
    due = rt.service.next_due()
    assert due is not None
    clock.advance_to(due)
    t0 = time.perf_counter()
    ran = rt.run_once()
    elapsed = time.perf_counter() - t0
    if not ran:
        raise RuntimeError("the second invocation did not run")
    return elapsed / n * 1e6


def run(mode: str, workdir: Path) -> list[Result]:
    sizes = [100, 1000, 10000]
    reps = 5 if mode == "quick" else 9
    results: list[Result] = []
    per_step: dict[int, float] = {}
    for n in sizes:
        clock = VirtualClock()
        timings: dict[str, float] = {}
        with LocalRuntime(workdir / f"replay{n}.db", durability="process", clock=clock) as rt:
            execution_id = rt.start(make_handler(timings), {"n": n})
            rt.run_once()
            first_run_us = timings["steps"] / n * 1e6
            mem = in_memory_replay(rt, execution_id, n, reps)
            full = reinvocation(rt, clock, execution_id, n)
        per_step[n] = mem["us_per_step"]
        results.append(Result("replay", f"N={n}: µs per completed step (in memory)", mem["us_per_step"], "µs",
                              target=TARGET_REPLAY_US,
                              note=f"whole re-invocation {full:.1f} µs/step; loading ops "
                                   f"{mem['load_ops_us_per_op']:.1f} µs/op",
                              extra={**mem, "reinvocation_us_per_step": full, "first_run_us_per_step": first_run_us}))
    linearity = per_step[sizes[-1]] / per_step[1000]
    results.append(Result("replay", f"linearity: per-step N={sizes[-1]} / N=1000", linearity, "x",
                          target=TARGET_LINEARITY, note=f"N=100/N=1000: {per_step[100] / per_step[1000]:.2f}"))
    return results


if __name__ == "__main__":
    main(run, "replay")
