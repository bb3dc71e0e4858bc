"""Prompt caching on Anthropic: where the cache breakpoints go.

Anthropic caches a request's prefix (tools, then system, then messages) up to each block marked
with ``cache_control``; a later request with the same prefix reads it at a tenth of the input
price, and writing it costs a quarter more than plain input. duragent places the marks itself:

- on the last tool (the tool definitions rarely change within a job);
- on the system prompt (shared by every call of an agent, and by every document of a batch);
- on the last block of a conversation that has history (more than one message): the next turn,
  and a conversation resumed after a crash (rebuilt byte for byte from the journal), reads it.
  A one-message request gets no conversation mark: nothing would read it, and writing costs.

Prefixes shorter than the model's minimum are simply not cached (no error, no extra cost). The
ledger prices cache writes and reads at their own rates (``Price.cache_write``/``cache_read``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

MAX_BREAKPOINTS = 4


@dataclass(frozen=True)
class PromptCaching:
    """Which parts of a request get a cache breakpoint, and for how long entries live."""

    system: bool = True
    tools: bool = True
    conversation: bool = True
    ttl: Literal["5m", "1h"] = "5m"

    def control(self) -> dict[str, Any]:
        return {"type": "ephemeral", **({"ttl": "1h"} if self.ttl == "1h" else {})}


def caching_of(value: PromptCaching | bool | None) -> PromptCaching | None:
    """``True``/``None``: the defaults; ``False``: no breakpoints."""
    if value is None or value is True:
        return PromptCaching()
    if value is False:
        return None
    return value


def place_cache_breakpoints(params: dict[str, Any], caching: PromptCaching | None) -> dict[str, Any]:
    """``messages.create`` keyword arguments with the breakpoints added (a copy; at most four)."""
    if caching is None:
        return params
    params = copy.copy(params)
    control = caching.control()
    marks = 0
    tools = params.get("tools")
    if caching.tools and tools:
        params["tools"] = [*tools[:-1], {**tools[-1], "cache_control": control}]
        marks += 1
    system = params.get("system")
    if caching.system and system:
        if isinstance(system, str):
            params["system"] = [{"type": "text", "text": system, "cache_control": control}]
        else:
            params["system"] = [*system[:-1], {**system[-1], "cache_control": control}]
        marks += 1
    messages = params.get("messages") or []
    if caching.conversation and len(messages) > 1 and marks < MAX_BREAKPOINTS:
        last = messages[-1]
        content = last.get("content")
        if isinstance(content, list) and content:
            marked = {**last, "content": [*content[:-1], {**content[-1], "cache_control": control}]}
            params["messages"] = [*messages[:-1], marked]
    return params
