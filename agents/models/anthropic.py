"""Anthropic Messages API adapter (``anthropic:NAME``).

The SDK is imported at the first model call, never at ``import agents`` nor when a model is built
(a worker that only replays never imports it). Its own retries are off (``max_retries=0``): every
attempt is a durable step attempt that the journal counts and backs off.
``request`` uses ``anthropic.Anthropic``; ``arequest`` (async handlers) ``anthropic.AsyncAnthropic``,
one per event loop, built with the same settings on first use.
"""

from __future__ import annotations

import os
from typing import Any

from duragent.durable.flow import emit

from ..errors import ModelConfigurationError
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
from ._errors import translated_sdk_errors
from ._util import LoopClients, client_kwargs, import_sdk, normalized, require_sdk, settings_of
from .anthropic_cache import PromptCaching, caching_of, place_cache_breakpoints
from .base import AsyncTextCallback, TextCallback

PROVIDER = "anthropic"

STOP_REASONS: dict[str, StopReason] = {
    "end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence", "refusal": "refusal",
    "model_context_window_exceeded": "max_tokens",  # output cut short, like max_tokens
}

CREDENTIAL_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE")


class AnthropicModel:
    """A Claude model over the Messages API.

    Args:
        name: the Anthropic model name, e.g. ``claude-sonnet-4-6``.
        client: a ready ``anthropic.Anthropic``; its retry setting is then yours to choose.
        async_client: a ready ``anthropic.AsyncAnthropic`` for ``arequest`` (otherwise one per
            event loop, configured like the sync client).
        api_key: otherwise the SDK reads ``ANTHROPIC_API_KEY`` (or ``ANTHROPIC_AUTH_TOKEN``).
        base_url: otherwise the SDK reads ``ANTHROPIC_BASE_URL``.
        prompt_cache: where cache breakpoints go (``PromptCaching``); on by default, ``False`` for none.

    Raises:
        ModelConfigurationError: the SDK is not installed, or no credential is configured.
    """

    provider = PROVIDER

    def __init__(self, name: str, *, client: Any = None, async_client: Any = None, api_key: str | None = None,
                 base_url: str | None = None, prompt_cache: PromptCaching | bool | None = True) -> None:
        self.name = name
        self.prompt_cache = caching_of(prompt_cache)
        # the SDK's presence and the credentials are checked now; the SDK is imported, and the
        # client made, at the first model call (a worker that only replays never imports it)
        require_sdk("anthropic", provider=PROVIDER, extra="anthropic")
        self._sdk_module: Any = None
        if client is None:
            self._settings = self._client_settings(api_key=api_key, base_url=base_url)
        else:  # async clients take the given client's settings
            self._settings = settings_of(client, "api_key", "auth_token", "base_url", "max_retries", "timeout")
        self._ready_client = client
        # built on first use in each event loop (the SDK imported then, not here)
        self._async_clients = LoopClients(lambda: self._sdk.AsyncAnthropic(**self._settings), async_client)

    @property
    def _sdk(self) -> Any:
        if self._sdk_module is None:
            self._sdk_module = import_sdk("anthropic", provider=PROVIDER, extra="anthropic")
        return self._sdk_module

    @property
    def _client(self) -> Any:
        if self._ready_client is None:
            self._ready_client = self._sdk.Anthropic(**self._settings)
        return self._ready_client

    def _client_settings(self, *, api_key: str | None, base_url: str | None) -> dict[str, Any]:
        has_env_credential = any(os.environ.get(var) for var in CREDENTIAL_ENV)
        custom_endpoint = base_url is not None or bool(os.environ.get("ANTHROPIC_BASE_URL"))
        if api_key is None and not has_env_credential:
            if not custom_endpoint:
                raise ModelConfigurationError(
                    f"anthropic:{self.name} needs an API key: set ANTHROPIC_API_KEY (or pass api_key=); "
                    "for tests and offline demos use a 'scripted:' model", provider=PROVIDER)
            api_key = "unused"  # a compatible server or proxy that does its own auth
        return client_kwargs(api_key=api_key, base_url=base_url)

    @property
    def model_id(self) -> str:
        return f"{PROVIDER}:{self.name}"

    def __repr__(self) -> str:
        return f"AnthropicModel({self.name!r})"

    def request(self, request: ModelRequest, *, on_text: TextCallback | None = None) -> ModelResponse:
        params = place_cache_breakpoints(build_params(self.name, request), self.prompt_cache)
        with translated_sdk_errors(self._sdk, provider=PROVIDER):
            if on_text is None:
                message = self._client.messages.create(**params)
            else:
                with self._client.messages.stream(**params) as stream:
                    for event in stream:
                        if (delta := text_delta(event)) is not None:
                            on_text(delta)
                    message = stream.get_final_message()
        return normalized(normalize_response, message, self.model_id, provider=PROVIDER)

    async def arequest(self, request: ModelRequest, *, on_text: AsyncTextCallback | None = None) -> ModelResponse:
        params = place_cache_breakpoints(build_params(self.name, request), self.prompt_cache)
        client = self._async_clients.current()
        with translated_sdk_errors(self._sdk, provider=PROVIDER):
            if on_text is None:
                message = await client.messages.create(**params)
            else:
                async with client.messages.stream(**params) as stream:
                    async for event in stream:
                        if (delta := text_delta(event)) is not None:
                            await emit(on_text, delta)
                    message = await stream.get_final_message()
        return normalized(normalize_response, message, self.model_id, provider=PROVIDER)


def text_delta(event: Any) -> str | None:
    """The text of a streamed ``content_block_delta`` event, or None for any other event."""
    if event.type == "content_block_delta" and event.delta.type == "text_delta":
        return str(event.delta.text)
    return None


def build_params(name: str, request: ModelRequest) -> dict[str, Any]:
    """``messages.create`` keyword arguments for a normalized request."""
    settings = request.settings
    params: dict[str, Any] = {"model": name, "max_tokens": settings.max_tokens,
                              "messages": [to_wire_message(m) for m in request.messages]}
    if request.system:
        params["system"] = request.system
    if request.tools:
        params["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                           for t in request.tools]
    if settings.stop_sequences:
        params["stop_sequences"] = list(settings.stop_sequences)
    if settings.temperature is not None:
        # not a typed parameter of messages.create in current SDKs; the API still takes it
        params["extra_body"] = {"temperature": settings.temperature}
    return params


def to_wire_message(message: Message) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    for block in message.content:
        if isinstance(block, ToolResult):
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": block.tool_call_id,
                                      "content": block.content}
            if block.is_error:
                result["is_error"] = True
            results.append(result)
        elif isinstance(block, ToolCall):
            others.append({"type": "tool_use", "id": block.id, "name": block.name, "input": block.arguments})
        elif isinstance(block, TextBlock) and block.text:  # the API refuses empty text blocks
            others.append({"type": "text", "text": block.text})
    # tool results must open the user turn that answers the tool calls
    return {"role": message.role, "content": results + others}


def normalize_response(message: Any, model_id: str) -> ModelResponse:
    content: list[TextBlock | ToolCall] = []
    for block in message.content:
        if block.type == "text":
            content.append(TextBlock(text=block.text))
        elif block.type == "tool_use":
            content.append(ToolCall(id=block.id, name=block.name, arguments=dict(block.input or {})))
        # thinking and server-tool blocks are not part of the normalized conversation
    usage = message.usage
    return ModelResponse(
        content=content,
        stop_reason=STOP_REASONS.get(message.stop_reason or "", "other"),
        usage=Usage(input_tokens=usage.input_tokens or 0, output_tokens=usage.output_tokens or 0,
                    cache_read_tokens=getattr(usage, "cache_read_input_tokens", None) or 0,
                    cache_write_tokens=getattr(usage, "cache_creation_input_tokens", None) or 0),
        model=model_id,
    )
