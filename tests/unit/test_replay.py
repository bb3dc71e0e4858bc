"""Replay: every invocation runs the handler from the top against the journal. Completed steps return
their stored result without running, failed ones raise the stored error, and code that no longer
matches history fails the execution loudly."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import Counter
from typing import Any

import pytest
from pydantic import BaseModel

from duragent.durable import (
    ChildConfig,
    DurableContext,
    LocalRuntime,
    LoggerConfig,
    RetryPolicy,
    StepConfig,
    StepError,
    VirtualClock,
)
from duragent.durable.errors import ExecutionConflictError
from duragent.durable.local.rows import StoredOperation
from duragent.durable.model import OperationType

NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())


# -- exactly once ---------------------------------------------------------------------------------

def test_each_step_body_runs_once_across_invocations(rt: LocalRuntime, events: Any) -> None:
    calls: Counter[str] = Counter()
    entered = []

    def bump(tag: str) -> str:
        calls[tag] += 1
        return f"{tag}:{calls[tag]}"

    def handler(event: dict[str, Any], ctx: DurableContext) -> list[str]:
        entered.append(1)
        out = [ctx.step(bump, "a", name="a")]
        ctx.wait(5, name="w1")
        out.append(ctx.step(bump, "b", name="b"))
        ctx.wait(5, name="w2")
        out.append(ctx.step(bump, "c", name="c"))
        ctx.wait(5)
        out.append(ctx.step(bump, "d"))  # unnamed: named after the function
        return out

    eid = rt.start(handler, {"order": 1})
    assert rt.run_until_idle() == 4
    info = rt.get(eid)
    assert info.status == "SUCCEEDED"
    assert info.result == ["a:1", "b:1", "c:1", "d:1"]
    assert calls == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert len(entered) == 4 and info.invocations == 4
    assert len(events(eid, "InvocationCompleted")) == 4
    assert [e["Name"] for e in events(eid, "StepSucceeded")] == ["a", "b", "c", "bump"]

    # Running the same execution id again (same input) attaches to it: nothing runs twice.
    assert rt.start(handler, {"order": 1}, execution_id=eid) == eid
    assert rt.run_until_idle() == 0
    assert calls == {"a": 1, "b": 1, "c": 1, "d": 1} and len(entered) == 4


def test_start_with_an_existing_id_is_idempotent_or_a_conflict(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        return event

    def other(event: Any, ctx: DurableContext) -> Any:
        return event

    first = rt.start(handler, {"n": 1}, execution_id="order-17")
    assert first == "order-17"
    assert rt.start(handler, {"n": 1}, execution_id="order-17") == "order-17"
    assert [row["id"] for row in rt.list()] == ["order-17"]
    with pytest.raises(ExecutionConflictError, match="different input"):
        rt.start(handler, {"n": 2}, execution_id="order-17")
    with pytest.raises(ExecutionConflictError):
        rt.start(other, {"n": 1}, execution_id="order-17")
    assert rt.run_until_idle() == 1
    assert rt.get("order-17").result == {"n": 1}
    assert rt.get("order-17").input == {"n": 1}


# -- replay returns what history holds --------------------------------------------------------------

def test_replay_returns_the_stored_result_without_running(rt: LocalRuntime, events: Any) -> None:
    runs = []
    seen = []

    def fresh() -> dict[str, Any]:
        runs.append(1)
        return {"run": len(runs), "token": uuid.uuid4().hex}

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        value = ctx.step(fresh, name="fresh")
        seen.append(value)
        ctx.wait(1)
        return value

    eid = rt.start(handler)
    rt.run_until_idle()
    assert len(runs) == 1
    assert len(seen) == 2 and seen[0] == seen[1]  # first run and replay see the same value
    assert rt.get(eid).result == seen[0]
    stored = events(eid, "StepSucceeded", "fresh")[0]["StepSucceededDetails"]["Result"]["Payload"]
    assert json.loads(stored) == seen[0]


def test_a_failed_step_raises_the_same_error_on_replay(rt: LocalRuntime, events: Any) -> None:
    calls = []
    caught = []

    def charge(card: str) -> None:
        calls.append(card)
        raise ValueError(f"card {card} declined")

    def handler(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.step(charge, "4242", name="charge", config=NO_RETRY)
        except StepError as exc:
            caught.append((type(exc), exc.error_type, exc.message, str(exc)))
        ctx.wait(3)
        return "handled"

    eid = rt.start(handler)
    rt.run_until_idle()
    assert rt.get(eid).status == "SUCCEEDED"
    assert calls == ["4242"]
    assert len(caught) == 2  # first run, then replay after the wait
    assert caught[0] == caught[1] == (StepError, "ValueError", "card 4242 declined", "ValueError: card 4242 declined")
    failed = events(eid, "StepFailed", "charge")
    assert len(failed) == 1
    payload = failed[0]["StepFailedDetails"]["Error"]["Payload"]
    assert (payload["ErrorType"], payload["ErrorMessage"]) == ("ValueError", "card 4242 declined")


def test_an_uncaught_step_failure_fails_the_execution_with_the_original_error(rt: LocalRuntime) -> None:
    def explode() -> None:
        raise KeyError("sku-9")

    def handler(event: Any, ctx: DurableContext) -> None:
        ctx.step(explode, config=NO_RETRY)

    info = rt.run(handler)
    assert info.status == "FAILED"
    assert info.error is not None
    assert info.error["ErrorType"] == "KeyError" and "sku-9" in info.error["ErrorMessage"]


# -- non-determinism --------------------------------------------------------------------------------

def _v1(calls: list[str]) -> Any:
    def order(event: Any, ctx: DurableContext) -> str:
        ctx.step(lambda: calls.append("a"), name="a")
        ctx.wait(10, name="cool-off")
        ctx.step(lambda: calls.append("b"), name="b")
        return "done"
    return order


def _renamed_step(calls: list[str]) -> Any:
    def order(event: Any, ctx: DurableContext) -> str:
        ctx.step(lambda: calls.append("a2"), name="a2")
        ctx.wait(10, name="cool-off")
        return "done"
    return order


def _wait_instead_of_step(calls: list[str]) -> Any:
    def order(event: Any, ctx: DurableContext) -> str:
        ctx.wait(10, name="a")
        ctx.step(lambda: calls.append("b"), name="b")
        return "done"
    return order


@pytest.mark.parametrize("v2, position, differences", [
    (_renamed_step, "operation #1 ('a2')", ["Name: history has 'a', code asked for 'a2'"]),
    (_wait_instead_of_step, "operation #1 ('a')",
     ["Type: history has 'STEP', code asked for 'WAIT'", "SubType: history has 'Step', code asked for 'Wait'"]),
])
def test_changed_code_fails_the_execution_with_a_nondeterminism_error(
        rt: LocalRuntime, events: Any, v2: Any, position: str, differences: list[str]) -> None:
    calls: list[str] = []
    eid = rt.start(_v1(calls), execution_id="order-1")
    assert rt.run_once()  # first invocation: step a, then suspended in the wait
    assert rt.get(eid).status == "RUNNING" and calls == ["a"]

    rt.register(v2(calls), "order")  # "deploy" new code under the same function name
    rt.run_until_idle()

    info = rt.get(eid)
    assert info.status == "FAILED"
    assert calls == ["a"]  # nothing of the new code ran
    error = info.error or {}
    assert error["ErrorType"] == "duragent.NonDeterministicExecutionError"
    message = error["ErrorMessage"]
    assert position in message
    for difference in differences:
        assert difference in message
    assert len(events(eid, "ExecutionFailed")) == 1


# -- child contexts -----------------------------------------------------------------------------------

def test_a_child_result_over_256_kib_replays_its_children(rt: LocalRuntime, events: Any) -> None:
    inner: Counter[int] = Counter()
    bodies = []
    digests = []

    def chunk(i: int) -> str:
        inner[i] += 1
        return str(i) * 100_000

    def body(child: DurableContext) -> list[str]:
        bodies.append(1)
        return [child.step(chunk, i, name=f"chunk{i}") for i in range(3)]

    def handler(event: Any, ctx: DurableContext) -> dict[str, Any]:
        parts = ctx.run_in_child_context(body, name="big")
        digests.append(hashlib.sha256(json.dumps(parts).encode()).hexdigest())
        ctx.wait(2)
        return {"sha": digests[-1], "size": sum(map(len, parts))}

    eid = rt.start(handler)
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "SUCCEEDED"
    assert info.result["size"] == 300_000
    assert len(bodies) == 2  # the body re-ran on replay ...
    assert inner == {0: 1, 1: 1, 2: 1}  # ... but its steps came from history
    assert len(digests) == 2 and digests[0] == digests[1] == info.result["sha"]

    [context] = [op for op in rt.operations(eid) if op.Type == OperationType.CONTEXT]
    assert context.Name == "big" and context.ContextDetails is not None
    assert context.ContextDetails.ReplayChildren is True
    succeeded = events(eid, "ContextSucceeded", "big")
    assert len(succeeded) == 1
    assert len(succeeded[0]["ContextSucceededDetails"]["Result"]["Payload"] or "") < 1024  # not the 300 KB


def test_a_small_child_result_is_checkpointed_and_the_body_does_not_rerun(rt: LocalRuntime) -> None:
    bodies = []

    def body(child: DurableContext) -> dict[str, int]:
        bodies.append(1)
        return {"x": child.step(lambda: 41, name="inner") + 1}

    def handler(event: Any, ctx: DurableContext) -> Any:
        value = ctx.run_in_child_context(body, name="small", config=ChildConfig())
        ctx.wait(2)
        return value

    info = rt.run(handler)
    assert info.result == {"x": 42}
    assert len(bodies) == 1


# -- replay-safe clock and randomness -----------------------------------------------------------------

def test_now_random_and_uuid4_are_the_same_on_every_replay(rt: LocalRuntime, clock: VirtualClock) -> None:
    seen = []

    def handler(event: Any, ctx: DurableContext) -> list[Any]:
        values = (ctx.now(), ctx.random(), ctx.uuid4())
        seen.append(values)
        ctx.wait(10)
        later = ctx.now()
        seen.append((later,))
        ctx.wait(10)
        return [values[0], values[1], str(values[2]), later]

    start = clock.now()
    info = rt.run(handler)
    assert info.status == "SUCCEEDED"
    firsts = [s for s in seen if len(s) == 3]
    laters = [s[0] for s in seen if len(s) == 1]
    assert len(firsts) == 3 and firsts[0] == firsts[1] == firsts[2]
    now, rnd, uid = firsts[0]
    assert now == start
    assert 0.0 <= rnd < 1.0
    assert isinstance(uid, uuid.UUID) and uid.version == 4
    assert len(laters) == 2 and laters[0] == laters[1] == start + 10
    assert info.result == [now, rnd, str(uid), start + 10]


# -- replay-aware logging -------------------------------------------------------------------------------

def test_the_context_logger_writes_each_line_once_across_replays(rt: LocalRuntime,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    def handler(event: Any, ctx: DurableContext) -> str:
        ctx.logger.info("starting order %s", event["id"])
        ctx.wait(5)
        ctx.logger.info("after first wait")
        ctx.wait(5)
        ctx.logger.info("finishing")
        return "ok"

    caplog.set_level(logging.INFO, logger="duragent.durable.user")
    info = rt.run(handler, {"id": 7})
    assert info.invocations == 3
    messages = [r.getMessage() for r in caplog.records if r.name == "duragent.durable.user"]
    assert messages == ["starting order 7", "after first wait", "finishing"]
    fields = [getattr(r, "durable", {}) for r in caplog.records if r.name == "duragent.durable.user"]
    assert all(f.get("executionArn", "").endswith(info.id) for f in fields)


def test_replay_logging_can_be_turned_on(rt: LocalRuntime, caplog: pytest.LogCaptureFixture) -> None:
    def handler(event: Any, ctx: DurableContext) -> str:
        ctx.set_logger(LoggerConfig(replay_logging=True))
        ctx.logger.info("top")
        ctx.wait(5)
        ctx.wait(5)
        return "ok"

    caplog.set_level(logging.INFO, logger="duragent.durable.user")
    rt.run(handler)
    assert [r.getMessage() for r in caplog.records if r.name == "duragent.durable.user"] == ["top"] * 3


# -- the replay of finished steps reads rows, not models ----------------------------------------------

class Quote(BaseModel):
    sku: str
    lines: list[str]


class Shout:
    """A custom serdes: what it writes is not JSON."""

    def serialize(self, value: str) -> str:
        return value.upper()

    def deserialize(self, data: str | None) -> str:
        return f"read:{data}"


def test_replaying_finished_steps_builds_no_operation_model_and_returns_what_the_first_run_did(
        rt: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay of a finished step reads its row directly (the cost the replay benchmark holds to 5 µs
    a step). It must still give back exactly what the first run returned: typed by the annotation,
    read from a compressed row, through a custom serdes, in a child context, as a parent-less id."""
    seen: list[list[Any]] = []

    def quote(i: int) -> Quote:
        return Quote(sku=f"sku-{i}", lines=["x" * 60] * 12)  # over 400 characters: a compressed row

    def count(i: int) -> int:
        return i

    def handler(event: Any, ctx: DurableContext) -> str:
        values: list[Any] = [ctx.step(count, i, name="count") for i in range(50)]
        values.append(ctx.step(quote, 7))
        values.append(ctx.step(lambda: "quiet", name="custom", config=StepConfig(serdes=Shout())))
        values.append(ctx.run_in_child_context(lambda child: child.step(count, 99, name="inner"), name="group"))
        values.append(ctx.step(lambda: None, name="nothing"))
        seen.append(values)
        ctx.wait(5)
        return "done"

    eid = rt.start(handler)
    assert rt.run_once()  # first run: records, suspends in the wait

    parsed: list[str] = []
    load = StoredOperation.load

    def counting_load(self: StoredOperation) -> Any:
        parsed.append(self.type)
        return load(self)

    monkeypatch.setattr(StoredOperation, "load", counting_load)
    rt.run_until_idle()
    assert rt.get(eid).status == "SUCCEEDED"
    first, replay = seen
    assert replay[:50] == list(range(50))
    assert replay[50] == first[50] and isinstance(replay[50], Quote)
    assert first[51] == "read:QUIET" and replay[51] == "read:QUIET"  # the first run reads back what it wrote
    assert replay[52] == 99 and replay[53] is None
    # Only the execution's own row (its input) and the child context were parsed: no finished step.
    assert "STEP" not in parsed, parsed


def test_a_damaged_step_row_still_stalls_the_execution_with_the_reason(rt: LocalRuntime) -> None:
    """The fast path gives up on a row it cannot read; the full parse then names the damage."""
    def handler(event: Any, ctx: DurableContext) -> str:
        ctx.step(lambda: 1, name="one")
        ctx.wait(5)
        return "done"

    eid = rt.start(handler)
    assert rt.run_once()
    with rt.store.transaction() as tx:
        tx.conn.execute("UPDATE journal SET data = '{\"Name\":\"one\",' WHERE type = 'STEP'")
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "RUNNING" and info.stalled, info


@pytest.mark.parametrize("data", ['{"Name":"x",', '{"ExecutionDetails":{"InputPayload":7}}'])
def test_a_damaged_input_row_stalls_the_execution_with_the_reason(rt: LocalRuntime, data: str) -> None:
    """The input is read from its row without a model; a row that does not read back (or holds
    no JSON text) still takes the full parse, which names the damage, and the execution waits."""
    def handler(event: Any, ctx: DurableContext) -> str:
        ctx.wait(5)
        return "done"

    eid = rt.start(handler, {"order": 1})
    assert rt.run_once()
    with rt.store.transaction() as tx:
        tx.conn.execute("UPDATE journal SET data = ? WHERE type = 'EXECUTION'", (data,))
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "RUNNING" and info.stalled, info


def test_replay_matches_names_with_quotes_backslashes_and_non_ascii_exactly(rt: LocalRuntime) -> None:
    """A finished step's row is matched as text on replay: names and results that JSON escapes
    must still match exactly, and a near miss must still be reported as a changed step."""
    odd = 'say "hi" \\ to Zoë ✓'
    seen: list[Any] = []

    def handler(event: Any, ctx: DurableContext) -> str:
        name = odd if event["same"] else odd + " "
        seen.append(ctx.step(lambda: 'a "quoted" \\ result ✓\n', name=name))
        seen.append(ctx.step(lambda: None, name=name + "-none"))
        ctx.wait(5)
        return "done"

    eid = rt.start(handler, {"same": True})
    rt.run_until_idle()
    assert rt.get(eid).status == "SUCCEEDED"
    assert seen == ['a "quoted" \\ result ✓\n', None] * 2

    eid = rt.start(handler, {"same": True}, execution_id="changes")
    assert rt.run_once()
    rt.register(lambda event, ctx: handler({"same": False}, ctx), "handler")  # the name gains a space
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "FAILED" and info.error and "NonDeterministic" in info.error["ErrorType"]
