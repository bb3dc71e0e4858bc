"""Issue 9, hole 1 (poison pill): a value that is not valid JSON text in UTF-8 is refused at the door
with a UsageError (exit 2 / HTTP 400 for the CLI and console) and changes nothing; a handler's own
result or error that holds a lone surrogate is stored escaped; and nothing a handler or an answer
holds can stop the worker: an execution whose stored state does not read back is set aside, with
the reason, while the others run."""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from duragent.durable import DurableContext, LocalRuntime, VirtualClock
from duragent.durable.errors import SerializationError, UsageError
from duragent.durable.model import ErrorObject

DEEP = "[" * 5000 + "]" * 5000

BAD_ANSWERS: list[tuple[str | bytes, str]] = [
    ('"\\ud800"', "lone UTF-16 surrogate"),           # the escape of a lone surrogate (what the CLI got)
    ('{"feedback": "\\udcff"}', "lone UTF-16 surrogate"),  # an undecodable argv byte, JSON-escaped
    ('"\ud800"', "not valid UTF-8"),                   # the surrogate itself
    (b'"\xff\xfe"', "not valid UTF-8"),                # bytes that are not UTF-8
    ("NaN", "NaN is not JSON"),
    ('{"x": Infinity}', "Infinity is not JSON"),
    ("[-Infinity]", "-Infinity is not JSON"),
    ("1e400", "out of the range of a double"),
    ("{'single': 'quotes'}", "is not JSON"),
    (DEEP, "nests deeper than"),
]


def _waits_for_answer(event: Any, ctx: DurableContext) -> Any:
    return ctx.wait_for_callback(lambda callback_id: None, name="answer")


def _pending(rt: LocalRuntime) -> str:
    pending = rt.pending_callbacks()
    assert len(pending) == 1
    return pending[0][2]


def _store_bytes(rt: LocalRuntime, eid: str) -> Any:
    row = rt.service.execution(eid)
    with rt.store.reading() as tx:
        last = tx.last_key(int(row["num"]))  # the journal's end: nothing appended
    return rt.history(eid), [op.model_dump() for op in rt.operations(eid)], last, row["status"]


@pytest.mark.parametrize(("answer", "reason"), BAD_ANSWERS, ids=[r for _, r in BAD_ANSWERS])
def test_a_bad_callback_answer_is_refused_at_the_door_and_changes_nothing(
        rt: LocalRuntime, answer: str | bytes, reason: str) -> None:
    eid = rt.start(_waits_for_answer)
    rt.run_until_idle()
    callback_id = _pending(rt)
    before = _store_bytes(rt, eid)

    with pytest.raises(SerializationError, match=reason) as refused:
        rt.send_callback_success(callback_id, answer)
    assert isinstance(refused.value, UsageError)  # the CLI's exit 2, the console's 400
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300

    assert _store_bytes(rt, eid) == before
    assert _pending(rt) == callback_id  # still waiting, and a good answer still works
    rt.send_callback_success(callback_id, '{"approved": true}')
    rt.run_until_idle()
    assert rt.get(eid).result == {"approved": True}


def test_a_callback_failure_with_invalid_text_is_refused(rt: LocalRuntime) -> None:
    eid = rt.start(_waits_for_answer)
    rt.run_until_idle()
    callback_id = _pending(rt)
    before = _store_bytes(rt, eid)
    for error in ("bad \udcff byte", ErrorObject(ErrorType="X", ErrorMessage="ok", ErrorData="\ud800"),
                  {"ErrorType": "T\udc80", "ErrorMessage": "m"}):
        with pytest.raises(SerializationError, match="not valid UTF-8 text"):
            rt.send_callback_failure(callback_id, error)
    assert _store_bytes(rt, eid) == before
    rt.send_callback_failure(callback_id, "no, thanks")
    rt.run_until_idle()
    assert rt.get(eid).status == "FAILED"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"deep": json.loads("[" * 900 + "]" * 900)},
                                   {"name": "caf\udce9"}], ids=["nan", "inf", "-inf", "deep", "surrogate"])
def test_a_bad_execution_input_is_refused_and_nothing_is_created(rt: LocalRuntime, value: Any) -> None:
    with pytest.raises(UsageError):
        rt.start(_waits_for_answer, value)
    assert rt.list() == []


@pytest.mark.parametrize(("text", "reason"), [("NaN", "NaN is not JSON"), ("1e400", "out of the range"),
                                              (DEEP, "nests deeper"), ('"\\udfff"', "surrogate")])
def test_the_service_refuses_bad_input_text_itself(rt: LocalRuntime, text: str, reason: str) -> None:
    with pytest.raises(SerializationError, match=reason):
        rt.service.start_execution(function="f", target=None, input_json=text, execution_id=None)
    assert rt.list() == []


def _undecodable_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "listing"
    folder.mkdir()
    with open(os.fsencode(folder) + b"/r\xe9sum\xe9.txt", "wb") as fh:  # a Latin-1 name: not UTF-8
        fh.write(b"x")
    (folder / "plain.txt").write_text("x")
    return folder


def test_a_handler_returning_an_undecodable_file_name_succeeds_and_reads_back(
        rt: LocalRuntime, tmp_path: Path) -> None:
    folder = _undecodable_dir(tmp_path)
    expected = sorted(os.listdir(folder))
    assert any("\udce9" in name for name in expected)  # what Python makes of a non-UTF-8 file name

    def lister(event: Any, ctx: DurableContext) -> dict[str, Any]:
        names = ctx.step(lambda: sorted(os.listdir(event["folder"])), name="list")
        ctx.wait(1)
        return {"names": names, "again": ctx.step(lambda: names[0], name="first")}

    eid = rt.start(lister, {"folder": str(folder)})
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"names": expected, "again": expected[0]}  # the same str, surrogate and all
    stored = rt.service.execution(eid)["result"]
    assert stored.isascii() and "\\udce9" in stored  # stored escaped: valid UTF-8 text


def test_a_handler_failing_with_an_undecodable_path_fails_with_the_message_escaped(
        rt: LocalRuntime, tmp_path: Path) -> None:
    missing = os.fsdecode(os.fsencode(tmp_path) + b"/gone-\xff.txt")

    def opener(event: Any, ctx: DurableContext) -> str:
        return ctx.step(lambda: Path(missing).read_text(), name="read")

    info = rt.run(opener)
    assert info.status == "FAILED"
    assert info.error is not None and "gone-\\udcff.txt" in info.error["ErrorMessage"]
    step_failed = [e for e in rt.history(info.id) if e["EventType"] == "StepFailed"]
    assert "gone-\\udcff.txt" in step_failed[-1]["StepFailedDetails"]["Error"]["Payload"]["ErrorMessage"]


@pytest.mark.parametrize(("result", "reason"), [(math.nan, "NaN and infinity are not JSON"),
                                                ({"deep": json.loads("[" * 900 + "]" * 900)}, None)],
                         ids=["nan", "deep-ok"])
def test_strict_json_for_a_handler_result(rt: LocalRuntime, result: Any, reason: str | None) -> None:
    info = rt.run(lambda event, ctx: result)
    if reason is None:
        assert info.status == "SUCCEEDED" and info.result == result
    else:
        assert info.status == "FAILED" and reason in info.error["ErrorMessage"]  # type: ignore[index]
        assert "NaN" not in (rt.service.execution(info.id)["result"] or "")


def test_a_step_result_nested_too_deeply_fails_the_step_cleanly(rt: LocalRuntime) -> None:
    def deep() -> Any:
        value: Any = []
        for _ in range(5000):
            value = [value]
        return value

    info = rt.run(lambda event, ctx: ctx.step(deep, name="deep"))
    assert info.status == "FAILED"
    assert info.error is not None and "nested too deeply" in info.error["ErrorMessage"]


def _corrupt_operation(db: Path, eid: str) -> None:
    """What a damaged row looks like to us: operation data that no longer parses."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE journal SET data = '{\"Name\": 1' WHERE type = 'STEP' "
                     "AND (k >> 32) = (SELECT num FROM executions WHERE id = ?)", (eid,))


def _step_then_wait(event: Any, ctx: DurableContext) -> int:
    value = ctx.step(lambda: 21, name="s")
    ctx.wait(5)
    return value * 2


def test_an_execution_whose_state_does_not_read_back_is_set_aside_and_the_others_run(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "w.db"
    clock = VirtualClock()
    with LocalRuntime(db, clock=clock) as rt:
        bad, good = rt.start(_step_then_wait, execution_id="bad"), rt.start(_step_then_wait, execution_id="good")
        rt.run_until_idle(skip_time=False)  # both wait 5 s now
    _corrupt_operation(db, bad)
    with LocalRuntime(db, clock=clock) as rt:
        rt.register(_step_then_wait)
        clock.advance(10)
        stop = threading.Event()
        worker = threading.Thread(target=rt.worker, args=(stop,), kwargs={"max_sleep": 0.01})
        worker.start()
        try:
            deadline = threading.Event()
            for _ in range(2000):
                if rt.get(good).status != "RUNNING" and rt.get(bad).stalled:
                    break
                deadline.wait(0.005)
        finally:
            stop.set()
            worker.join(10)
        assert not worker.is_alive()
        assert rt.get(good).status == "SUCCEEDED" and rt.get(good).result == 42
        held = rt.get(bad)
        assert held.status == "RUNNING"  # not failed: a restored row would let it go on
        assert held.stalled is not None and "ValidationError" in held.stalled["reason"]
    assert any("cannot" in r.getMessage() and bad in r.getMessage() for r in caplog.records)


def test_a_damaged_timer_row_does_not_stop_the_other_timers(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    clock = VirtualClock()
    with LocalRuntime(db, clock=clock) as rt:
        bad, good = rt.start(_step_then_wait, execution_id="bad"), rt.start(_step_then_wait, execution_id="good")
        rt.run_until_idle(skip_time=False)
    with sqlite3.connect(db) as conn:  # the bad execution's WAIT row no longer parses
        conn.execute("UPDATE journal SET data = 'garbage' WHERE type = 'WAIT' "
                     "AND (k >> 32) = (SELECT num FROM executions WHERE id = 'bad')")
    with LocalRuntime(db, clock=clock) as rt:
        rt.register(_step_then_wait)
        clock.advance(10)
        rt.run_until_idle(skip_time=False)
        assert rt.get(good).status == "SUCCEEDED"
        assert rt.get(bad).status == "RUNNING"
        due = rt.service.next_due()
        assert due is not None and due > clock.now()  # tried again later, not in a hot loop


def test_a_row_nothing_can_parse_is_held_back_not_claimed_in_a_hot_loop(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    clock = VirtualClock()
    with LocalRuntime(db, clock=clock) as rt:
        bad, good = rt.start(_step_then_wait, execution_id="bad"), rt.start(_step_then_wait, execution_id="good")
    with sqlite3.connect(db) as conn:  # a counter that is not a number: no invocation can be opened
        conn.execute("UPDATE executions SET invocations = 'x' WHERE id = 'bad'")
    with LocalRuntime(db, clock=clock) as rt:
        rt.register(_step_then_wait)
        ran = rt.run_until_idle(skip_time=False)
        assert ran <= 3, f"{ran} claims: the damaged execution was claimed again and again"
        assert rt.service.execution(good)["status"] == "RUNNING"  # its first invocation ran: it waits now
        held = rt.service.execution(bad)
        assert held["lease_owner"] == rt.owner and held["lease_expires"] > clock.now()
        clock.advance(10)
        rt.run_until_idle(skip_time=False)
        assert rt.get(good).status == "SUCCEEDED"
