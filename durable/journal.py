"""What one invocation replays against: deterministic operation ids and the identity check.

Ids follow the AWS scheme (PROTOCOL.md §3) so a history written here replays under AWS's SDK and
vice versa: a per-context counter from 1, hashed with the parent's id as prefix.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .errors import NonDeterministicExecutionError
from .model import Operation, OperationType

_blake2b = hashlib.blake2b


def operation_id(counter: int | str, prefix: str | None) -> str:
    """The first 32 bytes of BLAKE2b(``prefix-counter``), in hex (AWS's ids)."""
    return _blake2b((f"{prefix}-{counter}" if prefix else str(counter)).encode()).digest()[:32].hex()


class Position:
    """Where an operation sits in the handler (``handler → 'review' → operation #3 ('charge')``), for
    error messages: made for every operation, formatted only when a message needs it."""

    __slots__ = ("path", "counter", "name")

    def __init__(self, path: str, counter: int, name: str | None) -> None:
        self.path, self.counter, self.name = path, counter, name

    def __str__(self) -> str:
        return f"{self.path} → operation #{self.counter}" + (f" ({self.name!r})" if self.name else "")


def check_identity(op: Operation, *, position: str | Position, type_: OperationType, sub_type: str | None,
                   name: str | None, parent_id: str | None) -> None:
    """Fail loudly if the code asks for something other than what history holds at this id."""
    if op.Type == type_ and op.SubType == sub_type and op.Name == name and op.ParentId == parent_id:
        return  # the replay fast path: no dictionaries built
    wanted: dict[str, Any] = {"Type": type_.value, "SubType": sub_type, "Name": name, "ParentId": parent_id}
    found: dict[str, Any] = {"Type": op.Type.value, "SubType": op.SubType, "Name": op.Name,
                             "ParentId": op.ParentId}
    differing = [key for key in wanted if wanted[key] != found[key]]
    if not differing:
        return
    detail = ", ".join(f"{key}: history has {found[key]!r}, code asked for {wanted[key]!r}" for key in differing)
    raise NonDeterministicExecutionError(
        f"non-deterministic replay at {position} (operation id {op.Id[:12]}…): {detail}. The handler "
        "code changed in a way that reorders or renames durable operations; finish or stop executions "
        "started on the old code before deploying this change, or keep the old order.",
        position=str(position), operation_id=op.Id, history=found, code=wanted)
