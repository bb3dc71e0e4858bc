"""``duragent ... --aws``: list, show, history and answer executions on Lambda through boto3,
against AWS's emulator (the endpoint from AWS_ENDPOINT_URL_LAMBDA, or --endpoint-url)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from duragent.cli import main as duragent
from duragent.durable import CallbackConfig, DurableContext, Duration
from duragent.durable.aws import lambda_handler, remote

from .emulator import Emulator

FUNCTION = "cli-review"


def review(event: dict[str, Any], ctx: DurableContext) -> dict[str, Any]:
    ctx.step(lambda: event["doc"].upper(), name="prepare")
    answer = ctx.wait_for_callback(lambda callback_id: None, name="sign-off",
                                   config=CallbackConfig(timeout=Duration.from_minutes(5)))
    return {"doc": event["doc"], "answer": answer}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = duragent(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def waiting(emulator: Emulator) -> tuple[Emulator, str]:
    emulator.endpoint.register(FUNCTION, lambda_handler(review))
    arn = emulator.start_execution(FUNCTION, {"doc": "memo"}, name="memo-1")
    emulator.wait(arn, until=lambda e: bool(remote.pending_callbacks(arn, client=emulator.lambda_client)))
    return emulator, arn


def test_list_show_and_answer_a_callback(waiting: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]) -> None:
    emu, arn = waiting
    code, out, _ = cli(capsys, "list", "--aws", "--function", FUNCTION, "--json")
    listing = json.loads(out)
    assert code == 0 and listing["total"] == 1 and listing["next_cursor"] is None
    assert [(row["id"], row["name"], row["status"]) for row in listing["executions"]] == [(arn, "memo-1", "RUNNING")]

    code, out, _ = cli(capsys, "list", "--aws", "--function", FUNCTION, "--pending", "--json")
    pending = json.loads(out)["pending"]
    assert code == 0 and [(p["execution_id"], p["name"], p["kind"]) for p in pending] == [(arn, "sign-off", "callback")]
    assert f"duragent --aws --function {FUNCTION} callback succeed {pending[0]['callback_id']}" in pending[0]["hint"]

    code, out, _ = cli(capsys, "show", "--aws", arn, "--json")
    assert code == 0 and json.loads(out)["status"] == "RUNNING"
    code, out, _ = cli(capsys, "show", "--aws", arn)
    assert f"a callback: 'sign-off' (callback id {pending[0]['callback_id']})" in out

    code, out, _ = cli(capsys, "callback", "succeed", "--aws", pending[0]["callback_id"],
                       "--result", '{"signed": true}')
    assert code == 0, out
    emu.wait(arn)

    code, out, _ = cli(capsys, "show", "--aws", "--function", FUNCTION, "memo-1", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["id"] == arn and shown["status"] == "SUCCEEDED"
    assert shown["result"] == {"doc": "memo", "answer": {"signed": True}}

    code, out, _ = cli(capsys, "history", "--aws", arn, "--json", "--endpoint-url", emu.url)
    events = json.loads(out)
    assert code == 0 and events[-1]["EventType"] == "ExecutionSucceeded"
    assert any(e["EventType"] == "CallbackSucceeded" and e["CallbackSucceededDetails"]["Result"]["Payload"]
               == '{"signed": true}' for e in events)
    code, out, _ = cli(capsys, "history", "--aws", arn)
    assert code == 0 and "ExecutionSucceeded" in out


def test_approve_and_reject_refuse_a_callback_that_is_not_a_review(emulator: Emulator,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    emulator.endpoint.register(FUNCTION, lambda_handler(review))
    arn = emulator.start_execution(FUNCTION, {"doc": "a"})
    emulator.wait(arn, until=lambda e: bool(remote.pending_callbacks(arn, client=emulator.lambda_client)))
    callback_id = remote.pending_callbacks(arn, client=emulator.lambda_client)[0]["CallbackId"]
    code, _, err = cli(capsys, "approve", "--aws", callback_id)
    assert code == 2 and "--function" in err  # the request is read from the function's executions
    for args in (["approve", callback_id], ["reject", callback_id, "--feedback", "too long"]):
        code, _, err = cli(capsys, *args[:1], "--aws", "--function", FUNCTION, *args[1:])
        assert code == 2 and "is not a review" in err and len(err.strip().splitlines()) == 1
    assert emulator.execution(arn)["Status"] == "RUNNING"  # nothing was sent
    code, out, _ = cli(capsys, "answer", "--aws", "--function", FUNCTION, callback_id, '{"signed": "yes"}')
    assert code == 0 and "Lambda resumes the execution" in out
    assert json.loads(emulator.wait(arn)["Result"])["answer"] == {"signed": "yes"}


def test_mistakes_are_one_line_errors(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "list", "--aws")
    assert code == 2 and "--function" in err
    code, _, err = cli(capsys, "callback", "succeed", "--aws", "bm9wZQ==", "--result", "{not json")
    assert code == 2 and "--result is not JSON" in err
    code, _, err = cli(capsys, "show", "--aws", "no-such/execution")
    assert code == 2 and err.startswith("duragent: error: get execution:") and len(err.strip().splitlines()) == 1


def test_stop_a_waiting_execution(emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    emulator.endpoint.register(FUNCTION, lambda_handler(review))
    arn = emulator.start_execution(FUNCTION, {"doc": "to stop"})
    emulator.wait(arn, until=lambda e: bool(remote.pending_callbacks(arn, client=emulator.lambda_client)))
    code, out, _ = cli(capsys, "stop", "--aws", arn)
    assert code == 0 and out.strip().endswith("STOPPED")
    assert emulator.execution(arn)["Status"] == "STOPPED"
