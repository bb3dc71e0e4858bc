"""1. The raw SQLite floor: WAL, one small INSERT + COMMIT per iteration, synchronous FULL and NORMAL.

This is what one durable checkpoint can at best cost on this disk; the step benchmark is held
against the FULL number."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from ._common import Result, main, median

ROW = "x" * 120  # about the size of a small step's journal row


def commit_us(db: Path, synchronous: str, n: int) -> float:
    """µs per BEGIN IMMEDIATE / INSERT / COMMIT on a fresh WAL database."""
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
            conn.execute("COMMIT")
        return (time.perf_counter() - t0) / n * 1e6
    finally:
        conn.close()


def run(mode: str, workdir: Path) -> list[Result]:
    reps = 3 if mode == "quick" else 5
    n_full = 300 if mode == "quick" else 1000
    n_normal = 3000 if mode == "quick" else 10000
    full = [commit_us(workdir / f"full{i}.db", "FULL", n_full) for i in range(reps)]
    normal = [commit_us(workdir / f"normal{i}.db", "NORMAL", n_normal) for i in range(reps)]
    return [
        Result("sqlite floor", "commit, WAL + synchronous=FULL", median(full), "µs",
               note=f"median of {reps}x{n_full} commits", extra={"runs_us": full}),
        Result("sqlite floor", "commit, WAL + synchronous=NORMAL", median(normal), "µs",
               note=f"median of {reps}x{n_normal} commits", extra={"runs_us": normal}),
    ]


if __name__ == "__main__":
    main(run, "floor")
