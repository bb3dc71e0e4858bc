"""What comes in from outside (a command line, stdin, an HTTP body) checked before it reaches a
store: JSON that is strictly JSON, text that is valid UTF-8, ids of the right shape, numbers in
range. Every refusal is an ``InputError`` whose one-line message says what was wrong and what
would be right, so the CLI exits 2 and the console answers 400 with nothing recorded."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from duragent.durable import UsageError

MAX_DEPTH = 100
"""Deepest nesting of arrays and objects accepted in JSON from outside."""
MAX_PAGE = 1000
"""Most items one page of a listing holds (AWS's own page limit)."""
MAX_OFFSET = 10**9

STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "STOPPED")
EXECUTION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CALLBACK_ID = re.compile(r"[A-Za-z0-9+/=_.:-]{1,2048}")


class InputError(UsageError):
    """Input from outside that cannot be used as it is; the message says what would be right."""


def check_text(text: str, what: str) -> str:
    """``text`` itself, if it is valid Unicode that encodes to UTF-8. A lone surrogate is what
    Python makes of invalid UTF-8 bytes in a command line (and what a ``\\ud800`` escape decodes to)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid UTF-8 text (a lone surrogate or an invalid byte at "
                         f"character {exc.start}); pass text in UTF-8") from None
    return text


def decode_utf8(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} is not valid UTF-8 (byte {exc.start}); send UTF-8 text") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a JSON number")
    return value


def _depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings (counted without parsing, so a
    5,000-deep document is refused before the parser recurses into it)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, what: str, example: str) -> Any:
    """Strict JSON: no NaN or Infinity, no number out of float range, at most ``MAX_DEPTH`` deep,
    and every string valid UTF-8 (no lone surrogates, escaped or not)."""
    check_text(text, what)
    if _depth(text) > MAX_DEPTH:
        raise InputError(f"{what} nests deeper than {MAX_DEPTH} levels; pass flatter JSON such as {example}")
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except ValueError as exc:  # JSONDecodeError, and our refusals of NaN/Infinity/1e400/huge ints
        reason = " ".join(str(exc).split())
        raise InputError(f"{what} is not JSON ({reason}); pass a JSON document such as {example}") from None
    check_value(value, what)
    return value


def check_value(value: Any, what: str) -> Any:
    """``value`` itself if it is JSON data that can be stored: strings valid UTF-8, numbers finite,
    at most ``MAX_DEPTH`` deep. For values that did not come as JSON text (a Python caller's)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"{what} nests deeper than {MAX_DEPTH} levels; pass flatter JSON")
        if isinstance(item, str):
            check_text(item, f"a string in {what}")
        elif isinstance(item, bool) or item is None or isinstance(item, int):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InputError(f"{what} holds {item}, which is not a JSON number; pass a finite number")
        elif isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise InputError(f"{what} has a key that is not text ({key!r}); JSON keys are strings")
                check_text(key, f"a key in {what}")
                stack.append((inner, depth + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((inner, depth + 1) for inner in item)
        else:
            raise InputError(f"{what} holds a {type(item).__name__}, which is not JSON; pass JSON data")
    return value


def to_json(value: Any, what: str = "the value") -> str:
    """Compact JSON text of checked JSON data."""
    check_value(value, what)
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def json_object(text: str, what: str, example: str) -> dict[str, Any]:
    value = parse_json(text, what, example)
    if not isinstance(value, dict):
        raise InputError(f"{what} must be a JSON object, got {type(value).__name__}; pass e.g. {example}")
    return value


def execution_id(text: str, what: str = "execution id") -> str:
    check_text(text, what)
    if not EXECUTION_ID.fullmatch(text):
        raise InputError(f"{what} {_clip(text)} is not a valid execution id; ids are 1-64 characters from "
                         "A-Z a-z 0-9 - _ (`duragent list` shows them)")
    return text


def callback_id(text: str) -> str:
    check_text(text, "callback id")
    if not CALLBACK_ID.fullmatch(text):
        raise InputError(f"callback id {_clip(text)} is not a valid callback id (1-2048 characters from "
                         "A-Z a-z 0-9 + / = _ . : -); `duragent list --pending` shows them")
    return text


def page_limit(value: int | str, what: str = "limit") -> int:
    number = _whole(value, what, f"a whole number from 1 to {MAX_PAGE}")
    if not 1 <= number <= MAX_PAGE:
        raise InputError(f"{what} {_clip(str(value))} is out of range; use a whole number from 1 to {MAX_PAGE}")
    return number


def page_offset(value: int | str, what: str = "offset") -> int:
    number = _whole(value, what, "a whole number from 0")
    if not 0 <= number <= MAX_OFFSET:
        raise InputError(f"{what} {_clip(str(value))} is out of range; use a whole number from 0 to {MAX_OFFSET}")
    return number


def execution_status(text: str | None) -> str | None:
    """An AWS ExecutionStatus name (any case), or None for no filter."""
    if text is None or text == "":
        return None
    check_text(text, "status")
    value = text.strip().upper()
    if value not in STATUSES:
        raise InputError(f"unknown status {_clip(text)}; use one of {', '.join(STATUSES)}")
    return value


def short_text(text: str, what: str, *, limit: int = 200, required: bool = False) -> str:
    check_text(text, what)
    if required and not text.strip():
        raise InputError(f"{what} is empty; pass a non-empty text")
    if len(text) > limit:
        raise InputError(f"{what} is {len(text)} characters long; pass at most {limit}")
    return text


def _whole(value: int | str, what: str, right: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"{what} must be {right}")
    if isinstance(value, int):
        return value
    check_text(value, what)
    text = value.strip()
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise InputError(f"{what} {_clip(value)} is not {right}; pass {right}")
    if len(text.lstrip("+-").lstrip("0")) > 12:
        raise InputError(f"{what} {_clip(value)} is out of range; pass {right}")
    return int(text)


def _clip(text: str, limit: int = 60) -> str:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(shown.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace"))
