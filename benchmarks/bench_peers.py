"""8. Peers, side by side (``make bench-peers``): DBOS on SQLite, LangGraph with its SQLite
checkpointer and AWS's durable-execution testing runner, run from ``.venv-peers`` (installed from
PyPI by the make target), interleaved with duragent round by round, each peer measurement in a fresh
interpreter and a fresh database file. Ratios are peer / duragent per round (above 1: duragent is
faster), the median over rounds reported.

* step: a first run of N trivial steps, per step (duragent durability="full"; DBOS with its default
  rollback journal and with WAL; LangGraph: one node run N times, a checkpoint per superstep; AWS:
  its in-memory runner, so no disk at all);
* replay: an execution with N completed steps woken again: duragent's whole re-invocation in a running
  worker (a fresh interpreter that woke another execution first) against AWS's runner replaying in memory;
* short executions: one-step executions started and finished one after another in one process,
  per second."""

from __future__ import annotations

import time
from pathlib import Path

from duragent.durable import LocalRuntime

from . import _peers
from ._common import TARGET_REPLAY_VS_AWS, TARGET_SHORT_VS_DBOS, Result, main, median
from ._handlers import short
from .bench_replay import build, copy_settled, reinvoke
from .bench_step import step_run


def ours_short(db: Path, count: int) -> float:
    with LocalRuntime(db, durability="full", functions=[short]) as rt:
        rt.run(short, -1)  # warm-up
        t0 = time.perf_counter()
        for i in range(count):
            info = rt.run(short, i)
            if info.result != 2 * i:
                raise RuntimeError(f"short execution {i} ended {info.status}")
        return count / (time.perf_counter() - t0)


def run(mode: str, workdir: Path) -> list[Result]:
    if not _peers.available():
        raise SystemExit(_peers.MISSING)
    rounds = 3 if mode == "quick" else 5
    steps, replay_n, short_count = 300, 10000, 200
    master = workdir / "replay-master.db"
    build(master, replay_n)
    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    for r in range(rounds):
        ours_step = step_run(workdir / f"step-{r}.db", "full", steps)["us_per_step"]
        add("ours step", ours_step)
        for key, command, args in [("DBOS step", "dbos_step", {"n": steps}),
                                   ("DBOS (WAL) step", "dbos_step", {"n": steps, "wal": True}),
                                   ("LangGraph step", "langgraph_step", {"n": steps}),
                                   ("AWS runner step", "aws_step", {"n": 1000})]:
            value = _peers.measure(command, args)
            us = value["first_us_per_step"] if command == "aws_step" else value["us_per_step"]
            add(key, us)
            add(key + " ratio", us / ours_step)
        copy = workdir / f"replay-{r}.db"
        copy_settled(master, copy)
        ours_replay = reinvoke(copy, warm=True)["seconds"] / replay_n * 1e6  # as bench_replay holds it
        add("ours replay", ours_replay)
        aws = _peers.measure("aws_replay", {"n": replay_n})["us_per_step"]
        add("AWS replay", aws)
        add("AWS replay ratio", ours_replay / aws)
        ours = ours_short(workdir / f"short-{r}.db", short_count)
        add("ours short", ours)
        for key, wal in (("DBOS short", False), ("DBOS (WAL) short", True)):
            value = _peers.measure("dbos_short", {"count": short_count, "wal": wal})["per_second"]
            add(key, value)
            add(key + " ratio", ours / value)

    def m(key: str) -> float:
        return median(rows[key])

    results = [Result("peers", f"duragent step (full), N={steps}", m("ours step"), "µs",
                      note=f"{rounds} rounds, interleaved with the peers")]
    for key in ("DBOS step", "DBOS (WAL) step", "LangGraph step", "AWS runner step"):
        results.append(Result("peers", f"{key}: x duragent", m(key + " ratio"), "x",
                              note=f"{m(key):.0f} µs/step" + (" (in memory, N=1000)" if "AWS" in key else ""),
                              extra={"us": rows[key], "ratio": rows[key + " ratio"]}))
    results.append(Result("peers", f"duragent whole re-invocation, N={replay_n:,}", m("ours replay"), "µs",
                          note="per completed step, in a running worker (a fresh interpreter that woke another execution first)"))
    results.append(Result("peers", "duragent re-invocation / AWS runner's in-memory replay", m("AWS replay ratio"), "x",
                          target=TARGET_REPLAY_VS_AWS, note=f"AWS {m('AWS replay'):.1f} µs/step",
                          extra={"aws_us": rows["AWS replay"], "ratio": rows["AWS replay ratio"]}))
    results.append(Result("peers", "duragent short executions/s (full, sequential)", m("ours short"), "exec/s"))
    results.append(Result("peers", "duragent / DBOS short executions/s", m("DBOS short ratio"), "x",
                          target=TARGET_SHORT_VS_DBOS, op=">=", note=f"DBOS {m('DBOS short'):.0f}/s (default journal)",
                          extra={"dbos": rows["DBOS short"], "ratio": rows["DBOS short ratio"]}))
    results.append(Result("peers", "duragent / DBOS (WAL) short executions/s", m("DBOS (WAL) short ratio"), "x",
                          note=f"DBOS {m('DBOS (WAL) short'):.0f}/s with the file in WAL mode",
                          extra={"dbos": rows["DBOS (WAL) short"], "ratio": rows["DBOS (WAL) short ratio"]}))
    return results


if __name__ == "__main__":
    main(run, "peers")
