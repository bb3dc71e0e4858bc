"""4. What a suspended execution costs: bytes in the store and threads.

1000 executions each run to ``ctx.wait(1 h)`` under a real-clock worker thread, then sit
suspended. And what suspended executions cost the others: one-step executions started and run
beside 10,000 suspended ones, against the same in an empty store (each claim and idle poll must
read only what may need work). Store growth per execution is measured with the WAL folded into the file; threads are
counted (Python's and the kernel's) while the worker idles with all of them suspended, and at the
peak while invocations run."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from duragent.durable import LocalRuntime, Plugin

from ._common import (
    TARGET_CROWDED_RATIO,
    TARGET_SUSPENDED_BYTES,
    Result,
    checkpointed_size,
    main,
    median,
    os_threads,
    table_bytes,
)
from ._handlers import short


def wait_an_hour(event: Any, ctx: Any) -> str:
    ctx.wait(3600, name="nap")
    return "woke"


class ThreadPeak(Plugin):
    name = "thread-peak"

    def __init__(self) -> None:
        self.peak_py = 0
        self.peak_os = 0
        self.ends = 0

    def on_invocation_end(self, info: Any) -> None:  # runs inside the invocation, threads still up
        self.peak_py = max(self.peak_py, threading.active_count())
        self.peak_os = max(self.peak_os, os_threads())
        self.ends += 1


def short_run_us(rt: LocalRuntime, n: int) -> float:
    """µs per one-step execution started and run to its end with ``rt.run`` (process durability: the
    engine's and the store's work, not the disk's)."""
    t0 = time.perf_counter()
    for i in range(n):
        if rt.run(short, i).result != 2 * i:
            raise RuntimeError("a short execution ended wrong")
    return (time.perf_counter() - t0) / n * 1e6


def crowded(workdir: Path, suspended: int = 10_000, n: int = 300, rounds: int = 3) -> Result:
    with LocalRuntime(workdir / "crowded.db", durability="process", functions=[short, wait_an_hour]) as crowd, \
            LocalRuntime(workdir / "empty.db", durability="process", functions=[short]) as empty:
        for i in range(suspended):
            crowd.start(wait_an_hour, i)
        crowd.run_until_idle()
        if crowd.count(status="RUNNING") != suspended:
            raise RuntimeError(f"expected {suspended} suspended executions")
        short_run_us(crowd, 20), short_run_us(empty, 20)  # warm both
        pairs = [(short_run_us(crowd, n), short_run_us(empty, n)) for _ in range(rounds)]
    ratios = [c / e for c, e in pairs]
    return Result("suspended", f"one-step execution beside {suspended:,} suspended / in an empty store", median(ratios),
                  "x", target=TARGET_CROWDED_RATIO,
                  note=f"{median([c for c, _ in pairs]):.0f} vs {median([e for _, e in pairs]):.0f} µs (process "
                       "durability, medians of interleaved rounds)", extra={"pairs_us": pairs})


def run(mode: str, workdir: Path) -> list[Result]:
    count = 1000
    db = workdir / "suspended.db"
    peak = ThreadPeak()
    with LocalRuntime(db, durability="process", plugins=[peak]) as rt:
        rt.start(wait_an_hour, 0)  # one execution first, so the baseline store has its schema and pages
        rt.run_until_idle()
        before = checkpointed_size(db)
        tables_before = table_bytes(db)
        threads_before = (threading.active_count(), os_threads())
        stop = threading.Event()
        worker = threading.Thread(target=rt.worker, args=(stop,), kwargs={"max_sleep": 0.2}, name="bench-worker")
        worker.start()
        t0 = time.perf_counter()
        for i in range(count):
            rt.start(wait_an_hour, i)
        deadline = time.time() + 300
        while peak.ends < count + 1 and time.time() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        time.sleep(0.5)  # let per-invocation helper threads finish
        threads_idle = (threading.active_count(), os_threads())
        running = len(rt.list(status="RUNNING", limit=10 * count))
        stop.set()
        worker.join(timeout=10)
    after = checkpointed_size(db)
    tables_after = table_bytes(db)
    if running != count + 1:
        raise RuntimeError(f"expected {count + 1} suspended executions, found {running}")
    per_exec = (after["used_bytes"] - before["used_bytes"]) / count
    per_table = {name: round((tables_after[name]["page_bytes"] - tables_before.get(name, {}).get("page_bytes", 0))
                             / count) for name in tables_after}
    payload = {name: round((tables_after[name]["payload_bytes"] - tables_before.get(name, {}).get("payload_bytes", 0))
                           / count) for name in tables_after}
    breakdown = ", ".join(f"{k} {v}" for k, v in sorted(per_table.items(), key=lambda kv: -kv[1]) if v)
    extra_threads = threads_idle[0] - threads_before[0] - 1  # minus the benchmark's worker thread
    return [
        Result("suspended", "store bytes per suspended execution", per_exec, "B", target=TARGET_SUSPENDED_BYTES,
               op="<", note=f"pages by table/index: {breakdown}",
               extra={"before": before, "after": after, "page_bytes_per_exec": per_table,
                      "payload_bytes_per_exec": payload}),
        Result("suspended", f"extra threads with {count} suspended", extra_threads, "threads", target=0,
               note=f"python threads {threads_before[0]}->{threads_idle[0]} (incl. worker), "
                    f"os threads {threads_before[1]}->{threads_idle[1]}; peak during invocations "
                    f"{peak.peak_py} py / {peak.peak_os} os",
               extra={"threads_before": threads_before, "threads_idle": threads_idle,
                      "peak_py": peak.peak_py, "peak_os": peak.peak_os}),
        Result("suspended", "start+suspend rate (1 worker, process)", count / elapsed, "exec/s",
               note="start, claim, wait checkpoint, end: for information"),
        crowded(workdir),
    ]


if __name__ == "__main__":
    main(run, "suspended")
