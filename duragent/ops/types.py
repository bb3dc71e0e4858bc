"""What the operator API hands back: plain, JSON-ready records, the same for every backend."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from duragent.agents.review import ReviewRequest

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing. ``total`` counts every item the listing holds (None when the
    backend cannot tell without reading all of it: an AWS execution listing with more pages);
    ``next_cursor`` asks for the page after this one (None on the last page)."""

    items: list[T]
    total: int | None
    cursor: str | None = None
    next_cursor: str | None = None

    @property
    def first(self) -> int:
        """1-based position of the first item (for "showing 101-200 of 2000")."""
        return (int(self.cursor) if self.cursor and self.cursor.isdigit() else 0) + 1

    def to_dict(self, key: str, item: Any = None) -> dict[str, Any]:
        render = item or (lambda x: x.to_dict() if hasattr(x, "to_dict") else x)
        return {key: [render(x) for x in self.items], "total": self.total, "cursor": self.cursor,
                "next_cursor": self.next_cursor}


@dataclass(frozen=True)
class ExecutionSummary:
    """One row of an execution listing."""

    id: str
    name: str | None
    function: str | None
    status: str
    started_at: float | None
    ended_at: float | None
    parent_execution: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Execution:
    """One execution in full. ``result`` and ``input`` are decoded JSON; ``invocations`` is None
    where the backend does not count them (AWS)."""

    id: str
    name: str | None
    function: str | None
    status: str
    result: Any
    error: dict[str, Any] | None
    input: Any
    started_at: float | None
    ended_at: float | None
    invocations: int | None = None
    parent_execution: str | None = None
    handler_version: str | None = None
    stalled: dict[str, Any] | None = None
    """Why a RUNNING execution cannot run now and when it is tried again (its handler does not
    import): ``reason``, ``error``, ``attempts``, ``since``, ``at``, ``retry_at``; None otherwise."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PendingCallback:
    """A callback that awaits an answer, with what it asks when it is a review (``request``)."""

    callback_id: str
    execution_id: str
    execution_name: str | None
    function: str | None
    name: str | None
    """The wait's name as the handler gave it (a wait_for_callback's, not its internal callback's)."""
    started_at: float | None
    request: ReviewRequest | None = None
    asked: Any = None
    """For a plain callback: what its submitter recorded (a hint of the answer expected), if anything."""

    @property
    def kind(self) -> str:
        """tool_approval, question or budget for a review; callback for any other wait."""
        return self.request.kind if self.request is not None else "callback"

    @property
    def title(self) -> str:
        return (self.request.title if self.request is not None else None) or self.name or "callback"

    def to_dict(self) -> dict[str, Any]:
        request = self.request
        return {
            "kind": self.kind, "callback_id": self.callback_id, "execution_id": self.execution_id,
            "execution_name": self.execution_name, "function": self.function, "name": self.name,
            "title": self.title, "started_at": self.started_at,
            "age_seconds": None if self.started_at is None else round(max(0.0, time.time() - self.started_at), 3),
            "tool": request.tool if request else None,
            "arguments": request.arguments if request else None,
            "argument_schema": request.argument_schema if request else None,
            "tool_call_id": request.tool_call_id if request else None,
            "question": request.question if request else None,
            "response_schema": request.response_schema if request else None,
            "asked": self.asked,
        }


@dataclass(frozen=True)
class Answered:
    """What an answer did: the callback, its execution, and the answer as recorded (decoded JSON)."""

    action: str
    """approve, reject, answer, succeed, fail or heartbeat."""
    callback_id: str
    execution_id: str
    answer: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "action": self.action, "callback_id": self.callback_id,
                "execution_id": self.execution_id, "answer": self.answer, **self.extra}
