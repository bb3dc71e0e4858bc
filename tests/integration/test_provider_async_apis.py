"""The adapters for the providers' asynchronous APIs, driven by the real SDKs over HTTP against the
fake provider server: the OpenAI Responses API (foreground, streaming, background with retrieval,
cancellation), Anthropic Message Batches and OpenAI Batch (submit, find, poll, results, cancel),
and ``run_batch`` recovering a submission interrupted after the provider created the batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from duragent.agents import Agent
from duragent.agents.batch import BatchItemOutcome, BatchProgress, BatchProvider, run_batch
from duragent.agents.errors import ModelCallAbandonedError
from duragent.agents.messages import Message, ModelRequest, TextBlock, ToolCall, ToolResult, ToolSpec
from duragent.agents.models.anthropic_batch import AnthropicBatches
from duragent.agents.models.openai_batch import OpenAIBatches
from duragent.agents.models.openai_responses import OpenAIResponsesModel
from duragent.durable import LocalRuntime, VirtualClock
from tests.fakes.provider_server import Expired, FakeError, FakeToolCall, FakeUsage, ProviderServer, Reply

ADD = ToolSpec(name="add", description="Add two integers.",
               parameters={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                           "required": ["a", "b"]})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "OPENAI_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as fake:
        yield fake


def responses_model(server: ProviderServer, **kwargs: Any) -> OpenAIResponsesModel:
    return OpenAIResponsesModel("gpt-4.1-test", base_url=server.url + "/v1", api_key="test-key", **kwargs)


def conversation() -> ModelRequest:
    return ModelRequest(system="Use tools.", tools=[ADD], messages=[
        Message.user("Add 1 and 2."),
        Message(role="assistant", content=[TextBlock(text="Adding."), ToolCall(id="c1", name="add",
                                                                               arguments={"a": 1, "b": 2})]),
        Message(role="user", content=[ToolResult(tool_call_id="c1", content="3")]),
    ])


# -- OpenAI Responses ------------------------------------------------------------------------------------
def test_responses_request_and_answer_shapes(server: ProviderServer) -> None:
    server.enqueue(Reply(text="Calling.", tool_calls=[FakeToolCall("add", {"a": 3, "b": 4}, id="call_9")],
                         usage=FakeUsage(input_tokens=30, output_tokens=7, cache_read_tokens=50)))
    response = responses_model(server).request(conversation())
    body = server.last_request.body
    assert server.last_request.path == "/v1/responses" and "background" not in body
    assert body["instructions"] == "Use tools." and body["max_output_tokens"] == 4096
    assert body["input"] == [
        {"role": "user", "content": "Add 1 and 2."},
        {"role": "assistant", "content": "Adding."},
        {"type": "function_call", "call_id": "c1", "name": "add", "arguments": '{"a": 1, "b": 2}'},
        {"type": "function_call_output", "call_id": "c1", "output": "3"},
    ]
    assert body["tools"] == [{"type": "function", "name": "add", "description": "Add two integers.",
                              "parameters": ADD.parameters, "strict": False}]
    assert response.content == [TextBlock(text="Calling."), ToolCall(id="call_9", name="add", arguments={"a": 3, "b": 4})]
    assert response.stop_reason == "tool_use" and response.model == "openai:gpt-4.1-test"
    # the API counts cached tokens inside input_tokens; the ledger keeps them apart
    assert (response.usage.input_tokens, response.usage.cache_read_tokens, response.usage.output_tokens) == (30, 50, 7)


def test_responses_stream_text(server: ProviderServer) -> None:
    server.enqueue(Reply(text="One, two, three.", chunks=["One, ", "two, ", "three."]))
    deltas: list[str] = []
    response = responses_model(server).request(conversation(), on_text=deltas.append)
    assert deltas == ["One, ", "two, ", "three."] and response.text == "One, two, three."
    assert server.last_request.body["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
def test_a_background_call_is_started_then_collected_by_id(server: ProviderServer, stream: bool) -> None:
    server.response_polls = 3
    server.enqueue(Reply(text="Done thinking.", usage=FakeUsage(100, 20)))
    model = responses_model(server, background=True, poll_interval=0.001)
    call_id = model.start(conversation())
    assert server.last_request.body["background"] is True and server.last_request.body["store"] is True
    assert server.responses[call_id].status == "queued"  # the answer is not there yet; the id is
    deltas: list[str] = []
    response = model.finish(call_id, on_text=deltas.append if stream else None)
    assert response.text == "Done thinking." and (response.usage.input_tokens, response.usage.output_tokens) == (100, 20)
    assert "".join(deltas) == ("Done thinking." if stream else "")
    assert server.counts["POST /v1/responses"] == 1 and len(server.billed()) == 1
    assert model.finish(call_id).text == "Done thinking."  # collected again: still one creation, one bill
    assert server.counts["POST /v1/responses"] == 1 and len(server.billed()) == 1


def test_a_background_call_waited_on_too_long_is_cancelled(server: ProviderServer) -> None:
    server.enqueue(Reply(text="never collected"))
    model = responses_model(server, background=True, max_wait=0)
    call_id = model.start(conversation())
    server.hold()  # the model keeps thinking
    try:
        with pytest.raises(ModelCallAbandonedError, match="cancelled"):
            model.finish(call_id)
    finally:
        server.release()
    assert server.counts["POST /v1/responses/{id}/cancel"] == 1
    assert server.responses[call_id].status == "cancelled" and server.billed() == []


def test_an_agent_starts_a_failed_background_call_again(server: ProviderServer, tmp_path: Path) -> None:
    server.enqueue(FakeError(500, "the model crashed"), Reply(text="Second time lucky."))
    agent = Agent(responses_model(server, background=True, poll_interval=0.001), name="bg")
    with LocalRuntime(tmp_path / "bg.db", clock=VirtualClock()) as rt:
        info = rt.run(lambda event, ctx: {"output": agent.run(ctx, "hi").output}, {})
        names = [e["Name"] for e in rt.history(info.id) if e["EventType"] == "StepSucceeded"]
    assert info.status == "SUCCEEDED" and info.result == {"output": "Second time lucky."}
    assert names == ["bg: model call 1 start", "bg: model call 1 start (start 2)", "bg: model call 1 (start 2)"]
    assert [r.status for r in server.responses.values()] == ["failed", "completed"]


# -- batch providers -----------------------------------------------------------------------------------------
def ask(text: str) -> ModelRequest:
    return ModelRequest(system="Summarize.", messages=[Message.user(text)])


def test_anthropic_batches_submit_find_poll_and_results(server: ProviderServer) -> None:
    server.enqueue(Reply(text="a", usage=FakeUsage(10, 2)), FakeError(529, "overloaded"), Expired(),
                   FakeError(400, "bad"))
    batches = AnthropicBatches("claude-test", base_url=server.url, api_key="test-key")
    batch_id = batches.submit([(f"k-{i}", ask(f"doc {i}")) for i in range(4)], key="k")
    sent = server.batches[batch_id].requests
    assert [r["custom_id"] for r in sent] == ["k-0", "k-1", "k-2", "k-3"]
    assert sent[0]["params"]["system"][0]["cache_control"] == {"type": "ephemeral"}  # cached across the batch
    assert batches.find(key="k", count=4) == batch_id and batches.find(key="k", count=5) is None
    assert batches.poll(batch_id) == BatchProgress(ended=True, status="ended", counts={
        "processing": 0, "succeeded": 1, "errored": 2, "canceled": 0, "expired": 1})
    outcomes = {o.custom_id: o for o in batches.results(batch_id)}
    assert outcomes["k-0"].response is not None and outcomes["k-0"].response.batch
    assert (outcomes["k-1"].status, outcomes["k-1"].error_type, outcomes["k-1"].retryable) == \
        ("errored", "overloaded_error", True)
    assert (outcomes["k-2"].status, outcomes["k-2"].retryable) == ("expired", True)
    assert (outcomes["k-3"].error_type, outcomes["k-3"].retryable) == ("invalid_request_error", False)
    other = batches.submit([("c-0", ask("x"))], key="c")
    batches.cancel(other)
    assert [o.status for o in batches.results(other)] == ["canceled"]


def test_openai_batches_upload_jsonl_and_find_by_key(server: ProviderServer) -> None:
    server.enqueue(Reply(text="a"), FakeError(429, "slow"), Expired())
    batches = OpenAIBatches("gpt-4.1-test", base_url=server.url + "/v1", api_key="test-key")
    batch_id = batches.submit([(f"k-{i}", ask(f"doc {i}")) for i in range(3)], key="k")
    batch = server.batches[batch_id]
    lines = [json.loads(line) for line in server.files[batch.input_file_id].data.decode().splitlines()]
    assert [(ln["custom_id"], ln["method"], ln["url"]) for ln in lines] == \
        [(f"k-{i}", "POST", "/v1/chat/completions") for i in range(3)]
    assert lines[0]["body"]["messages"][0] == {"role": "system", "content": "Summarize."}
    assert batch.metadata == {"duragent_key": "k"}
    assert batches.find(key="k", count=3) == batch_id and batches.find(key="other", count=3) is None
    assert batches.poll(batch_id).status == "in_progress"  # validating, then in progress
    progress = batches.poll(batch_id)
    assert progress.ended and progress.status == "expired"
    outcomes = {o.custom_id: o for o in batches.results(batch_id)}
    assert outcomes["k-0"].response is not None and outcomes["k-0"].response.text == "a"
    assert (outcomes["k-1"].status, outcomes["k-1"].retryable) == ("errored", True)
    assert (outcomes["k-2"].status, outcomes["k-2"].error_type) == ("expired", "batch_expired")


# -- run_batch recovering an interrupted submission -----------------------------------------------------------
class Crash(BaseException):
    """The worker dies: nothing in the engine catches it."""


class DiesAfterSubmit:
    """A batch provider whose worker dies right after the provider created the batch."""

    def __init__(self, inner: BatchProvider) -> None:
        self.inner = inner
        self.died = False

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def submit(self, requests: Sequence[tuple[str, ModelRequest]], *, key: str) -> str:
        batch_id = self.inner.submit(requests, key=key)
        if not self.died:
            self.died = True
            raise Crash()
        return batch_id

    def find(self, *, key: str, count: int) -> str | None:
        return self.inner.find(key=key, count=count)

    def poll(self, batch_id: str) -> BatchProgress:
        return self.inner.poll(batch_id)

    def results(self, batch_id: str) -> list[BatchItemOutcome]:
        return self.inner.results(batch_id)

    def cancel(self, batch_id: str) -> None:
        self.inner.cancel(batch_id)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_an_interrupted_submission_adopts_the_batch_it_created(provider: str, server: ProviderServer,
                                                               tmp_path: Path) -> None:
    server.responder = lambda request: Reply(text=f"summary of {request.body['custom_id']}")
    inner: BatchProvider = AnthropicBatches("claude-test", base_url=server.url, api_key="k") \
        if provider == "anthropic" else OpenAIBatches("gpt-test", base_url=server.url + "/v1", api_key="k")
    model = DiesAfterSubmit(inner)
    clock = VirtualClock()
    with LocalRuntime(tmp_path / "adopt.db", clock=clock) as rt:
        execution_id = rt.start(lambda event, ctx: [i.response.text for i in run_batch(
            ctx, ["a", "b", "c"], model=model, name="docs", poll_every=30).items if i.response], {})
        with pytest.raises(Crash):
            rt.run_until_idle()
        clock.advance(rt.lease_seconds + 1)
        rt.run_until_idle()
        info = rt.get(execution_id)
    assert info.status == "SUCCEEDED" and len(info.result) == 3
    assert len(server.batches) == 1  # found, not created again
    assert len(server.billed(batch=True)) == 3


def test_an_adopted_batch_that_is_not_ours_is_noticed(server: ProviderServer, tmp_path: Path) -> None:
    """Anthropic batches carry no key: a same-sized batch created meanwhile by someone else looks
    like ours until its results' custom ids say otherwise; the items are then sent again."""
    server.responder = lambda request: Reply(text=f"summary of {request.body['custom_id']}")
    inner = AnthropicBatches("claude-test", base_url=server.url, api_key="k")

    class DiesThenSomeoneSubmits(DiesAfterSubmit):
        def find(self, *, key: str, count: int) -> str | None:
            inner.submit([(f"theirs-{i}", ask("x")) for i in range(count)], key="theirs")
            return super().find(key=key, count=count)

    model = DiesThenSomeoneSubmits(inner)
    clock = VirtualClock()
    with LocalRuntime(tmp_path / "mismatch.db", clock=clock) as rt:
        execution_id = rt.start(lambda event, ctx: [i.response.text for i in run_batch(
            ctx, ["a", "b"], model=model, name="docs", poll_every=30).items if i.response], {})
        with pytest.raises(Crash):
            rt.run_until_idle()
        clock.advance(rt.lease_seconds + 1)
        rt.run_until_idle()
        info = rt.get(execution_id)
    assert info.status == "SUCCEEDED" and len(info.result) == 2
    assert all("r2-" in text for text in info.result)  # answered by the batch of the next round


# -- async handlers ----------------------------------------------------------------------------------------
def test_async_handlers_send_marked_calls_and_recoverable_background_calls(server: ProviderServer,
                                                                          tmp_path: Path) -> None:
    """The same machinery under ``await agent.run(...)``: the model call's START is committed before
    the request goes out, and a background call is started, then collected by id, streaming to an
    async callback."""
    from duragent.agents.models import FunctionModel
    from duragent.durable import AsyncDurableContext

    rt = LocalRuntime(tmp_path / "async.db", clock=VirtualClock())
    seen_at_call: list[list[str]] = []

    def brain(request: ModelRequest) -> str:
        seen_at_call.append([e["EventType"] for e in rt.history("marked") if e.get("Name") == "m: model call 1"])
        return "marked"

    marked = Agent(FunctionModel(brain, name="model"), name="m")
    server.response_polls = 2
    server.enqueue(Reply(text="Kept by the provider.", chunks=["Kept ", "by the ", "provider."]))
    background = Agent(responses_model(server, background=True, poll_interval=0.001), name="bg")
    streamed: list[str] = []

    async def on_text(delta: str) -> None:
        streamed.append(delta)

    async def first(event: Any, ctx: AsyncDurableContext) -> str:
        return str((await marked.run(ctx, "hi")).output)

    async def second(event: Any, ctx: AsyncDurableContext) -> dict[str, Any]:
        result = await background.run(ctx, "hi", on_text=on_text)
        return {"output": result.output, "paid": result.ledger.paid_calls}

    with rt:
        rt.start(first, {}, execution_id="marked")
        rt.run_until_idle()
        assert rt.get("marked").result == "marked"
        info = rt.run(second, {})
        names = [e["Name"] for e in rt.history(info.id) if e["EventType"] == "StepSucceeded"]
    assert seen_at_call == [["StepStarted"]]  # committed before the model was called
    assert info.status == "SUCCEEDED", info.error
    assert info.result == {"output": "Kept by the provider.", "paid": 1}
    assert "".join(streamed) == "Kept by the provider."
    assert names == ["bg: model call 1 start", "bg: model call 1"]
    assert server.counts["POST /v1/responses"] == 1
