"""How values become checkpointed strings and come back.

The default is plain JSON (what every SDK and human can read), typed on the way back: a step
whose function is annotated ``-> Order`` gets an ``Order`` on replay, via pydantic. A custom
``Serdes`` per operation writes whatever string it likes (``HELLO CHILD`` is a valid payload).
Never pickle: a journal must be readable by other languages and safe to load.
"""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from .errors import SerializationError
from .jsontext import is_utf8_text

T = TypeVar("T")


@runtime_checkable
class Serdes(Protocol[T]):
    """Turns a value into the payload string stored in history, and back."""

    def serialize(self, value: T) -> str | None: ...

    def deserialize(self, data: str | None) -> T: ...


def dumps(value: Any) -> str:
    """Compact, strict JSON of anything pydantic can make JSON-able (models, dataclasses,
    datetimes...). NaN and infinities are refused: they are not JSON. A string that is not valid
    Unicode (a lone surrogate, as ``os.listdir`` returns for a file name that is not UTF-8) is
    written escaped (``\\udcff``), so the text always encodes as UTF-8 and reads back as the same
    value."""
    try:
        text = _json(value, ascii_only=False)
    except (TypeError, ValueError, RecursionError):
        text = _dumps_jsonable(value, ascii_only=False)
    if is_utf8_text(text):
        return text
    try:
        return _json(value, ascii_only=True)
    except (TypeError, ValueError, RecursionError):
        return _dumps_jsonable(value, ascii_only=True)


_ENCODERS = {ascii_only: json.JSONEncoder(separators=(",", ":"), ensure_ascii=ascii_only, allow_nan=False)
             for ascii_only in (False, True)}
"""Built once: ``json.dumps`` with any option set builds an encoder per call."""


def _json(value: Any, *, ascii_only: bool) -> str:
    return _ENCODERS[ascii_only].encode(value)


def _dumps_jsonable(value: Any, *, ascii_only: bool) -> str:
    try:
        return _json(to_jsonable_python(value), ascii_only=ascii_only)
    except RecursionError:
        raise SerializationError(
            f"cannot serialize a value of type {type(value).__qualname__} to JSON: it is nested too deeply "
            "(or refers to itself); return flatter data") from None
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        if "depth" in str(exc):
            raise SerializationError(
                f"cannot serialize a value of type {type(value).__qualname__} to JSON: it is nested too deeply "
                f"({exc}); return flatter data") from None
        hint = " (NaN and infinity are not JSON: return None or a string instead)" \
            if "Out of range float" in str(exc) else ""
        raise SerializationError(
            f"cannot serialize a value of type {type(value).__qualname__} to JSON ({exc}){hint}; return "
            "JSON-able data (dict, list, str, number, bool, None, a pydantic model or dataclass) or "
            "pass a custom serdes= for this operation") from None


def safe_text(text: str) -> str:
    """``text`` with any lone surrogate written as its escape (``\\udcff``): what a handler's own
    error message becomes, so that it can always be stored as UTF-8."""
    if is_utf8_text(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@functools.lru_cache(maxsize=512)
def _adapter(hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(hint)


class JsonSerdes(Generic[T]):
    """JSON, optionally validated into ``type_hint`` on the way back."""

    def __init__(self, type_hint: Any = None) -> None:
        self.type_hint = None if type_hint in (None, Any, object, type(None)) else type_hint
        self._adapter: TypeAdapter[Any] | None = None

    def serialize(self, value: T) -> str | None:
        return dumps(value)

    def deserialize(self, data: str | None) -> T:
        if data is None or data == "":
            return None  # type: ignore[return-value]
        try:
            value = _loads(data)
        except json.JSONDecodeError as exc:
            raise SerializationError(f"checkpointed payload is not JSON ({exc}): {data[:80]!r}") from None
        except RecursionError:
            raise SerializationError(f"checkpointed payload nests too deeply to read back: {data[:80]!r}") from None
        if self.type_hint is None or value.__class__ is self.type_hint and value.__class__ in _EXACT:
            return value  # type: ignore[no-any-return]
        adapter = self._adapter
        if adapter is None:
            try:
                adapter = self._adapter = _adapter(self.type_hint)
            except TypeError:  # unhashable or exotic hint: leave the value as JSON
                return value  # type: ignore[no-any-return]
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise SerializationError(
                f"checkpointed value does not fit the annotated type {self.type_hint!r}: {exc}") from None


DEFAULT_SERDES: JsonSerdes[Any] = JsonSerdes()
_EXACT = frozenset({int, str, float, bool})
"""Hints a decoded JSON value of exactly that class already satisfies (nothing to validate)."""

_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(data: str) -> Any:
    """``json.loads``, minus its Python layers for the common case (a payload we wrote: no
    surrounding whitespace). Anything else goes through ``json.loads`` and its error messages."""
    try:
        value, end = _scan(data, 0)
    except (StopIteration, ValueError, RecursionError):
        return json.loads(data)
    return value if end == len(data) else json.loads(data)


@functools.lru_cache(maxsize=512)
def _typed_serdes(hint: Any) -> JsonSerdes[Any]:
    return JsonSerdes(hint)


class PassThroughSerdes:
    """Strings stored as they are (callback answers are the outside world's bytes)."""

    def serialize(self, value: Any) -> str | None:
        return None if value is None else str(value)

    def deserialize(self, data: str | None) -> Any:
        return data


@functools.lru_cache(maxsize=1024)
def _return_hint(fn: Any) -> Any:
    try:
        return typing.get_type_hints(fn).get("return")
    except Exception:  # forward refs that do not resolve, builtins, partials
        return None


_last: tuple[Any, Serdes[Any]] = (None, DEFAULT_SERDES)
"""The last function asked about and its serdes: a loop of steps asks about the same one each time."""


def serdes_for(fn: Any, custom: Serdes[Any] | None) -> Serdes[Any]:
    """The serdes for a function's result: the custom one, else JSON typed by its annotation."""
    global _last
    if custom is not None:
        return custom
    last = _last
    if last[0] is fn:
        return last[1]
    try:
        hint = _return_hint(fn)
    except TypeError:
        hint = None
    serdes: Serdes[Any]
    if hint is None:
        serdes = DEFAULT_SERDES
    else:
        try:
            serdes = _typed_serdes(hint)
        except TypeError:  # an unhashable hint
            serdes = JsonSerdes(hint)
    _last = (fn, serdes)
    return serdes


def serialize(serdes: Serdes[Any], value: Any) -> str | None:
    try:
        data = serdes.serialize(value)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"custom serdes {type(serdes).__name__} failed to serialize: {exc!r}") from exc
    if data is not None and not isinstance(data, str):
        raise SerializationError(f"custom serdes {type(serdes).__name__} returned a {type(data).__name__}, "
                                 "not a str; a payload is text")
    if data is not None and not is_utf8_text(data):
        raise SerializationError(f"custom serdes {type(serdes).__name__} returned text that is not valid "
                                 "Unicode (a lone surrogate); escape it or encode the value as JSON")
    return data


def deserialize(serdes: Serdes[Any], data: str | None) -> Any:
    try:
        return serdes.deserialize(data)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"custom serdes {type(serdes).__name__} failed to deserialize: {exc!r}") from exc


# -- large payloads ------------------------------------------------------------------------------

OFFLOAD_MARKER = "__duragent_offload__"
"""Key of the small JSON pointer checkpointed in place of an offloaded payload."""


@runtime_checkable
class PayloadStore(Protocol):
    """Keeps a payload too large for a checkpoint elsewhere (S3 on Lambda); the checkpoint holds
    the pointer ``offload`` returns and replay reads it back with ``load``. A backend offers one
    as its ``payload_store`` attribute."""

    def offload(self, payload: str, *, execution_arn: str, operation_id: str) -> str: ...

    def load(self, pointer: str) -> str: ...


def payload_store_of(service: Any) -> PayloadStore | None:
    """The backend's payload store, if it has one."""
    return getattr(service, "payload_store", None)


def is_offload_pointer(data: str | None) -> bool:
    return data is not None and data.startswith("{") and OFFLOAD_MARKER in data[:64]


def load_payload(service: Any, data: str | None) -> str | None:
    """A checkpointed payload as written: an offload pointer is resolved through the backend."""
    if data is None or not is_offload_pointer(data):
        return data
    store = payload_store_of(service)
    if store is None:
        raise SerializationError(f"this checkpoint holds an offloaded payload ({data[:120]!r}) but the "
                                 "backend has no payload store to read it back (run it on durable.aws)")
    return store.load(data)
