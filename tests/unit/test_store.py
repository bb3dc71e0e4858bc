"""The SQLite store refuses files that are not its own without changing a byte of them, and keeps
executions across runtimes (processes) that open the same file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.durable.errors import StoreError
from duragent.durable.local.rows import unpack


def _files(path: Path) -> dict[str, bytes]:
    """The file and any SQLite side files next to it."""
    return {p.name: p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)}


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"shopping list: milk, eggs\n" * 100)
    before = _files(path)
    with pytest.raises(StoreError, match="not a duragent database"):
        LocalRuntime(path)
    assert _files(path) == before


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users (name) VALUES ('ada'), ('grace')")
    conn.commit()
    conn.close()
    before = _files(path)
    assert list(before) == ["app.db"]  # rollback journal mode, no side files
    with pytest.raises(StoreError, match="not a duragent store"):
        LocalRuntime(path)
    assert _files(path) == before  # same bytes, still not WAL, no -wal/-shm left behind
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT name FROM users ORDER BY id").fetchall() == [("ada",), ("grace",)]
    conn.close()


def test_a_foreign_database_with_a_meta_table_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO meta VALUES ('schema', 'someone-else')")
    conn.commit()
    conn.close()
    before = _files(path)
    with pytest.raises(StoreError):
        LocalRuntime(path)
    assert _files(path) == before


def test_an_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="durability"):
        LocalRuntime(tmp_path / "x.db", durability="sometimes")
    assert not (tmp_path / "x.db").exists()


def _greet(event: Any, ctx: DurableContext) -> str:
    name = ctx.step(lambda: event["name"].title(), name="title")
    ctx.wait(60)
    return f"hello {name}"


def test_executions_survive_reopening_the_store(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    clock = VirtualClock()
    with LocalRuntime(path, clock=clock, functions=[_greet]) as first:
        eid = first.start(_greet, {"name": "ada"})
        assert first.run_once()
        assert first.get(eid).status == "RUNNING"
    with LocalRuntime(path, clock=clock, functions=[_greet]) as second:
        second.run_until_idle()
        info = second.get(eid)
        assert info.status == "SUCCEEDED" and info.result == "hello Ada"
        assert info.invocations == 2


@pytest.mark.parametrize(("durability", "synchronous"), [("full", 2), ("process", 1)])
def test_the_store_is_wal_with_the_durability_asked_for(tmp_path: Path, durability: str, synchronous: int) -> None:
    """full = synchronous FULL (survives power loss, the default); process = NORMAL (survives a
    crashed process). Both in WAL mode, read back from the connection the store really uses."""
    rt = LocalRuntime(tmp_path / "d.db", durability=durability)
    conn = rt.store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
    rt.close()
    default = LocalRuntime(tmp_path / "default.db")
    assert default.store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    default.close()


def test_a_large_payload_is_stored_once_and_history_still_shows_it(tmp_path: Path) -> None:
    """Step results, child results and inputs live in their operation row; the history event holds a
    marker and is filled in on read, so the journal does not keep every payload twice."""
    big = "x" * 5000

    def handler(event: dict[str, Any], ctx: DurableContext) -> str:
        value = ctx.step(lambda: big, name="big")
        return ctx.run_in_child_context(lambda child: value + "!", name="child")

    rt = LocalRuntime(tmp_path / "once.db", clock=VirtualClock())
    execution_id = rt.start(handler, {"input": big})
    rt.run_until_idle()
    history = {e["EventType"]: e for e in rt.history(execution_id)}
    assert history["StepSucceeded"]["StepSucceededDetails"]["Result"] == {"Payload": f'"{big}"', "Truncated": False}
    assert history["ContextSucceeded"]["ContextSucceededDetails"]["Result"]["Payload"] == f'"{big}!"'
    assert history["ExecutionStarted"]["ExecutionStartedDetails"]["Input"]["Payload"] == f'{{"input":"{big}"}}'
    assert history["ExecutionSucceeded"]["ExecutionSucceededDetails"]["Result"]["Payload"] == f'"{big}!"'
    rt.close()
    with sqlite3.connect(tmp_path / "once.db") as conn:
        rows = [(op, unpack(data)) for op, data in conn.execute("SELECT op, data FROM journal")]
    conn.close()
    assert not any(big in data for op, data in rows if op is None)  # no copy in the execution's events
    # each payload once, in its operation's row: the input, the step's result, the child's result
    assert sum(data.count(big) for op, data in rows if op is not None) == 3


def test_operation_events_are_rebuilt_from_one_row_per_change_with_their_full_identity(tmp_path: Path) -> None:
    """No event rows for operations: a step that started and succeeded in one checkpoint is one
    journal row, and the history API rebuilds both of its events with the full identity (Id, Name,
    SubType, ParentId) exactly as the AWS shape has it."""

    def handler(event: dict[str, Any], ctx: DurableContext) -> str:
        return ctx.run_in_child_context(lambda child: child.step(lambda: "in", name="inner"), name="outer")

    rt = LocalRuntime(tmp_path / "ref.db", clock=VirtualClock())
    execution_id = rt.start(handler, {})
    rt.run_until_idle()
    ops = {op.Name: op for op in rt.operations(execution_id)}
    history = rt.history(execution_id)
    inner = [e for e in history if e.get("Name") == "inner"]
    assert [e["EventType"] for e in inner] == ["StepStarted", "StepSucceeded"]
    for event in inner:
        assert (event["Id"], event["SubType"], event["ParentId"]) == (ops["inner"].Id, "Step", ops["outer"].Id)
    started = history[0]
    assert (started["EventType"], started["Id"], started["Name"]) == ("ExecutionStarted", execution_id, execution_id)
    assert "SubType" not in started  # execution-level events carry no SubType
    rt.close()
    with sqlite3.connect(tmp_path / "ref.db") as conn:
        inner_rows = conn.execute("SELECT ev FROM journal WHERE op = ?", (bytes.fromhex(ops["inner"].Id),)).fetchall()
        event_rows = [unpack(r[0]) for r in conn.execute("SELECT data FROM journal WHERE op IS NULL")]
    conn.close()
    assert len(inner_rows) == 1 and len(inner_rows[0][0]) == 2  # one row, two events
    assert [json.loads(e)["EventType"] for e in event_rows] == ["InvocationCompleted", "ExecutionSucceeded"]
