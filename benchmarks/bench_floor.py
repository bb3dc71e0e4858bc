"""1. The raw SQLite floor: WAL, one small INSERT + COMMIT per iteration, synchronous FULL and NORMAL.

This is what one durable checkpoint can at best cost on this disk; the step benchmark is held
against the FULL number."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ._common import Result, main, median

ROW = "x" * 120  # about the size of a small step's journal row


def commit_us(db: Path, synchronous: str, n: int, *, ahead: bool = False) -> float:
    """µs per BEGIN IMMEDIATE / INSERT / COMMIT on a fresh WAL database. ``ahead``: with the WAL
    written ahead before each commit as the store does in full durability (durable/local/wal.py), so
    that its fsync overwrites in place: the floor like for like with what a step commits."""
    from duragent.durable.local.wal import write_ahead

    wal = str(db) + "-wal"
    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        for _ in range(20):  # warm the file and the WAL
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
            conn.execute("COMMIT")
        t0 = time.perf_counter()
        for _ in range(n):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
            if ahead:
                write_ahead(wal)
            conn.execute("COMMIT")
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        conn.close()


def grouped_us(db: Path, group: int, n: int) -> float:
    """µs per journal-shaped row (about a step's) when ``group`` rows share one commit, synchronous
    NORMAL: what group commit across executions in one worker could make of the SQLite part of a
    process-mode step (a measurement of SQLite only, not a feature of the runtime)."""
    from duragent.durable.local.store import _INSERT_ROW, _SCHEMA

    conn = sqlite3.connect(str(db), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(_SCHEMA)
        data = '{"Name":"trivial","SubType":"Step","StartTimestamp":1800000000.0,"EndTimestamp":1800000000.0,' \
               '"StepDetails":{"Attempt":1,"Result":"42"}}'
        k = 1 << 32
        t0 = time.perf_counter()
        for _ in range(n // group):
            conn.execute("BEGIN IMMEDIATE")
            for _ in range(group):
                k += 1
                conn.execute(_INSERT_ROW, (k, k.to_bytes(32, "big"), 1, 1.0, "sS", "STEP", "SUCCEEDED", None, None,
                                           None, None, None, None, data))
            conn.execute("COMMIT")
        return (time.perf_counter() - t0) / (n // group * group) * 1e6
    finally:
        conn.close()


def run(mode: str, workdir: Path) -> list[Result]:
    reps = 3 if mode == "quick" else 5
    n_full = 300 if mode == "quick" else 1000
    n_normal = 3000 if mode == "quick" else 10000
    full = [commit_us(workdir / f"full{i}.db", "FULL", n_full) for i in range(reps)]
    ahead = [commit_us(workdir / f"ahead{i}.db", "FULL", n_full, ahead=True) for i in range(reps)]
    normal = [commit_us(workdir / f"normal{i}.db", "NORMAL", n_normal) for i in range(reps)]
    grouped = {g: median([grouped_us(workdir / f"group{g}-{i}.db", g, n_normal) for i in range(reps)])
               for g in (1, 8, 32)}
    return [
        *[Result("sqlite floor", f"journal rows, {g} per commit (NORMAL): µs per row", us, "µs",
                 note="what grouping commits across executions could save per process-mode step")
          for g, us in grouped.items()],
        Result("sqlite floor", "commit, WAL + synchronous=FULL", median(full), "µs",
               note=f"median of {reps}x{n_full} commits", extra={"runs_us": full}),
        Result("sqlite floor", "commit, WAL + synchronous=FULL, WAL written ahead", median(ahead), "µs",
               note="as the store commits in full durability: the fsync overwrites in place",
               extra={"runs_us": ahead}),
        Result("sqlite floor", "commit, WAL + synchronous=NORMAL", median(normal), "µs",
               note=f"median of {reps}x{n_normal} commits", extra={"runs_us": normal}),
    ]


if __name__ == "__main__":
    main(run, "floor")
