"""The model adapters against the REAL anthropic, openai and boto3 SDKs, pointed at a fake provider
server (tests/fakes/provider_server.py) through the SDKs' own base-URL settings. Nothing inside an
SDK is patched: what is checked is what goes over the wire and what comes back normalized.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from duragent.agents.errors import (
    ModelAuthError,
    ModelBadRequestError,
    ModelConfigurationError,
    ModelContextTooLongError,
    ModelError,
    ModelOverloadedError,
    ModelRateLimitError,
    ModelResponseError,
)
from duragent.agents.messages import (
    Message,
    ModelRequest,
    ModelSettings,
    TextBlock,
    ToolCall,
    ToolResult,
    ToolSpec,
)
from duragent.agents.models import (
    AnthropicModel,
    BedrockModel,
    Model,
    OpenAIModel,
    ScriptedModel,
    infer_model,
)
from tests.fakes.provider_server import (
    CONTEXT_TOO_LONG,
    FakeError,
    FakeToolCall,
    FakeUsage,
    Malformed,
    ProviderServer,
    RecordedRequest,
    Reply,
)

REPO = Path(__file__).resolve().parents[2]
PROVIDERS = ["anthropic", "openai", "bedrock"]
KEY = "sk-test-secret-0123456789"
SDK_MODULES = {"anthropic": "anthropic", "openai": "openai", "bedrock": "botocore"}
BEDROCK_ID = "anthropic.claude-test-v1:0"

ADD = ToolSpec(name="add", description="Add two integers.",
               parameters={"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                           "required": ["a", "b"]})


# -- fixtures ----------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No real credentials, endpoints or proxies leak in from the machine."""
    import os

    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "OPENAI_", "AWS_")) or name.lower() in (
                "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "anthropic"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with ProviderServer() as fake:
        yield fake


def point_env_at(provider: str, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configure a provider purely through its SDK's own environment variables."""
    if provider == "anthropic":
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    elif provider == "openai":
        monkeypatch.setenv("OPENAI_BASE_URL", url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
    else:
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTEST")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEY)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


SPECS = {"anthropic": "anthropic:claude-test", "openai": "openai:gpt-test", "bedrock": f"bedrock:{BEDROCK_ID}"}


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def model(provider: str, server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> Model:
    point_env_at(provider, server.url, monkeypatch)
    return infer_model(SPECS[provider])


def ask(text: str = "What is 1 + 2?", **kwargs: Any) -> ModelRequest:
    return ModelRequest(system="You are terse.", messages=[Message.user(text)], **kwargs)


def raises(model: Model, request: ModelRequest, *, stream: bool = False) -> ModelError:
    deltas: list[str] = []
    with pytest.raises(ModelError) as info:
        model.request(request, on_text=deltas.append if stream else None)
    return info.value


# -- replies -----------------------------------------------------------------------------------------
def test_text_reply(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(Reply(text="Three.", usage=FakeUsage(input_tokens=12, output_tokens=3)))
    response = model.request(ask())
    assert response.text == "Three."
    assert response.content == [TextBlock(text="Three.")]
    assert response.stop_reason == "end_turn"
    assert response.model == SPECS[provider]
    assert model.model_id == SPECS[provider]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)
    assert server.request_count == 1
    sent = server.last_request
    assert sent.auth_headers, "the SDK sent its credentials"
    assert KEY not in json.dumps(sent.headers)
    if provider == "anthropic":
        assert sent.path == "/v1/messages"
        assert sent.body["model"] == "claude-test"  # the system prompt carries a cache breakpoint
        assert sent.body["system"] == [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
        assert sent.body["max_tokens"] == 4096
        assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "What is 1 + 2?"}]}]
        assert "tools" not in sent.body and "stream" not in sent.body
    elif provider == "openai":
        assert sent.path == "/v1/chat/completions"
        assert sent.body["model"] == "gpt-test"
        assert sent.body["messages"] == [{"role": "system", "content": "You are terse."},
                                         {"role": "user", "content": "What is 1 + 2?"}]
        assert sent.body["max_tokens"] == 4096  # a compatible server (not api.openai.com)
        assert "tools" not in sent.body and "stream" not in sent.body
    else:
        assert sent.path.endswith("/converse") and sent.model_id == BEDROCK_ID
        assert sent.body["system"] == [{"text": "You are terse."}]
        assert sent.body["messages"] == [{"role": "user", "content": [{"text": "What is 1 + 2?"}]}]
        assert sent.body["inferenceConfig"] == {"maxTokens": 4096}
        assert "toolConfig" not in sent.body


def test_settings_reach_the_wire(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(Reply(text="ok"))
    model.request(ask(settings=ModelSettings(max_tokens=77, temperature=0.25, stop_sequences=["END"])))
    body = server.last_request.body
    if provider == "anthropic":
        assert (body["max_tokens"], body["temperature"], body["stop_sequences"]) == (77, 0.25, ["END"])
    elif provider == "openai":
        assert (body["max_tokens"], body["temperature"], body["stop"]) == (77, 0.25, ["END"])
    else:
        assert body["inferenceConfig"] == {"maxTokens": 77, "temperature": 0.25, "stopSequences": ["END"]}


def test_usage_mapping_with_cache(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(Reply(text="ok", usage=FakeUsage(input_tokens=100, output_tokens=20, cache_read_tokens=40,
                                                      cache_write_tokens=7)))
    usage = model.request(ask()).usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (100, 20, 40)
    # OpenAI reports no cache writes; its prompt_tokens (140 here) include the 40 cached ones
    assert usage.cache_write_tokens == (0 if provider == "openai" else 7)


def test_tool_call_reply(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(Reply(text="Adding.", tool_calls=[FakeToolCall("add", {"a": 1, "b": 2}, id="call-1"),
                                                     FakeToolCall("add", {"a": 3, "b": 4}, id="call-2")]))
    response = model.request(ask(tools=[ADD]))
    assert response.stop_reason == "tool_use"
    assert response.text == "Adding."
    assert response.tool_calls == [ToolCall(id="call-1", name="add", arguments={"a": 1, "b": 2}),
                                   ToolCall(id="call-2", name="add", arguments={"a": 3, "b": 4})]
    body = server.last_request.body
    if provider == "anthropic":
        assert body["tools"] == [{"name": "add", "description": "Add two integers.", "input_schema": ADD.parameters,
                                  "cache_control": {"type": "ephemeral"}}]  # a cache breakpoint on the tools
    elif provider == "openai":
        assert body["tools"] == [{"type": "function", "function": {
            "name": "add", "description": "Add two integers.", "parameters": ADD.parameters}}]
    else:
        assert body["toolConfig"] == {"tools": [{"toolSpec": {
            "name": "add", "description": "Add two integers.", "inputSchema": {"json": ADD.parameters}}}]}


def conversation() -> ModelRequest:
    return ModelRequest(system="Use tools.", tools=[ADD], messages=[
        Message.user("Add 1 and 2, and 5 and x."),
        Message(role="assistant", content=[TextBlock(text="Adding."),
                                           ToolCall(id="c1", name="add", arguments={"a": 1, "b": 2}),
                                           ToolCall(id="c2", name="add", arguments={"a": 5, "b": "x"})]),
        Message(role="user", content=[ToolResult(tool_call_id="c1", content="3"),
                                      ToolResult(tool_call_id="c2", content="b must be an integer", is_error=True)]),
    ])


def test_tool_result_round_trip(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(Reply(text="1 + 2 = 3; the second call failed."))
    response = model.request(conversation())
    assert response.text == "1 + 2 = 3; the second call failed."
    messages = server.last_request.body["messages"]
    if provider == "anthropic":
        assert messages == [
            {"role": "user", "content": [{"type": "text", "text": "Add 1 and 2, and 5 and x."}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Adding."},
                {"type": "tool_use", "id": "c1", "name": "add", "input": {"a": 1, "b": 2}},
                {"type": "tool_use", "id": "c2", "name": "add", "input": {"a": 5, "b": "x"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "c1", "content": "3"},
                {"type": "tool_result", "tool_use_id": "c2", "content": "b must be an integer", "is_error": True,
                 "cache_control": {"type": "ephemeral"}}]},  # the conversation's cache breakpoint
        ]
    elif provider == "openai":
        assert messages == [
            {"role": "system", "content": "Use tools."},
            {"role": "user", "content": "Add 1 and 2, and 5 and x."},
            {"role": "assistant", "content": "Adding.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
                {"id": "c2", "type": "function", "function": {"name": "add", "arguments": '{"a": 5, "b": "x"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "3"},
            {"role": "tool", "tool_call_id": "c2", "content": "Error: b must be an integer"},
        ]
    else:
        assert messages == [
            {"role": "user", "content": [{"text": "Add 1 and 2, and 5 and x."}]},
            {"role": "assistant", "content": [
                {"text": "Adding."},
                {"toolUse": {"toolUseId": "c1", "name": "add", "input": {"a": 1, "b": 2}}},
                {"toolUse": {"toolUseId": "c2", "name": "add", "input": {"a": 5, "b": "x"}}}]},
            {"role": "user", "content": [
                {"toolResult": {"toolUseId": "c1", "content": [{"text": "3"}], "status": "success"}},
                {"toolResult": {"toolUseId": "c2", "content": [{"text": "b must be an integer"}], "status": "error"}}]},
        ]


def test_response_round_trips_into_the_next_request(provider: str, model: Model, server: ProviderServer) -> None:
    """What one call returns, fed back as the assistant turn, is accepted and re-sent intact."""
    server.enqueue(Reply(tool_calls=[FakeToolCall("add", {"a": 1, "b": 2}, id="t1")]), Reply(text="3"))
    first = model.request(ask(tools=[ADD]))
    follow_up = ask(tools=[ADD]).model_copy(update={"messages": [
        Message.user("What is 1 + 2?"), first.as_message(),
        Message(role="user", content=[ToolResult(tool_call_id="t1", content="3")])]})
    assert model.request(follow_up).text == "3"
    assert server.request_count == 2
    assert "t1" in json.dumps(server.last_request.body["messages"])


@pytest.mark.parametrize(("sent", "expected"), [("max_tokens", "max_tokens"), ("refusal", "refusal"),
                                                ("stop_sequence", "stop_sequence")])
def test_stop_reasons(provider: str, model: Model, server: ProviderServer, sent: str, expected: str) -> None:
    server.enqueue(Reply(text="cut", stop_reason=sent))
    got = model.request(ask()).stop_reason
    # Chat Completions has no separate word for a stop sequence: "stop" is an ordinary end of turn
    assert got == ("end_turn" if provider == "openai" and sent == "stop_sequence" else expected)


# -- streaming ---------------------------------------------------------------------------------------
def test_streaming_text(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(Reply(text="Hello streaming world", chunks=["Hello ", "streaming ", "world"],
                         usage=FakeUsage(input_tokens=9, output_tokens=4, cache_read_tokens=2)))
    deltas: list[str] = []
    response = model.request(ask(), on_text=deltas.append)
    assert deltas == ["Hello ", "streaming ", "world"]
    assert response.text == "Hello streaming world"
    assert response.stop_reason == "end_turn"
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.cache_read_tokens) == (9, 4, 2)
    sent = server.last_request
    assert server.request_count == 1
    if provider == "anthropic":
        assert sent.body["stream"] is True
    elif provider == "openai":
        assert sent.body["stream"] is True and sent.body["stream_options"] == {"include_usage": True}
    else:
        assert sent.path.endswith("/converse-stream")


def test_streaming_tool_call(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(Reply(text="Let me add.", tool_calls=[FakeToolCall("add", {"a": 1, "b": 2}, id="s1")]))
    deltas: list[str] = []
    response = model.request(ask(tools=[ADD]), on_text=deltas.append)
    assert "".join(deltas) == "Let me add."
    assert response.stop_reason == "tool_use"
    assert response.tool_calls == [ToolCall(id="s1", name="add", arguments={"a": 1, "b": 2})]


# -- async (arequest): the async SDK clients, Bedrock's boto3 call in a worker thread --------------------
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_arequest_answers_as_request_does(provider: str, model: Model, server: ProviderServer, stream: bool) -> None:
    import asyncio
    import threading

    def reply() -> Reply:
        return Reply(text="Let me add.", chunks=["Let ", "me ", "add."],
                     tool_calls=[FakeToolCall("add", {"a": 1, "b": 2}, id="s1")],
                     usage=FakeUsage(input_tokens=9, output_tokens=4))

    server.enqueue(reply(), reply())
    expected = model.request(ask(tools=[ADD]), on_text=(lambda d: None) if stream else None)
    deltas: list[tuple[str, int]] = []

    async def on_text(delta: str) -> None:  # async callbacks are awaited
        deltas.append((delta, threading.get_ident()))

    async def call() -> tuple[Any, int]:
        return await model.arequest(ask(tools=[ADD]), on_text=on_text if stream else None), threading.get_ident()

    response, loop_thread = asyncio.run(call())
    assert response == expected
    assert server.request_count == 2 and server.requests[1].body == server.requests[0].body
    if stream:
        assert [d for d, _ in deltas] == ["Let ", "me ", "add."]
        assert {t for _, t in deltas} == {loop_thread}  # even Bedrock's deltas arrive on the loop
    if provider != "bedrock":  # the Stainless SDKs say which client sent a request
        assert server.requests[0].headers.get("x-stainless-async") == "false"
        assert server.requests[1].headers.get("x-stainless-async") == "async:asyncio"


def test_arequest_translates_errors_as_request_does(provider: str, model: Model, server: ProviderServer) -> None:
    import asyncio

    server.enqueue(FakeError(429, "slow down", headers={"retry-after": "7"}), FakeError(401, "bad key"))
    with pytest.raises(ModelRateLimitError) as limited:
        asyncio.run(model.arequest(ask()))
    assert limited.value.retry_after == 7.0 and limited.value.status_code == 429
    with pytest.raises(ModelAuthError):
        asyncio.run(model.arequest(ask(), on_text=lambda d: None))
    assert server.request_count == 2, "the SDK retried on its own"


# -- errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_rate_limit_honours_retry_after_and_is_not_retried(provider: str, model: Model, server: ProviderServer,
                                                           stream: bool) -> None:
    server.enqueue(FakeError(429, "slow down", headers={"retry-after": "7"}), Reply(text="never sent"))
    error = raises(model, ask(), stream=stream)
    assert isinstance(error, ModelRateLimitError) and error.retryable
    assert error.retry_after == 7.0
    assert error.status_code == 429
    assert server.request_count == 1, "the SDK retried on its own"
    assert type(error.__cause__).__module__.startswith(SDK_MODULES[provider])


def test_retry_after_ms_and_http_date(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(FakeError(429, headers={"retry-after-ms": "1500"}),
                   FakeError(429, headers={"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert raises(model, ask()).retry_after == 1.5
    assert raises(model, ask()).retry_after == 0.0  # a date in the past: retry now
    assert server.request_count == 2


@pytest.mark.parametrize("status", [500, 503, 529])
def test_server_errors_are_overloaded(provider: str, model: Model, server: ProviderServer, status: int) -> None:
    server.enqueue(FakeError(status, "busy"), Reply(text="never sent"))
    error = raises(model, ask())
    assert isinstance(error, ModelOverloadedError) and error.retryable
    assert server.request_count == 1


def test_error_inside_a_stream(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(FakeError(529, "overloaded", mid_stream=True))
    deltas: list[str] = []
    with pytest.raises(ModelOverloadedError):
        model.request(ask(), on_text=deltas.append)
    assert "".join(deltas) == "partial "
    assert server.request_count == 1


@pytest.mark.parametrize("body", [b'{"not json', b'{"unexpected": true}', b"[]"], ids=["invalid", "fields", "shape"])
def test_malformed_body(provider: str, model: Model, server: ProviderServer, body: bytes) -> None:
    server.enqueue(Malformed(body))
    error = raises(model, ask())
    assert isinstance(error, ModelResponseError) and error.retryable
    assert error.__cause__ is not None


def test_context_too_long(provider: str, model: Model, server: ProviderServer) -> None:
    server.enqueue(FakeError(400, CONTEXT_TOO_LONG))
    error = raises(model, ask())
    assert isinstance(error, ModelContextTooLongError) and not error.retryable


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors(provider: str, model: Model, server: ProviderServer, status: int) -> None:
    server.enqueue(FakeError(status, "invalid x-api-key"))
    error = raises(model, ask())
    assert isinstance(error, ModelAuthError) and not error.retryable
    assert KEY not in str(error) and KEY not in repr(error.__cause__)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_bad_requests(provider: str, model: Model, server: ProviderServer, status: int) -> None:
    server.enqueue(FakeError(status, "messages: field required"))
    error = raises(model, ask())
    assert isinstance(error, ModelBadRequestError) and not error.retryable
    assert server.request_count == 1


def test_connection_refused_is_overloaded(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    point_env_at(provider, f"http://127.0.0.1:{port}", monkeypatch)
    model = infer_model(SPECS[provider])
    error = raises(model, ask())
    assert isinstance(error, ModelOverloadedError) and error.retryable


# -- provider specifics ------------------------------------------------------------------------------
def test_explicit_base_url_and_key(server: ProviderServer) -> None:
    server.enqueue(Reply(text="a"), Reply(text="o"))
    assert AnthropicModel("claude-test", api_key=KEY, base_url=server.url).request(ask()).text == "a"
    assert OpenAIModel("gpt-test", api_key=KEY, base_url=server.url + "/v1").request(ask()).text == "o"
    assert [r.auth_headers != [] for r in server.requests] == [True, True]


def test_injected_clients(server: ProviderServer) -> None:
    import anthropic
    import boto3
    import openai
    from botocore.config import Config

    server.enqueue(Reply(text="a"), Reply(text="o"), Reply(text="b"))
    assert AnthropicModel("c", client=anthropic.Anthropic(api_key=KEY, base_url=server.url, max_retries=0)
                          ).request(ask()).text == "a"
    assert OpenAIModel("g", client=openai.OpenAI(api_key=KEY, base_url=server.url + "/v1", max_retries=0)
                       ).request(ask()).text == "o"
    client = boto3.session.Session().client(
        "bedrock-runtime", region_name="eu-west-1", endpoint_url=server.url, aws_access_key_id="AKIATEST",
        aws_secret_access_key=KEY, config=Config(retries={"total_max_attempts": 1}))
    assert BedrockModel(BEDROCK_ID, client=client).request(ask()).text == "b"


def test_openai_invalid_tool_arguments_are_kept_raw(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    point_env_at("openai", server.url, monkeypatch)
    model = infer_model("openai:gpt-test")
    server.enqueue(Reply(tool_calls=[FakeToolCall("add", '{"a": 1, "b": ', id="bad")]),
                   Reply(tool_calls=[FakeToolCall("add", '[1, 2]', id="list")]),
                   Reply(tool_calls=[FakeToolCall("add", '{"a": 1, "b":', id="bad-stream")]))
    assert model.request(ask(tools=[ADD])).tool_calls[0].arguments == {"_raw": '{"a": 1, "b": '}
    assert model.request(ask(tools=[ADD])).tool_calls[0].arguments == {"_raw": "[1, 2]"}
    streamed = model.request(ask(tools=[ADD]), on_text=lambda _: None)
    assert streamed.tool_calls == [ToolCall(id="bad-stream", name="add", arguments={"_raw": '{"a": 1, "b":'})]


def test_openai_tool_calls_with_finish_reason_stop(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Some compatible servers (Ollama, llama.cpp) finish a tool-calling turn with "stop"."""
    point_env_at("openai", server.url, monkeypatch)
    server.enqueue(Reply(tool_calls=[FakeToolCall("add", {"a": 1, "b": 2})], stop_reason="stop"))
    response = infer_model("openai:llama3.1:8b").request(ask(tools=[ADD]))
    assert response.stop_reason == "tool_use"
    assert server.last_request.body["model"] == "llama3.1:8b"


def test_openai_compatible_server_needs_no_key(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    server.enqueue(Reply(text="local"))
    assert infer_model("openai:qwen2.5").request(ask()).text == "local"


def test_official_openai_gets_max_completion_tokens() -> None:
    from duragent.agents.models.openai import build_params

    official = build_params("gpt-test", ask(), official=True)
    assert official["max_completion_tokens"] == 4096 and "max_tokens" not in official


def test_anthropic_base_url_env_without_key(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy or compatible gateway in ANTHROPIC_BASE_URL may do its own auth."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    server.enqueue(Reply(text="via proxy"))
    assert infer_model("anthropic:claude-test").request(ask()).text == "via proxy"


def test_anthropic_unknown_stop_reason_is_other(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    point_env_at("anthropic", server.url, monkeypatch)
    server.enqueue(Reply(text="...", stop_reason="pause_turn"), Reply(text="...", stop_reason="model_context_window_exceeded"))
    model = infer_model("anthropic:claude-test")
    assert model.request(ask()).stop_reason == "other"
    assert model.request(ask()).stop_reason == "max_tokens"


def test_bedrock_model_not_ready_is_overloaded(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    point_env_at("bedrock", server.url, monkeypatch)
    server.enqueue(FakeError(429, "warming up", code="ModelNotReadyException"))
    error = raises(infer_model(f"bedrock:{BEDROCK_ID}"), ask())
    assert isinstance(error, ModelOverloadedError)
    assert server.request_count == 1


# -- infer_model -------------------------------------------------------------------------------------
def test_infer_model_unknown_provider() -> None:
    with pytest.raises(ModelConfigurationError, match="unknown model provider 'gemini'.*anthropic, openai"):
        infer_model("gemini:pro")
    with pytest.raises(ModelConfigurationError, match="provider:name"):
        infer_model("claude-sonnet-4-5")
    with pytest.raises(ModelConfigurationError, match="provider:name"):
        infer_model("openai:")


def test_infer_model_missing_keys() -> None:
    with pytest.raises(ModelConfigurationError, match="ANTHROPIC_API_KEY"):
        infer_model("anthropic:claude-sonnet-4-5")
    with pytest.raises(ModelConfigurationError, match="OPENAI_API_KEY.*OPENAI_BASE_URL"):
        infer_model("openai:gpt-4.1")


def test_infer_model_missing_bedrock_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", KEY)
    with pytest.raises(ModelConfigurationError, match="region"):
        infer_model(f"bedrock:{BEDROCK_ID}")


def test_bedrock_missing_credentials(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", server.url)
    with pytest.raises(ModelConfigurationError, match="credentials"):
        infer_model(f"bedrock:{BEDROCK_ID}").request(ask())
    assert server.request_count == 0


@pytest.mark.parametrize(("module", "spec", "hint"), [
    ("anthropic", "anthropic:claude-test", "pip install 'duragent[anthropic]'"),
    ("openai", "openai:gpt-test", "pip install 'duragent[openai]'"),
    ("boto3", f"bedrock:{BEDROCK_ID}", "pip install boto3"),
])
def test_infer_model_missing_sdk(monkeypatch: pytest.MonkeyPatch, module: str, spec: str, hint: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like to import
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(ModelConfigurationError, match=hint.replace("[", r"\[").replace("]", r"\]")):
        infer_model(spec)


def test_infer_model_passes_models_through_and_builds_scripted() -> None:
    scripted = ScriptedModel(["hi"])
    assert infer_model(scripted) is scripted
    echo = infer_model("scripted:echo")
    assert echo.model_id == "scripted:echo"
    assert echo.request(ask("ping")).text == "ping"
    with pytest.raises(ModelConfigurationError):
        infer_model(42)  # type: ignore[arg-type]


def test_importing_agents_needs_no_vendor_sdk() -> None:
    code = ("import sys\n"
            "for name in ('anthropic', 'openai', 'boto3', 'botocore'):\n"
            "    sys.modules[name] = None\n"
            "import duragent.agents, duragent.agents.models\n"
            "from duragent.agents.models import infer_model\n"
            "print(infer_model('scripted:x').request.__name__)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "request"


# -- the fake server itself -----------------------------------------------------------------------------
def test_fake_server_records_without_secrets(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for provider in PROVIDERS:
        point_env_at(provider, server.url, monkeypatch)
    server.enqueue(Reply(text="1"), Reply(text="2"), Reply(text="3"))
    for spec in SPECS.values():
        infer_model(spec).request(ask())
    records: list[RecordedRequest] = server.requests
    assert [r.path.rsplit("/", 1)[-1] for r in records] == ["messages", "completions", "converse"]
    assert all(KEY not in json.dumps(r.headers) for r in records)
    assert all(r.auth_headers for r in records)  # sent (the SDK picks the header), never recorded
    assert records[2].auth_headers == ["authorization"]  # SigV4
    assert [r.headers.get("x-stainless-retry-count") for r in records[:2]] == ["0", "0"]


def test_fake_server_exhausted_script_is_loud(server: ProviderServer, monkeypatch: pytest.MonkeyPatch) -> None:
    point_env_at("anthropic", server.url, monkeypatch)
    with pytest.raises(ModelBadRequestError, match="script is exhausted"):
        infer_model("anthropic:claude-test").request(ask())
