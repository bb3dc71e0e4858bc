"""``durable.aws.lambda_handler`` end to end on AWS's emulator: our boto3 checkpoint client talks
to it through AWS_ENDPOINT_URL_LAMBDA, the emulator invokes our handler through the test's Invoke
endpoint, and a human's answers go through ``durable.aws.remote`` (boto3) as they would on AWS."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from duragent.durable import (
    AsyncDurableContext,
    CallbackConfig,
    DurableContext,
    Duration,
    RetryPolicy,
    StepConfig,
    StepError,
)
from duragent.durable.aws import lambda_handler, remote
from duragent.durable.errors import InvalidCheckpointTokenError
from duragent.durable.model import MAX_EXECUTION_RESULT_BYTES

from .emulator import Emulator

SUBMITTED: dict[str, list[str]] = {}
CALLS: dict[str, int] = {}
_lock = threading.Lock()


def _count(key: str) -> int:
    with _lock:
        CALLS[key] = CALLS.get(key, 0) + 1
        return CALLS[key]


def review_flow(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    """step, wait, child context, wait_for_callback, and a step after it."""
    order = ctx.step(lambda: {"id": event["id"], "total": 42}, name="load")
    ctx.wait(Duration.from_seconds(1), name="cool-off")
    summary = ctx.run_in_child_context(
        lambda child: child.step(lambda: f"order {order['id']} for {order['total']}", name="summarize"), name="prepare")
    decision = ctx.wait_for_callback(lambda callback_id: SUBMITTED.setdefault(event["id"], []).append(callback_id),
                                     name="review", config=CallbackConfig(timeout=Duration.from_minutes(5)))
    receipt = ctx.step(lambda: f"{summary}: {decision['verdict']}", name="record")
    return {"order": order, "summary": summary, "decision": decision, "receipt": receipt}


async def review_flow_async(event: dict[str, Any], ctx: AsyncDurableContext) -> dict[str, Any]:
    """review_flow as an async handler: the same operations, awaited, with async bodies."""
    async def load() -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"id": event["id"], "total": 42}

    async def submit(callback_id: str) -> None:
        await asyncio.sleep(0)
        SUBMITTED.setdefault(event["id"], []).append(callback_id)

    order = await ctx.step(load, name="load")
    await ctx.wait(Duration.from_seconds(1), name="cool-off")
    summary = await ctx.run_in_child_context(
        lambda child: child.step(lambda: f"order {order['id']} for {order['total']}", name="summarize"),
        name="prepare")
    decision = await ctx.wait_for_callback(submit, name="review",
                                           config=CallbackConfig(timeout=Duration.from_minutes(5)))
    receipt = await ctx.step(lambda: f"{summary}: {decision['verdict']}", name="record")
    return {"order": order, "summary": summary, "decision": decision, "receipt": receipt}


def flaky_flow(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    def flaky() -> str:
        if _count(event["key"]) < 3:
            raise ConnectionError(f"attempt {CALLS[event['key']]} failed")
        return "ok"

    config = StepConfig(retry=RetryPolicy.exponential(max_attempts=5, initial_delay=1, backoff_rate=1, jitter=False))
    return {"value": ctx.step(flaky, name="flaky", config=config), "attempts": CALLS[event["key"]]}


class OrderRejected(Exception):
    pass


def failing_flow(event: Any, ctx: DurableContext) -> Any:
    def check() -> None:
        raise OrderRejected("order 7 is over the limit")

    ctx.step(check, name="check", config=StepConfig(retry=RetryPolicy.no_retry()))


def big_result_flow(event: dict[str, Any], ctx: DurableContext) -> str:
    size = int(event["size"])
    part = ctx.step(lambda: "x" * 1000, name="part")
    return part * (size // 1000)


def many_big_steps(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    """Seven ~0.9 MB step results: more than the emulator's 5 MiB invocation page, so the replay
    after the wait must page the rest in with GetDurableExecutionState."""
    parts = [ctx.step(lambda i=i: (_count(f"big-{event['key']}"), str(i) * 900_000)[1], name=f"part-{i}")
             for i in range(7)]
    ctx.wait(Duration.from_seconds(1), name="pause")
    return {"lengths": [len(p) for p in parts], "runs": CALLS[f"big-{event['key']}"]}


@pytest.fixture(scope="module")
def fns(emulator: Emulator) -> Emulator:
    for fn in (review_flow, review_flow_async, flaky_flow, failing_flow, big_result_flow, many_big_steps):
        emulator.endpoint.register(fn.__name__.replace("_", "-"), lambda_handler(fn))
    return emulator


@pytest.mark.parametrize("flow", ["review-flow", "review-flow-async"])
def test_step_wait_child_callback_succeeds_through_boto3(fns: Emulator, flow: str) -> None:
    """The same flow as a sync handler and as an async one, under lambda_handler unchanged."""
    order_id = f"o-1-{flow}"
    arn = fns.start_execution(flow, {"id": order_id})
    fns.wait(arn, until=lambda e: bool(remote.pending_callbacks(arn, client=fns.lambda_client)))
    pending = remote.pending_callbacks(arn, client=fns.lambda_client)
    assert [p["ParentName"] for p in pending] == ["review"]
    assert pending[0]["CallbackId"] == SUBMITTED[order_id][0]
    assert [e["Status"] for e in remote.list_executions(flow, client=fns.lambda_client)
            if e["DurableExecutionArn"] == arn] == ["RUNNING"]

    remote.send_callback_success(pending[0]["CallbackId"], '{"verdict": "approved"}', client=fns.lambda_client)
    done = fns.wait(arn)
    assert done["Status"] == "SUCCEEDED", done
    assert json.loads(done["Result"]) == {
        "order": {"id": order_id, "total": 42}, "summary": f"order {order_id} for 42",
        "decision": {"verdict": "approved"}, "receipt": f"order {order_id} for 42: approved"}
    outputs = fns.endpoint.outputs_of(arn)
    assert outputs[:-1] == [{"Status": "PENDING"}] * (len(outputs) - 1) and len(outputs) >= 3
    assert outputs[-1] == {"Status": "SUCCEEDED", "Result": done["Result"]}
    history = remote.get_history(arn, client=fns.lambda_client)
    kinds = [(e["EventType"], e.get("Name")) for e in history if e["EventType"] != "InvocationCompleted"]
    assert kinds == [
        ("ExecutionStarted", kinds[0][1]), ("StepStarted", "load"), ("StepSucceeded", "load"),
        ("WaitStarted", "cool-off"), ("WaitSucceeded", "cool-off"),
        ("ContextStarted", "prepare"), ("StepStarted", "summarize"), ("StepSucceeded", "summarize"),
        ("ContextSucceeded", "prepare"), ("ContextStarted", "review"),
        ("CallbackStarted", "review create callback id"), ("StepStarted", "review submitter"),
        ("StepSucceeded", "review submitter"), ("CallbackSucceeded", "review create callback id"),
        ("ContextSucceeded", "review"), ("StepStarted", "record"), ("StepSucceeded", "record"),
        ("ExecutionSucceeded", kinds[0][1])]
    # Replay ran from the emulator's state: the first step did not run again.
    assert sum(1 for e in history if e["EventType"] == "StepStarted" and e.get("Name") == "load") == 1


def test_callback_failure_and_heartbeat_through_boto3(fns: Emulator) -> None:
    arn = fns.start_execution("review-flow", {"id": "o-2"})
    fns.wait(arn, until=lambda e: bool(remote.pending_callbacks(arn, client=fns.lambda_client)))
    callback_id = remote.pending_callbacks(arn, client=fns.lambda_client)[0]["CallbackId"]
    remote.send_callback_heartbeat(callback_id, client=fns.lambda_client)
    remote.send_callback_failure(callback_id, {"ErrorType": "Rejected", "ErrorMessage": "not approved"},
                                 client=fns.lambda_client)
    done = fns.wait(arn)
    assert done["Status"] == "FAILED"
    assert done["Error"]["ErrorMessage"] == "not approved"
    shown = remote.get_execution(arn, client=fns.lambda_client)
    assert shown["Status"] == "FAILED" and isinstance(shown["StartTimestamp"], float)


def test_retries_suspend_and_resume(fns: Emulator) -> None:
    arn, done = fns.run("flaky-flow", {"key": "retry-1"})
    assert done["Status"] == "SUCCEEDED", done
    assert json.loads(done["Result"]) == {"value": "ok", "attempts": 3}
    failed = [e for e in fns.history(arn) if e["EventType"] == "StepFailed"]
    assert [e["StepFailedDetails"]["RetryDetails"] for e in failed] == [
        {"CurrentAttempt": 1, "NextAttemptDelaySeconds": 1}, {"CurrentAttempt": 2, "NextAttemptDelaySeconds": 1}]
    assert failed[0]["StepFailedDetails"]["Error"]["Payload"]["ErrorType"] == "ConnectionError"


def test_failed_output_shape(fns: Emulator) -> None:
    arn, done = fns.run("failing-flow", {})
    assert done["Status"] == "FAILED"
    output = fns.endpoint.outputs_of(arn)[-1]
    assert output["Status"] == "FAILED" and "Result" not in output
    error = output["Error"]
    assert error["ErrorType"] == f"{OrderRejected.__module__}.OrderRejected"
    assert error["ErrorMessage"] == "order 7 is over the limit"
    assert isinstance(error.get("StackTrace", []), list)
    assert done["Error"]["ErrorType"] == error["ErrorType"]


def test_result_over_the_sync_limit_goes_through_the_execution_checkpoint(fns: Emulator) -> None:
    size = MAX_EXECUTION_RESULT_BYTES + 1000  # the JSON adds 2 quotes
    arn, done = fns.run("big-result-flow", {"size": size}, timeout=120)
    assert done["Status"] == "SUCCEEDED", done
    assert fns.endpoint.outputs_of(arn)[-1] == {"Status": "SUCCEEDED", "Result": ""}
    assert len(json.loads(done["Result"])) == (size // 1000) * 1000


def test_partial_initial_state_is_paged_in(fns: Emulator) -> None:
    arn, done = fns.run("many-big-steps", {"key": "paging"}, timeout=120)
    assert done["Status"] == "SUCCEEDED", done
    assert json.loads(done["Result"]) == {"lengths": [900_000] * 7, "runs": 7}
    replay = fns.endpoint.events_of(arn)[-1]
    assert replay["InitialExecutionState"]["NextMarker"], "the emulator sent the whole state in one page"
    assert len(replay["InitialExecutionState"]["Operations"]) < 9


def test_a_stale_token_is_raised_for_lambda_to_retry(fns: Emulator) -> None:
    arn, done = fns.run("flaky-flow", {"key": "stale"})
    assert done["Status"] == "SUCCEEDED"
    first_event = fns.endpoint.events_of(arn)[0]  # its token was consumed long ago
    CALLS["stale"] = 0
    with pytest.raises(InvalidCheckpointTokenError):
        lambda_handler(flaky_flow)(first_event, None)


def test_step_error_replays_as_the_same_error(fns: Emulator) -> None:
    def catches(event: Any, ctx: DurableContext) -> str:
        try:
            ctx.step(lambda: (_ for _ in ()).throw(KeyError("nope")), name="bad",
                     config=StepConfig(retry=RetryPolicy.no_retry()))
        except StepError as exc:
            ctx.wait(Duration.from_seconds(1), name="after")
            return f"caught {exc.error_type}: {exc.message}"
        return "not raised"

    fns.endpoint.register("catches", lambda_handler(catches))
    arn, done = fns.run("catches", {})
    assert done["Status"] == "SUCCEEDED"
    assert json.loads(done["Result"]) == "caught KeyError: 'nope'"
    assert len(fns.endpoint.outputs_of(arn)) == 2  # the catch ran again on replay, from the checkpoint
