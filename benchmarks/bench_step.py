"""2. Durable step cost on a first run: a handler doing N trivial ``ctx.step`` calls, timed inside
the handler (so only the steps count, not starting or finishing the execution).

durability="full" is held against the raw WAL+FULL commit and durability="process" against the raw
WAL+NORMAL commit, each measured in the same process, interleaved with it (fsync cost and CPU load
drift over time): at most 1.5x and 4x."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from duragent.durable import LocalRuntime

from ._common import (
    TARGET_STEP_PROCESS_VS_NORMAL_FLOOR,
    TARGET_STEP_VS_FULL_FLOOR,
    Result,
    main,
    median,
    percentile,
)
from .bench_floor import commit_us


def trivial(i: int) -> int:
    return i


def make_handler(timings: dict[str, Any]) -> Any:
    def steps(event: dict[str, Any], ctx: Any) -> int:
        n = event["n"]
        per: list[float] = []
        t0 = time.perf_counter()
        for i in range(n):
            s = time.perf_counter()
            ctx.step(trivial, i, name="trivial")
            per.append(time.perf_counter() - s)
        timings["loop"] = time.perf_counter() - t0
        timings["per"] = per
        return n

    return steps


def step_run(db: Path, durability: str, n: int) -> dict[str, float]:
    timings: dict[str, Any] = {}
    handler = make_handler(timings)
    with LocalRuntime(db, durability=durability) as rt:
        t0 = time.perf_counter()
        info = rt.run(handler, {"n": n})
        total = time.perf_counter() - t0
    if info.status != "SUCCEEDED":
        raise RuntimeError(f"step benchmark execution ended {info.status}: {info.error}")
    per_us = [p * 1e6 for p in timings["per"]]
    return {"us_per_step": timings["loop"] / n * 1e6, "p50_us": percentile(per_us, 50),
            "p99_us": percentile(per_us, 99), "max_us": max(per_us),
            "us_per_step_incl_invocation": total / n * 1e6}


def commits_per_step(db: Path, n: int = 200) -> float | None:
    """Sanity check of 'one commit per checkpoint': COMMITs seen on the store's connection while
    the handler runs N steps, divided by N (the invocation's own claim/end commits excluded)."""
    timings: dict[str, Any] = {}
    commits = {"n": 0, "armed": False}

    def handler(event: dict[str, Any], ctx: Any) -> int:
        commits["armed"] = True
        make_handler(timings)(event, ctx)
        commits["armed"] = False
        return 0

    with LocalRuntime(db, durability="process") as rt:
        conn = getattr(rt.store, "_conn", None)
        if conn is None:
            return None

        def trace(sql: str) -> None:
            if commits["armed"] and sql.strip().upper().startswith("COMMIT"):
                commits["n"] += 1

        conn.set_trace_callback(trace)
        rt.run(handler, {"n": n})
        conn.set_trace_callback(None)
    return commits["n"] / n


def run(mode: str, workdir: Path) -> list[Result]:
    if mode == "quick":
        reps, sizes_full, sizes_process, floor_n = 5, [1000], [2000], 1000
    else:
        reps, sizes_full, sizes_process, floor_n = 3, [1000, 5000], [1000, 5000], 1000
    results: list[Result] = []
    floors: list[float] = []
    ahead_floors: list[float] = []
    full_runs: dict[int, list[dict[str, float]]] = {n: [] for n in sizes_full}
    k = 0
    for _ in range(reps):
        for n in sizes_full:
            floors.append(commit_us(workdir / f"floor{k}.db", "FULL", floor_n))
            ahead_floors.append(commit_us(workdir / f"ahead{k}.db", "FULL", floor_n, ahead=True))
            full_runs[n].append(step_run(workdir / f"full{k}.db", "full", n))
            k += 1
    floor, ahead_floor = median(floors), median(ahead_floors)
    for n, runs in full_runs.items():
        us = median([r["us_per_step"] for r in runs])
        results.append(Result("durable step", f"full, N={n}: µs/step", us, "µs",
                              note=f"p50 {median([r['p50_us'] for r in runs]):.0f}, "
                                   f"p99 {median([r['p99_us'] for r in runs]):.0f} µs",
                              extra={"runs": runs}))
        results.append(Result("durable step", f"full, N={n}: x FULL floor ({floor:.0f} µs)", us / floor, "x",
                              target=TARGET_STEP_VS_FULL_FLOOR,
                              note="floor re-measured interleaved", extra={"floor_runs_us": floors}))
        results.append(Result("durable step", f"full, N={n}: x FULL floor with its WAL written ahead "
                              f"({ahead_floor:.0f} µs)", us / ahead_floor, "x",
                              note="like for like: the store writes its WAL ahead too (engine overhead "
                                   "over the cheapest FULL commit)", extra={"floor_runs_us": ahead_floors}))
    normal_floors: list[float] = []
    for n in sizes_process:
        runs = []
        for i in range(reps):
            normal_floors.append(commit_us(workdir / f"normal{n}-{i}.db", "NORMAL", 3000))
            runs.append(step_run(workdir / f"process{n}-{i}.db", "process", n))
        us = median([r["us_per_step"] for r in runs])
        normal = median(normal_floors)
        results.append(Result("durable step", f"process, N={n}: µs/step", us, "µs",
                              note=f"p50 {median([r['p50_us'] for r in runs]):.0f}, "
                                   f"p99 {median([r['p99_us'] for r in runs]):.0f} µs",
                              extra={"runs": runs}))
        results.append(Result("durable step", f"process, N={n}: x NORMAL floor ({normal:.1f} µs)", us / normal, "x",
                              target=TARGET_STEP_PROCESS_VS_NORMAL_FLOOR, note="floor re-measured interleaved",
                              extra={"floor_runs_us": normal_floors}))
    cps = commits_per_step(workdir / "commits.db")
    if cps is not None:
        results.append(Result("durable step", "commits per step (sanity)", cps, "commits",
                              note="target design: 1 (START rides with SUCCEED)"))
    return results


if __name__ == "__main__":
    main(run, "step")
