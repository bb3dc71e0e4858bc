"""OpenAI Chat Completions adapter (``openai:NAME``), which also speaks to any OpenAI-compatible
server (vLLM, Ollama, llama.cpp, ...) through ``OPENAI_BASE_URL`` or ``base_url=``.

The SDK is imported at the first model call, never at ``import agents`` nor when a model is built
(a worker that only replays never imports it). Its own retries are off (``max_retries=0``): every
attempt is a durable step attempt that the journal counts and backs off.
``request`` uses ``openai.OpenAI``; ``arequest`` (async handlers) ``openai.AsyncOpenAI``, one per
event loop, built with the same settings on first use.
"""

from __future__ import annotations

import json
import os
from typing import Any

from duragent.durable.flow import emit

from ..errors import ModelConfigurationError, ModelResponseError
from ..messages import (
    Message,
    ModelRequest,
    ModelResponse,
    StopReason,
    TextBlock,
    ToolCall,
    ToolResult,
    Usage,
)
from ._errors import NORMALIZATION_ERRORS, translated_sdk_errors
from ._util import (
    LoopClients,
    client_kwargs,
    import_sdk,
    normalized,
    parse_arguments,
    require_sdk,
    settings_of,
)
from .base import AsyncTextCallback, TextCallback

PROVIDER = "openai"

FINISH_REASONS: dict[str, StopReason] = {
    "stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens",
    "content_filter": "refusal",
}

OFFICIAL_HOST = "api.openai.com"


class OpenAIModel:
    """A chat model over Chat Completions.

    Args:
        name: the model name the server knows, e.g. ``gpt-4.1`` or ``llama3.1:8b``.
        client: a ready ``openai.OpenAI``; its retry setting is then yours to choose.
        async_client: a ready ``openai.AsyncOpenAI`` for ``arequest`` (otherwise one per event
            loop, configured like the sync client).
        api_key: otherwise the SDK reads ``OPENAI_API_KEY``; a compatible server needs none.
        base_url: otherwise the SDK reads ``OPENAI_BASE_URL``.

    Raises:
        ModelConfigurationError: the SDK is not installed, or no key for api.openai.com.
    """

    provider = PROVIDER

    def __init__(self, name: str, *, client: Any = None, async_client: Any = None, api_key: str | None = None,
                 base_url: str | None = None) -> None:
        self.name = name
        # the SDK's presence and the credentials are checked now; the SDK is imported, and the
        # client made, at the first model call (a worker that only replays never imports it)
        require_sdk("openai", provider=PROVIDER, extra="openai")
        self._sdk_module: Any = None
        if client is None:
            self._settings = self._client_settings(api_key=api_key, base_url=base_url)
        else:  # async clients take the given client's settings
            self._settings = settings_of(client, "api_key", "organization", "project", "base_url", "max_retries",
                                         "timeout")
        self._ready_client = client
        # built on first use in each event loop (the SDK imported then, not here)
        self._async_clients = LoopClients(lambda: self._sdk.AsyncOpenAI(**self._settings), async_client)

    @property
    def _sdk(self) -> Any:
        if self._sdk_module is None:
            self._sdk_module = import_sdk("openai", provider=PROVIDER, extra="openai")
        return self._sdk_module

    @property
    def _client(self) -> Any:
        if self._ready_client is None:
            self._ready_client = self._sdk.OpenAI(**self._settings)
        return self._ready_client

    def _client_settings(self, *, api_key: str | None, base_url: str | None) -> dict[str, Any]:
        custom_endpoint = base_url is not None or bool(os.environ.get("OPENAI_BASE_URL"))
        if api_key is None and not os.environ.get("OPENAI_API_KEY"):
            if not custom_endpoint:
                raise ModelConfigurationError(
                    f"openai:{self.name} needs an API key: set OPENAI_API_KEY (or pass api_key=), or point "
                    "OPENAI_BASE_URL at an OpenAI-compatible server; for tests and offline demos use a "
                    "'scripted:' model", provider=PROVIDER)
            api_key = "not-needed"  # local compatible servers ignore it, the SDK insists on one
        return client_kwargs(api_key=api_key, base_url=base_url)

    @property
    def model_id(self) -> str:
        return f"{PROVIDER}:{self.name}"

    def __repr__(self) -> str:
        return f"OpenAIModel({self.name!r})"

    def request(self, request: ModelRequest, *, on_text: TextCallback | None = None) -> ModelResponse:
        params = build_params(self.name, request, official=self._is_official())
        with translated_sdk_errors(self._sdk, provider=PROVIDER):
            if on_text is None:
                completion = self._client.chat.completions.create(**params)
                return normalized(normalize_completion, completion, self.model_id, provider=PROVIDER)
            reader = StreamReader(self.model_id)
            with self._client.chat.completions.create(**params, **STREAM) as stream:
                for chunk in stream:
                    if (delta := reader.add(chunk)) is not None:
                        on_text(delta)
            return reader.response()

    async def arequest(self, request: ModelRequest, *, on_text: AsyncTextCallback | None = None) -> ModelResponse:
        params = build_params(self.name, request, official=self._is_official())
        client = self._async_clients.current()
        with translated_sdk_errors(self._sdk, provider=PROVIDER):
            if on_text is None:
                completion = await client.chat.completions.create(**params)
                return normalized(normalize_completion, completion, self.model_id, provider=PROVIDER)
            reader = StreamReader(self.model_id)
            async with await client.chat.completions.create(**params, **STREAM) as stream:
                async for chunk in stream:
                    if (delta := reader.add(chunk)) is not None:
                        await emit(on_text, delta)
            return reader.response()

    def _is_official(self) -> bool:
        base = getattr(self._client, "base_url", None)
        return base is not None and getattr(base, "host", "") == OFFICIAL_HOST


STREAM: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}


class StreamReader:
    """Assembles streamed chunks into one response (sync and async streams alike)."""

    def __init__(self, model_id: str) -> None:
        self.model_id = model_id
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.finish: str | None = None
        self.usage: Any = None

    def add(self, chunk: Any) -> str | None:
        """Take one chunk; returns its text delta, if it has one."""
        text = None
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        for choice in chunk.choices or []:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    self.text.append(delta.content)
                    text = delta.content
                if getattr(delta, "refusal", None):
                    self.refusal.append(delta.refusal)
                for part in delta.tool_calls or []:
                    acc = self.calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                    if part.id:
                        acc["id"] = part.id
                    if part.function is not None:
                        acc["name"] += part.function.name or ""
                        acc["arguments"] += part.function.arguments or ""
            if choice.finish_reason:
                self.finish = choice.finish_reason
        return text

    def response(self) -> ModelResponse:
        try:
            content: list[TextBlock | ToolCall] = []
            if self.text or self.refusal:
                content.append(TextBlock(text="".join(self.text) or "".join(self.refusal)))
            for index in sorted(self.calls):
                acc = self.calls[index]
                content.append(ToolCall(id=acc["id"] or f"call_{index}", name=acc["name"],
                                        arguments=parse_arguments(acc["arguments"])))
            return ModelResponse(content=content, stop_reason=stop_reason(self.finish, content, bool(self.refusal)),
                                 usage=normalize_usage(self.usage), model=self.model_id)
        except NORMALIZATION_ERRORS as exc:
            raise ModelResponseError(f"{PROVIDER}: unusable stream: {exc!r}", provider=PROVIDER) from exc


def build_params(name: str, request: ModelRequest, *, official: bool = False) -> dict[str, Any]:
    """``chat.completions.create`` keyword arguments for a normalized request. api.openai.com gets
    ``max_completion_tokens`` (its reasoning models refuse ``max_tokens``); compatible servers get
    the ``max_tokens`` they all understand."""
    settings = request.settings
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        messages.extend(to_wire_messages(message))
    params: dict[str, Any] = {"model": name, "messages": messages,
                              "max_completion_tokens" if official else "max_tokens": settings.max_tokens}
    if request.tools:
        params["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                             "parameters": t.parameters}}
                           for t in request.tools]
    if settings.temperature is not None:
        params["temperature"] = settings.temperature
    if settings.stop_sequences:
        params["stop"] = list(settings.stop_sequences)
    return params


def to_wire_messages(message: Message) -> list[dict[str, Any]]:
    """One normalized message as Chat Completions messages: tool results become ``tool`` messages
    (first, right after the assistant turn that called them), text the user/assistant content."""
    text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
    if message.role == "assistant":
        calls = [b for b in message.content if isinstance(b, ToolCall)]
        wire: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            wire["tool_calls"] = [{"id": c.id, "type": "function",
                                   "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                                  for c in calls]
        elif not text:
            wire["content"] = ""
        return [wire]
    out: list[dict[str, Any]] = [
        {"role": "tool", "tool_call_id": b.tool_call_id,
         "content": f"Error: {b.content}" if b.is_error else b.content}
        for b in message.content if isinstance(b, ToolResult)]
    if text or not out:
        out.append({"role": "user", "content": text})
    return out


def stop_reason(finish: str | None, content: list[TextBlock | ToolCall], refused: bool) -> StopReason:
    if refused:
        return "refusal"
    if any(isinstance(b, ToolCall) for b in content) and finish in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"  # some compatible servers say "stop" after a tool call
    return FINISH_REASONS.get(finish or "", "other")


def normalize_usage(usage: Any) -> Usage:
    """OpenAI counts cached tokens inside ``prompt_tokens``; we keep them apart (as Anthropic does)
    so that ``input_tokens + cache_read_tokens`` is the whole prompt and nothing is counted twice."""
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    prompt = usage.prompt_tokens or 0
    return Usage(input_tokens=max(prompt - cached, 0), output_tokens=usage.completion_tokens or 0,
                 cache_read_tokens=cached)


def normalize_completion(completion: Any, model_id: str) -> ModelResponse:
    choice = completion.choices[0]
    message = choice.message
    content: list[TextBlock | ToolCall] = []
    refusal = getattr(message, "refusal", None)
    if message.content:
        content.append(TextBlock(text=message.content))
    elif refusal:
        content.append(TextBlock(text=refusal))
    for call in message.tool_calls or []:
        function = getattr(call, "function", None)
        if function is None:  # custom (non-function) tools are not part of the normalized conversation
            continue
        content.append(ToolCall(id=call.id, name=function.name, arguments=parse_arguments(function.arguments)))
    return ModelResponse(content=content, stop_reason=stop_reason(choice.finish_reason, content, bool(refusal)),
                         usage=normalize_usage(completion.usage), model=model_id)
