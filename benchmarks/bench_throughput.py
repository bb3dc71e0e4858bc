"""6. Short executions per second with one and with two worker processes on one database.

M executions of a one-step handler are created first; then 1 or 2 worker subprocesses (already
imported and connected, waiting on a "go") serve until nothing is runnable. Throughput is M over
the wall time from "go" to the last worker finishing. Each execution costs a claim, one step
checkpoint and an end-of-invocation commit.

Against DBOS (target: at least 5x its rate): one-step executions started and finished one after
another in one process (``rt.run``), durability="full", against the same with DBOS on SQLite, in the
same run, when ``make bench-peers`` has installed the peers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from duragent.durable import LocalRuntime

from . import _peers
from ._common import REPO, TARGET_SHORT_VS_DBOS, Result, main, median
from ._handlers import short


def serve(db: Path, workers: int, durability: str) -> dict[str, float]:
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks._worker", str(db), "--durability", durability],
                              cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("worker did not start")
        go = time.time()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        reports = []
        for p in procs:
            out, _ = p.communicate(timeout=600)
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    end = max(r["t1"] for r in reports)
    return {"seconds": end - go, "counts": [r["count"] for r in reports]}


def one_run(db: Path, count: int, workers: int, durability: str) -> float:
    with LocalRuntime(db, durability="process") as rt:  # creating the backlog is not what is measured
        ids = [rt.start(short, i) for i in range(count)]
    timing = serve(db, workers, durability)
    with LocalRuntime(db) as rt:
        done = sum(rt.get(e).status == "SUCCEEDED" for e in ids)
    if done != count:
        raise RuntimeError(f"only {done}/{count} executions succeeded ({workers} workers, {durability})")
    return count / timing["seconds"]


def run(mode: str, workdir: Path) -> list[Result]:
    count, reps = (300, 3) if mode == "quick" else (1000, 5)
    results: list[Result] = []
    for durability in ("full", "process"):
        rates: dict[int, float] = {}
        for workers in (1, 2):
            runs = [one_run(workdir / f"tp-{durability}-{workers}-{i}.db", count, workers, durability)
                    for i in range(reps)]
            rates[workers] = median(runs)
            results.append(Result("throughput", f"{durability}, {workers} worker(s): short executions/s", rates[workers],
                                  "exec/s", note=f"{count} one-step executions, median of {reps}",
                                  extra={"runs": runs}))
        results.append(Result("throughput", f"{durability}: 2 workers / 1 worker", rates[2] / rates[1], "x",
                              note="scaling on one database"))
    from .bench_peers import ours_short

    sequential: list[float] = []
    dbos: list[float] = []
    for i in range(reps):  # interleaved with DBOS, paired per round
        sequential.append(ours_short(workdir / f"seq-{i}.db", 200))
        if _peers.available():
            dbos.append(_peers.measure("dbos_short", {"count": 200})["per_second"])
    ours = median(sequential)
    results.append(Result("throughput", "full, one process, start+run one after another: executions/s", ours,
                          "exec/s", note=f"200 one-step executions, median of {reps}", extra={"runs": sequential}))
    if dbos:
        ratios = [a / b for a, b in zip(sequential, dbos, strict=True)]
        results.append(Result("throughput", "short executions/s: x DBOS (SQLite, its defaults)", median(ratios), "x",
                              target=TARGET_SHORT_VS_DBOS, op=">=",
                              note=f"DBOS {median(dbos):.0f}/s the same way; ratios paired per round",
                              extra={"dbos": dbos, "ratios": ratios}))
    else:
        results.append(Result("throughput", "short executions/s: x DBOS", float("nan"), "x", note=_peers.MISSING))
    return results


if __name__ == "__main__":
    main(run, "throughput")
