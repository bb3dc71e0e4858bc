"""The checkpoint client's error handling and decoding, on a real boto3 ``lambda`` client whose
HTTP answers come from botocore's Stubber (throttling, 5xx, a revoked token: answers the
emulator cannot be made to give)."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from duragent.durable import DurableContext
from duragent.durable.aws import LambdaCheckpointClient, RetryableCheckpointError, lambda_handler
from duragent.durable.backend import InvocationInput
from duragent.durable.errors import CheckpointError, InvalidCheckpointTokenError
from duragent.durable.model import OperationAction, OperationType, OperationUpdate

ARN = "arn:aws:lambda:us-west-2:123456789012:function:fn:$LATEST/durable-execution/run-1/exec-1"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("lambda", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def update() -> OperationUpdate:
    return OperationUpdate(Id="op-1", Type=OperationType.STEP, Action=OperationAction.SUCCEED, Name="s",
                           SubType="Step", Payload="5")


def request(token: str = "t1") -> dict[str, Any]:
    return {"DurableExecutionArn": ARN, "CheckpointToken": token, "ClientToken": ANY,
            "Updates": [update().to_wire()]}


def answer(token: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"NewExecutionState": {"Operations": [
        {"Id": "op-1", "Type": "STEP", "Status": "SUCCEEDED", "Name": "s", "SubType": "Step",
         "StartTimestamp": START, "EndTimestamp": START, "StepDetails": {"Attempt": 1, "Result": "5"}}]}}
    if token is not None:
        body["CheckpointToken"] = token
    return body


def test_throttling_and_server_errors_are_retried_with_the_same_client_token() -> None:
    client, stub = stubbed()
    stub.add_client_error("checkpoint_durable_execution", "TooManyRequestsException", "slow down", 429,
                          expected_params=request())
    stub.add_client_error("checkpoint_durable_execution", "ServiceException", "oops", 500, expected_params=request())
    stub.add_response("checkpoint_durable_execution", answer("t2"), request())
    with stub:
        response = LambdaCheckpointClient(client, sleep=lambda s: None).checkpoint(ARN, "t1", [update()])
    stub.assert_no_pending_responses()
    assert response.token == "t2"
    assert response.operations[0].StartTimestamp == START.timestamp()  # boto3's datetime decoded


def test_persistent_throttling_is_raised_as_retryable() -> None:
    client, stub = stubbed()
    for _ in range(4):
        stub.add_client_error("checkpoint_durable_execution", "TooManyRequestsException", "slow down", 429)
    with stub, pytest.raises(RetryableCheckpointError) as info:
        LambdaCheckpointClient(client, sleep=lambda s: None).checkpoint(ARN, "t1", [update()])
    assert info.value.retryable


def test_an_invalid_token_is_retryable_and_not_retried_here() -> None:
    client, stub = stubbed()
    stub.add_client_error("checkpoint_durable_execution", "InvalidParameterValueException",
                          "Invalid checkpoint token", 400)
    with stub, pytest.raises(InvalidCheckpointTokenError) as info:
        LambdaCheckpointClient(client, sleep=lambda s: None).checkpoint(ARN, "t1", [update()])
    assert info.value.retryable
    stub.assert_no_pending_responses()


@pytest.mark.parametrize(("code", "status"), [("InvalidParameterValueException", 400),
                                            ("KMSAccessDeniedException", 502)])
def test_other_refusals_are_not_retryable(code: str, status: int) -> None:
    client, stub = stubbed()
    stub.add_client_error("checkpoint_durable_execution", code, "refused", status)
    with stub, pytest.raises(CheckpointError) as info:
        LambdaCheckpointClient(client).checkpoint(ARN, "t1", [update()])
    assert not info.value.retryable


def event(token: str = "t1") -> dict[str, Any]:
    """An invocation event as Lambda sends it: timestamps in epoch milliseconds."""
    return {"DurableExecutionArn": ARN, "CheckpointToken": token,
            "InitialExecutionState": {"Operations": [
                {"Id": "exec-1", "Type": "EXECUTION", "Status": "STARTED", "StartTimestamp": 1767225600000,
                 "ExecutionDetails": {"InputPayload": "{\"n\": 2}"}}], "NextMarker": ""}}


def test_the_event_takes_epoch_milliseconds() -> None:
    invocation = InvocationInput.from_event(event())
    assert invocation.operations[0].StartTimestamp == 1767225600.0
    assert invocation.next_marker is None


def two_steps(event: Any, ctx: DurableContext) -> int:
    one = ctx.step(lambda: event["n"] + 1, name="one")
    return ctx.step(lambda: one * 10, name="two")


def test_a_response_without_token_ends_checkpointing_and_the_invocation_is_pending() -> None:
    client, stub = stubbed()
    stub.add_response("checkpoint_durable_execution", {"NewExecutionState": {"Operations": []}})  # revoked
    with stub:
        output = lambda_handler(two_steps, client=client)(event(), None)
    assert output == {"Status": "PENDING"}


def test_a_refused_checkpoint_fails_the_invocation() -> None:
    client, stub = stubbed()
    stub.add_client_error("checkpoint_durable_execution", "InvalidParameterValueException",
                          "Inconsistent operation name", 400)
    with stub:
        output = lambda_handler(two_steps, client=client)(event(), None)
    assert output["Status"] == "FAILED" and "Result" not in output
    assert "Inconsistent operation name" in output["Error"]["ErrorMessage"]


def test_state_pages_are_fetched_with_the_marker() -> None:
    client, stub = stubbed()
    first_id = hashlib.blake2b(b"1").hexdigest()[:64]  # the SDK's id of the first operation
    page = {"Operations": [{"Id": first_id, "Type": "STEP", "Status": "SUCCEEDED", "Name": "one", "SubType": "Step",
                            "StartTimestamp": START, "StepDetails": {"Attempt": 1, "Result": "3"}}]}
    stub.add_response("get_durable_execution_state", page,
                      {"DurableExecutionArn": ARN, "CheckpointToken": "t1", "Marker": "1:1", "MaxItems": 1000})
    stub.add_response("checkpoint_durable_execution", answer("t2"))
    paged = {**event(), "InitialExecutionState": {**event()["InitialExecutionState"], "NextMarker": "1:1"}}
    with stub:
        output = lambda_handler(two_steps, client=client)(paged, None)
    assert output == {"Status": "SUCCEEDED", "Result": "30"}  # "one" replayed from the paged-in state


def test_the_emulators_in_process_runner_can_drive_the_handler() -> None:
    """AWS's DurableFunctionTestRunner passes an object with its own in-memory service client."""
    import json

    from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner

    from duragent.durable import Duration

    def flow(event: Any, ctx: DurableContext) -> dict[str, Any]:
        doubled = ctx.step(lambda: event["a"] * 2, name="double")
        ctx.wait(Duration.from_days(1), name="a-day")  # the runner skips time
        return {"x": doubled}

    with DurableFunctionTestRunner(handler=lambda_handler(flow)) as runner:
        result = runner.run(input=json.dumps({"a": 21}), execution_timeout=30)
    assert result.status.value == "SUCCEEDED"
    assert json.loads(result.result) == {"x": 42}
