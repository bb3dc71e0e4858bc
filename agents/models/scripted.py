"""Scripted models for tests and offline demos: deterministic, no network, no key.

``ScriptedModel`` answers from a list (or a function); ``FunctionModel(fn)`` answers with
``fn(request)``. Both estimate usage (about four characters a token) so ledgers show numbers, and
both stream text to ``on_text`` in a few chunks, like a real provider.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from duragent.durable.flow import emit

from ..errors import ModelConfigurationError
from ..messages import ModelRequest, ModelResponse, StopReason, TextBlock, ToolCall, ToolResult, Usage
from .base import AsyncTextCallback, TextCallback

PROVIDER = "scripted"

Reply = ModelResponse | str
"""A scripted reply: a full response, or the text of a plain final answer."""
ScriptItem = Reply | Callable[[ModelRequest], Reply]
"""One entry of a script: a reply, or a function of the request that returns one."""

CHARS_PER_TOKEN = 4


class ScriptedModel:
    """Replies in order from ``script``; or, if ``script`` is a function, calls it every time.

    Args:
        script: replies (``ModelResponse``, text, or ``fn(request) -> reply``), or one function.
        name: shown in ``model_id`` as ``scripted:NAME``.
        by_turn: pick the reply by the number of assistant turns already in the request instead of
            by call count, so a process that restarts mid-conversation gets the same next reply
            (a call counter restarts from zero; the conversation does not).
        default: the reply once the script is used up (otherwise that raises).

    ``requests`` records every request received, for assertions.
    """

    __test__ = False  # not a pytest test class, despite the name pattern some projects use
    provider = PROVIDER

    def __init__(self, script: Iterable[ScriptItem] | Callable[[ModelRequest], Reply] = (), *,
                 name: str = "model", by_turn: bool = False, default: ScriptItem | None = None) -> None:
        self.name = name
        self._function: Callable[[ModelRequest], Reply] | None = script if callable(script) else None
        self._script: list[ScriptItem] = [] if callable(script) else list(script)
        self.by_turn = by_turn
        self.default = default
        self.requests: list[ModelRequest] = []
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"{PROVIDER}:{self.name}"

    @property
    def calls(self) -> int:
        """How many requests this model has answered (or tried to)."""
        return len(self.requests)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def request(self, request: ModelRequest, *, on_text: TextCallback | None = None) -> ModelResponse:
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
            item = self._pick(request, number)
        reply = item(request) if callable(item) else item
        response = self._complete(reply, request, number)
        if on_text is not None and response.text:
            for chunk in text_chunks(response.text):
                on_text(chunk)
        return response

    async def arequest(self, request: ModelRequest, *, on_text: AsyncTextCallback | None = None) -> ModelResponse:
        """``request`` for async handlers; ``on_text`` may be async."""
        response = self.request(request)
        if on_text is not None and response.text:
            for chunk in text_chunks(response.text):
                await emit(on_text, chunk)
        return response

    def _pick(self, request: ModelRequest, number: int) -> ScriptItem:
        if self._function is not None:
            return self._function
        index = sum(1 for m in request.messages if m.role == "assistant") if self.by_turn else number - 1
        if index < len(self._script):
            return self._script[index]
        if self.default is not None:
            return self.default
        raise ModelConfigurationError(
            f"{self.model_id} has no reply for call #{number} (reply index {index}; the script holds "
            f"{len(self._script)}); add replies or pass default=", provider=PROVIDER)

    def _complete(self, reply: Reply, request: ModelRequest, number: int) -> ModelResponse:
        """Fill what a script leaves out: the model id, tool-call ids and usage."""
        if isinstance(reply, str):
            reply = ModelResponse(content=[TextBlock(text=reply)], stop_reason="end_turn", model="")
        elif not isinstance(reply, ModelResponse):
            raise TypeError(f"{self.model_id}: a script reply must be a ModelResponse or str, "
                            f"not {type(reply).__name__}")
        content: list[TextBlock | ToolCall] = []
        for i, block in enumerate(reply.content):
            if isinstance(block, ToolCall) and not block.id:
                block = block.model_copy(update={"id": f"call_{number}_{i}"})
            content.append(block)
        usage = reply.usage
        if usage.total_tokens == 0:
            usage = Usage(input_tokens=estimate_tokens(request_chars(request)),
                          output_tokens=estimate_tokens(response_chars(content)))
        return reply.model_copy(update={"content": content, "usage": usage, "model": reply.model or self.model_id})

    # -- building replies ----------------------------------------------------------------------
    @staticmethod
    def reply(text: str, *, stop_reason: StopReason = "end_turn", usage: Usage | None = None) -> ModelResponse:
        """A text reply (``str`` in a script means the same, with ``end_turn``)."""
        return ModelResponse(content=[TextBlock(text=text)], stop_reason=stop_reason, usage=usage or Usage(),
                             model="")

    @staticmethod
    def tool_call(name: str, arguments: dict[str, Any] | None = None, id: str | None = None, *,
                  text: str | None = None) -> ModelResponse:
        """A reply that calls one tool. Without ``id``, one is made from the call number."""
        return ScriptedModel.tool_calls((name, arguments or {}, id), text=text)

    @staticmethod
    def tool_calls(*calls: tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str | None] | ToolCall,
                   text: str | None = None) -> ModelResponse:
        """A reply that calls several tools at once: ``tool_calls(("add", {"a": 1}), ("mul", {...}))``."""
        content: list[TextBlock | ToolCall] = [TextBlock(text=text)] if text else []
        for call in calls:
            if isinstance(call, ToolCall):
                content.append(call)
                continue
            name, arguments, *rest = call
            content.append(ToolCall(id=(rest[0] if rest else None) or "", name=name, arguments=dict(arguments)))
        return ModelResponse(content=content, stop_reason="tool_use", model="")


class FunctionModel(ScriptedModel):
    """``fn(request) -> ModelResponse | str`` answers every call: a script that can look at the
    conversation (the tool results so far, the system prompt) before deciding."""

    def __init__(self, fn: Callable[[ModelRequest], Reply], *, name: str | None = None) -> None:
        super().__init__(fn, name=name or str(getattr(fn, "__name__", "function")))


def echo(request: ModelRequest) -> str:
    """The reply of ``scripted:NAME`` models: the last user text, or the last tool results."""
    for message in reversed(request.messages):
        if message.role != "user":
            continue
        texts = [b.text for b in message.content if isinstance(b, TextBlock)]
        if texts:
            return "".join(texts)
        results = [b.content for b in message.content if isinstance(b, ToolResult)]
        if results:
            return "\n".join(results)
    return ""


def text_chunks(text: str, parts: int = 3) -> list[str]:
    """``text`` cut at word boundaries into at most ``parts`` chunks that join back to it."""
    words = re.findall(r"\S+\s*|\s+", text)
    if len(words) <= 1:
        return [text] if text else []
    size = -(-len(words) // parts)
    return ["".join(words[i:i + size]) for i in range(0, len(words), size)]


def estimate_tokens(chars: int) -> int:
    return max(1, chars // CHARS_PER_TOKEN)


def request_chars(request: ModelRequest) -> int:
    total = len(request.system or "")
    for message in request.messages:
        total += response_chars(message.content)
    total += sum(len(t.name) + len(t.description) + len(json.dumps(t.parameters)) for t in request.tools)
    return total


def response_chars(blocks: Sequence[Any]) -> int:
    total = 0
    for block in blocks:
        if isinstance(block, TextBlock):
            total += len(block.text)
        elif isinstance(block, ToolCall):
            total += len(block.name) + len(json.dumps(block.arguments))
        elif isinstance(block, ToolResult):
            total += len(block.content)
    return total
