"""An execution's operations as a tree, for people: each operation after its parent context,
indented by depth. Shared by ``duragent show`` and the console."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .model import Operation, OperationType


def operation_tree(ops: Iterable[Operation]) -> Iterator[tuple[int, Operation]]:
    """(depth, operation) in checkpoint order, children right after their parent. The EXECUTION
    operation is left out; an operation whose parent is unknown sits at the top; a malformed
    store (a cycle) cannot make this loop."""
    ops = list(ops)
    by_id = {op.Id: op for op in ops}
    children: dict[str | None, list[Operation]] = {}
    for op in ops:
        if op.Type != OperationType.EXECUTION:
            children.setdefault(op.ParentId if op.ParentId in by_id else None, []).append(op)
    seen: set[str] = set()
    stack: list[tuple[int, Operation]] = [(0, op) for op in reversed(children.get(None, []))]
    while stack:
        depth, op = stack.pop()
        if op.Id in seen:
            continue
        seen.add(op.Id)
        yield depth, op
        stack.extend((depth + 1, child) for child in reversed(children.get(op.Id, [])))


def display_name(op: Operation, by_id: dict[str, Operation]) -> str | None:
    """The name people know an operation by. A ``wait_for_callback``'s callback is named after the
    user's call (its parent context, "approval:send_email"), not after the internal operation
    ("approval:send_email create callback id"); every other operation by its own name."""
    parent = by_id.get(op.ParentId or "")
    if op.Type == OperationType.CALLBACK and parent is not None and parent.SubType == "WaitForCallback":
        return parent.Name or op.Name
    return op.Name
