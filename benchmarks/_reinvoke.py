"""One re-invocation in a fresh interpreter, the way a worker picks up a woken execution:
``python -m benchmarks._reinvoke DB`` opens the store, moves the virtual clock to the due timer
and runs one invocation (fire the timer, claim, load and parse the journal, replay every completed
step, checkpoint the next wait, end the invocation). Prints JSON: the invocation's wall time, and
the process's resident memory before it and at its peak."""

from __future__ import annotations

import json
import sys
import time


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> None:
    t_start = time.perf_counter()
    from duragent.durable import LocalRuntime, VirtualClock

    db = sys.argv[1]
    clock = VirtualClock()
    with LocalRuntime(db, durability="process", clock=clock) as rt:
        due = rt.service.next_due()
        if due is None:
            raise SystemExit("no timer is due in this store")
        clock.advance_to(due)
        imported = time.perf_counter()
        rss_before = _status_kb("VmRSS")
        t0 = time.perf_counter()
        ran = rt.run_once()
        elapsed = time.perf_counter() - t0
        if not ran:
            raise SystemExit("the re-invocation did not run")
        peak = _status_kb("VmHWM")
        status = rt.list(limit=1)[0]["status"]
    print(json.dumps({"seconds": elapsed, "rss_before_kb": rss_before, "peak_kb": peak, "status": status,
                      "startup_seconds": imported - t_start}))


if __name__ == "__main__":
    main()
