"""Steps: what a running step knows about itself, what may not be called inside one, and when its
START reaches the store under each semantics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from duragent.durable import (
    DurableContext,
    Duration,
    LocalRuntime,
    RetryPolicy,
    StepConfig,
    StepError,
    StepSemantics,
    UsageError,
    step_context,
)
from duragent.durable.model import OperationStatus

NO_RETRY = StepConfig(retry=RetryPolicy.no_retry())


def test_step_context_gives_attempt_and_operation_id(rt: LocalRuntime, events: Any) -> None:
    seen: list[tuple[int, str, str | None]] = []

    def fetch() -> str:
        sc = step_context()
        seen.append((sc.attempt, sc.operation_id, sc.name))
        sc.logger.info("attempt %s", sc.attempt)
        if sc.attempt < 3:
            raise ConnectionError("flaky")
        return "page"

    policy = RetryPolicy.exponential(max_attempts=4, initial_delay=1, jitter=False)

    def handler(event: Any, ctx: DurableContext) -> str:
        ctx.step(lambda: None, name="first")
        return ctx.step(fetch, name="fetch", config=StepConfig(retry=policy))

    eid = rt.start(handler)
    rt.run_until_idle()
    assert rt.get(eid).result == "page"
    assert [a for a, _, _ in seen] == [1, 2, 3]  # 1-based, counted across invocations
    [ok] = events(eid, "StepSucceeded", "fetch")
    assert {op_id for _, op_id, _ in seen} == {ok["Id"]}
    assert {name for _, _, name in seen} == {"fetch"}
    [first] = events(eid, "StepSucceeded", "first")
    assert first["Id"] != ok["Id"]


def test_step_context_outside_a_step_is_a_usage_error(rt: LocalRuntime) -> None:
    with pytest.raises(UsageError, match="outside a step"):
        step_context()

    def handler(event: Any, ctx: DurableContext) -> str:
        try:
            step_context()
        except UsageError as exc:
            return str(exc)
        return "no error"

    assert "outside a step" in rt.run(handler).result


@pytest.mark.parametrize("inner", ["step", "wait", "child"])
def test_durable_operations_inside_a_step_are_a_usage_error(rt: LocalRuntime, inner: str) -> None:
    def nested(ctx: DurableContext) -> None:
        if inner == "step":
            ctx.step(lambda: 1, name="inner")
        elif inner == "wait":
            ctx.wait(Duration(5))
        else:
            ctx.run_in_child_context(lambda child: 1)

    def handler(event: Any, ctx: DurableContext) -> list[str | None]:
        try:
            ctx.step(nested, ctx, name="outer", config=NO_RETRY)
        except StepError as exc:
            return [exc.error_type, exc.message]
        return ["no error", None]

    error_type, message = rt.run(handler).result
    assert error_type == "duragent.UsageError"
    assert message is not None and "inside a step" in message


def _visible_ops(db: Path, execution_id: str) -> dict[str | None, str]:
    """What another process would see in the store right now (a second runtime, own connection)."""
    with LocalRuntime(db) as other:
        return {op.Name: op.Status.value for op in other.operations(execution_id)}


def test_at_most_once_start_is_committed_before_the_body_runs(tmp_path: Path, rt: LocalRuntime,
                                                              events: Any) -> None:
    db = tmp_path / "x.db"
    during: dict[str, dict[str | None, str]] = {}

    def charge(execution_id: str) -> str:
        during["charge"] = _visible_ops(db, execution_id)
        return "charged"

    def lookup(execution_id: str) -> str:
        during["lookup"] = _visible_ops(db, execution_id)
        return "found"

    def handler(event: Any, ctx: DurableContext) -> list[str]:
        amo = StepConfig(semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY)
        return [ctx.step(charge, ctx.execution_id, name="charge", config=amo),
                ctx.step(lookup, ctx.execution_id, name="lookup")]

    eid = rt.start(handler)
    rt.run_until_idle()
    assert rt.get(eid).result == ["charged", "found"]
    # at-most-once: the START was in the store while the body ran
    assert during["charge"].get("charge") == OperationStatus.STARTED.value
    # at-least-once: the START rides with the outcome (one commit), so nothing was visible yet
    assert "lookup" not in during["lookup"]
    assert during["lookup"].get("charge") == OperationStatus.SUCCEEDED.value
    for name in ("charge", "lookup"):
        assert len(events(eid, "StepStarted", name)) == 1
        assert len(events(eid, "StepSucceeded", name)) == 1


def test_a_one_step_execution_run_here_costs_three_commits_and_two_fsyncs(tmp_path: Path) -> None:
    """``run()`` opens the first invocation in the start's own commit: start (+ claim), the step
    (its START riding with its SUCCEED), the end. Under durability="full" only the first two wait
    for the disk; the end is recomputed by replay if a power cut takes it."""
    statements: list[str] = []

    def double(x: int) -> int:
        return 2 * x

    def handler(event: int, ctx: DurableContext) -> int:
        return ctx.step(double, event)

    with LocalRuntime(tmp_path / "x.db", durability="full", functions=[handler]) as rt:
        rt.run(handler, 0)  # warm: the first run also creates tables' pages
        rt.store._conn.set_trace_callback(statements.append)
        info = rt.run(handler, 21)
        rt.store._conn.set_trace_callback(None)
    assert info.status == "SUCCEEDED" and info.result == 42 and info.invocations == 1
    commits = [i for i, sql in enumerate(statements) if sql == "COMMIT"]
    assert len(commits) == 3, statements
    relaxed = [i for i, sql in enumerate(statements) if sql == "PRAGMA synchronous=NORMAL"]
    # exactly one commit (the end) runs with synchronous=NORMAL, i.e. without an fsync of its own
    assert len(relaxed) == 1 and relaxed[0] < commits[2] and relaxed[0] > commits[1], statements


def test_what_run_returns_is_what_the_store_reads_back(tmp_path: Path) -> None:
    """``run()`` answers from the row its last invocation wrote when nothing ran after it: the same
    ExecutionInfo ``get()`` reads, for an execution that succeeded, failed, or waits."""

    def double(x: int) -> int:
        return 2 * x

    def handler(event: Any, ctx: DurableContext) -> Any:
        if event == "fail":
            ctx.step(double, 1, name="before")
            raise ValueError("no such order")
        if event == "wait":
            ctx.wait(Duration.from_seconds(60))
        return ctx.step(double, event)

    with LocalRuntime(tmp_path / "x.db", functions=[handler]) as rt:
        ok, failed, waiting = rt.run(handler, 21), rt.run(handler, "fail"), rt.run(handler, "wait")
        assert ok.status == "SUCCEEDED" and ok.result == 42 and ok.ended_at is not None
        assert failed.status == "FAILED" and failed.error is not None and "no such order" in str(failed.error)
        assert waiting.status == "RUNNING" and waiting.ended_at is None
        for info in (ok, failed, waiting):
            assert rt.get(info.id) == info
