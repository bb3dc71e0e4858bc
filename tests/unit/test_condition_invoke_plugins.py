"""ctx.wait_for_condition, ctx.invoke (chained invoke in the local store) and plugin hooks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from duragent.durable import (
    AttemptInfo,
    DurableContext,
    InvocationInfo,
    InvokeConfig,
    InvokeError,
    LocalRuntime,
    OperationInfo,
    Plugin,
    RetryPolicy,
    StepConfig,
    StepContext,
    VirtualClock,
    WaitDecision,
    WaitForConditionConfig,
    WaitForConditionError,
    durable_function,
    poll_until,
)
from duragent.durable.model import OperationStatus, OperationType

Events = Callable[..., list[dict[str, Any]]]

# -- wait_for_condition ---------------------------------------------------------------------------


def test_wfc_checkpoints_state_per_poll_and_suspends_between_polls(rt: LocalRuntime, clock: VirtualClock,
                                                                   events: Events) -> None:
    seen: list[tuple[int, int]] = []  # (state passed in, attempt)

    def check(state: int, sc: StepContext) -> int:
        seen.append((state, sc.attempt))
        return state + 1

    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.wait_for_condition(check, name="counter", config=WaitForConditionConfig(
            initial_state=0, wait_strategy=poll_until(lambda s: s >= 3, delay=2)))

    start = clock.now()
    eid = rt.start(handler)
    assert rt.run_once()
    # One poll, then the execution is suspended with the new state in the checkpoint.
    assert rt.get(eid).status == "RUNNING"
    assert seen == [(0, 1)]
    [op] = [o for o in rt.operations(eid) if o.Type == OperationType.STEP]
    assert op.SubType == "WaitForCondition" and op.Status == OperationStatus.PENDING
    assert op.StepDetails is not None and op.StepDetails.Result == "1"
    assert op.StepDetails.NextAttemptTimestamp == start + 2
    assert not rt.run_once()  # nothing runs before the poll is due

    rt.run_until_idle()
    info = rt.get(eid)
    assert info.status == "SUCCEEDED" and info.result == 3
    # Each poll resumed from the checkpointed state; no poll ran twice.
    assert seen == [(0, 1), (1, 2), (2, 3)]
    assert clock.now() == start + 4
    assert len(events(eid, "StepStarted")) == 3
    polls = events(eid, "StepSucceeded")
    assert [e["StepSucceededDetails"]["Result"]["Payload"] for e in polls] == ["1", "2", "3"]
    assert [e["StepSucceededDetails"]["RetryDetails"].get("NextAttemptDelaySeconds") for e in polls] == [2, 2, None]
    assert {e["Id"] for e in polls} == {op.Id} and {e["Name"] for e in polls} == {"counter"}
    assert {e["SubType"] for e in polls} == {"WaitForCondition"}
    assert info.invocations == 3


def test_wfc_strategy_sees_attempts_and_custom_delays(rt: LocalRuntime, events: Events) -> None:
    calls: list[tuple[int, int]] = []

    def strategy(state: int, attempt: int) -> WaitDecision:
        calls.append((state, attempt))
        return WaitDecision.stop() if state >= 2 else WaitDecision.continue_after(7)

    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.wait_for_condition(lambda s, sc: s + 1, config=WaitForConditionConfig(
            initial_state=0, wait_strategy=strategy))

    info = rt.run(handler)
    assert info.status == "SUCCEEDED" and info.result == 2
    assert calls == [(1, 1), (2, 2)]
    first = events(info.id, "StepSucceeded")[0]["StepSucceededDetails"]
    assert first["RetryDetails"] == {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 7}


def test_wfc_max_attempts_fails_the_operation(rt: LocalRuntime, events: Events) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_condition(lambda s, sc: s + 1, config=WaitForConditionConfig(
            initial_state=0, wait_strategy=poll_until(lambda s: False, delay=1, max_attempts=3)))

    info = rt.run(handler)
    assert info.status == "FAILED"
    assert info.error is not None and info.error["ErrorType"] == "ConditionNotMetError"
    assert len(events(info.id, "StepStarted")) == 3
    assert len(events(info.id, "StepSucceeded")) == 2
    [failed] = events(info.id, "StepFailed")
    assert failed["SubType"] == "WaitForCondition"
    assert failed["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] == "ConditionNotMetError"


def test_wfc_check_raising_is_not_retried_and_replays_from_cache(rt: LocalRuntime, events: Events) -> None:
    runs: list[int] = []

    def check(state: Any, sc: StepContext) -> Any:
        runs.append(1)
        raise ValueError("sensor offline")

    def handler(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.wait_for_condition(check, config=WaitForConditionConfig(initial_state=0))
        except WaitForConditionError as exc:
            caught = f"{exc.error_type}: {exc.message}"
        ctx.wait(1)  # the replay after the wait re-raises the cached error without running the check
        return caught

    info = rt.run(handler)
    assert info.status == "SUCCEEDED"
    assert info.result == "ValueError: sensor offline"
    assert runs == [1]
    assert len(events(info.id, "StepFailed")) == 1
    assert info.invocations == 2


def test_wfc_uncaught_check_error_fails_the_execution(rt: LocalRuntime) -> None:
    def handler(event: Any, ctx: DurableContext) -> Any:
        return ctx.wait_for_condition(lambda s, sc: 1 / 0)

    info = rt.run(handler)
    assert info.status == "FAILED"
    assert info.error is not None and info.error["ErrorType"] == "ZeroDivisionError"


class _Tagged:
    def serialize(self, value: str) -> str:
        return f"state:{value}"

    def deserialize(self, data: str | None) -> str | None:
        assert data is not None and data.startswith("state:"), data
        return data[len("state:"):]


def test_wfc_custom_serdes_round_trips_across_suspensions(rt: LocalRuntime, events: Events) -> None:
    def handler(event: Any, ctx: DurableContext) -> str:
        return ctx.wait_for_condition(lambda s, sc: s + "x", config=WaitForConditionConfig(
            initial_state="", serdes=_Tagged(), wait_strategy=poll_until(lambda s: len(s) >= 3, delay=1)))

    info = rt.run(handler)
    assert info.status == "SUCCEEDED" and info.result == "xxx"
    payloads = [e["StepSucceededDetails"]["Result"]["Payload"] for e in events(info.id, "StepSucceeded")]
    assert payloads == ["state:x", "state:xx", "state:xxx"]


# -- chained invoke ---------------------------------------------------------------------------------


def echo(event: Any, ctx: DurableContext) -> Any:
    return event


def shout(event: Any, ctx: DurableContext) -> Any:
    return ctx.step(lambda: str(event).upper(), name="upper")


class Refused(Exception):
    pass


def refuse(event: Any, ctx: DurableContext) -> Any:
    raise Refused(f"refusing {event}")


@pytest.fixture
def irt(tmp_path: Any, clock: VirtualClock) -> Any:
    runtime = LocalRuntime(tmp_path / "invoke.db", clock=clock,
                           functions={"echo": echo, "shout": shout, "refuse": refuse})
    yield runtime
    runtime.close()


def test_invoke_target_runs_as_its_own_execution(irt: LocalRuntime) -> None:
    def caller(event: Any, ctx: DurableContext) -> Any:
        return {"echo": ctx.invoke("echo", {"n": 1}, name="call-echo"), "shout": ctx.invoke("shout", "hi")}

    info = irt.run(caller)
    assert info.status == "SUCCEEDED"
    assert info.result == {"echo": {"n": 1}, "shout": "HI"}
    children = [row for row in irt.list() if row["parent_execution"] == info.id]
    assert sorted(row["function"] for row in children) == ["echo", "shout"]
    assert all(row["status"] == "SUCCEEDED" for row in children)
    history = irt.history(info.id)
    started = [e for e in history if e["EventType"] == "ChainedInvokeStarted"]
    assert [e["Name"] for e in started] == ["call-echo", None]
    details = started[0]["ChainedInvokeStartedDetails"]
    assert details["FunctionName"] == "echo" and details["Input"]["Payload"] == '{"n":1}'
    assert details["ExecutedVersion"] == "$LATEST"
    echo_child = next(row for row in children if row["function"] == "echo")
    assert details["DurableExecutionArn"].endswith("/" + echo_child["id"])
    # The target's own history: it ran with the payload as its input, and its step is its own.
    assert irt.get(echo_child["id"]).input == {"n": 1}
    shout_child = next(row for row in children if row["function"] == "shout")
    assert any(e["EventType"] == "StepSucceeded" for e in irt.history(shout_child["id"]))
    succeeded = [e for e in history if e["EventType"] == "ChainedInvokeSucceeded"]
    assert [e["ChainedInvokeSucceededDetails"]["Result"]["Payload"] for e in succeeded] == ['{"n":1}', '"HI"']


def test_invoke_error_flows_back_and_replays_from_cache(irt: LocalRuntime) -> None:
    def caller(event: Any, ctx: DurableContext) -> Any:
        try:
            ctx.invoke("refuse", "order-7")
        except InvokeError as exc:
            outcome = {"type": exc.error_type, "message": exc.message}
        ctx.wait(1)
        return outcome

    info = irt.run(caller)
    assert info.status == "SUCCEEDED"
    assert info.result["message"] == "refusing order-7"
    assert info.result["type"].endswith("Refused")
    # The replay after the wait did not start the target again.
    assert len([r for r in irt.list() if r["parent_execution"] == info.id]) == 1
    [failed] = [e for e in irt.history(info.id) if e["EventType"] == "ChainedInvokeFailed"]
    assert failed["ChainedInvokeFailedDetails"]["Error"]["Payload"]["ErrorMessage"] == "refusing order-7"


def test_uncaught_invoke_error_fails_the_caller(irt: LocalRuntime) -> None:
    info = irt.run(lambda event, ctx: ctx.invoke("refuse", 1))
    assert info.status == "FAILED"
    assert info.error is not None and info.error["ErrorMessage"] == "refusing 1"


def test_invoke_tenant_id_passes_through(irt: LocalRuntime) -> None:
    def caller(event: Any, ctx: DurableContext) -> Any:
        return ctx.invoke("echo", "p", config=InvokeConfig(tenant_id="tenant-42"))

    info = irt.run(caller)
    assert info.status == "SUCCEEDED" and info.result == "p"
    [started] = [e for e in irt.history(info.id) if e["EventType"] == "ChainedInvokeStarted"]
    assert started["ChainedInvokeStartedDetails"]["TenantId"] == "tenant-42"
    [child] = [r for r in irt.list() if r["parent_execution"] == info.id]
    assert irt.service.execution(child["id"])["tenant_id"] == "tenant-42"


class _Envelope:
    """Outgoing: wrap in an envelope. Incoming: keep the raw JSON text, tagged."""

    def serialize(self, value: Any) -> str:
        return json.dumps({"envelope": value})

    def deserialize(self, data: str | None) -> Any:
        return f"raw:{data}"


def test_invoke_payload_and_result_serdes_are_honoured(irt: LocalRuntime) -> None:
    def caller(event: Any, ctx: DurableContext) -> Any:
        return ctx.invoke("echo", [1, 2], config=InvokeConfig(payload_serdes=_Envelope(), result_serdes=_Envelope()))

    info = irt.run(caller)
    assert info.status == "SUCCEEDED"
    # The target returned its input; its result is the target's own (compact) JSON, read raw.
    assert info.result == 'raw:{"envelope":[1,2]}'
    [started] = [e for e in irt.history(info.id) if e["EventType"] == "ChainedInvokeStarted"]
    assert started["ChainedInvokeStartedDetails"]["Input"]["Payload"] == '{"envelope": [1, 2]}'
    [child] = [r for r in irt.list() if r["parent_execution"] == info.id]
    assert irt.get(child["id"]).input == {"envelope": [1, 2]}


def test_invoke_unknown_function_raises_invoke_error(irt: LocalRuntime) -> None:
    def caller(event: Any, ctx: DurableContext) -> Any:
        try:
            return ctx.invoke("no-such-function", {})
        except InvokeError as exc:
            return exc.error_type

    info = irt.run(caller)
    assert info.status == "SUCCEEDED" and info.result == "ResourceNotFoundException"
    kinds = [e["EventType"] for e in irt.history(info.id)]
    assert "ChainedInvokeStarted" in kinds and "ChainedInvokeFailed" in kinds
    assert info.invocations == 1  # failed at once: no suspension
    assert [r for r in irt.list() if r["parent_execution"] == info.id] == []


def test_invoke_target_finishing_during_the_callers_invocation(irt: LocalRuntime) -> None:
    """Another worker may finish the target before the caller's (suspending) invocation reports
    back; the caller must be re-invoked, not failed for "PENDING with no pending operations"."""

    class FinishTargetMeanwhile(Plugin):
        def on_invocation_end(self, info: InvocationInfo) -> None:
            if info.status == "PENDING" and "caller" in info.execution_arn:
                irt.run_once()  # claims and runs the target execution

    irt.plugins.append(FinishTargetMeanwhile())
    irt.register(lambda event, ctx: ctx.invoke("echo", "fast"), "caller")
    eid = irt.start("caller")
    irt.run_until_idle()
    info = irt.get(eid)
    assert info.status == "SUCCEEDED" and info.result == "fast"


# -- plugins ----------------------------------------------------------------------------------------


class Recorder(Plugin):
    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_invocation_start(self, info: InvocationInfo) -> None:
        self.calls.append(("invocation-start", info.first))

    def on_invocation_end(self, info: InvocationInfo) -> None:
        self.calls.append(("invocation-end", info.status))

    def on_operation_start(self, info: OperationInfo) -> None:
        self.calls.append(("operation-start", info.type, info.name, info.replaying))

    def on_operation_end(self, info: OperationInfo) -> None:
        self.calls.append(("operation-end", info.type, info.name, info.replaying, info.status))

    def on_attempt_start(self, info: AttemptInfo) -> None:
        self.calls.append(("attempt-start", info.name, info.attempt))

    def on_attempt_end(self, info: AttemptInfo) -> None:
        self.calls.append(("attempt-end", info.name, info.attempt, info.outcome))


def test_plugin_hooks_order_and_replaying_flag(tmp_path: Any, clock: VirtualClock) -> None:
    recorder = Recorder()

    def handler(event: Any, ctx: DurableContext) -> str:
        a = ctx.step(lambda: "a", name="first")
        ctx.wait(5, name="pause")
        return a + ctx.step(lambda: "b", name="second")

    with LocalRuntime(tmp_path / "p.db", clock=clock, plugins=[recorder]) as rt:
        info = rt.run(handler)
    assert info.status == "SUCCEEDED" and info.result == "ab"
    assert recorder.calls == [
        ("invocation-start", True),
        ("operation-start", "STEP", "first", False),
        ("attempt-start", "first", 1),
        ("attempt-end", "first", 1, "SUCCEEDED"),
        ("operation-end", "STEP", "first", False, "SUCCEEDED"),
        ("operation-start", "WAIT", "pause", False),
        ("invocation-end", "PENDING"),
        ("invocation-start", False),
        ("operation-start", "STEP", "first", True),
        ("operation-end", "STEP", "first", True, "SUCCEEDED"),
        ("operation-start", "WAIT", "pause", True),
        ("operation-end", "WAIT", "pause", True, "SUCCEEDED"),
        ("operation-start", "STEP", "second", False),
        ("attempt-start", "second", 1),
        ("attempt-end", "second", 1, "SUCCEEDED"),
        ("operation-end", "STEP", "second", False, "SUCCEEDED"),
        ("invocation-end", "SUCCEEDED"),
    ]


def test_plugin_sees_retried_attempts_and_failures(tmp_path: Any, clock: VirtualClock) -> None:
    recorder = Recorder()
    policy = RetryPolicy.exponential(max_attempts=2, initial_delay=1, backoff_rate=1, jitter=False)

    def handler(event: Any, ctx: DurableContext) -> str:
        def always_fails() -> str:
            raise RuntimeError("no")

        return ctx.step(always_fails, name="flaky", config=StepConfig(retry=policy))

    with LocalRuntime(tmp_path / "p.db", clock=clock, plugins=[recorder]) as rt:
        info = rt.run(handler)
    assert info.status == "FAILED"
    attempts = [c for c in recorder.calls if c[0].startswith("attempt")]
    assert attempts == [("attempt-start", "flaky", 1), ("attempt-end", "flaky", 1, "FAILED"),
                        ("attempt-start", "flaky", 2), ("attempt-end", "flaky", 2, "FAILED")]
    assert ("operation-end", "STEP", "flaky", False, "FAILED") in recorder.calls
    assert recorder.calls[-1] == ("invocation-end", "FAILED")


class Exploding(Plugin):
    name = "exploding"

    def __init__(self) -> None:
        self.hooks: list[str] = []

    def _boom(self, hook: str) -> None:
        self.hooks.append(hook)
        raise RuntimeError(f"{hook} exploded")

    def on_invocation_start(self, info: InvocationInfo) -> None:
        self._boom("invocation-start")

    def on_invocation_end(self, info: InvocationInfo) -> None:
        self._boom("invocation-end")

    def on_operation_start(self, info: OperationInfo) -> None:
        self._boom("operation-start")

    def on_operation_end(self, info: OperationInfo) -> None:
        self._boom("operation-end")

    def on_attempt_start(self, info: AttemptInfo) -> None:
        self._boom("attempt-start")

    def on_attempt_end(self, info: AttemptInfo) -> None:
        self._boom("attempt-end")


def test_raising_hooks_are_logged_and_the_execution_succeeds(tmp_path: Any, clock: VirtualClock,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    exploding, recorder = Exploding(), Recorder()

    @durable_function(name="unit-plugins-exploding", plugins=[exploding, recorder])
    def handler(event: Any, ctx: DurableContext) -> str:
        return ctx.step(lambda: f"hello {event}", name="greet")

    with caplog.at_level(logging.WARNING, logger="duragent.durable.plugins"), \
            LocalRuntime(tmp_path / "p.db", clock=clock) as rt:
        info = rt.run(handler, "bob")
    assert info.status == "SUCCEEDED" and info.result == "hello bob"
    assert exploding.hooks == ["invocation-start", "operation-start", "attempt-start", "attempt-end",
                               "operation-end", "invocation-end"]
    # The plugin after the raising one still saw every hook.
    assert [c[0] for c in recorder.calls] == exploding.hooks
    warnings = [r for r in caplog.records if r.name == "duragent.durable.plugins"]
    assert len(warnings) == 6 and all(r.exc_info for r in warnings)
    assert "exploding" in warnings[0].getMessage()


def test_function_and_runtime_plugins_both_fire(tmp_path: Any, clock: VirtualClock) -> None:
    own, everywhere = Recorder(), Recorder()

    @durable_function(name="unit-plugins-both", plugins=[own])
    def handler(event: Any, ctx: DurableContext) -> int:
        return ctx.wait_for_condition(lambda s, sc: s + 1, config=WaitForConditionConfig(
            initial_state=0, wait_strategy=poll_until(lambda s: s >= 2, delay=1)))

    with LocalRuntime(tmp_path / "p.db", clock=clock, plugins=[everywhere]) as rt:
        info = rt.run(handler)
    assert info.status == "SUCCEEDED" and info.result == 2
    assert own.calls == everywhere.calls
    assert [c for c in own.calls if c[0] == "invocation-start"] == [("invocation-start", True),
                                                                     ("invocation-start", False)]
    ends = [c for c in own.calls if c[0] == "operation-end"]
    assert ends == [("operation-end", "STEP", None, False, "SUCCEEDED")]
    # Each poll is one attempt of the WaitForCondition step.
    attempts = [c for c in own.calls if c[0].startswith("attempt")]
    assert attempts == [("attempt-start", None, 1), ("attempt-end", None, 1, "SUCCEEDED"),
                        ("attempt-start", None, 2), ("attempt-end", None, 2, "SUCCEEDED")]


def test_decorating_twice_keeps_every_plugin(tmp_path: Any, clock: VirtualClock) -> None:
    inner, outer = Recorder(), Recorder()

    @durable_function(name="unit-plugins-outer", plugins=[outer])
    @durable_function(name="unit-plugins-inner", plugins=[inner])
    def handler(event: Any, ctx: DurableContext) -> int:
        return 1

    assert handler.name == "unit-plugins-outer" and handler.plugins == [inner, outer]
    with LocalRuntime(tmp_path / "p.db", clock=clock) as rt:
        assert rt.run(handler).status == "SUCCEEDED"
    assert inner.calls == outer.calls == [("invocation-start", True), ("invocation-end", "SUCCEEDED")]
