"""The service's validity rules for a checkpoint batch (PROTOCOL.md §2): a batch is refused whole,
before anything is written, with a message naming the update and the rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import CheckpointError, SerializationError
from ..jsontext import check_error_text, check_text
from ..model import OperationAction, OperationStatus, OperationType, OperationUpdate
from .store import JournalRow
from .writes import load_operation

ALLOWED = {
    OperationType.STEP: {OperationAction.START, OperationAction.SUCCEED, OperationAction.FAIL, OperationAction.RETRY},
    OperationType.CONTEXT: {OperationAction.START, OperationAction.SUCCEED, OperationAction.FAIL},
    OperationType.WAIT: {OperationAction.START, OperationAction.CANCEL},
    OperationType.CALLBACK: {OperationAction.START},
    OperationType.CHAINED_INVOKE: {OperationAction.START},
    OperationType.EXECUTION: {OperationAction.SUCCEED, OperationAction.FAIL},
}


_ALLOWED_PAIRS = {(kind.value, action.value) for kind, actions in ALLOWED.items() for action in actions}
"""ALLOWED as pairs of plain strings: an enum member hashes through Python code, a str does not."""


def validate_batch(updates: Sequence[OperationUpdate], existing: dict[str, JournalRow]) -> None:
    """The service's validity rules: refuse the whole batch before writing anything."""
    if is_new_step(updates, existing):
        check_texts(updates)
        return
    seen: dict[str, OperationAction] = {}
    started_contexts: set[str] = set()
    for index, update in enumerate(updates):
        if (update.Type._value_, update.Action._value_) not in _ALLOWED_PAIRS:
            raise CheckpointError(f"{_where(index, update)}: action {update.Action.value} is not allowed for {update.Type.value}")
        if update.Type == OperationType.EXECUTION and index != len(updates) - 1:
            raise CheckpointError(f"{_where(index, update)}: an EXECUTION update must be the last of its batch")
        if update.Id in seen:
            if not (seen[update.Id] == OperationAction.START and update.Action != OperationAction.START
                    and update.Type in (OperationType.STEP, OperationType.CONTEXT)):
                raise CheckpointError(f"{_where(index, update)}: the same operation appears twice in one batch")
        if update.ParentId and update.ParentId not in started_contexts:
            parent = existing.get(update.ParentId)
            if parent is None or parent.type != OperationType.CONTEXT:
                raise CheckpointError(f"{_where(index, update)}: ParentId does not name a CONTEXT operation")
        row = existing.get(update.Id)
        if row is None and update.Id not in seen and update.Type == OperationType.WAIT \
                and update.Action == OperationAction.CANCEL:
            raise CheckpointError(f"{_where(index, update)}: cannot CANCEL a wait that was never started")
        if row is not None and update.Type != OperationType.EXECUTION and update.Id not in seen:
            current = load_operation(row)
            for key in ("Type", "SubType", "Name", "ParentId"):
                if getattr(current, key) != getattr(update, key):
                    raise CheckpointError(f"{_where(index, update)}: Inconsistent operation {key} "
                                          f"({getattr(current, key)!r} stored, {getattr(update, key)!r} sent)")
            _check_transition(index, update, current.Status)
        if update.Type == OperationType.STEP and update.Action == OperationAction.RETRY and update.StepOptions is None:
            raise CheckpointError(f"{_where(index, update)}: RETRY requires StepOptions")
        if update.Type == OperationType.CHAINED_INVOKE and update.ChainedInvokeOptions is None:
            raise CheckpointError(f"{_where(index, update)}: CHAINED_INVOKE START requires ChainedInvokeOptions (FunctionName)")
        if update.Type == OperationType.WAIT and update.Action == OperationAction.START and update.WaitOptions is None:
            raise CheckpointError(f"{_where(index, update)}: WAIT START requires WaitOptions (WaitSeconds)")
        if update.Action == OperationAction.FAIL and update.Payload is not None:
            raise CheckpointError(f"{_where(index, update)}: FAIL must not carry a Payload")
        if update.Action == OperationAction.SUCCEED and update.Error is not None:
            raise CheckpointError(f"{_where(index, update)}: SUCCEED must not carry an Error")
        _check_texts(index, update)
        if update.Type == OperationType.CONTEXT and update.Action == OperationAction.START:
            started_contexts.add(update.Id)
        seen[update.Id] = update.Action


_STEP, _CONTEXT = OperationType.STEP, OperationType.CONTEXT.value
_START, _SUCCEED = OperationAction.START, OperationAction.SUCCEED


def is_new_step(updates: Sequence[OperationUpdate], operations: Mapping[str, Any]) -> bool:
    """Whether the batch is a new step's START and its SUCCEED (every plain step's checkpoint),
    which every rule above allows: decided in a few comparisons. ``operations``: the execution's
    operations by id, as rows from the journal or a running invocation's index (a parent must be
    a CONTEXT there; a context known only by its key is left to the full check). False means
    "check every rule", not invalid."""
    if len(updates) != 2:
        return False
    start, succeed = updates
    if start.Type is not _STEP or start.Action is not _START or succeed.Type is not _STEP or \
            succeed.Action is not _SUCCEED or succeed.Id != start.Id or succeed.ParentId != start.ParentId or \
            succeed.Error is not None or start.Id in operations:
        return False
    return start.ParentId is None or getattr(operations.get(start.ParentId), "type", None) == _CONTEXT


def check_texts(updates: Sequence[OperationUpdate]) -> None:
    """The text rule alone (for a batch ``is_new_step`` accepted)."""
    for index, update in enumerate(updates):
        _check_texts(index, update)


def _where(index: int, update: OperationUpdate) -> str:
    """How a refusal names the update (built only when one is refused)."""
    return f"update #{index + 1} ({update.Type.value} {update.Action.value} {update.Id[:12]}…)"


def _check_transition(index: int, update: OperationUpdate, status: OperationStatus) -> None:
    kind, action = update.Type, update.Action
    ok = True
    if kind == OperationType.STEP:
        if action == OperationAction.START:
            ok = status == OperationStatus.READY
        else:
            ok = status in (OperationStatus.STARTED, OperationStatus.READY)
    elif kind == OperationType.CONTEXT:
        ok = action != OperationAction.START and status == OperationStatus.STARTED
    elif kind == OperationType.WAIT:
        ok = action == OperationAction.CANCEL and status == OperationStatus.STARTED
    elif kind in (OperationType.CALLBACK, OperationType.CHAINED_INVOKE):
        ok = False
    if not ok:
        raise CheckpointError(f"{_where(index, update)}: cannot {action.value} an operation that is {status.value}")


def _check_texts(index: int, update: OperationUpdate) -> None:
    """Payloads and errors are stored as UTF-8: text that cannot be (a lone surrogate) is refused
    here, before the transaction, rather than failing the write."""
    try:
        if update.Payload is not None:
            check_text(update.Payload, "its Payload")
        if update.Error is not None:
            check_error_text(update.Error, "its Error")
    except SerializationError as exc:
        raise CheckpointError(f"{_where(index, update)}: {exc}") from None
