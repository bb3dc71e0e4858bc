"""An execution started with a timeout ends TIMED_OUT when it runs past it, wherever it waits;
a chained target that ends without a result fails its caller's invoke."""

from __future__ import annotations

from pathlib import Path

from duragent.durable import DurableContext, Duration, InvokeError, LocalRuntime, VirtualClock


def slow(event: dict, ctx: DurableContext) -> str:
    ctx.step(lambda: "started", name="begin")
    ctx.wait(Duration.from_hours(1), name="long wait")
    return "finished"


def test_an_execution_past_its_timeout_ends_timed_out(tmp_path: Path) -> None:
    clock = VirtualClock()
    rt = LocalRuntime(tmp_path / "t.db", clock=clock)
    execution_id = rt.start(slow, {}, timeout=Duration.from_minutes(10))
    start = clock.now()
    rt.run_until_idle()
    info = rt.get(execution_id)
    assert info.status == "TIMED_OUT"
    assert info.error is not None and info.error["ErrorType"] == "Execution.TimedOut"
    assert clock.now() - start == 600  # the timeout fired, not the hour-long wait
    events = rt.history(execution_id)
    assert events[0]["ExecutionStartedDetails"]["ExecutionTimeout"] == 600
    assert events[-1]["EventType"] == "ExecutionTimedOut"
    assert not any(e["EventType"] == "WaitSucceeded" for e in events)
    assert rt.service.next_due() is None  # nothing left to fire for it


def test_a_timeout_that_is_not_reached_changes_nothing(tmp_path: Path) -> None:
    rt = LocalRuntime(tmp_path / "t.db", clock=VirtualClock())
    execution_id = rt.start(slow, {}, timeout=Duration.from_hours(2))
    rt.run_until_idle()
    assert rt.get(execution_id).status == "SUCCEEDED"
    assert rt.get(execution_id).result == "finished"


def test_a_chained_target_that_ends_early_fails_the_callers_invoke(tmp_path: Path) -> None:
    def caller(event: dict, ctx: DurableContext) -> str:
        try:
            return str(ctx.invoke("slow", {}, name="call slow"))
        except InvokeError as exc:
            return f"caught {exc.error_type}"

    rt = LocalRuntime(tmp_path / "t.db", clock=VirtualClock(), functions={"slow": slow, "caller": caller})
    execution_id = rt.start("caller", {})
    rt.run_until_idle(until=rt.clock.now() + 5)
    target = [e for e in rt.list() if e["function"] == "slow"][0]["id"]
    rt.stop(target)
    rt.run_until_idle()
    assert rt.get(execution_id).result == "caught ExecutionStopped"
