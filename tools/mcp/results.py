"""An MCP tool result as the text a model reads: text content as it is, other content named,
structured content as JSON (unless the text already says the same)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any


def result_text(content: list[Any], structured: Any, is_error: bool) -> str:
    """The text of a ``CallToolResult``'s ``content`` blocks and ``structured_content``."""
    parts = [_block_text(block) for block in content]
    text = "\n".join(part for part in parts if part)
    if structured is not None and not _says_the_same(text, structured):
        data = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
        text = f"{text}\n{data}" if text else data
    if not text:
        return "the tool reported an error and said nothing more" if is_error else ""
    return text


def _block_text(block: Any) -> str:
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{kind} {block.mime_type}, {_size(block.data)} bytes]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        if text is not None:
            return f"[resource {resource.uri}]\n{text}"
        return f"[resource {resource.uri}, {getattr(resource, 'mime_type', None) or 'binary'}, " \
               f"{_size(getattr(resource, 'blob', ''))} bytes]"
    if kind == "resource_link":
        title = getattr(block, "title", None) or getattr(block, "name", None)
        return f"[resource link {block.uri}{f': {title}' if title else ''}]"
    dump = getattr(block, "model_dump", None)
    return json.dumps(dump(mode="json", exclude_none=True), ensure_ascii=False) if dump else str(block)


def _size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data)


def _says_the_same(text: str, structured: Any) -> bool:
    """True if ``text`` already carries ``structured`` (SDK servers put its JSON in a text block,
    and wrap a plain return value as ``{"result": value}``)."""
    if not text:
        return False
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    if parsed == structured:
        return True
    return isinstance(structured, dict) and len(structured) == 1 and "result" in structured \
        and structured["result"] in (parsed, text)


__all__ = ["result_text"]
