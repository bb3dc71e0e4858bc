"""5. Timer-to-invocation latency with a real clock.

Executions each ``ctx.wait(1)``; one ``LocalRuntime.worker`` serves them from a thread. Latency is
(the wall time a plugin sees the second invocation start) - (the wait's ScheduledEndTimestamp).
Also reported: the timer's fire lag (WaitSucceeded event time - ScheduledEndTimestamp).

* staggered: executions started every 100 ms, so timers come due one at a time (held to the target);
* burst: many started back to back, so their timers come due close together and may queue
  behind the one worker (for information: it measures throughput as much as the scheduler)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from duragent.durable import LocalRuntime, Plugin

from ._common import TARGET_TIMER_P95_MS, Result, main, percentile


def wait_one_second(event: Any, ctx: Any) -> str:
    ctx.wait(1, name="tick")
    return "done"


class InvocationClock(Plugin):
    name = "invocation-clock"

    def __init__(self) -> None:
        self.resumed: dict[str, float] = {}
        self.ended = 0
        self._lock = threading.Lock()

    def on_invocation_start(self, info: Any) -> None:
        if not info.first:
            with self._lock:
                self.resumed.setdefault(info.execution_arn.rsplit("/", 1)[-1], time.time())

    def on_invocation_end(self, info: Any) -> None:
        with self._lock:
            self.ended += 1


def scenario(db: Path, count: int, gap: float) -> dict[str, Any]:
    clock = InvocationClock()
    with LocalRuntime(db, durability="full", plugins=[clock]) as rt:
        stop = threading.Event()
        worker = threading.Thread(target=rt.worker, args=(stop,), name="bench-worker")
        worker.start()
        ids = []
        for i in range(count):
            ids.append(rt.start(wait_one_second, i))
            if gap:
                time.sleep(gap)
        deadline = time.time() + 60 + count * 0.1
        while sum(rt.get(e).status != "RUNNING" for e in ids) < count and time.time() < deadline:
            time.sleep(0.05)
        stop.set()
        worker.join(timeout=10)
        latencies, fire_lags = [], []
        for execution_id in ids:
            wait = next(op for op in rt.operations(execution_id) if op.Type.value == "WAIT")
            assert wait.WaitDetails is not None and wait.WaitDetails.ScheduledEndTimestamp is not None
            scheduled = wait.WaitDetails.ScheduledEndTimestamp
            fired = next(e["EventTimestamp"] for e in rt.history(execution_id) if e["EventType"] == "WaitSucceeded")
            latencies.append((clock.resumed[execution_id] - scheduled) * 1000)
            fire_lags.append((fired - scheduled) * 1000)
    return {"latency_ms": latencies, "fire_lag_ms": fire_lags}


def run(mode: str, workdir: Path) -> list[Result]:
    staggered_n, burst_n = (40, 100) if mode == "quick" else (200, 500)
    results: list[Result] = []
    stag = scenario(workdir / "staggered.db", staggered_n, 0.1)
    lat, lag = stag["latency_ms"], stag["fire_lag_ms"]
    results.append(Result("timer", f"staggered ({staggered_n}): p95 due -> invocation", percentile(lat, 95), "ms",
                          target=TARGET_TIMER_P95_MS, op="<",
                          note=f"p50 {percentile(lat, 50):.1f}, max {max(lat):.1f} ms; fire lag p95 "
                               f"{percentile(lag, 95):.1f} ms", extra=stag))
    burst = scenario(workdir / "burst.db", burst_n, 0.0)
    lat, lag = burst["latency_ms"], burst["fire_lag_ms"]
    results.append(Result("timer", f"burst ({burst_n} started back to back): p95 due -> invocation", percentile(lat, 95), "ms",
                          note=f"p50 {percentile(lat, 50):.1f}, max {max(lat):.1f} ms; fire lag p95 "
                               f"{percentile(lag, 95):.1f} ms; 1 worker, full durability",
                          extra=burst))
    return results


if __name__ == "__main__":
    main(run, "timer")
