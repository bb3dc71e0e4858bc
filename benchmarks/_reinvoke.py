"""One re-invocation of the recorded execution ``big`` in a fresh interpreter, the way a worker picks
up a woken execution: ``python -m benchmarks._reinvoke DB [--warm]``. It opens the store, moves the
virtual clock to the due timer and runs one invocation (fire the timer, claim, load and parse the
journal, replay every completed step, checkpoint the next wait, end the invocation).

Cold (default): that invocation is the process's first, so it also pays what a process pays once
(importing the handler, preparing each SQL statement, the first commit to a new WAL, which syncs
its header). ``--warm``: the process first wakes the one-step execution ``warm`` (due a second
earlier), as a running worker would have, and then the one measured. Prints JSON: the measured
invocation's wall time, the process's resident memory before it and at its peak, and the warm-up
invocation's time."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    """Start the peak resident size (VmHWM) afresh, so that it is this invocation's peak and not the
    warm-up's (Linux: writing 5 to clear_refs). Where that is refused, the peak since start stands."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _due(rt: Any, execution_id: str) -> float:
    """When the wait the execution is suspended in ends (read from the store without parsing its
    operations, which would load all of them before the measurement)."""
    row = rt.store._conn.execute(
        "SELECT MIN(j.due_at) FROM journal j JOIN executions e ON j.k > (e.num << 32) "
        "AND j.k <= ((e.num + 1) << 32) - 1 WHERE e.id = ? AND j.due_at IS NOT NULL", (execution_id,)).fetchone()
    if row is None or row[0] is None:
        raise SystemExit(f"execution {execution_id!r} waits for no timer in this store")
    return float(row[0])


def main() -> None:
    t_start = time.perf_counter()
    from duragent.durable import LocalRuntime, VirtualClock

    db, warm = sys.argv[1], "--warm" in sys.argv[2:]
    clock = VirtualClock()
    warm_seconds = None
    with LocalRuntime(db, durability="process", clock=clock) as rt:
        big_due = _due(rt, "big")
        if warm:
            clock.advance_to(_due(rt, "warm"))
            t0 = time.perf_counter()
            if not rt.run_once(execution_id="warm"):
                raise SystemExit("the warm-up invocation did not run")
            warm_seconds = time.perf_counter() - t0
        clock.advance_to(big_due)
        imported = time.perf_counter()
        _reset_peak()
        rss_before = _status_kb("VmRSS")
        t0 = time.perf_counter()
        ran = rt.run_once(execution_id="big")
        elapsed = time.perf_counter() - t0
        if not ran:
            raise SystemExit("the re-invocation did not run")
        peak = max(_status_kb("VmHWM"), _status_kb("VmRSS"))
        status = rt.get("big").status
    print(json.dumps({"seconds": elapsed, "rss_before_kb": rss_before, "peak_kb": peak, "status": status,
                      "startup_seconds": imported - t_start, "warm_up_seconds": warm_seconds}))


if __name__ == "__main__":
    main()
