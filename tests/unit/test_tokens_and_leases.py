"""Checkpoint tokens and leases: a stale token writes nothing, a stopped execution accepts nothing,
and an invocation that died without reporting is picked up once its lease lapses (not before)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from duragent.durable import (
    DurableContext,
    LocalRuntime,
    RetryPolicy,
    StepConfig,
    StepSemantics,
    VirtualClock,
    step_context,
)
from duragent.durable.errors import CallbackNotFoundError, InvalidCheckpointTokenError, UsageError
from duragent.durable.journal import operation_id
from duragent.durable.model import OperationAction, OperationType, OperationUpdate


def _snapshot(rt: LocalRuntime, eid: str) -> tuple[Any, ...]:
    rows = rt.store._conn.execute("SELECT COUNT(*), MAX(k) FROM journal").fetchone()
    return (rt.history(eid), [op.model_dump() for op in rt.operations(eid)], rt.service.execution(eid), tuple(rows))


def _step_update(name: str, action: OperationAction, counter: int = 1, **fields: Any) -> OperationUpdate:
    return OperationUpdate(Id=operation_id(counter, None), Name=name, Type=OperationType.STEP, SubType="Step",
                           Action=action, **fields)


def _idle(event: Any, ctx: DurableContext) -> None:
    return None


def test_a_stale_token_is_refused_and_writes_nothing(rt: LocalRuntime) -> None:
    eid = rt.start(_idle)
    invocation = rt.service.claim("test-owner", 30)
    assert invocation is not None and invocation.execution_id == eid
    arn, first = invocation.input.arn, invocation.input.token

    second = rt.service.checkpoint(arn, first, [_step_update("a", OperationAction.START)]).token
    assert second is not None and second != first
    before = _snapshot(rt, eid)

    with pytest.raises(InvalidCheckpointTokenError):
        rt.service.checkpoint(arn, first, [_step_update("a", OperationAction.SUCCEED, Payload="1")])
    with pytest.raises(InvalidCheckpointTokenError):
        rt.service.checkpoint(arn, "not-a-token", [_step_update("a", OperationAction.SUCCEED, Payload="1")])
    assert _snapshot(rt, eid) == before  # nothing written, not even a version bump

    # the current token still works, and it is single-use too
    third = rt.service.checkpoint(arn, second, [_step_update("a", OperationAction.SUCCEED, Payload="1")]).token
    assert third is not None
    with pytest.raises(InvalidCheckpointTokenError):
        rt.service.checkpoint(arn, second, [_step_update("b", OperationAction.START, counter=2)])
    assert [e["EventType"] for e in rt.history(eid)][-2:] == ["StepStarted", "StepSucceeded"]


def test_a_token_for_another_execution_is_refused(rt: LocalRuntime) -> None:
    rt.start(_idle, execution_id="one")
    rt.start(_idle, execution_id="two")
    first = rt.service.claim("owner-a", 30)
    second = rt.service.claim("owner-b", 30)
    assert first is not None and second is not None and first.execution_id != second.execution_id
    with pytest.raises(InvalidCheckpointTokenError):
        rt.service.checkpoint(first.input.arn, second.input.token, [_step_update("a", OperationAction.START)])


def test_a_zombie_invocation_cannot_write_after_its_lease_was_taken(rt: LocalRuntime, clock: VirtualClock) -> None:
    eid = rt.start(_idle)
    zombie = rt.service.claim("worker-a", 30)
    assert zombie is not None
    token = rt.service.checkpoint(zombie.input.arn, zombie.input.token,
                                  [_step_update("a", OperationAction.START)]).token
    assert token is not None
    assert rt.service.claim("worker-b", 30) is None  # leased: nobody else may run it

    clock.advance(31)  # worker-a stalls past its lease
    successor = rt.service.claim("worker-b", 30)
    assert successor is not None and successor.execution_id == eid
    before = _snapshot(rt, eid)
    with pytest.raises(InvalidCheckpointTokenError):
        rt.service.checkpoint(zombie.input.arn, token, [_step_update("a", OperationAction.SUCCEED, Payload="1")])
    assert _snapshot(rt, eid) == before
    # the zombie's late report is void too
    from duragent.durable.model import InvocationOutput, InvocationStatus
    rt.service.end_invocation(zombie, InvocationOutput(Status=InvocationStatus.SUCCEEDED, Result="1"), "worker-a")
    assert _snapshot(rt, eid) == before
    crash = [e for e in rt.history(eid) if e["EventType"] == "InvocationCompleted"]
    assert crash[0]["InvocationCompletedDetails"]["RequestId"] == zombie.invocation_id
    assert crash[0]["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"] == "Runtime.ExitError"


def _new_step(name: str, counter: int, payload: str) -> list[OperationUpdate]:
    """The batch of a plain step: its START and its SUCCEED (the checkpoint's one-INSERT path)."""
    return [_step_update(name, OperationAction.START, counter), _step_update(name, OperationAction.SUCCEED, counter,
                                                                              Payload=payload)]


def test_a_new_step_batch_with_a_used_token_is_refused_and_writes_nothing(rt: LocalRuntime) -> None:
    eid = rt.start(_idle)
    invocation = rt.service.claim("test-owner", 30)
    assert invocation is not None
    arn, first = invocation.input.arn, invocation.input.token
    second = rt.service.checkpoint(arn, first, _new_step("a", 1, "1")).token
    assert second is not None
    before = _snapshot(rt, eid)
    with pytest.raises(InvalidCheckpointTokenError, match="used already"):
        rt.service.checkpoint(arn, first, _new_step("b", 2, "2"))
    assert _snapshot(rt, eid) == before
    assert rt.service.checkpoint(arn, second, _new_step("b", 2, "2")).token is not None
    assert [(e["EventType"], e.get("Name")) for e in rt.history(eid)][-4:] == [
        ("StepStarted", "a"), ("StepSucceeded", "a"), ("StepStarted", "b"), ("StepSucceeded", "b")]


def test_a_new_step_batch_from_a_zombie_or_after_stop_is_refused(rt: LocalRuntime, clock: VirtualClock) -> None:
    eid = rt.start(_idle)
    zombie = rt.service.claim("worker-a", 30)
    assert zombie is not None
    clock.advance(31)
    successor = rt.service.claim("worker-b", 30)
    assert successor is not None and successor.execution_id == eid
    before = _snapshot(rt, eid)
    with pytest.raises(InvalidCheckpointTokenError, match="newer invocation"):
        rt.service.checkpoint(zombie.input.arn, zombie.input.token, _new_step("a", 1, "1"))
    assert _snapshot(rt, eid) == before

    rt.stop(eid)
    stopped = _snapshot(rt, eid)
    with pytest.raises(InvalidCheckpointTokenError):
        rt.service.checkpoint(successor.input.arn, successor.input.token, _new_step("a", 1, "1"))
    assert _snapshot(rt, eid) == stopped


def test_a_new_step_batch_reports_what_the_service_wrote_meanwhile(rt: LocalRuntime) -> None:
    """A callback answered while the invocation ran takes the key after the token's: the step's
    batch then goes the full way and hands the answer back with its own row."""
    def waits(event: Any, ctx: DurableContext) -> Any:
        callback = ctx.create_callback(name="approval")
        return callback.result()

    eid = rt.start(waits)
    assert rt.run_once()  # the callback is created; the execution suspends on it
    assert rt.service.claim("test-owner", 30) is None  # not runnable until answered
    callback_id = rt.pending_callbacks()[0][2]
    rt.send_callback_success(callback_id, '"yes"')
    invocation = rt.service.claim("test-owner", 30)
    assert invocation is not None and invocation.execution_id == eid
    # A second callback, answered while the invocation still runs: the service appends that
    # answer after the key of the invocation's current token.
    arn, token = invocation.input.arn, invocation.input.token
    ctx_token = rt.service.checkpoint(arn, token, [OperationUpdate(
        Id=operation_id(2, None), Name="later", Type=OperationType.CALLBACK, SubType="Callback",
        Action=OperationAction.START)]).token
    assert ctx_token is not None
    later_id = next(cid for _, op, cid in rt.pending_callbacks() if op.Name == "later")
    rt.send_callback_success(later_id, '"meanwhile"')  # appended after ctx_token's key
    response = rt.service.checkpoint(arn, ctx_token, _new_step("after", 3, "3"))
    assert response.token is not None
    changed = {op.Id: op for op in response.operations}
    assert operation_id(3, None) in changed and operation_id(2, None) in changed
    assert changed[operation_id(2, None)].Status.value == "SUCCEEDED"
    assert [e["EventType"] for e in rt.history(eid)][-2:] == ["StepStarted", "StepSucceeded"]


def test_stop_ends_the_execution_and_refuses_later_answers(rt: LocalRuntime, events: Any) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        ctx.step(lambda: "sent", name="send")
        return ctx.create_callback(name="approval").result()

    eid = rt.start(handler)
    rt.run_until_idle()
    assert rt.get(eid).status == "RUNNING"
    [(cb_eid, _op, callback_id)] = rt.pending_callbacks()
    assert cb_eid == eid

    rt.stop(eid)
    info = rt.get(eid)
    assert info.status == "STOPPED"
    assert len(events(eid, "ExecutionStopped")) == 1
    with pytest.raises(CallbackNotFoundError):
        rt.send_callback_success(callback_id, '"approved"')
    with pytest.raises(CallbackNotFoundError):
        rt.send_callback_failure(callback_id, "rejected")
    with pytest.raises(UsageError, match="already STOPPED"):
        rt.stop(eid)
    assert rt.run_until_idle() == 0
    assert rt.get(eid).status == "STOPPED"
    assert not events(eid, "CallbackSucceeded")
    assert rt.pending_callbacks() == []  # a stopped execution awaits no answer


def test_a_token_issued_before_stop_is_refused(rt: LocalRuntime) -> None:
    eid = rt.start(_idle)
    invocation = rt.service.claim("worker", 30)
    assert invocation is not None
    rt.stop(eid)
    with pytest.raises(InvalidCheckpointTokenError):
        rt.service.checkpoint(invocation.input.arn, invocation.input.token, [_step_update("a", OperationAction.START)])
    assert [e["EventType"] for e in rt.history(eid)][-1] == "ExecutionStopped"


def test_stop_cancels_pending_timers(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> None:
        ctx.wait(3600)

    eid = rt.start(handler)
    rt.run_once()
    assert rt.service.next_due() is not None
    rt.stop(eid)
    assert rt.service.next_due() is None
    assert rt.run_until_idle() == 0


class Crash(BaseException):
    """Stands in for the process dying mid-step: nothing in the engine catches it."""


@pytest.mark.parametrize("semantics", list(StepSemantics))
def test_a_dead_invocation_is_resumed_when_its_lease_lapses(rt: LocalRuntime, clock: VirtualClock, events: Any,
                                                            semantics: StepSemantics) -> None:
    attempts: list[int] = []
    crashed = []

    def charge() -> str:
        attempts.append(step_context().attempt)
        if not crashed:
            crashed.append(1)
            raise Crash()
        return "charged"

    config = StepConfig(semantics=semantics, retry=RetryPolicy.exponential(max_attempts=3, initial_delay=1,
                                                                           jitter=False))

    def handler(event: Any, ctx: DurableContext) -> str:
        return ctx.step(charge, name="charge", config=config)

    eid = rt.start(handler)
    with pytest.raises(Crash):
        rt.run_until_idle()
    assert rt.get(eid).status == "RUNNING"

    # Same process, so the owner is not "dead": the execution stays leased until the lease lapses.
    clock.advance(rt.lease_seconds - 1)
    assert rt.run_until_idle(skip_time=False) == 0
    clock.advance(2)
    rt.run_until_idle()

    info = rt.get(eid)
    assert info.status == "SUCCEEDED" and info.result == "charged"
    [crash] = [e for e in events(eid, "InvocationCompleted") if "Error" in e["InvocationCompletedDetails"]]
    assert crash["InvocationCompletedDetails"]["Error"]["Payload"]["ErrorType"] == "Runtime.ExitError"
    if semantics == StepSemantics.AT_MOST_ONCE_PER_RETRY:
        # the interrupted attempt is never re-run: it counts as failed, and attempt 2 runs
        assert attempts == [1, 2]
        [failed] = events(eid, "StepFailed", "charge")
        assert failed["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] == "duragent.StepInterruptedError"
        assert failed["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 1}
    else:
        # at least once: the interrupted attempt runs again
        assert attempts == [1, 1]
        assert not events(eid, "StepFailed", "charge")
    assert len(events(eid, "StepSucceeded", "charge")) == 1


def test_an_interrupted_at_most_once_step_without_retries_fails(rt: LocalRuntime, clock: VirtualClock,
                                                                events: Any) -> None:
    attempts: list[int] = []

    def pay() -> str:
        attempts.append(step_context().attempt)
        raise Crash()

    def handler(event: Any, ctx: DurableContext) -> str:
        amo = StepConfig(semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry=RetryPolicy.no_retry())
        return ctx.step(pay, name="pay", config=amo)

    eid = rt.start(handler)
    with pytest.raises(Crash):
        rt.run_until_idle()
    clock.advance(rt.lease_seconds + 1)
    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "FAILED"
    assert info.error is not None and info.error["ErrorType"] == "duragent.StepInterruptedError"
    assert attempts == [1]  # never run again
    [failed] = events(eid, "StepFailed", "pay")
    assert failed["StepFailedDetails"]["RetryDetails"] == {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 0}


def test_a_stalled_invocation_that_lost_its_lease_cannot_write(tmp_path: Any, clock: VirtualClock) -> None:
    """A real zombie: invocation A stalls inside a step past its lease, B takes over and finishes the
    execution, then A wakes up and tries to checkpoint. A's write is refused and A gives up quietly."""
    db = tmp_path / "z.db"
    entered, go = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow(who: str) -> str:
        runs.append(threading.current_thread().name)
        if threading.current_thread().name == "A":
            entered.set()
            go.wait(10)
        return threading.current_thread().name

    def handler(event: Any, ctx: DurableContext) -> str:
        return ctx.step(slow, "x", name="slow")

    a = LocalRuntime(db, clock=clock, functions=[handler])
    b = LocalRuntime(db, clock=clock, functions=[handler])
    try:
        eid = a.start(handler)
        errors: list[BaseException] = []

        def run_a() -> None:
            try:
                a.run_once()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        thread = threading.Thread(target=run_a, name="A")
        thread.start()
        assert entered.wait(10)
        time.sleep(0.25)  # A's queued START is flushed in the background meanwhile
        clock.advance(a.lease_seconds + 1)

        b.run_until_idle()
        done = _snapshot(b, eid)
        assert b.get(eid).status == "SUCCEEDED" and b.get(eid).result == "MainThread"

        go.set()
        thread.join(10)
        assert not thread.is_alive() and errors == []
        assert _snapshot(b, eid) == done  # the zombie changed nothing
        assert runs == ["A", "MainThread"]
        history = b.history(eid)
        assert [e["EventType"] for e in history].count("StepSucceeded") == 1
        crash = [e for e in history if e["EventType"] == "InvocationCompleted" and "Error" in
                 e["InvocationCompletedDetails"]]
        assert len(crash) == 1  # A's invocation, reported by B when it took over
    finally:
        go.set()
        a.close()
        b.close()
