"""JSON text from outside, checked at the door: an execution's input, a callback's answer or error.

What enters the journal must be strict JSON in UTF-8: no NaN or Infinity (they are not JSON), no
number beyond a double, no lone UTF-16 surrogate (which no UTF-8 text can hold: it is what
undecodable bytes become in ``sys.argv``), and no nesting so deep that reading it back would
overflow the stack. Anything else is refused with a ``SerializationError`` (a ``UsageError``: exit 2
on the command line, HTTP 400 in the console) before anything is written.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import SerializationError


def is_utf8_text(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8 (it holds no lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


MAX_JSON_DEPTH = 512
"""How deeply JSON from outside (an execution's input, a callback answer) may nest. Deeper text is
refused with a clear error, never a RecursionError somewhere later."""

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def check_text(text: str, what: str) -> str:
    """A plain string from outside must be valid Unicode (no lone surrogate, which is what
    undecodable bytes become in ``sys.argv``)."""
    if not is_utf8_text(text):
        position = next(i for i, ch in enumerate(text) if "\ud800" <= ch <= "\udfff")
        raise SerializationError(f"{what} is not valid UTF-8 text (an undecodable byte or lone surrogate "
                                 f"{text[position].encode('utf-8', 'backslashreplace').decode()} at "
                                 f"character {position}); send UTF-8 text")
    return text


def check_error_text(error: Any, what: str) -> None:
    """Every text of an ``ErrorObject`` from outside must be valid Unicode."""
    for field in ("ErrorType", "ErrorMessage", "ErrorData"):
        value = getattr(error, field, None)
        if value is not None:
            check_text(value, f"{what}'s {field}")
    for line in getattr(error, "StackTrace", None) or []:
        check_text(line, f"{what}'s StackTrace")


def check_json_text(text: str | bytes, what: str) -> str:
    """JSON text from outside, as it will be stored: UTF-8, strict JSON (no NaN, Infinity or
    number too large for a double) and at most ``MAX_JSON_DEPTH`` deep. Returns the text (decoded
    when bytes) or raises ``SerializationError`` saying what is wrong."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SerializationError(f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start}); "
                                     "send UTF-8 JSON text") from None
    check_text(text, what)
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        raise SerializationError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels; send flatter JSON")
    try:
        value = _STRICT.decode(text)
    except json.JSONDecodeError as exc:
        raise SerializationError(f"{what} is not JSON ({exc}); send JSON text such as "
                                 "'{\"approved\": true}' or '\"text\"'") from None
    except RecursionError:
        raise SerializationError(f"{what} nests too deeply; send flatter JSON") from None
    except ValueError as exc:  # NaN / Infinity / 1e400, or an integer of thousands of digits
        reason = "an integer of more than 4300 digits" if "digits" in str(exc) else str(exc)
        raise SerializationError(f"{what} is not strict JSON ({reason}); send JSON without NaN, Infinity or "
                                 "out-of-range numbers") from None
    if "\\u" in text:  # an escape may spell a lone surrogate, which no UTF-8 text can hold
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise SerializationError(f"{what} holds a lone UTF-16 surrogate escape (such as \\ud800) that "
                                     "is not a character; send valid Unicode text") from None
    return text


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (math.inf, -math.inf):
        raise ValueError(f"{literal[:40]} is out of the range of a double")
    return value


_STRICT = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
"""Built once (``json.loads`` with options builds a decoder per call)."""


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside strings ignored)."""
    depth = deepest = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest
