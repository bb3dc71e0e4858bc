"""A store that cannot take a write (a full disk) never turns into a failed execution and never
loses a checkpoint: the invocation is abandoned, rolled back whole, and retried once writes work."""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path

import pytest

from duragent.durable import DurableContext, LocalRuntime, VirtualClock

BIG = secrets.token_hex(10_000)  # a step result that needs fresh pages (random: it does not compress away)


def _handler(calls: list[str]):  # type: ignore[no-untyped-def]
    def handler(event: dict, ctx: DurableContext) -> int:
        ctx.step(lambda: calls.append("small") or "ok", name="small")
        big = ctx.step(lambda: calls.append("big") or BIG, name="big")
        return len(big)

    return handler


def _fill_the_disk(rt: LocalRuntime) -> None:
    conn = rt.store._conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages + 1}")  # SQLITE_FULL on the next growth


def _free_the_disk(rt: LocalRuntime) -> None:
    rt.store._conn.execute("PRAGMA max_page_count=1073741823")


def test_a_full_disk_abandons_the_invocation_and_the_execution_resumes_intact(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    clock = VirtualClock()
    rt = LocalRuntime(tmp_path / "full.db", clock=clock)
    execution_id = rt.start(_handler(calls), {})
    _fill_the_disk(rt)
    with caplog.at_level(logging.WARNING, logger="duragent.durable.local"):
        rt.run_until_idle()
    assert "could not checkpoint" in caplog.text and "full" in caplog.text
    info = rt.get(execution_id)
    assert info.status == "RUNNING"  # not FAILED: the store's trouble is not the execution's
    assert not any(e["EventType"] == "StepSucceeded" and e["Name"] == "big" for e in rt.history(execution_id))

    _free_the_disk(rt)
    clock.advance(rt.retry_delay + 1)  # the abandoned invocation's lease lapses
    rt.run_until_idle()
    info = rt.get(execution_id)
    assert info.status == "SUCCEEDED" and info.result == len(BIG)
    history = rt.history(execution_id)
    succeeded = [e["Name"] for e in history if e["EventType"] == "StepSucceeded"]
    assert succeeded == ["small", "big"]  # each checkpoint exactly once, none lost
    assert calls.count("big") == 2 and calls.count("small") <= 2  # at-least-once: the lost attempt re-ran


def test_a_worker_keeps_serving_through_a_store_outage(tmp_path: Path) -> None:
    calls: list[str] = []
    rt = LocalRuntime(tmp_path / "outage.db")
    rt.retry_delay = 0.05
    execution_id = rt.start(_handler(calls), {})
    _fill_the_disk(rt)
    stop = threading.Event()
    worker = threading.Thread(target=rt.worker, args=(stop,), kwargs={"max_sleep": 0.05}, daemon=True)
    worker.start()
    try:
        stop.wait(0.5)  # the worker meets the full disk, abandons, retries ... and stays alive
        assert worker.is_alive() and rt.get(execution_id).status == "RUNNING"
        _free_the_disk(rt)
        for _ in range(200):
            if rt.get(execution_id).status != "RUNNING":
                break
            stop.wait(0.05)
    finally:
        stop.set()
        worker.join(timeout=5)
    assert rt.get(execution_id).status == "SUCCEEDED"
