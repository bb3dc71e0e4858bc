"""3. Replay: what a user waits for when an execution with N completed steps wakes up.

A handler runs N trivial steps and then ``ctx.wait(1 h)``; its first invocation records the N steps
and suspends (``benchmarks._handlers:steps_then_wait``, execution ``big``; a one-step execution
``warm`` is recorded beside it). The store is copied and fsynced, and each copy is woken in a fresh
interpreter (``benchmarks._reinvoke``): fire the timer, claim, load and parse the journal, replay the
N steps, checkpoint the next wait, end the invocation. That whole re-invocation is measured two
ways, interleaved: in a running worker (the process woke ``warm`` first, as a worker serving a store
has woken something before) and as a fresh process's very first invocation, which also pays what a
process pays once (importing the handler, preparing each SQL statement, the first commit to a new
WAL, which syncs its header). The running worker's cost per completed step is held against the 5 µs
target, and its per-step cost at the largest N against that at N=1,000 (linear: within 1.2x); the
fresh process's, and the difference (paid once), are reported beside it. The process's peak memory
above its size before the invocation is held against 100 MiB at the largest N.

When ``make bench-peers`` has installed the peers, AWS's testing runner replays the same handler in
memory in the same run, and the ratio is reported (target ≤ 0.2x). The engine's in-memory loop alone
(an ``ExecutionState`` over rows already loaded) is shown for information."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.durable.local.service import local_arn
from duragent.durable.state import ExecutionState

from . import _peers
from ._common import (
    REPO,
    TARGET_REPLAY_LINEARITY,
    TARGET_REPLAY_MEMORY_MIB,
    TARGET_REPLAY_US,
    TARGET_REPLAY_VS_AWS,
    Result,
    main,
    median,
)
from ._handlers import steps_then_wait, trivial


def build(db: Path, n: int) -> float:
    """Record execution ``big`` (N steps, then suspended) and, a second earlier, execution ``warm``
    (one step, suspended), with which a warm worker is warmed up before it wakes ``big``; returns the
    first run's µs per step (for information)."""
    clock = VirtualClock()
    with LocalRuntime(db, durability="process", clock=clock) as rt:
        rt.start(steps_then_wait, {"n": 1}, execution_id="warm")
        if not rt.run_once(execution_id="warm"):
            raise RuntimeError("the warm-up execution did not run")
        clock.advance(1)
        rt.start(steps_then_wait, {"n": n}, execution_id="big")
        t0 = time.perf_counter()
        if not rt.run_once(execution_id="big"):
            raise RuntimeError("the first invocation did not run")
        elapsed = time.perf_counter() - t0
    conn = sqlite3.connect(str(db))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # one self-contained file to copy
    conn.close()
    return elapsed / n * 1e6


def copy_settled(master: Path, copy: Path) -> None:
    """Copy the recorded store and get the copy onto the disk before the measurement: a store a
    worker wakes has been on disk for a while, and the file system would otherwise charge the
    copy's unwritten megabytes to the invocation's first fsync (ext4 writes a file's delayed data
    before the journal commit that an fsync of the WAL next to it triggers)."""
    shutil.copyfile(master, copy)
    fd = os.open(copy, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def reinvoke(db: Path, *, warm: bool = False) -> dict[str, Any]:
    """Wake ``big`` in a fresh interpreter: its first invocation (cold), or after waking ``warm`` (a
    running worker)."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks._reinvoke", str(db), *(["--warm"] if warm else [])],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"re-invocation failed: {proc.stderr.strip()[-500:]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if data["status"] != "RUNNING":
        raise RuntimeError(f"the re-invocation ended the execution {data['status']}; it should suspend again")
    return data


def in_memory_loop(db: Path, n: int) -> float:
    """µs per step of the handler replaying its first ``n`` steps over operations already in memory
    (no store)."""
    with LocalRuntime(db, durability="process", clock=VirtualClock()) as rt:
        execution_id = "big"
        operations = rt.service.stored_operations(int(rt.service.execution(execution_id)["num"]))  # as a claim loads them
        arn = local_arn(rt.get(execution_id).function, execution_id)
        state = ExecutionState(arn=arn, token="unused", operations=operations, service=rt.service, now=rt.clock.now)
        ctx = DurableContext(state)
        t0 = time.perf_counter()
        for i in range(n):
            ctx.step(trivial, i, name="trivial")
        elapsed = time.perf_counter() - t0
        state.close()
        if state.checkpoint_calls:
            raise RuntimeError("replay checkpointed: the measured path is not a pure replay")
    return elapsed / n * 1e6


def run(mode: str, workdir: Path) -> list[Result]:
    sizes = [1000, 10000, 100000]
    reps = 3 if mode == "quick" else 7
    results: list[Result] = []
    per_step: dict[int, float] = {}
    cold_per_step: dict[int, float] = {}
    peak_mib: dict[int, float] = {}
    once_ms: dict[int, float] = {}
    for n in sizes:
        master = workdir / f"replay{n}.db"
        first_run = build(master, n)
        warm_runs, cold_runs = [], []
        for rep in range(reps):  # a running worker's re-invocation and a fresh process's, interleaved
            for warm, runs in ((True, warm_runs), (False, cold_runs)):
                copy = workdir / f"replay{n}-{rep}-{'warm' if warm else 'cold'}.db"
                copy_settled(master, copy)
                runs.append(reinvoke(copy, warm=warm))
        us = [r["seconds"] / n * 1e6 for r in warm_runs]
        per_step[n] = median(us)
        cold_per_step[n] = median([r["seconds"] / n * 1e6 for r in cold_runs])
        once_ms[n] = (cold_per_step[n] - per_step[n]) * n / 1e3
        peak_mib[n] = median([(r["peak_kb"] - r["rss_before_kb"]) / 1024 for r in warm_runs])
        loop = in_memory_loop(master, min(n, 10000))
        results.append(Result("replay", f"N={n}: whole re-invocation, µs per completed step", per_step[n], "µs",
                              target=TARGET_REPLAY_US,
                              note=f"in a running worker; runs {min(us):.1f}..{max(us):.1f}; as a fresh process's first "
                                   f"invocation {cold_per_step[n]:.1f} µs/step (+{once_ms[n]:.1f} ms once); handler loop "
                                   f"alone {loop:.1f} µs/step; memory +{peak_mib[n]:.0f} MiB; first run {first_run:.0f} "
                                   "µs/step",
                              extra={"warm_runs": warm_runs, "cold_runs": cold_runs, "in_memory_loop_us": loop,
                                     "first_run_us_per_step": first_run}))
    big = sizes[-1]
    # What a fresh process pays once (its first invocation, against a running worker's, same N): the
    # handler's import, each SQL statement's first preparation, the first commit to a new WAL (which
    # syncs the WAL header even with synchronous=NORMAL), the first use of each code path.
    results.append(Result("replay", "a fresh process's first re-invocation: extra, once", median(list(once_ms.values())),
                          "ms", note="median over the three sizes: "
                                     + ", ".join(f"N={n:,} {ms:.1f} ms" for n, ms in once_ms.items())))
    results.append(Result("replay", f"linearity: per-step N={big:,} / N=1,000", per_step[big] / per_step[1000], "x",
                          target=TARGET_REPLAY_LINEARITY, note=f"N=10,000/N=1,000: {per_step[10000] / per_step[1000]:.2f}"))
    results.append(Result("replay", f"memory at N={big:,} (peak RSS above the process before it)", peak_mib[big], "MiB",
                          target=TARGET_REPLAY_MEMORY_MIB, op="<", note=f"N=10,000: {peak_mib[10000]:.0f} MiB"))
    aws = _peers.measure("aws_replay", {"n": 10000, "reps": reps}) if _peers.available() else None
    if aws is not None:
        ours = per_step[10000]
        results.append(Result("replay", "whole re-invocation / AWS runner's in-memory replay (N=10,000)",
                              ours / aws["us_per_step"], "x", target=TARGET_REPLAY_VS_AWS,
                              note=f"ours {ours:.1f} µs/step, AWS {aws['us_per_step']:.1f} µs/step (same run)",
                              extra={"aws": aws}))
    else:
        results.append(Result("replay", "whole re-invocation / AWS runner's in-memory replay", float("nan"), "x",
                              note=_peers.MISSING))
    return results


if __name__ == "__main__":
    main(run, "replay")
