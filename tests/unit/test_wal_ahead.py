"""In ``full`` durability the store keeps its write-ahead log written ahead of SQLite (zeros past the
last frame, durable/local/wal.py), so each commit's fsync overwrites in place. The zeros must never
cost a commit: SQLite reads past them after a crash, and other connections see every commit."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from duragent.durable import DurableContext, LocalRuntime
from duragent.durable.local.wal import CHUNK, write_ahead


def _twice(x: int) -> int:
    return 2 * x


def double(event: int, ctx: DurableContext) -> int:
    return int(ctx.step(_twice, event, name="double"))


def _frames_end(db: Path) -> int:
    """Where SQLite's frames end in the WAL, from SQLite itself (a passive checkpoint reports how many
    frames the log holds; it copies them into the file but leaves the log as it is)."""
    conn = sqlite3.connect(db)
    try:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        conn.close()
    return 32 + frames * (24 + page_size)


def test_a_full_store_keeps_zeros_ahead_of_the_last_frame(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with LocalRuntime(db, functions=[double]) as rt:
        infos = [rt.run(double, i) for i in range(20)]
        wal = Path(str(db) + "-wal").read_bytes()
        end = _frames_end(db)
    assert [i.result for i in infos] == [2 * i for i in range(20)]
    assert len(wal) % CHUNK == 0 and len(wal) > end, (len(wal), end)
    assert wal[end:] == bytes(len(wal) - end)  # nothing but zeros past what SQLite wrote


def test_a_process_store_leaves_the_wal_to_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with LocalRuntime(db, durability="process", functions=[double]) as rt:
        for i in range(5):
            rt.run(double, i)
        size = Path(str(db) + "-wal").stat().st_size
        assert size == _frames_end(db)  # no fsync per commit, nothing to gain


def test_every_commit_survives_a_sigkill_with_zeros_ahead_of_the_log(tmp_path: Path) -> None:
    """A worker killed while its WAL holds zeros past the last frame: the next open recovers the log
    from the frames alone and finds every execution the worker finished."""
    db, done = tmp_path / "s.db", tmp_path / "done"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from duragent.durable import DurableContext, LocalRuntime
        from test_wal_ahead import double
        rt = LocalRuntime({str(db)!r}, functions=[double])
        for i in range(40):
            assert rt.run(double, i).result == 2 * i
        Path({str(done)!r}).write_text("40")
        time.sleep(600)
    """)
    worker = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 120
        while not done.exists():
            assert worker.poll() is None, "the worker ended before it was killed"
            assert time.monotonic() < deadline, "the worker never finished its executions"
            time.sleep(0.02)
        wal = Path(str(db) + "-wal")
        assert wal.stat().st_size % CHUNK == 0  # the zeros are there when it dies
    finally:
        worker.kill()
        worker.wait()
    with LocalRuntime(db) as rt:
        infos = rt.list(limit=100)
        assert len(infos) == 40 and {i["status"] for i in infos} == {"SUCCEEDED"}
        assert sorted(rt.get(i["id"]).result for i in infos) == [2 * i for i in range(40)]
        assert rt.run(double, 100).result == 200  # and it takes new commits after the zeros
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_writing_ahead_is_best_effort(tmp_path: Path) -> None:
    write_ahead(str(tmp_path / "missing.db-wal"))  # no log yet: nothing to do, nothing raised
    assert not (tmp_path / "missing.db-wal").exists()
    aligned = tmp_path / "aligned-wal"
    aligned.write_bytes(b"\1" * CHUNK)
    write_ahead(str(aligned))
    assert aligned.read_bytes() == b"\1" * CHUNK  # already ends on a chunk: the zeros are still ahead
    grown = tmp_path / "grown-wal"
    grown.write_bytes(b"\1" * (CHUNK + 100))
    write_ahead(str(grown))
    data = grown.read_bytes()
    assert len(data) == 3 * CHUNK and data[:CHUNK + 100] == b"\1" * (CHUNK + 100)
    assert data[CHUNK + 100:] == bytes(2 * CHUNK - 100)
