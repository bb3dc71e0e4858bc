"""examples/lambda: the support agent runs under AWS's emulator with Bedrock served by the fake
provider server, pauses for a refund approval, is approved with
``duragent approve --aws ...`` against the emulator's endpoint (an edit that does not fit refused
first), and completes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from duragent.cli import main as duragent
from duragent.durable.aws import remote
from duragent.durable.registry import resolve_target
from tests.fakes.provider_server import FakeToolCall, FakeUsage, ProviderServer, Reply

from .emulator import Emulator

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lambda"
FUNCTION = "duragent-support-agent"


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProviderServer]:
    with ProviderServer() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
        monkeypatch.setenv("DURAGENT_MODEL", "bedrock:anthropic.claude-test-v1:0")
        yield server


def test_the_support_agent_waits_for_approval_and_completes(emulator: Emulator, bedrock: ProviderServer,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    bedrock.enqueue(
        Reply(tool_calls=[FakeToolCall("lookup_order", {"order_id": "A-1001"})], usage=FakeUsage(120, 20)),
        Reply(tool_calls=[FakeToolCall("issue_refund", {"order_id": "A-1001", "amount": 42.5,
                                                        "reason": "it arrived damaged"})], usage=FakeUsage(200, 30)),
        Reply(text="I refunded 42.50 for order A-1001.", usage=FakeUsage(260, 12)))
    handler = resolve_target(f"{EXAMPLE / 'handler.py'}:handler")
    emulator.endpoint.register(FUNCTION, handler)
    arn = emulator.start_execution(FUNCTION, {"message": "Order A-1001 arrived broken. Refund please?"},
                                   name="refund-1")

    emulator.wait(arn, until=lambda e: bool(remote.pending_callbacks(arn, client=emulator.lambda_client)))
    assert duragent(["list", "--aws", "--function", FUNCTION, "--pending", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    pending: list[dict[str, Any]] = listing["pending"]
    assert listing["total"] == 1
    assert [(p["kind"], p["title"], p["name"], p["arguments"]) for p in pending] == [
        ("tool_approval", "Run tool issue_refund?", "approval:issue_refund",
         {"order_id": "A-1001", "amount": 42.5, "reason": "it arrived damaged"})]
    assert f"duragent --aws --function {FUNCTION} approve {pending[0]['callback_id']}" in pending[0]["hint"]
    assert bedrock.request_count == 2
    assert emulator.execution(arn)["Status"] == "RUNNING"

    # an edit that does not fit the tool's schema is refused on AWS too, before anything is sent
    code = duragent(["approve", "--aws", "--function", FUNCTION, pending[0]["callback_id"], "--edit",
                     '{"amount": "all of it"}'])
    assert code == 2 and "'all of it' is not of type 'number'" in capsys.readouterr().err
    assert emulator.execution(arn)["Status"] == "RUNNING"
    code = duragent(["approve", "--aws", "--function", FUNCTION, pending[0]["callback_id"], "--reviewer", "kim",
                     "--endpoint-url", emulator.url])
    assert code == 0, capsys.readouterr()
    done = emulator.wait(arn)
    assert done["Status"] == "SUCCEEDED", done
    result = json.loads(done["Result"])
    assert result["reply"] == "I refunded 42.50 for order A-1001." and result["turns"] == 3
    assert bedrock.request_count == 3  # replays after the approval paid for no model call twice
    history = remote.get_history(arn, client=emulator.lambda_client)
    names = [e.get("Name") for e in history if e["EventType"] == "StepSucceeded"]
    refunds = [e for e in history if e["EventType"] == "StepSucceeded" and "issue_refund" in str(e.get("Name"))
               and "approval" not in str(e.get("Name"))]
    assert len(refunds) == 1, names
    assert "\"status\": \"refunded\"" in json.loads(refunds[0]["StepSucceededDetails"]["Result"]["Payload"])
