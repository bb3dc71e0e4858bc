"""Anthropic prompt caching, as the fake provider server plays it (from Anthropic's documented
behaviour): a request is a prefix in the order tools, system, messages; a ``cache_control`` block
marks a breakpoint. The longest cached prefix ending at one of the request's breakpoints is read
(``cache_read_input_tokens``); the part up to the last breakpoint beyond it is written
(``cache_creation_input_tokens``); the rest is ordinary input (``input_tokens``). A read refreshes
the entry's lifetime (5 minutes by default, 1 hour with ``"ttl": "1h"``). At most four
breakpoints are allowed. Tokens are estimated at four characters each.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
MAX_BREAKPOINTS = 4


class CacheRequestError(ValueError):
    """A request the API would refuse (e.g. more than four breakpoints)."""


def tokens(value: Any) -> int:
    """About four characters a token, never zero for something non-empty."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return max(1, len(text) // 4) if text else 0


def _strip(block: Any) -> Any:
    """A block without its cache_control: the mark does not change what is cached."""
    if isinstance(block, dict):
        return {k: _strip(v) for k, v in block.items() if k != "cache_control"}
    if isinstance(block, list):
        return [_strip(v) for v in block]
    return block


def prefix_blocks(body: dict[str, Any]) -> list[tuple[Any, dict[str, Any] | None]]:
    """The request as its cache sees it: every block in order, with its cache_control if any."""
    blocks: list[tuple[Any, dict[str, Any] | None]] = []
    for tool in body.get("tools") or []:
        blocks.append((("tool", _strip(tool)), tool.get("cache_control")))
    system = body.get("system")
    if isinstance(system, str):
        blocks.append((("system", system), None))
    for block in system if isinstance(system, list) else []:
        blocks.append((("system", _strip(block)), block.get("cache_control")))
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            blocks.append(((message.get("role"), content), None))
            continue
        for block in content or []:
            blocks.append(((message.get("role"), _strip(block)), block.get("cache_control")))
    return blocks


@dataclass
class CacheUse:
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int


class PromptCache:
    def __init__(self, clock: Any = time.monotonic) -> None:
        self._entries: dict[str, float] = {}  # prefix digest -> expiry
        self._lock = threading.Lock()
        self._clock = clock

    def use(self, body: dict[str, Any]) -> CacheUse:
        blocks = prefix_blocks(body)
        breakpoints = [i for i, (_, mark) in enumerate(blocks) if mark is not None]
        if len(breakpoints) > MAX_BREAKPOINTS:
            raise CacheRequestError(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                                    f"Found {len(breakpoints)}.")
        digests: list[str] = []
        running = hashlib.sha256()
        sizes: list[int] = []
        for block, _ in blocks:
            running.update(json.dumps(block, sort_keys=True).encode())
            digests.append(running.copy().hexdigest())
            sizes.append(tokens(block[1]))
        total = sum(sizes)
        now = self._clock()
        with self._lock:
            read_end = -1
            for index in reversed(breakpoints):  # the longest live cached prefix at a breakpoint
                expiry = self._entries.get(digests[index])
                if expiry is not None and expiry > now:
                    read_end = index
                    break
            write_end = breakpoints[-1] if breakpoints and breakpoints[-1] > read_end else read_end
            for index in breakpoints:
                ttl = TTL_SECONDS.get(str((blocks[index][1] or {}).get("ttl", "5m")), 300.0)
                if index <= write_end:
                    self._entries[digests[index]] = now + ttl
        read = sum(sizes[: read_end + 1])
        written = sum(sizes[read_end + 1: write_end + 1])
        return CacheUse(input_tokens=total - read - written, cache_read_tokens=read, cache_write_tokens=written)
