"""A worker's claim and idle check read only what may need work (the partial indexes of runnable,
leased and timed executions and of due timers), never every RUNNING execution: a store holding
thousands of suspended executions (agents waiting for a review) must not make each claim, each
idle poll and each timer slower. Checked by SQLite's own query plans, not by timing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from duragent.durable import DurableContext, Duration, LocalRuntime, VirtualClock
from duragent.durable.local.leases import owner_is_gone


def waits(event: int, ctx: DurableContext) -> int:
    ctx.wait(Duration.from_seconds(3600 + event))
    return event


def review(event: int, ctx: DurableContext) -> str:
    return str(ctx.wait_for_callback(lambda callback_id: None, name="review"))


def _statements_of(rt: LocalRuntime, action: object) -> list[str]:
    seen: list[str] = []
    conn = rt.store._conn
    conn.set_trace_callback(seen.append)
    try:
        action()  # type: ignore[operator]
    finally:
        conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith("SELECT")]


def _plans(conn: sqlite3.Connection, statements: list[str]) -> list[str]:
    return [" / ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)) for sql in statements]


def test_claims_and_idle_polls_never_walk_the_suspended_executions(tmp_path: Path) -> None:
    clock = VirtualClock()
    with LocalRuntime(tmp_path / "s.db", clock=clock, functions=[waits, review]) as rt:
        for i in range(200):
            rt.start(review, i)
        rt.start(waits, 0, timeout=7200)
        assert rt.run_until_idle(skip_time=False) == 201  # each suspended at its wait or callback
        assert rt.count(status="RUNNING") == 201

        idle = _statements_of(rt, rt.run_once)  # nothing to do: the one-read idle check
        rt.start(waits, 1)
        busy = _statements_of(rt, rt.run_once)  # one runnable: the claim itself
        rt.service.hold(rt.start(waits, 2), "host:1:gone", clock.now() - 1)  # a lease that lapsed
        lapsed = _statements_of(rt, rt.run_once)
        rt.service.hold(rt.start(waits, 3), "host:1:gone", clock.now() + 600)  # a live lease
        live = _statements_of(rt, lambda: rt.service.release_dead_leases(owner_is_gone))
        due = _statements_of(rt, rt.service.next_due)
        clock.advance(7300)  # the timer of waits(0) and its execution timeout
        fired = _statements_of(rt, rt.run_once)

        conn = rt.store._conn
        statements = idle + busy + lapsed + live + due + fired
        assert len(idle) == 1 and busy and lapsed and live and due and fired
        for sql, plan in zip(statements, _plans(conn, statements), strict=True):
            if "FROM executions" not in sql or "WHERE id = " in sql or "WHERE num = " in sql:
                continue  # lookups of one execution by its key
            assert "executions_status" not in plan and "SCAN executions" not in plan.replace(
                "SCAN executions USING INDEX executions_runnable", "").replace(
                "SCAN executions USING INDEX executions_leased", ""), (sql, plan)
        assert rt.get(rt.list(status="TIMED_OUT", limit=1)[0]["id"]).status == "TIMED_OUT"
