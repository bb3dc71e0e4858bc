"""Shared pieces: the Result record, targets, scratch directories, timing and size helpers."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
RESULTS = ROOT / "results"


@dataclass
class Result:
    """One measured number, optionally held against a target.

    ``op`` is how the value must compare to ``target`` to meet it ("<=", "<" or ">="); a result with
    no target is informational. ``ratio`` is value / target (below 1.0 is inside a "<=" target).
    """

    bench: str
    metric: str
    value: float
    unit: str
    target: float | None = None
    op: str = "<="
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        if self.op == ">=":
            return self.value >= self.target
        return self.value <= self.target if self.op == "<=" else self.value < self.target

    @property
    def ratio(self) -> float | None:
        if self.target in (None, 0):
            return None
        return self.value / self.target

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["met"] = self.met
        data["ratio"] = self.ratio
        return data


# -- targets (issue 15; ROADMAP.md "Next: proving it") ---------------------------------------------
TARGET_STEP_VS_FULL_FLOOR = 1.5          # x the raw WAL + synchronous=FULL commit, measured in the same run
TARGET_STEP_PROCESS_VS_NORMAL_FLOOR = 4.0  # x the raw WAL + synchronous=NORMAL commit (about 40 µs)
TARGET_REPLAY_US = 5.0                   # µs per completed step, the whole re-invocation (reference machine)
TARGET_REPLAY_LINEARITY = 1.2            # per-step cost of the whole re-invocation at 100,000 / at 1,000
TARGET_REPLAY_MEMORY_MIB = 100.0         # MiB above the process's size, re-invoking 100,000 steps
TARGET_REPLAY_VS_AWS = 0.2               # x AWS's testing runner replaying in memory, same run
TARGET_SHORT_VS_DBOS = 5.0               # short executions per second, x DBOS on SQLite, same run
TARGET_SUSPENDED_BYTES = 2048.0          # bytes per suspended execution ("under 2 KB")
TARGET_TIMER_P95_MS = 100.0              # ms, timer due -> invocation start
TARGET_AGENT_OVERHEAD_MS = 4.0           # ms per turn over the bare SDK
TARGET_AGENT_BYTES = 1536.0              # bytes per turn with ~1 KB tool results ("at most 1.5 KB")
TARGET_AGENT_FLATNESS = 1.25             # bytes/turn at turn 200 / at turn 10 (our criterion for "flat")
TARGET_SESSION_FLATNESS = 1.25           # bytes/turn of a chat session at turn 200 / at turn 10 (issue 13: "flat")
TARGET_ASYNC_STEP_RATIO = 1.2            # an async step costs at most 1.2x a sync step (issue 11)
TARGET_ASYNC_MAP_EXTRA_THREADS = 0.0     # an async map of 1,000 I/O branches holds no thread beyond the loop's
TARGET_CROWDED_RATIO = 1.2               # a one-step execution beside 10,000 suspended ones / in an empty store (ours: flat)


# -- scratch space -------------------------------------------------------------------------------
def scratch_root() -> Path:
    """Where databases go: on the project's own disk by default (a tmpfs /tmp would make fsync
    free and the FULL numbers meaningless). ``BENCH_TMPDIR`` overrides."""
    root = Path(os.environ.get("BENCH_TMPDIR") or (ROOT / ".scratch"))
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def scratch_dir(name: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch_root()))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- statistics ----------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    """Nearest-rank-with-interpolation percentile, p in [0, 100]."""
    if not values:
        return float("nan")
    data = sorted(values)
    if len(data) == 1:
        return data[0]
    k = (len(data) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


# -- sizes and threads -----------------------------------------------------------------------------
def checkpointed_size(db: Path) -> dict[str, int]:
    """Fold the WAL into the main file and report its size (pages in use and on disk)."""
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    finally:
        conn.close()
    return {"file_bytes": db.stat().st_size, "used_bytes": (page_count - free) * page_size,
            "page_size": page_size}


def table_bytes(db: Path) -> dict[str, dict[str, int]]:
    """Bytes per table and index from SQLite's dbstat (payload and pages, the B-tree overhead included)."""
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        rows = conn.execute("SELECT name, SUM(pgsize), SUM(payload), SUM(ncell) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.DatabaseError:
        return {}
    finally:
        conn.close()
    return {r[0]: {"page_bytes": int(r[1] or 0), "payload_bytes": int(r[2] or 0), "cells": int(r[3] or 0)}
            for r in rows}


def os_threads() -> int:
    """Threads of this process as the kernel counts them (Python's and any native ones)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return threading.active_count()


# -- running one module alone ----------------------------------------------------------------------
def main(run: Callable[[str, Path], list[Result]], name: str) -> None:
    """``python -m benchmarks.bench_x [--full] [--json PATH]``: run one benchmark and print it."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--json", help="write the results here (used by the runner)")
    args = parser.parse_args()
    mode = "full" if args.full else "quick"
    with scratch_dir(name) as workdir:
        results = run(mode, workdir)
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in results], indent=1))
    else:
        from .run import print_table

        print_table([r.to_dict() for r in results])
