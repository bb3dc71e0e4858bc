"""A store written by schema version 2 (``tests/fixtures/schema2.sqlite``, see
``tests/fixtures/schema2_jobs.py``) is migrated when today's code opens it: every history reads
exactly as the old code showed it, and the executions it left waiting (a timer, a retry, a
callback, a child) resume and finish."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from duragent import LocalRuntime, VirtualClock
from duragent.durable.local.store import SCHEMA_VERSION
from tests.fixtures import schema2_jobs
from tests.fixtures.schema2_jobs import BIG, JOBS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _recorded() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "schema2-histories.json").read_text())
    return data


def _open(tmp_path: Path) -> tuple[LocalRuntime, VirtualClock, Path]:
    store = tmp_path / "old.db"
    shutil.copy(FIXTURES / "schema2.sqlite", store)  # never touch the fixture itself
    clock = VirtualClock()
    return LocalRuntime(store, clock=clock, functions=[fn for fn, _ in JOBS.values()]), clock, store


def test_a_schema_2_store_is_migrated_on_open_and_reads_as_it_did(tmp_path: Path) -> None:
    rt, _, store = _open(tmp_path)
    recorded = _recorded()
    for execution_id in JOBS:
        assert rt.history(execution_id) == recorded["histories"][execution_id], execution_id
        assert rt.get(execution_id).status == recorded["statuses"][execution_id]
    rt.close()
    with sqlite3.connect(store) as conn:
        assert dict(conn.execute("SELECT key, value FROM meta").fetchall())["version"] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert {"executions", "journal", "meta"} <= tables and not tables & {"operations", "events"}
    again = LocalRuntime(store, clock=VirtualClock())  # opening it again finds nothing to migrate
    assert again.history("done") == recorded["histories"]["done"]
    again.close()


def test_the_executions_a_schema_2_store_left_waiting_resume_and_finish(tmp_path: Path) -> None:
    rt, clock, _ = _open(tmp_path)
    recorded = _recorded()
    schema2_jobs.ATTEMPTS.clear()
    schema2_jobs.ATTEMPTS["v2"] = 1  # the first attempt failed in the process that wrote the store
    [(_, callback_op, callback_id)] = rt.pending_callbacks()
    assert callback_op.Name and callback_op.Name.startswith("approve")
    rt.send_callback_success(callback_id, '{"approved": true}')
    rt.run_until_idle()  # the virtual clock skips to each timer: the wait, the retry, the child's wait
    assert rt.get("waiting").result == "before-after"
    assert rt.get("retrying").result == "attempt 2"
    assert rt.get("callback").result == {"approved": True}
    assert rt.get("child-waits").result == "child done"
    for execution_id in ("waiting", "retrying", "callback", "child-waits"):
        old, new = recorded["histories"][execution_id], rt.history(execution_id)
        assert new[:len(old)] == old  # what happened before stays as it was, then the rest follows
        assert [e["EventId"] for e in new] == list(range(1, len(new) + 1))
        assert new[-1]["EventType"] == "ExecutionSucceeded"
    resumed = [e["EventType"] for e in rt.history("retrying")[len(recorded["histories"]["retrying"]):]]
    assert resumed == ["StepStarted", "StepSucceeded", "InvocationCompleted", "ExecutionSucceeded"]
    [succeeded] = [e for e in rt.history("retrying") if e["EventType"] == "StepSucceeded"]
    assert succeeded["StepSucceededDetails"]["RetryDetails"] == {"CurrentAttempt": 2}
    assert any(e.get("Name") == "big-before" and e["StepSucceededDetails"]["Result"]["Payload"] == json.dumps(BIG)
               for e in rt.history("callback") if e["EventType"] == "StepSucceeded")
    assert clock.now() > 1_800_000_000.0
    rt.close()
