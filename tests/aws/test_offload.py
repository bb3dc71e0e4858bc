"""Step results over the 1 MiB checkpoint limit go to S3 and come back on replay: on AWS's
emulator, against a local S3-compatible server (moto's server mode on 127.0.0.1), through boto3
(the S3 endpoint from the standard AWS_ENDPOINT_URL_S3)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from duragent.durable import DurableContext, Duration
from duragent.durable.aws import S3PayloadStore, lambda_handler, remote
from duragent.durable.serdes import OFFLOAD_MARKER

from .emulator import Emulator

BUCKET = "duragent-offload-test"
BIG = 1_500_000


@pytest.fixture(scope="module")
def s3(emulator: Emulator) -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        yield client
    server.stop()


RUNS: dict[str, int] = {}


def big_step_flow(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    def produce() -> str:
        RUNS[event["key"]] = RUNS.get(event["key"], 0) + 1
        return "ab" * (BIG // 2)

    document = ctx.step(produce, name="produce")
    ctx.wait(Duration.from_seconds(1), name="pause")  # the value below comes from replay
    return {"bytes": len(document), "sha256": hashlib.sha256(document.encode()).hexdigest(),
            "runs": RUNS[event["key"]]}


def test_a_large_step_result_is_offloaded_and_read_back(emulator: Emulator, s3: Any,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DURAGENT_S3_BUCKET", BUCKET)
    emulator.endpoint.register("big-step", lambda_handler(big_step_flow))
    arn, done = emulator.run("big-step", {"key": "env-bucket"})
    assert done["Status"] == "SUCCEEDED", done
    expected = "ab" * (BIG // 2)
    assert json.loads(done["Result"]) == {"bytes": BIG, "sha256": hashlib.sha256(expected.encode()).hexdigest(),
                                          "runs": 1}
    succeeded = [e for e in remote.get_history(arn, client=emulator.lambda_client)
                 if e["EventType"] == "StepSucceeded"]
    pointer = json.loads(succeeded[0]["StepSucceededDetails"]["Result"]["Payload"])
    assert pointer["bytes"] == BIG + 2 and pointer[OFFLOAD_MARKER].startswith(f"s3://{BUCKET}/duragent/")
    key = pointer[OFFLOAD_MARKER].removeprefix(f"s3://{BUCKET}/")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode() == json.dumps(expected)


def test_the_bucket_can_be_given_to_the_handler(emulator: Emulator, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURAGENT_S3_BUCKET", raising=False)
    emulator.endpoint.register("big-step-arg", lambda_handler(big_step_flow, offload_bucket=BUCKET))
    _, done = emulator.run("big-step-arg", {"key": "arg-bucket"})
    assert done["Status"] == "SUCCEEDED", done
    assert json.loads(done["Result"])["bytes"] == BIG


def test_without_a_bucket_the_step_fails_saying_so(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DURAGENT_S3_BUCKET", raising=False)
    emulator.endpoint.register("big-step-nobucket", lambda_handler(big_step_flow))
    arn, done = emulator.run("big-step-nobucket", {"key": "no-bucket"})
    assert done["Status"] == "FAILED"
    assert "DURAGENT_S3_BUCKET" in done["Error"]["ErrorMessage"]
    failed = [e for e in emulator.history(arn) if e["EventType"] == "StepFailed"]
    assert failed and "PayloadTooLargeError" in failed[0]["StepFailedDetails"]["Error"]["Payload"]["ErrorType"]


def test_a_tampered_object_is_refused(s3: Any) -> None:
    store = S3PayloadStore(BUCKET, s3_client=s3)
    pointer = store.offload("x" * 100, execution_arn="a/b/exec-9", operation_id="op-1")
    assert store.load(pointer) == "x" * 100
    key = json.loads(pointer)[OFFLOAD_MARKER].removeprefix(f"s3://{BUCKET}/")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"y" * 100)
    from duragent.durable.errors import SerializationError

    with pytest.raises(SerializationError, match="sha256"):
        store.load(pointer)
