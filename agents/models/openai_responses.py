"""OpenAI Responses API adapter (``openai-responses:NAME``), with background mode for calls that a
crash must not pay for twice.

``OpenAIResponsesModel("gpt-4.1", background=True)``: the provider keeps each answer under its
response id. The agent then calls it in two durable steps (``agents.inflight``): one creates the
response (``background=true``, returning at once) and checkpoints the id, the next waits for the
answer, streaming its text when asked (``retrieve(stream=True, starting_after=N)``, reconnecting
after the last event seen) or polling. A worker killed while waiting costs nothing: the resumed
invocation retrieves the stored response by id. A response waited on longer than ``max_wait`` is
cancelled (nobody would collect it) and started again.

The model id is ``openai:NAME``, so prices are those of the chat models.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ModelCallAbandonedError, ModelError, ModelResponseError
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
from ._util import normalized, parse_arguments
from .base import TextCallback
from .openai import PROVIDER, OpenAIModel

T = TypeVar("T")

RUNNING = frozenset({"queued", "in_progress"})
STREAM_RECONNECTS = 5


class OpenAIResponsesModel:
    """A model over the Responses API.

    Args:
        name: the model name, e.g. ``gpt-4.1``.
        background: run each call in background mode, recoverable by its id after a crash.
        client, api_key, base_url: as ``OpenAIModel``.
        poll_interval: first pause between status reads when not streaming (doubling to 2 s).
        max_wait: seconds to wait for a background answer before cancelling it and starting again.
    """

    provider = PROVIDER

    def __init__(self, name: str, *, background: bool = False, client: Any = None, api_key: str | None = None,
                 base_url: str | None = None, poll_interval: float = 0.2, max_wait: float = 3600.0) -> None:
        self._chat = OpenAIModel(name, client=client, api_key=api_key, base_url=base_url)
        self.name = name
        self.background = background
        self.poll_interval = poll_interval
        self.max_wait = max_wait

    @property
    def model_id(self) -> str:
        return f"{PROVIDER}:{self.name}"

    @property
    def recoverable(self) -> bool:
        return self.background

    def __repr__(self) -> str:
        return f"OpenAIResponsesModel({self.name!r}, background={self.background})"

    @property
    def _responses(self) -> Any:
        return self._chat._client.responses

    def _call(self, fn: Callable[[], T]) -> T:
        with translated_sdk_errors(self._chat._sdk, provider=PROVIDER):
            return fn()

    # -- one call in the foreground ----------------------------------------------------------------
    def request(self, request: ModelRequest, *, on_text: TextCallback | None = None) -> ModelResponse:
        params = build_params(self.name, request)
        if on_text is None:
            response = self._call(lambda: self._responses.create(**params))
            return self._normalized(response)
        return self._stream(lambda: self._responses.create(**params, stream=True), on_text)

    # -- recoverable calls (background mode) ---------------------------------------------------------
    def start(self, request: ModelRequest) -> str:
        params = build_params(self.name, request)
        response = self._call(lambda: self._responses.create(**params, background=True, store=True))
        return str(response.id)

    def finish(self, call_id: str, *, on_text: TextCallback | None = None) -> ModelResponse:
        deadline = time.monotonic() + self.max_wait
        if on_text is not None:
            after = -1
            for _ in range(STREAM_RECONNECTS):
                seen: list[int] = []

                def reopen(after: int = after) -> Any:
                    return self._responses.retrieve(call_id, stream=True, starting_after=after)

                try:
                    return self._stream(reopen, on_text, seen)
                except ModelError as exc:
                    if not exc.retryable or time.monotonic() > deadline:
                        raise
                    after = max([after, *seen])  # pick the stream up after the last event we had
        pause = self.poll_interval
        while True:
            response = self._call(lambda: self._responses.retrieve(call_id))
            if response.status not in RUNNING:
                return self._final(response)
            if time.monotonic() > deadline:
                self.cancel(call_id)
                raise ModelCallAbandonedError(f"{PROVIDER}: response {call_id} still {response.status} after "
                                              f"{self.max_wait:.0f} s; cancelled", provider=PROVIDER)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)

    def cancel(self, call_id: str) -> None:
        self._call(lambda: self._responses.cancel(call_id))

    # -- reading answers --------------------------------------------------------------------------------
    def _final(self, response: Any) -> ModelResponse:
        if response.status in ("completed", "incomplete"):
            return self._normalized(response)
        error = getattr(response, "error", None)
        detail = f": {getattr(error, 'message', '')}" if error is not None else ""
        raise ModelCallAbandonedError(f"{PROVIDER}: response {response.id} ended {response.status}{detail}",
                                      provider=PROVIDER)

    def _normalized(self, response: Any) -> ModelResponse:
        return normalized(normalize_response, response, self.model_id, provider=PROVIDER)

    def _stream(self, open_stream: Callable[[], Any], on_text: TextCallback, seen: list[int] | None = None
                ) -> ModelResponse:
        final: Any = None
        response_id: str | None = None

        def read() -> None:
            nonlocal final, response_id
            with open_stream() as stream:
                for event in stream:
                    number = getattr(event, "sequence_number", None)
                    if seen is not None and isinstance(number, int):
                        seen.append(number)
                    kind = getattr(event, "type", "")
                    carried = getattr(event, "response", None)
                    if carried is not None and getattr(carried, "id", None):
                        response_id = carried.id
                    if kind == "response.output_text.delta":
                        on_text(event.delta)
                    elif kind in ("response.completed", "response.incomplete", "response.failed",
                                  "response.cancelled"):
                        final = carried

        self._call(read)
        if final is None and response_id is not None:  # the stream ended early: ask for the outcome
            final = self._call(lambda: self._responses.retrieve(response_id))
            if final.status in RUNNING:
                raise ModelResponseError(f"{PROVIDER}: the stream of {response_id} ended before the response did",
                                         provider=PROVIDER)
        if final is None:
            raise ModelResponseError(f"{PROVIDER}: the stream ended without a response", provider=PROVIDER)
        return self._final(final)


def build_params(name: str, request: ModelRequest) -> dict[str, Any]:
    """``responses.create`` keyword arguments: the system prompt as ``instructions``, the
    conversation as input items (messages, function calls and their outputs)."""
    settings = request.settings
    params: dict[str, Any] = {"model": name, "input": [item for m in request.messages for item in to_input_items(m)],
                              "max_output_tokens": settings.max_tokens}
    if request.system:
        params["instructions"] = request.system
    if request.tools:
        params["tools"] = [{"type": "function", "name": t.name, "description": t.description,
                            "parameters": t.parameters, "strict": False} for t in request.tools]
    if settings.temperature is not None:
        params["temperature"] = settings.temperature
    return params


def to_input_items(message: Message) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
    if message.role == "assistant":
        if text:
            items.append({"role": "assistant", "content": text})
        for block in message.content:
            if isinstance(block, ToolCall):
                items.append({"type": "function_call", "call_id": block.id, "name": block.name,
                              "arguments": _json(block.arguments)})
        return items
    for block in message.content:
        if isinstance(block, ToolResult):
            items.append({"type": "function_call_output", "call_id": block.tool_call_id,
                          "output": f"Error: {block.content}" if block.is_error else block.content})
    if text or not items:
        items.append({"role": "user", "content": text})
    return items


def _json(value: Any) -> str:
    return json.dumps(value)


def normalize_response(response: Any, model_id: str) -> ModelResponse:
    content: list[TextBlock | ToolCall] = []
    refused = False
    for item in response.output or []:
        if item.type == "message":
            for part in item.content or []:
                if part.type == "output_text":
                    content.append(TextBlock(text=part.text))
                elif part.type == "refusal":
                    refused = True
                    content.append(TextBlock(text=part.refusal))
        elif item.type == "function_call":
            content.append(ToolCall(id=item.call_id, name=item.name, arguments=parse_arguments(item.arguments)))
    stop: StopReason = "end_turn"
    details = getattr(response, "incomplete_details", None)
    if refused:
        stop = "refusal"
    elif any(isinstance(b, ToolCall) for b in content):
        stop = "tool_use"
    elif response.status == "incomplete":
        stop = "max_tokens" if getattr(details, "reason", None) == "max_output_tokens" else "other"
    return ModelResponse(content=content, stop_reason=stop, usage=normalize_usage(response.usage), model=model_id)


def normalize_usage(usage: Any) -> Usage:
    """Like Chat Completions, cached tokens are counted inside ``input_tokens``: kept apart here."""
    if usage is None:
        return Usage()
    try:
        details = getattr(usage, "input_tokens_details", None)
        cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
        return Usage(input_tokens=max((usage.input_tokens or 0) - cached, 0), output_tokens=usage.output_tokens or 0,
                     cache_read_tokens=cached)
    except NORMALIZATION_ERRORS:  # pragma: no cover - a usage of the wrong shape: count nothing
        return Usage()
