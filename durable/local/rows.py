"""How an operation is kept in a journal row, and read back.

A journal row holds one change of one operation: its state after the change, without the fields
that have columns of their own (Id, Type, Status). The operation id is stored as 32 bytes when it
is the 64-hex id our SDK (and AWS's) makes, as text otherwise. Large data is zlib-compressed, so an
agent turn's payloads take fewer pages. Nothing here parses a row before somebody asks for the
operation: replay reads rows as ``StoredOperation``s and parses one only when the handler reaches it.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from typing import Any, NamedTuple

from pydantic_core import from_json

from ..model import Operation, OperationStatus, OperationType

COMPRESS_FROM = 400
"""Data at least this long (characters) is stored zlib-compressed: below it the saving is too
small to pay for the CPU, above it (agent turns, tool results) it is about half of the bytes."""

_TYPES = OperationType._value2member_map_
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]*").fullmatch
"""An id that needs no JSON escaping (every id our SDK and AWS's make)."""
_STATUSES = OperationStatus._value2member_map_
_NO: tuple[bool, None] = (False, None)
_RESULT_MARK = ',"Result":"'
quote_json = json.encoder.encode_basestring  # type: ignore[attr-defined]
"""A str as a JSON string, non-ASCII kept as is: how a step's row is written (transitions.succeed_step)
and matched on replay (``StoredOperation.replay_result``)."""
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=256)
def _identity_prefix(name: str, sub_type: str, parent_id: str | None) -> str:
    """How a succeeded step's row of this identity begins (transitions.succeed_step writes it)."""
    parent = "" if parent_id is None else f',"ParentId":{quote_json(parent_id)}'
    return f'{{"Name":{quote_json(name)},"SubType":{quote_json(sub_type)}{parent},"StartTimestamp":'


def op_key(op_id: str) -> str | bytes:
    """The stored form of an operation id (the same id always gives the same key)."""
    if len(op_id) == 64:
        try:
            key = bytes.fromhex(op_id)
        except ValueError:
            return op_id
        if key.hex() == op_id:  # lowercase hex only, so that the key gives back the very same id
            return key
    return op_id


def op_id_of(key: str | bytes) -> str:
    return key.hex() if isinstance(key, bytes) else key


def pack(text: str) -> str | bytes:
    """The stored form of a row's data."""
    if len(text) < COMPRESS_FROM:
        return text
    raw = text.encode()
    packed = zlib.compress(raw, 6)
    return packed if len(packed) < len(raw) else text


def unpack(data: str | bytes) -> str:
    return zlib.decompress(data).decode() if isinstance(data, bytes) else data


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def compact_json(value: Any) -> str:
    """JSON without spaces, non-ASCII kept as is (one encoder, not one per call)."""
    return _ENCODER.encode(value)


def state_json(state: dict[str, Any]) -> str:
    """The row's data for an operation state given as a dict (no Id, Type or Status)."""
    return _ENCODER.encode(state)


def operation_state(op: Operation) -> str:
    """The row's data for an operation model."""
    return op.model_dump_json(exclude_none=True, exclude={"Id", "Type", "Status"})


_validate_json = Operation.model_validate_json


def parse(op_id: str, type_: str, status: str, data: str) -> Operation:
    """An ``Operation`` from a row's columns and (unpacked) data."""
    head = f'{{"Id":{json.dumps(op_id)},"Type":"{type_}","Status":"{status}"'
    return _validate_json(head + ("}" if data == "{}" else "," + data[1:]))


class StoredOperation(NamedTuple):
    """An operation as read from the journal, parsed into an ``Operation`` only by ``load()``.

    ``Id``, ``Type`` and ``Status`` are at hand without parsing (they have columns). The execution
    state keeps these, not parsed models: 100,000 parsed operations would take about 200 MB. A
    tuple of strings, so the garbage collector stops tracking it: a replay that holds 100,000 of
    them pays nothing for them at each collection."""

    Id: str
    type: str
    status: str
    data: str | bytes
    k: int = 0
    """The journal key of the row (0 where it does not matter)."""

    @property
    def Type(self) -> OperationType:  # noqa: N802 - the protocol's field name
        return _TYPES[self.type]  # type: ignore[return-value]

    @property
    def Status(self) -> OperationStatus:  # noqa: N802 - the protocol's field name
        return _STATUSES[self.status]  # type: ignore[return-value]

    def load(self) -> Operation:
        op_id, type_, status, data, _ = self
        if data.__class__ is not str:
            data = unpack(data)
        head = f'{{"Id":"{op_id}","Type":"{type_}","Status":"{status}"' if _PLAIN_ID(op_id) else \
            f'{{"Id":{json.dumps(op_id)},"Type":"{type_}","Status":"{status}"'
        return _validate_json(head + ("}" if data == "{}" else "," + data[1:]))  # type: ignore[index]

    def input_payload(self) -> str | None:
        """An EXECUTION row's input, read without building a model (every invocation reads it).
        Raises for a row that does not read back."""
        data = self.data if self.data.__class__ is str else unpack(self.data)
        fields = from_json(data)
        details = fields.get("ExecutionDetails") if fields.__class__ is dict else None
        payload = details.get("InputPayload") if details.__class__ is dict else None
        if payload is not None and payload.__class__ is not str:
            raise ValueError("the execution's input is not JSON text")
        return payload

    def replay_result(self, name: str | None, sub_type: str | None, parent_id: str | None) -> tuple[bool, str | None]:
        """(True, its recorded result) if this is a step that succeeded under exactly this identity,
        read from the row without building a model: what replay of a finished step needs; (False,
        None) otherwise, and for a row that does not read back (the caller then takes the path that
        names the mismatch or the damage). The rows this service writes for a succeeded step start
        with their identity and end with their result, so the common row is matched as text."""
        if self.type != "STEP" or self.status != "SUCCEEDED":
            return _NO
        data = self.data
        if data.__class__ is str and name is not None and sub_type is not None:
            if data.startswith(_identity_prefix(name, sub_type, parent_id)) and data.endswith('"}}'):  # type: ignore[union-attr]
                at = data.rfind(_RESULT_MARK)  # type: ignore[union-attr]
                if at > 0:  # the result is the row's last value (a JSON string: its quotes are escaped)
                    try:
                        result, end = _scanstring(data, at + len(_RESULT_MARK))
                    except ValueError:
                        result, end = None, -1
                    if end == len(data) - 2:
                        return True, result
        try:
            if data.__class__ is not str:
                data = unpack(data)
            fields = from_json(data)  # pydantic's Rust parser: about 1.5x json.loads on a row
            if fields.__class__ is not dict:
                return _NO
            details = fields.get("StepDetails")
            result = details.get("Result") if details is not None else None
            if result is not None and result.__class__ is not str:
                return _NO
        except Exception:
            return _NO
        if fields.get("Name") != name or fields.get("SubType") != sub_type or fields.get("ParentId") != parent_id:
            return _NO
        return True, result

    def __repr__(self) -> str:
        return f"StoredOperation({self.type} {self.status} {self.Id[:12]}…)"
