"""Message histories in, message histories out: what ``agent.run(ctx, prompt, history=...)`` accepts.

A history may hold our own ``Message`` objects (or their JSON, as ``dump_messages`` writes and
``AgentResult.new_messages`` gives), or plain provider-style messages as the SDKs take them:

- Anthropic Messages: ``{"role": "user" | "assistant", "content": "text" | [blocks]}`` with
  ``text``, ``tool_use`` and ``tool_result`` blocks;
- OpenAI Chat Completions: ``{"role": "user" | "assistant" | "tool" | "system", "content": ...}``
  with ``tool_calls`` on assistant messages and ``tool_call_id`` on tool messages.

Consecutive messages of one role are merged (a run of OpenAI ``tool`` messages becomes one user
message of tool results), so the conversation alternates as every provider expects. A system
message is accepted only if it repeats the agent's own system prompt: an agent's instructions are
its ``system=``, not part of a conversation. Anything we cannot represent (images, audio) is
refused with a message naming the item, never dropped silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from duragent.durable import UsageError

from .messages import ContentBlock, Message, TextBlock, ToolCall, ToolResult

SYSTEM_ROLES = ("system", "developer")


def to_messages(items: Iterable[Message | Mapping[str, Any]] | None, *, system: str | None = None) -> list[Message]:
    """Normalize a history (ours or provider-style, see the module docstring) into ``Message``s.

    Raises:
        UsageError: an item that is neither, content we cannot represent, or a system message
            that differs from ``system``.
    """
    out: list[Message] = []
    for index, item in enumerate(items or ()):
        for message in _convert(item, index, system):
            if out and out[-1].role == message.role:
                out[-1] = Message(role=message.role, content=[*out[-1].content, *message.content])
            else:
                out.append(message)
    return out


def dump_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as JSON-ready dicts (store them, send them, pass them back as ``history``)."""
    return [m.model_dump(mode="json") for m in messages]


def _convert(item: Any, index: int, system: str | None) -> list[Message]:
    if isinstance(item, Message):
        return [item]
    if not isinstance(item, Mapping):
        raise UsageError(f"history item {index} is a {type(item).__name__}; expected a Message or a dict like "
                         "{'role': 'user', 'content': 'hello'}")
    role = item.get("role")
    content = item.get("content")
    where = f"history item {index} (role {role!r})"
    if role in SYSTEM_ROLES:
        text = _text_of(content, where)
        if system is not None and text.strip() == system.strip():
            return []
        raise UsageError(f"{where} is a system message; an agent's instructions are its system= argument, not part "
                         "of the conversation (leave the system message out of history, or set Agent(system=...))")
    if role == "tool":  # OpenAI: one tool result per message
        call_id = item.get("tool_call_id")
        if not isinstance(call_id, str):
            raise UsageError(f"{where} has no tool_call_id")
        return [Message(role="user", content=[ToolResult(tool_call_id=call_id, content=_text_of(content, where))])]
    if role not in ("user", "assistant"):
        raise UsageError(f"{where}: role must be 'user', 'assistant', 'tool' or 'system'")
    blocks: list[ContentBlock] = []
    if isinstance(content, str):
        if content:
            blocks.append(TextBlock(text=content))
    elif isinstance(content, list):
        blocks.extend(_block(b, f"{where}, block {i}") for i, b in enumerate(content))
    elif content is not None:
        raise UsageError(f"{where}: content must be text or a list of blocks, got {type(content).__name__}")
    for i, call in enumerate(item.get("tool_calls") or ()):  # OpenAI assistant tool calls
        blocks.append(_openai_call(call, f"{where}, tool call {i}"))
    if not blocks:
        return []
    return [Message(role=role, content=blocks)]


def _block(block: Any, where: str) -> ContentBlock:
    if not isinstance(block, Mapping):
        raise UsageError(f"{where} is a {type(block).__name__}; expected a dict with a 'type'")
    kind = block.get("type")
    try:
        if kind == "text":
            return TextBlock(text=str(block.get("text", "")))
        if kind == "tool_call":  # ours, as dump_messages writes it
            return ToolCall.model_validate(block)
        if kind == "tool_result" and "tool_call_id" in block:  # ours
            return ToolResult.model_validate(block)
        if kind == "tool_use":  # Anthropic
            return ToolCall(id=str(block["id"]), name=str(block["name"]), arguments=dict(block.get("input") or {}))
        if kind == "tool_result":  # Anthropic
            return ToolResult(tool_call_id=str(block["tool_use_id"]), content=_text_of(block.get("content"), where),
                              is_error=bool(block.get("is_error", False)))
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise UsageError(f"{where}: a {kind!r} block is malformed ({exc})") from None
    raise UsageError(f"{where}: blocks of type {kind!r} cannot be part of an agent's history (text, tool calls "
                     "and tool results can)")


def _openai_call(call: Any, where: str) -> ToolCall:
    try:
        function = call["function"]
        raw = function.get("arguments") or "{}"
        arguments = json.loads(raw) if isinstance(raw, str) else dict(raw)
        if not isinstance(arguments, dict):
            raise ValueError("arguments are not a JSON object")
        return ToolCall(id=str(call["id"]), name=str(function["name"]), arguments=arguments)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{where} is malformed ({exc}); expected {{'id', 'function': {{'name', 'arguments'}}}}") \
            from None


def _text_of(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, Mapping) and block.get("type") in ("text", "input_text", "output_text"):
                parts.append(str(block.get("text", "")))
            elif isinstance(block, str):
                parts.append(block)
            else:
                kind = block.get("type") if isinstance(block, Mapping) else type(block).__name__
                raise UsageError(f"{where}: content of type {kind!r} cannot be part of an agent's history")
        return "".join(parts)
    raise UsageError(f"{where}: content must be text or a list of text blocks")


__all__ = ["dump_messages", "to_messages"]
