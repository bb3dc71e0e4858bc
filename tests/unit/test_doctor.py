"""``duragent doctor`` (durable/local/doctor.py): a store that every kind of execution went through
is reported clean, and each kind of damage it looks for is found, named and tied to its execution."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from duragent.durable import (
    CallbackConfig,
    DurableContext,
    LocalRuntime,
    RetryPolicy,
    StepConfig,
    VirtualClock,
    durable_function,
    step_context,
)
from duragent.durable.local.doctor import examine


@durable_function(name="doctor-child")
def child(event: Any, ctx: DurableContext) -> int:
    return ctx.step(lambda: event * 3, name="triple")


def everything(event: Any, ctx: DurableContext) -> Any:
    first = ctx.step(lambda: 1, name="one")
    ctx.wait(10, name="nap")
    def sometimes() -> int:
        if step_context().attempt < 2:
            raise RuntimeError("not yet")
        return 2

    second = ctx.step(sometimes, name="retried",
                      config=StepConfig(retry=RetryPolicy.exponential(max_attempts=3, initial_delay=1, jitter=False)))
    inner = ctx.run_in_child_context(lambda c: c.step(lambda: 3, name="inner"), name="group")
    mapped = ctx.map([1, 2, 3], lambda c, item, index, items: item * 10, name="tens")
    invoked = ctx.invoke("doctor-child", 5, name="call")
    answer = ctx.wait_for_callback(lambda callback_id: None, name="ask",
                                   config=CallbackConfig(timeout=3600, heartbeat_timeout=600))
    if event == "fail":
        raise ValueError("asked to fail")
    return [first, second, inner, mapped.get_results(), invoked, answer]


def test_a_store_every_kind_of_execution_went_through_is_clean(tmp_path: Path) -> None:
    clock = VirtualClock()
    db = tmp_path / "clean.db"
    with LocalRuntime(db, clock=clock, lease_seconds=5) as rt:
        ids = [rt.start(everything, mode, execution_id=f"e-{mode}") for mode in ("ok", "fail", "stop", "wait")]
        timed = rt.start(everything, "late", timeout=5)
        rt.run_until_idle(until=clock.now() + 100)  # past the nap and the retry, not the callback timeouts
        pending = {eid: cid for eid, _, cid in rt.pending_callbacks()}
        rt.send_callback_success(pending["e-ok"], '"yes"')
        rt.send_callback_success(pending["e-fail"], '"yes"')
        rt.stop("e-stop")
        rt.run_until_idle(until=clock.now() + 100)
        statuses = {eid: rt.get(eid).status for eid in [*ids, timed]}
    assert statuses == {"e-ok": "SUCCEEDED", "e-fail": "FAILED", "e-stop": "STOPPED", "e-wait": "RUNNING",
                        timed: "TIMED_OUT"}
    report = examine(db)
    assert report.findings == [], report.format()
    assert not report.damaged and report.counts["executions"] == 5 + 4  # and the four chained children


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    db = tmp_path / "s.db"
    clock = VirtualClock()
    with LocalRuntime(db, clock=clock) as rt:
        ids = {name: rt.start(everything, name, execution_id=name) for name in ("a", "b", "c")}
        rt.run_until_idle(until=clock.now() + 100)
        rt.stop("c")
    assert examine(db).findings == []
    return db, ids


def _rows_of(execution_id: str) -> str:
    """SQL: the journal rows of an execution (keys are the execution's number << 32 + position)."""
    return f"(k >> 32) = (SELECT num FROM executions WHERE id = '{execution_id}')"


def _row(execution_id: str, position: int) -> str:
    return f"k = (SELECT (num << 32) + {position} FROM executions WHERE id = '{execution_id}')"


DAMAGE = {
    "final event": (f"DELETE FROM journal WHERE {_rows_of('c')} AND op IS NULL AND data LIKE '%ExecutionStopped%'",
                    "c", "no ExecutionStopped event"),
    "gap": (f"DELETE FROM journal WHERE {_row('a', 3)}", "a", "history has a gap"),
    "unknown code": (f"UPDATE journal SET ev = 'E?' WHERE {_row('b', 1)}", "b", "unknown event codes"),
    "unreadable op": (f"UPDATE journal SET data = '{{' WHERE {_rows_of('a')} AND type = 'STEP'", "a",
                      "does not read back"),
    "pending": (f"UPDATE journal SET status = 'SUCCEEDED' WHERE {_rows_of('b')} AND type = 'CALLBACK' "
                "AND pending = 1", "b", "is SUCCEEDED but marked pending"),
    "retired": (f"UPDATE journal SET pending = 1 WHERE {_rows_of('a')} AND type = 'WAIT' AND status = 'STARTED'",
                "a", "no longer its operation's latest"),
    "lease": ("UPDATE executions SET lease_owner = NULL, invocation_id = 'x', lease_expires = NULL WHERE id = 'a'",
              "a", "no worker holds the lease"),
    "timer": (f"UPDATE journal SET due_at = NULL WHERE {_rows_of('b')} AND type = 'CALLBACK' AND pending = 1", "b",
              "has a timeout but no timer"),
    "callback id": (f"UPDATE journal SET callback_id = NULL WHERE {_rows_of('b')} AND type = 'CALLBACK' "
                    "AND pending = 1", "b", "has no callback id"),
    "status": ("UPDATE executions SET status = 'DONE' WHERE id = 'a'", "a", "unknown status 'DONE'"),
    "ended": ("UPDATE executions SET ended_at = NULL WHERE id = 'c'", "c", "STOPPED but ended_at is None"),
    "root": (f"DELETE FROM journal WHERE {_row('b', 1)}", "b", "EXECUTION operation"),
    "orphan": ("UPDATE executions SET num = num + 1000 WHERE id = 'c'", None, "which is not in the store"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_each_kind_of_damage_is_found(store: tuple[Path, dict[str, str]], kind: str) -> None:
    db, _ = store
    sql, execution_id, needle = DAMAGE[kind]
    with sqlite3.connect(db) as conn:
        conn.execute(sql)
    report = examine(db)
    assert report.damaged, report.format()
    assert any(needle in f.message and (execution_id is None or f.execution_id == execution_id)
               for f in report.findings), report.format()


def test_a_store_open_to_others_is_a_warning_not_damage(store: tuple[Path, dict[str, str]]) -> None:
    db, _ = store
    db.chmod(0o644)
    report = examine(db)
    assert not report.damaged
    assert [f.check for f in report.findings] == ["permissions"] and "chmod 600" in report.findings[0].message


def test_not_a_store(tmp_path: Path) -> None:
    assert "no file" in examine(tmp_path / "none.db").findings[0].message
    (tmp_path / "text.db").write_text("hello")
    assert "not a SQLite database" in examine(tmp_path / "text.db").findings[-1].message
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    report = examine(other)
    assert report.damaged and "not a duragent store" in report.findings[-1].message
